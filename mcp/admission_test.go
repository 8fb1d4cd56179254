package mcp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/mcp"
)

// TestAdmission: large requests are bounded per person before their body
// is read (12 parallel 31 MB send_message calls took 3.5 GB), and a body
// over the limit is refused from its Content-Length alone.
func TestAdmission(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	tok, _ := h.token(t, "user_admit", "mail.read")
	try := func(size int64, body io.Reader) (*http.Response, error) {
		req, _ := http.NewRequest("POST", h.url, body)
		req.ContentLength = size
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	post := func(size int64, body io.Reader) *http.Response {
		resp, err := try(size, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// The header alone is enough to refuse a body over the limit.
	conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(h.url, "/api/mcp"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", tok, mcp.MaxRequestBytes+1)
	status, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(status, " 413 ") {
		t.Fatalf("oversized = %q, want 413", status)
	}
	// Two large requests whose bodies are still arriving hold the
	// person's share; a third waits its turn with 429.
	const size = 2 << 20
	var writers []*io.PipeWriter
	done := make(chan int, 2)
	for range 2 {
		r, w := io.Pipe()
		writers = append(writers, w)
		go func() {
			resp, err := try(size, r)
			if err != nil {
				done <- 0
				return
			}
			done <- resp.StatusCode
		}()
	}
	// Until both are in flight a third one is admitted; then it is not.
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp = post(size, strings.NewReader(strings.Repeat(" ", size))); resp.StatusCode == 429 || time.Now().After(deadline) {
			break
		}
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third large request = %d, want 429 with Retry-After", resp.StatusCode)
	}
	// A small request is not held back by them.
	if resp := post(2, strings.NewReader("{}")); resp.StatusCode == 429 {
		t.Fatal("a small request was refused while large ones were in flight")
	}
	for _, w := range writers {
		w.CloseWithError(io.ErrUnexpectedEOF)
	}
	<-done
	<-done
	if resp := post(size, strings.NewReader(strings.Repeat(" ", size))); resp.StatusCode == 429 {
		t.Fatal("the share was not given back")
	}
}

// TestSpentCallsRefuseLargeBodiesUnread: once a person has used their tool
// calls, a large request is refused before its body is read; a small one
// still gets the tool error that says when to retry.
func TestSpentCallsRefuseLargeBodiesUnread(t *testing.T) {
	h := newHarness(t, mcp.Options{CallsPerMinute: 2})
	tok, _ := h.token(t, "user_spent", "mail.read")
	c := h.client(t, tok)
	for range 2 {
		call(t, c, "list_accounts", nil)
	}
	if res := call(t, c, "list_accounts", nil); !res.IsError {
		t.Fatal("third call allowed")
	}
	req, _ := http.NewRequest("POST", h.url, strings.NewReader(strings.Repeat(" ", 2<<20)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("large request after the calls were spent = %d", resp.StatusCode)
	}
}

// TestBatchSaysWhatItIs: a JSON-RPC batch is valid JSON; the answer says
// batches are not supported rather than "not valid json".
func TestBatchSaysWhatItIs(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	tok, _ := h.token(t, "user_batch", "mail.read")
	req, _ := http.NewRequest("POST", h.url, strings.NewReader(` [{"jsonrpc":"2.0","id":1,"method":"ping"}]`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "batches are not supported") || !strings.Contains(string(body), "-32600") {
		t.Fatalf("batch = %d %s", resp.StatusCode, body)
	}
}
