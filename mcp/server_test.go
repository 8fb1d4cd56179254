package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

func TestToolMeta(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	names := map[string]bool{}
	for _, tool := range h.srv.Tools() {
		d := tool.Def
		if names[d.Name] {
			t.Errorf("duplicate tool %s", d.Name)
		}
		names[d.Name] = true
		a := d.Annotations
		switch {
		case len(d.Name) > 64:
			t.Errorf("%s: name longer than 64", d.Name)
		case d.Description == "" || a.Title == "":
			t.Errorf("%s: missing description or title", d.Name)
		case a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil:
			t.Errorf("%s: annotations not all explicit", d.Name)
		case tool.Scope != oauth.ScopeRead && tool.Scope != oauth.ScopeModify && tool.Scope != oauth.ScopeSend:
			t.Errorf("%s: scope %q", d.Name, tool.Scope)
		// get_send_status only reads, but about sending: it needs mail.send.
		case *a.ReadOnlyHint != (tool.Scope == oauth.ScopeRead || d.Name == "get_send_status"):
			t.Errorf("%s: readOnlyHint %v disagrees with scope %s", d.Name, *a.ReadOnlyHint, tool.Scope)
		case d.OutputSchema.Type != "object":
			t.Errorf("%s: no output schema", d.Name)
		}
		raw, _ := json.Marshal(d)
		var schema struct {
			InputSchema map[string]any `json:"inputSchema"`
		}
		json.Unmarshal(raw, &schema)
		for _, k := range []string{"anyOf", "oneOf", "allOf"} {
			if _, ok := schema.InputSchema[k]; ok {
				t.Errorf("%s: top-level %s in input schema", d.Name, k)
			}
		}
	}
}

