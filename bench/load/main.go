// Command load measures imap-mcp server binaries side by side under load,
// against a private Dovecot (the test rig) on loopback: MCP tool calls
// over HTTP with bearer tokens, as real clients make them.
//
// For each binary and round it reports: saturation (closed loop, list 50
// newest and get one message alternating) in calls/s with p50/p99 and the
// CPU per call of the server and of Dovecot, and their ratio (server
// over Dovecot, per round, so that both share the round's noise); JSON-RPC ping calls/s; paced
// load (clients each calling every 2.5 s) with p99, errors and the
// server's peak RSS; and a burst of closed-loop clients with the
// database-lock errors the server logged. Medians over rounds are printed
// with the ratio of each binary to the first.
//
// Usage (bench/load.sh builds the binaries):
//
//	go run ./bench/load -bin old=/tmp/old,new=/tmp/new [-rounds 3] [-seconds 15]
//
// It needs root (the rig runs Postfix and Dovecot) and takes about
// rounds × binaries × (3 × seconds + 10) seconds.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/store"
)

const messages = 10000

func main() {
	bins := flag.String("bin", "", "label=path of each server binary, comma-separated; ratios are against the first")
	rounds := flag.Int("rounds", 3, "rounds; each runs every binary once, interleaved")
	seconds := flag.Int("seconds", 15, "length of each timed phase")
	users := flag.Int("users", 50, "people, each with a token and one account on the sink mailbox")
	saturate := flag.Int("saturate", 50, "closed-loop clients of the saturation and ping phases")
	paced := flag.Int("paced", 1000, "clients of the paced phase, each calling every 2.5 s")
	burst := flag.Int("burst", 500, "closed-loop clients of the burst phase")
	flag.Parse()
	if err := run(*bins, *rounds, *seconds, *users, *saturate, *paced, *burst); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type binary struct{ label, path string }

// result is one binary's figures in one round.
type result map[string]float64

var metrics = []struct{ key, unit string }{
	{"sat_rate", "calls/s"}, {"sat_p50", "ms"}, {"sat_p99", "ms"}, {"sat_errors", ""},
	{"server_cpu", "µs/call"}, {"dovecot_cpu", "µs/call"}, {"cpu_ratio", "server/dc"},
	{"ping_rate", "calls/s"},
	{"paced_rate", "calls/s"}, {"paced_p50", "ms"}, {"paced_p99", "ms"}, {"paced_errors", ""}, {"paced_rss", "MB"},
	{"burst_rate", "calls/s"}, {"burst_p99", "ms"}, {"burst_errors", ""}, {"burst_db_locked", "log lines"},
}

func run(spec string, rounds, seconds, users, saturate, paced, burst int) error {
	var bins []binary
	for _, kv := range strings.Split(spec, ",") {
		label, path, ok := strings.Cut(kv, "=")
		if !ok || label == "" || path == "" {
			return fmt.Errorf("-bin wants label=path[,label=path…], got %q", spec)
		}
		bins = append(bins, binary{label, path})
	}
	// 1,000 clients and the server's side of their connections.
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 65536, Max: 65536})
	rig, err := mailrig.Start()
	if err != nil {
		return err
	}
	defer rig.Close()
	fmt.Fprintf(os.Stderr, "seeding %d messages…\n", messages)
	if _, err := rig.Seed(mailrig.SinkName, "INBOX", messages, mailrig.SeedOptions{Seed: 42}); err != nil {
		return err
	}
	all := map[string][]result{}
	for r := range rounds {
		for _, b := range bins {
			fmt.Fprintf(os.Stderr, "round %d: %s\n", r+1, b.label)
			res, err := measure(rig, b, seconds, users, saturate, paced, burst)
			if err != nil {
				return fmt.Errorf("%s: %w", b.label, err)
			}
			all[b.label] = append(all[b.label], res)
		}
	}
	fmt.Printf("medians of %d rounds, %d s phases, %d people, %d-message INBOX\n", rounds, seconds, users, messages)
	fmt.Printf("%-18s %-10s", "metric", "unit")
	for _, b := range bins {
		fmt.Printf(" %12s", b.label)
	}
	for _, b := range bins[1:] {
		fmt.Printf(" %10s", b.label+"/"+bins[0].label)
	}
	fmt.Println()
	for _, m := range metrics {
		fmt.Printf("%-18s %-10s", m.key, m.unit)
		med := map[string]float64{}
		for _, b := range bins {
			med[b.label] = median(all[b.label], m.key)
			fmt.Printf(" %12.2f", med[b.label])
		}
		for _, b := range bins[1:] {
			if base := med[bins[0].label]; base != 0 {
				fmt.Printf(" %9.2fx", med[b.label]/base)
			} else {
				fmt.Printf(" %10s", "-")
			}
		}
		fmt.Println()
	}
	return nil
}

func median(rs []result, key string) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, r[key])
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// server is one running binary with its people's tokens.
type server struct {
	url    string
	tokens []string
	cmd    *exec.Cmd
	log    string
}

