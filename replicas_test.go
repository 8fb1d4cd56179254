package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
)

// tcpLink forwards loopback connections to target and can cut them all,
// as a database restart or a network failure does, hold the client's
// bytes back (held), or pass them slowly (slow, bytes a second).
type tcpLink struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	down   bool
	held   atomic.Bool
	slow   atomic.Int64
}

func newTCPLink(t *testing.T, target string) *tcpLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &tcpLink{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); l.cut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.pipe(c)
		}
	}()
	return l
}

func (l *tcpLink) pipe(c net.Conn) {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", l.target, 5*time.Second)
	if err != nil {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.conns[c], l.conns[up] = true, true
	l.mu.Unlock()
	go func() { l.forward(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// forward copies the client's bytes to the server, held back or slowed
// as the link says.
func (l *tcpLink) forward(up, c net.Conn) {
	buf := make([]byte, 4096)
	for {
		chunk := buf
		if rate := l.slow.Load(); rate > 0 {
			chunk = buf[:min(len(buf), int(rate/10)+1)]
			time.Sleep(100 * time.Millisecond)
		}
		n, err := c.Read(chunk)
		for l.held.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := up.Write(chunk[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *tcpLink) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// cut closes every forwarded connection; while down, new ones are closed
// at once.
func (l *tcpLink) cut(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
	if down {
		for c := range l.conns {
			c.Close()
		}
		clear(l.conns)
	}
}

// roundRobin spreads requests over backends in turn, and tries the next
// one when a backend cannot be reached, as a load balancer does.
type roundRobin struct {
	backends []string
	next     atomic.Uint64
	client   http.Client
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	start := rr.next.Add(1)
	for i := range rr.backends {
		b := rr.backends[(int(start)+i)%len(rr.backends)]
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, b+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := rr.client.Do(req)
		if err != nil {
			continue // that replica is gone: the next one serves
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no replica answered", http.StatusBadGateway)
}

// TestReplicas runs two server processes on one PostgreSQL behind a
// round-robin proxy: sign-in, consent and tokens cross replicas; a
// refresh on one and the previous token's grace use on the other behave
// as on one; killing a replica loses no call the other could serve; and
// the database dropping every connection for 5 s gives clean 503s and a
// full recovery within 2 s of its return.
func TestReplicas(t *testing.T) {
	pgURL, err := neturl.Parse(dbtest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	link := newTCPLink(t, pgURL.Host)
	pgURL.Host = link.ln.Addr().String()

	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + front.Addr().String()
	key := make([]byte, 32)
	rand.Read(key)
	env := func() map[string]string {
		return map[string]string{"DATA_DIR": t.TempDir(), "DATABASE_URL": pgURL.String(), "APP_URL": appURL,
			"MCP_MASTER_KEY": base64.StdEncoding.EncodeToString(key), "LOCAL_ADMIN_PASSWORD": "local-secret",
			"MCP_CALLS_PER_MINUTE": strconv.Itoa(callsPerMinute)}
	}
	a, b := start(t, env()), start(t, env())
	rr := &roundRobin{backends: []string{a.url, b.url}}
	rr.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	srv := &http.Server{Handler: rr}
	go srv.Serve(front)
	t.Cleanup(func() { srv.Close() })

	conf, tok, _ := authorizeLocal(t, appURL, appURL)

	// The token works on each replica, whichever issued it.
	for _, inst := range []*instance{a, b} {
		if code := mcpInitialize(t, inst.url, tok.AccessToken); code != 200 {
			t.Fatalf("token on %s = %d", inst.url, code)
		}
	}
	// A refresh on one replica, then the previous refresh token on the
	// other (two refreshes racing from two places): both inside the grace
	// window, both fine; the new access token works everywhere.
	first := refreshAt(t, a.url, conf.ClientID, tok.RefreshToken)
	second := refreshAt(t, b.url, conf.ClientID, tok.RefreshToken)
	if first["access_token"] == nil || second["access_token"] == nil {
		t.Fatalf("refresh across replicas: %v / %v", first, second)
	}
	if code := mcpInitialize(t, b.url, first["access_token"].(string)); code != 200 {
		t.Fatalf("access token from replica a on replica b = %d", code)
	}
	access := second["access_token"].(string)

	// The per-person call limit holds across replicas (within 10 %): the
	// calls alternate between them.
	for attempt := 0; ; attempt++ {
		window := time.Now().Truncate(time.Minute)
		allowed := 0
		for range 2 * callsPerMinute {
			if toolCallAllowed(t, appURL, access) {
				allowed++
			}
		}
		if !time.Now().Truncate(time.Minute).Equal(window) && attempt == 0 {
			continue // the calls straddled two windows: count again in a whole one
		}
		t.Logf("%d of %d calls allowed across two replicas, limit %d a minute", allowed, 2*callsPerMinute, callsPerMinute)
		if allowed < callsPerMinute*9/10 || allowed > callsPerMinute*11/10 {
			t.Fatalf("%d of %d calls allowed across two replicas, limit %d a minute", allowed, 2*callsPerMinute, callsPerMinute)
		}
		break
	}

	// The database drops every connection and refuses new ones for 5 s:
	// clean 503s with Retry-After, never 401 or invalid_client. A bearer
	// answer a replica keeps (for up to a second) may still serve a
	// request at the start.
	link.cut(true)
	outage := time.Now()
	for time.Since(outage) < 5*time.Second {
		req := mcpRequest(t, appURL, access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 && time.Since(outage) < 1200*time.Millisecond {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("during the outage: %d (Retry-After %q), want 503", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if body := refreshAt(t, appURL, conf.ClientID, second["refresh_token"].(string)); body["error"] != "temporarily_unavailable" {
			t.Fatalf("refresh during the outage: %v", body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	link.cut(false)
	back := time.Now()
	for _, inst := range []*instance{a, b} {
		for mcpInitialize(t, inst.url, access) != 200 {
			if time.Since(back) > 2*time.Second {
				t.Fatalf("%s not recovered 2 s after the database returned", inst.url)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// One replica dies mid-load: every call is still served.
	for i := range 40 {
		if i == 10 {
			if err := a.stop(); err != nil {
				t.Fatal(err)
			}
		}
		if code := mcpInitialize(t, appURL, access); code != 200 {
			t.Fatalf("call %d after replica a stopped = %d", i, code)
		}
	}
}

// callsPerMinute is the replicas' per-person tool call limit.
const callsPerMinute = 40

const mcpInitializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",` +
	`"capabilities":{},"clientInfo":{"name":"replicas","version":"1"}}}`

func mcpRequest(t *testing.T, base, token string) *http.Request {
	t.Helper()
	return mcpRequestWith(t, base, token, mcpInitializeBody)
}

// toolCallAllowed calls list_accounts and reports whether the call was
// let through rather than refused by the rate limit.
func toolCallAllowed(t *testing.T, base, token string) bool {
	t.Helper()
	resp, err := http.DefaultClient.Do(mcpRequestWith(t, base, token,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_accounts","arguments":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("tools/call = %d %s", resp.StatusCode, body)
	}
	return !strings.Contains(string(body), "Too many tool calls")
}

func mcpRequestWith(t *testing.T, base, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/api/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return req
}

// mcpInitialize sends an MCP initialize with token and returns the status.
func mcpInitialize(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(mcpRequest(t, base, token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// refreshAt redeems a refresh token at base and returns the JSON answer.
func refreshAt(t *testing.T, base, clientID, refresh string) map[string]any {
	t.Helper()
	resp, body := send(t, http.DefaultClient, "POST", base+"/api/oauth/token",
		neturl.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {refresh}})
	out := map[string]any{}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("refresh at %s = %d %q", base, resp.StatusCode, body)
	}
	return out
}
