package mcp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/imap-mcp/imap-mcp/mcp"
)

// TestAdmission: a body over the limit is refused from its Content-Length
// alone; one within it passes (the in-flight bounds are tested on
// admission itself, in admission_internal_test.go).
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
	// A large request within the limits goes through to the MCP handler
	// (which answers that spaces are no JSON-RPC request).
	if resp := post(2<<20, strings.NewReader(strings.Repeat(" ", 2<<20))); resp.StatusCode == 429 || resp.StatusCode == 413 {
		t.Fatalf("a large request within the limits = %d", resp.StatusCode)
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