func measure(rig *mailrig.Rig, b binary, seconds, users, saturate, paced, burst int) (result, error) {
	s, err := start(rig, b, users)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	res := result{}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2000, MaxConnsPerHost: 0,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	calls := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_messages","arguments":{"limit":50}}}`,
		fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_message","arguments":{"uid":%d,"max_chars":4000}}}`, messages-3),
	}
	// Warm every person's pooled connection, as a running server has.
	for i := range s.tokens {
		for _, c := range calls {
			if _, err := s.post(client, s.tokens[i], c); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	phase := time.Duration(seconds) * time.Second

	cpu0, dcpu0 := procCPU(s.cmd.Process.Pid), dovecotCPU(rig)
	lat, errs := clients(s, client, saturate, phase, 0, calls)
	cpu1, dcpu1 := procCPU(s.cmd.Process.Pid), dovecotCPU(rig)
	reportErrors("saturation")
	n := float64(len(lat))
	res["sat_rate"], res["sat_p50"], res["sat_p99"], res["sat_errors"] = n/phase.Seconds(), pct(lat, 0.5), pct(lat, 0.99), float64(errs)
	res["server_cpu"], res["dovecot_cpu"] = (cpu1-cpu0)/n*1e6, (dcpu1-dcpu0)/n*1e6
	if dcpu1 > dcpu0 {
		res["cpu_ratio"] = (cpu1 - cpu0) / (dcpu1 - dcpu0)
	}

	lat, _ = clients(s, client, saturate, phase/2, 0, []string{`{"jsonrpc":"2.0","id":3,"method":"ping"}`})
	res["ping_rate"] = float64(len(lat)) / (phase / 2).Seconds()
	reportErrors("ping")

	var peak atomic.Int64
	stopRSS := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopRSS:
				return
			case <-time.After(100 * time.Millisecond):
				if v := procRSS(s.cmd.Process.Pid); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	lat, errs = clients(s, client, paced, phase, 2500*time.Millisecond, calls)
	close(stopRSS)
	reportErrors("paced")
	res["paced_rate"], res["paced_p50"], res["paced_p99"], res["paced_errors"] = float64(len(lat))/phase.Seconds(), pct(lat, 0.5), pct(lat, 0.99), float64(errs)
	res["paced_rss"] = float64(peak.Load()) / (1 << 20)

	lat, errs = clients(s, client, burst, phase/2, 0, calls)
	reportErrors("burst")
	res["burst_rate"], res["burst_p99"], res["burst_errors"] = float64(len(lat))/(phase/2).Seconds(), pct(lat, 0.99), float64(errs)
	logged, _ := os.ReadFile(s.log)
	res["burst_db_locked"] = float64(bytes.Count(logged, []byte("SQLITE_BUSY")) + bytes.Count(logged, []byte("database is locked")))
	return res, nil
}

// start prepares a data directory (people, accounts on the rig's sink
// mailbox, tokens) and starts the binary on it.
func start(rig *mailrig.Rig, b binary, users int) (*server, error) {
	dir, err := os.MkdirTemp("", "imap-mcp-load-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "server.log")}
	master := secret.Generate()
	keys, err := secret.New(master)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PORT="+strconv.Itoa(port), "DATA_DIR="+dir, "APP_URL="+s.url,
		"MCP_MASTER_KEY="+base64.StdEncoding.EncodeToString(master), "MAIL_ALLOW_PRIVATE_HOSTS=true", "MAIL_CA_FILE="+rig.CAFile,
		"MCP_CALLS_PER_MINUTE=1000000", "LOG_LEVEL=warn", "CLERK_SECRET_KEY=", "CLERK_PUBLISHABLE_KEY=", "DATABASE_URL=")
	// The binary migrates its own database, so that an older build runs
	// on the schema it knows.
	migrate := exec.Command(b.path, "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s migrate: %w: %s", b.label, err, out)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{SQLitePath: filepath.Join(dir, "imap-mcp.db")})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sink, _ := rig.User(mailrig.SinkName)
	for i := range users {
		name := "load" + strconv.Itoa(i)
		u, err := st.UpsertClerkUser(ctx, name, name+"@example.com")
		if err != nil {
			return nil, err
		}
		cid := "client-" + name
		if err := st.CreateClient(ctx, &store.OAuthClient{ID: cid, ClientName: "load " + name, RedirectURIs: `["http://localhost/cb"]`, TokenEndpointAuthMethod: "none"}); err != nil {
			return nil, err
		}
		g, err := st.CreateGrant(ctx, u.ID, cid, "mail.read")
		if err != nil {
			return nil, err
		}
		tok := "imcp_at_load_" + name
		sum := sha256.Sum256([]byte(tok))
		if err := st.CreateToken(ctx, &store.Token{GrantID: g.ID, AccessTokenHash: hex.EncodeToString(sum[:]), RefreshTokenHash: "refresh-" + name,
			Scope: "mail.read", Resource: s.url + "/api/mcp", AccessExpiresAt: time.Now().Add(24 * time.Hour), RefreshExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
			return nil, err
		}
		imapPass := keys.Seal([]byte(sink.Password), store.AccountSecretContext(u.ID, store.ColumnIMAPPassword))
		smtpPass := keys.Seal([]byte(sink.Password), store.AccountSecretContext(u.ID, store.ColumnSMTPPassword))
		a := &store.MailAccount{UserID: u.ID, Label: "sink", Email: sink.Email, DisplayName: "Sink",
			IMAPHost: rig.Host, IMAPPort: rig.IMAPSPort, IMAPTLSMode: "tls", IMAPUser: sink.Email, IMAPPasswordEnc: imapPass,
			SMTPHost: rig.Host, SMTPPort: rig.SMTPSPort, SMTPTLSMode: "tls", SMTPUser: sink.Email, SMTPPasswordEnc: smtpPass}
		if err := st.CreateAccount(ctx, a); err != nil {
			return nil, err
		}
		s.tokens = append(s.tokens, tok)
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(b.path, "serve")
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(s.log)
			s.stop()
			return nil, fmt.Errorf("not ready after 20 s:\n%s", tail)
		}
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(filepath.Dir(s.log))
}

// post sends one JSON-RPC request and reads the whole answer; a tool
// error, a JSON-RPC error or a status other than 200 is an error.
func (s *server) post(c *http.Client, token, body string) (time.Duration, error) {
	req, _ := http.NewRequest("POST", s.url+"/api/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	switch {
	case err != nil:
		return d, err
	case resp.StatusCode != 200:
		return d, fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
	case bytes.Contains(data, []byte(`"isError":true`)) || bytes.Contains(data, []byte(`"error":{`)):
		return d, fmt.Errorf("error answer: %.300s", data)
	}
	return d, nil
}

// errorKinds counts failed calls by the start of their error, printed
// after each phase.
var errorKinds = struct {
	sync.Mutex
	m map[string]int
}{m: map[string]int{}}

// record notes one call's outcome.
func record(mu *sync.Mutex, lat *[]time.Duration, errs *int, d time.Duration, err error) {
	mu.Lock()
	*lat = append(*lat, d)
	if err != nil {
		*errs++
	}
	mu.Unlock()
	if err != nil {
		kind := err.Error()
		if i := strings.Index(kind, `"text":"`); i >= 0 {
			kind = kind[i+8:]
		}
		errorKinds.Lock()
		errorKinds.m[kind[:min(len(kind), 90)]]++
		errorKinds.Unlock()
	}
}

// reportErrors prints and resets the error counts of a phase.
func reportErrors(phase string) {
	errorKinds.Lock()
	defer errorKinds.Unlock()
	for kind, n := range errorKinds.m {
		fmt.Fprintf(os.Stderr, "  %s: %d× %s\n", phase, n, kind)
	}
	clear(errorKinds.m)
}

// clients runs n clients for d, each calling once every period
// (starting at a random offset), or with period 0 again as soon as it
// has an answer (a closed loop).
func clients(s *server, c *http.Client, n int, d, period time.Duration, bodies []string) ([]time.Duration, int) {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			next := time.Now()
			if period > 0 {
				next = next.Add(time.Duration(rand.Int64N(int64(period))))
			}
			for k := i; next.Before(deadline); k++ {
				time.Sleep(time.Until(next))
				dur, err := s.post(c, s.tokens[i%len(s.tokens)], bodies[k%len(bodies)])
				record(&mu, &lat, &errs, dur, err)
				if next = time.Now(); period > 0 {
					next = next.Add(period - dur)
				}
			}
		})
	}
	wg.Wait()
	return lat, errs
}