// TestToolSnapshots compares every tool definition with
// testdata/tools.json and the README's tool table with the tool list;
// UPDATE_SNAPSHOTS=1 rewrites both.
func TestToolSnapshots(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	var defs []mcplib.Tool
	for _, tool := range h.srv.Tools() {
		defs = append(defs, tool.Def)
	}
	got, _ := json.MarshalIndent(defs, "", "  ")
	got = append(got, '\n')
	golden := filepath.Join("testdata", "tools.json")
	update := os.Getenv("UPDATE_SNAPSHOTS") != ""
	if update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil || string(got) != string(want) {
		t.Errorf("tool definitions differ from %s (run with UPDATE_SNAPSHOTS=1 after an intended change)", golden)
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- tools:start -->\n", "<!-- tools:end -->"
	i, j := strings.Index(string(readme), start), strings.Index(string(readme), end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", start, end)
	}
	table := mcp.ToolTable(h.srv.Tools())
	if update {
		os.WriteFile("../README.md", []byte(string(readme[:i+len(start)])+table+string(readme[j:])), 0o644)
	} else if string(readme[i+len(start):j]) != table {
		t.Errorf("README.md tool table is stale (run with UPDATE_SNAPSHOTS=1):\n%s", table)
	}
}

func TestScopesAndAccounts(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	ctx := context.Background()
	readTok, alice := h.token(t, "alice", oauth.ScopeRead)
	_, bob := h.token(t, "bob", "mail.read mail.modify mail.send")
	for _, u := range []store.User{alice, bob} {
		a := &store.MailAccount{UserID: u.ID, Label: "work", Email: u.Email, IMAPHost: "imap.example.com", IMAPPort: 993,
			IMAPTLSMode: "tls", IMAPUser: u.Email, IMAPPasswordEnc: "x", SMTPHost: "smtp.example.com", SMTPPort: 465,
			SMTPTLSMode: "tls", SMTPUser: u.Email, SMTPPasswordEnc: "x", SignatureHTML: "<p>Alice</p>"}
		if err := h.st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	c := h.client(t, readTok)
	list, err := c.ListTools(ctx, mcplib.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		for _, all := range h.srv.Tools() {
			if all.Def.Name == tool.Name && all.Scope != oauth.ScopeRead {
				t.Errorf("a read-only token lists %s (%s)", tool.Name, all.Scope)
			}
		}
	}
	res := call(t, c, "list_accounts", nil)
	var got mcp.AccountList
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &got)
	if res.IsError || len(got.Accounts) != 1 || got.Accounts[0].Email != alice.Email || !got.Accounts[0].IsDefault ||
		!got.Accounts[0].HasSignature || got.Accounts[0].IMAP != "imap.example.com:993" || got.Accounts[0].Status != "untested" {
		t.Fatalf("list_accounts = %+v", got)
	}
	if text := res.Content[0].(mcplib.TextContent).Text; !strings.Contains(text, got.Accounts[0].AccountID) {
		t.Fatalf("text copy lacks the account id: %q", text)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, mcp.Options{CallsPerMinute: 3})
	tok, _ := h.token(t, "carol", oauth.ScopeRead)
	c := h.client(t, tok)
	for i := range 3 {
		if res := call(t, c, "list_accounts", nil); res.IsError {
			t.Fatalf("call %d refused", i+1)
		}
	}
	res := call(t, c, "list_accounts", nil)
	if !res.IsError || !strings.Contains(res.Content[0].(mcplib.TextContent).Text, "Retry in") {
		t.Fatalf("fourth call = %+v", res)
	}
	// Another user is not affected.
	other, _ := h.token(t, "dave", oauth.ScopeRead)
	if res := call(t, h.client(t, other), "list_accounts", nil); res.IsError {
		t.Fatal("another user was rate-limited")
	}
}

func TestTransport(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	tok, _ := h.token(t, "erin", oauth.ScopeRead)
	post := func(body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("POST", h.url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, v := range []string{"2025-06-18", "2025-11-25"} {
		code, body := post(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, v))
		if code != 200 || !strings.Contains(body, `"protocolVersion":"`+v+`"`) {
			t.Errorf("initialize %s = %d %s", v, code, body)
		}
	}
	// 2026-07-28 has no handshake: server/discover, then calls carrying
	// their version in _meta and headers.
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	code, body := post(`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+meta+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "server/discover")
	if code != 200 || !strings.Contains(body, `"supportedVersions":["2026-07-28","2025-11-25","2025-06-18"`) {
		t.Errorf("server/discover = %d %s", code, body)
	}
	code, body = post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_accounts","arguments":{},`+meta+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "list_accounts")
	if code != 200 || !strings.Contains(body, `"structuredContent":{"accounts":[]}`) {
		t.Errorf("2026-07-28 tools/call = %d %s", code, body)
	}
	// No MCP-Protocol-Version header (Claude.ai may omit it): still answered.
	if code, body := post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); code != 200 || !strings.Contains(body, "list_accounts") {
		t.Errorf("tools/list without a version header = %d %s", code, body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		req, _ := http.NewRequest(m, h.url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s = %d, want 405", m, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", h.url, strings.NewReader(`{}`))
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Errorf("no token = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestValidationErrorsReadAsSentences: arguments that break a tool's
// schema get a message a model can act on, naming the argument and the
// rule, not a Go struct dump.
func TestValidationErrorsReadAsSentences(t *testing.T) {
	h := newHarness(t, mcp.Options{})
	tok, _ := h.token(t, "validation", oauth.ScopeRead+" "+oauth.ScopeModify+" "+oauth.ScopeSend)
	manyBad := make([]any, 400)
	for i := range manyBad {
		manyBad[i] = "not-a-uid"
	}
	c := h.client(t, tok)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"list_messages", map[string]any{"limit": 1000}, []string{"limit", "at most 100", "1000"}},
		{"send_message", map[string]any{"subject": "x"}, []string{"missing", "to"}},
		{"list_messages", map[string]any{"folder": 7}, []string{"folder", "string"}},
		// A case variant would reach the handler's field past the limit.
		{"get_thread", map[string]any{"uid": 1, "MAX_MESSAGES": 1000000}, []string{"unknown argument", "MAX_MESSAGES"}},
		{"search_messages", map[string]any{"uids": []any{"x"}}, []string{"unknown argument uids"}},
		{"mark_read", map[string]any{"uids": manyBad}, []string{"uids.0 must be integer", "and 390 more problems"}},
	} {
		res := call(t, c, tc.tool, tc.args)
		text := ""
		for _, ct := range res.Content {
			if tc, ok := ct.(mcplib.TextContent); ok {
				text += tc.Text
			}
		}
		if !res.IsError || strings.Contains(text, "&{") || strings.Contains(text, "Got:") {
			t.Errorf("%s %v: %q", tc.tool, tc.args, text)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s %v: %q lacks %q", tc.tool, tc.args, text, w)
			}
		}
	}
}
