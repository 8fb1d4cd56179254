package mcp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/oauth"
)

// TestPlainCallGate: the fast path takes exactly the tool calls the
// library would serve plainly, and leaves it everything else: other
// methods, notifications, 2026-07-28 requests (by header or _meta),
// members it does not know (task, multi round-trip), unknown or
// out-of-scope tools, odd ids and content types.
func TestPlainCallGate(t *testing.T) {
	s := &Server{scope: map[string]string{"list_accounts": oauth.ScopeRead, "send_message": oauth.ScopeSend}}
	noop := func(context.Context, mcplib.CallToolRequest) (*mcplib.CallToolResult, error) { return nil, nil }
	tools := map[string]server.ToolHandlerFunc{"list_accounts": noop, "send_message": noop}
	const call = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","arguments":{"a":1}}}`
	cases := []struct {
		name, body, contentType, version string
		plain                            bool
	}{
		{"plain", call, "application/json", "", true},
		{"legacy version header", call, "application/json", "2025-06-18", true},
		{"content type with charset", call, "application/json; charset=utf-8", "2025-11-25", true},
		{"string id", `{"jsonrpc":"2.0","id":"x<1>","method":"tools/call","params":{"name":"list_accounts"}}`, "application/json", "", true},
		{"no arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_accounts"}}`, "application/json", "", true},
		{"modern header", call, "application/json", "2026-07-28", false},
		{"unknown version", call, "application/json", "1999-01-01", false},
		{"text content type", call, "text/plain", "", false},
		{"no content type", call, "", "", false},
		{"progress token", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","_meta":{"progressToken":3}}}`, "application/json", "", true},
		{"modern meta", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, "application/json", "", false},
		{"params twice", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","arguments":{"x":1}},"params":{"name":"list_accounts"}}`, "application/json", "", false},
		{"params twice, differently spelt", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts"},"Params":{"name":"list_accounts"}}`, "application/json", "", false},
		{"legacy version in meta", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","_meta":{"io.modelcontextprotocol/protocolVersion":"2025-06-18"}}}`, "application/json", "", false},
		{"null params", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":null}`, "application/json", "", false},
		{"task", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","task":{}}}`, "application/json", "", false},
		{"request state", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts","requestState":"x"}}`, "application/json", "", false},
		{"extra top-level member", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_accounts"},"x":1}`, "application/json", "", false},
		{"notification", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"list_accounts"}}`, "application/json", "", false},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"list_accounts"}}`, "application/json", "", false},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{"name":"list_accounts"}}`, "application/json", "", false},
		{"other method", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "application/json", "", false},
		{"old jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"list_accounts"}}`, "application/json", "", false},
		{"unknown tool", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}`, "application/json", "", false},
		{"out of scope", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message"}}`, "application/json", "", false},
		{"arguments not JSON", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_accounts","arguments":{]}}`, "application/json", "", false},
		{"trailing data", call + `{}`, "application/json", "", false},
		{"batch", `[` + call + `]`, "application/json", "", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(c.body))
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		if c.version != "" {
			r.Header.Set(mcplib.HeaderProtocolVersion, c.version)
		}
		r = r.WithContext(oauth.WithPrincipal(r.Context(), oauth.Principal{UserID: "u", Scopes: []string{oauth.ScopeRead}}))
		id, req, h, ok := s.plainCall(r, []byte(c.body), tools)
		if ok != c.plain {
			t.Errorf("%s: plain = %v, want %v", c.name, ok, c.plain)
			continue
		}
		if ok && (h == nil || req.Params.Name != "list_accounts" || len(id) == 0) {
			t.Errorf("%s: id %s, tool %q, handler %v", c.name, id, req.Params.Name, h != nil)
		}
	}
}

// TestCancelledGate: every notifications/cancelled is taken, however it
// is spelled, so that none reaches the library, which would look its id
// up among everyone's calls; requests with an id are not notifications.
func TestCancelledGate(t *testing.T) {
	cases := []struct {
		name, body, contentType string
		id                      string
		taken                   bool
	}{
		{"plain", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,"reason":"x"}}`, "application/json", "42", true},
		{"string id", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a<b"}}`, "application/json", `"a\u003cb"`, true},
		{"escaped method", `{"jsonrpc":"2.0","method":"notifications\/cancelled","params":{"requestId":1}}`, "application/json", "1", true},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"notifications/cancelled","params":{"requestId":1}}`, "application/json", "1", true},
		{"with meta", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, "application/json", "1", true},
		{"request id spelt otherwise", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestid":1}}`, "application/json", "", true},
		{"request id out of range", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1e400}}`, "application/json", "", false},
		{"no request id", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}`, "application/json", "", true},
		{"a request", `{"jsonrpc":"2.0","id":3,"method":"notifications/cancelled","params":{"requestId":1}}`, "application/json", "", false},
		{"old jsonrpc", `{"jsonrpc":"1.0","method":"notifications/cancelled","params":{"requestId":1}}`, "application/json", "", false},
		{"other notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "application/json", "", false},
		{"not JSON", `{"jsonrpc":"2.0","method":"notifications/cancelled"`, "application/json", "", false},
		{"text", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`, "text/plain", "", false},
	}
	unsupported := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	unsupported.Header.Set("Content-Type", "application/json")
	unsupported.Header.Set(mcplib.HeaderProtocolVersion, "1999-01-01")
	if _, ok := cancelled(unsupported, []byte(cases[0].body), envelopeOf(cases[0].body)); ok {
		t.Error("a cancellation of an unsupported protocol version was taken; the library refuses it")
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.contentType)
		id, ok := cancelled(r, []byte(c.body), envelopeOf(c.body))
		if ok != c.taken || string(id) != c.id {
			t.Errorf("%s: cancelled = %s, %v; want %s, %v", c.name, id, ok, c.id, c.taken)
		}
	}
}

// TestLibraryID: ids are rendered as the library renders them (decoded
// as any value, encoded again), small integers without that round trip.
func TestLibraryID(t *testing.T) {
	for raw, want := range map[string]string{"0": "0", "7": "7", "-12": "-12", "123456789012345": "123456789012345",
		"1234567890123456789": "1234567890123456800", "-0": "-0", "1e3": "1000", "2.50": "2.5", `"a<b"`: `"a\u003cb"`, `"\u0041"`: `"A"`} {
		got, ok := libraryID(json.RawMessage(raw))
		if !ok || string(got) != want {
			t.Errorf("libraryID(%s) = %s, %v; want %s", raw, got, ok, want)
		}
		var v any
		_ = json.Unmarshal([]byte(raw), &v)
		if lib, _ := json.Marshal(mcplib.NewRequestId(v)); string(lib) != want {
			t.Errorf("the library renders %s as %s, not %s", raw, lib, want)
		}
	}
	for _, raw := range []string{"null", "true", "{}", "[1]", ""} {
		if got, ok := libraryID(json.RawMessage(raw)); ok {
			t.Errorf("libraryID(%s) = %s, taken", raw, got)
		}
	}
}

// TestCancelReachesOnlyItsCaller: a cancellation ends the call with its
// id of the same person and client, on the fast path and on the
// library's, and no call of another person using the same client (as
// everyone using one app does) or of the same person's other client.
func TestCancelReachesOnlyItsCaller(t *testing.T) {
	started := make(chan struct{}, 4)
	slow := func(ctx context.Context, _ mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
		started <- struct{}{}
		select {
		case <-ctx.Done():
			return mcplib.NewToolResultText("cancelled"), nil
		case <-time.After(10 * time.Second):
			return mcplib.NewToolResultText("done"), nil
		}
	}
	s := &Server{scope: map[string]string{"slow": oauth.ScopeRead}}
	ms := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	ms.AddTool(mcplib.NewTool("slow"), slow)
	library := server.NewStreamableHTTPServer(ms, server.WithStateLess(true), server.WithDisableStreaming(true), server.WithDisableLocalhostProtection(true))
	h := s.fastCalls(map[string]server.ToolHandlerFunc{"slow": recovered(slow)}, library)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := oauth.Principal{UserID: r.Header.Get("X-User"), ClientID: r.Header.Get("X-Client"), Scopes: []string{oauth.ScopeRead}}
		h.ServeHTTP(w, r.WithContext(oauth.WithPrincipal(r.Context(), p)))
	}))
	defer ts.Close()
	post := func(user, client, body string) string {
		req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User", user)
		req.Header.Set("X-Client", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, c := range []struct{ path, call string }{
		{"fast", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}`},
		{"library", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"},"ignored":true}`},
	} {
		done := make(chan string, 1)
		go func() { done <- post("alice", "app", c.call) }()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the call never started", c.path)
		}
		const cancel1 = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`
		for _, other := range [][2]string{{"bob", "app"}, {"alice", "other-app"}} {
			post(other[0], other[1], cancel1)
			select {
			case b := <-done:
				t.Fatalf("%s: %s's cancel through %s ended alice's call: %s", c.path, other[0], other[1], b)
			case <-time.After(200 * time.Millisecond):
			}
		}
		post("alice", "app", cancel1)
		select {
		case b := <-done:
			// The library writes nothing for a request whose context ended.
			if c.path == "fast" && !strings.Contains(b, "cancelled") {
				t.Fatalf("%s: %s", c.path, b)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the caller's own cancel did not end the call", c.path)
		}
	}
}

func envelopeOf(body string) envelope {
	var env envelope
	_ = json.Unmarshal([]byte(body), &env)
	return env
}
