package mcp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mark3labs/mcp-go/client"
	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/oauth"
)

// The benchmarks read the rig sink user's INBOX, seeded once with 10,000
// messages, through the whole stack: HTTP, JSON-RPC, bearer check, tool,
// pooled engine, Dovecot. The floor issues the same FETCH with go-imap on
// an open, selected connection. Run:
//
//	go test -run '^$' -bench List50 -count 6 ./mcp/
//	go test -run '^$' -bench Load50 -benchtime 1x ./mcp/
//
// Measured 2026-11-26 (2 vCPU AMD EPYC; client, server and Dovecot on the
// same two cores), medians of 6 runs:
//
//	List50Floor    1.97 ms   go-imap FETCH on an open, selected connection
//	List50HTTP     2.75 ms   1.40x the floor: HTTP + JSON-RPC + bearer check
//	                         + tool + pooled engine, response read whole
//	List50MCP      4.01 ms   2.04x the floor: the same through mcp-go's
//	                         client, which decodes the ~20 KB result twice
//	Load50Clients  404 calls/s, 0 errors, p50 116 ms, p99 244 ms,
//	               RSS 54 MB (server and the 50 clients in one process)
const benchMessages = 10000

var benchSeed struct {
	once sync.Once
	err  error
}

// benchSetup seeds the mailbox and returns a harness with n users, each
// with its own account on the sink mailbox, and their connected clients.
func benchSetup(b *testing.B, n int) (*mailrig.Rig, []*client.Client) {
	b.Helper()
	h, rig, keys := mailHarnessWith(b, mcp.Options{CallsPerMinute: 1 << 30}) // measure the stack, not the limiter
	benchSeed.once.Do(func() {
		_, benchSeed.err = rig.Seed(mailrig.SinkName, "INBOX", benchMessages, mailrig.SeedOptions{Seed: 42})
	})
	if benchSeed.err != nil {
		b.Fatal(benchSeed.err)
	}
	clients := make([]*client.Client, n)
	for i := range clients {
		tok, u := h.token(b, "bench"+strconv.Itoa(i), oauth.ScopeRead)
		addRigAccount(b, h, rig, keys, u, mailrig.SinkName)
		clients[i] = h.client(b, tok)
		benchHarness.h, benchHarness.tok = h, tok
	}
	return rig, clients
}

// benchHarness remembers the last harness and token benchSetup made.
var benchHarness struct {
	h   *harness
	tok string
}

func BenchmarkList50Floor(b *testing.B) {
	rig, _ := benchSetup(b, 0)
	sink, _ := rig.User(mailrig.SinkName)
	c, err := imapclient.DialStartTLS(rig.IMAPAddr(), &imapclient.Options{TLSConfig: rig.TLSConfig()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(sink.Email, sink.Password).Wait(); err != nil {
		b.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	var set imap.SeqSet
	set.AddRange(sel.NumMessages-49, sel.NumMessages)
	opts := &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
	for b.Loop() {
		msgs, err := c.Fetch(set, opts).Collect()
		if err != nil || len(msgs) != 50 {
			b.Fatal(len(msgs), err)
		}
	}
}

func BenchmarkList50MCP(b *testing.B) {
	_, clients := benchSetup(b, 1)
	c := clients[0]
	args := map[string]any{"limit": 50}
	listOK(b, c, args) // warm: pool connection, SELECT
	for b.Loop() {
		listOK(b, c, args)
	}
}

// BenchmarkList50HTTP is the same call on the wire: a plain HTTP client
// posts the JSON-RPC request and reads the whole response, so the figure
// is the server's latency without an MCP client library's decoding.
func BenchmarkList50HTTP(b *testing.B) {
	benchSetup(b, 1)
	h, tok := benchHarness.h, benchHarness.tok
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_messages","arguments":{"limit":50}}}`
	post := func() {
		resp, err := http.DefaultClient.Do(rpcRequest(h.url, tok, strings.NewReader(body)))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 5000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	post() // warm
	for b.Loop() {
		post()
	}
}

func listOK(b *testing.B, c *client.Client, args map[string]any) {
	res, err := c.CallTool(context.Background(), mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: "list_messages", Arguments: args}})
	if err != nil || res.IsError {
		b.Fatal(res, err)
	}
	if m, _ := res.StructuredContent.(map[string]any); m == nil || len(m["messages"].([]any)) != 50 {
		b.Fatal("list_messages did not return 50 messages")
	}
}

// BenchmarkLoad50Clients runs 50 clients (50 users, one account each)
// calling list_messages, get_message and search_messages for
// IMAP_MCP_LOAD_SECONDS (default 30) and reports the call latency
// percentiles, errors and the process RSS. Run it alone with -benchtime 1x.
func BenchmarkLoad50Clients(b *testing.B) {
	_, clients := benchSetup(b, 50)
	seconds := 30
	if v, err := strconv.Atoi(os.Getenv("IMAP_MCP_LOAD_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	calls := []mcplib.CallToolParams{
		{Name: "list_messages", Arguments: map[string]any{"limit": 50}},
		{Name: "get_message", Arguments: map[string]any{"uid": benchMessages - 3, "max_chars": 4000}},
		{Name: "search_messages", Arguments: map[string]any{"from": "example", "subject": "re", "unread_only": true, "limit": 20}},
	}
	for b.Loop() {
		var mu sync.Mutex
		var lat []time.Duration
		errs := 0
		deadline := time.Now().Add(time.Duration(seconds) * time.Second)
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := i; time.Now().Before(deadline); n++ {
					start := time.Now()
					res, err := c.CallTool(context.Background(), mcplib.CallToolRequest{Params: calls[n%len(calls)]})
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					if err != nil || res.IsError {
						errs++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(len(lat))/float64(seconds), "calls/s")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(errs), "errors")
		b.ReportMetric(rssMB(), "rss-MB")
		if errs > 0 {
			b.Errorf("%d of %d calls failed", errs, len(lat))
		}
	}
}

// rssMB is this process's resident set (server and clients together).
func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}