func pct(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clockTicks is USER_HZ, the unit of /proc CPU times on Linux.
const clockTicks = 100

// procCPU is the CPU seconds process pid has used, with its reaped
// children's.
func procCPU(pid int) float64 {
	f := statFields(pid)
	if len(f) < 17 {
		return 0
	}
	var sum float64
	for _, i := range []int{13, 14, 15, 16} { // utime stime cutime cstime
		v, _ := strconv.ParseFloat(f[i], 64)
		sum += v
	}
	return sum / clockTicks
}

// statFields splits /proc/pid/stat after the command name.
func statFields(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"pid", "comm"}, strings.Fields(string(data[i+1:]))...)
}

// dovecotCPU is the CPU seconds of the rig's Dovecot: its master process
// (with the children it has reaped) and every live descendant.
func dovecotCPU(rig *mailrig.Rig) float64 {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	master := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 3 {
			parent[pid], _ = strconv.Atoi(f[3])
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); string(bytes.TrimSpace(comm)) == "dovecot" &&
			bytes.Contains(cmdline, []byte(rig.Dir)) {
			master = pid
		}
	}
	if master == 0 {
		return 0
	}
	var sum float64
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == master {
				sum += procCPU(pid)
				break
			}
		}
	}
	return sum
}

// procRSS is the resident set of pid in bytes.
func procRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
