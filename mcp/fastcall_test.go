package mcp_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// frameNonce is the random id of a message's frame, new on every call.
var frameNonce = regexp.MustCompile(`id=\\"([0-9a-f]{16})\\"`)

func withoutNonce(body string) string {
	if m := frameNonce.FindStringSubmatch(body); m != nil {
		return strings.ReplaceAll(body, m[1], "NONCE")
	}
	return body
}

// TestFastCallsAnswerAsTheLibrary: a tool call answered without the MCP
// library's transport gets the library's answer byte for byte: status,
// content type and body, for results, tool errors, schema errors and
// every kind of id. A member the library ignores sends the same call
// through the library, which gives the answer to compare with.
func TestFastCallsAnswerAsTheLibrary(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "user_fastcall", "mail.read")
	acct := addRigAccount(t, h, rig, keys, u, "alice")
	app, err := rig.Appender("alice")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	folder := "FastCall"
	uid, err := app.Append(folder, []byte("From: Ann <ann@example.com>\r\nTo: alice@example.test\r\nSubject: <b>&amp; \u00e9t\u00e9 \"quoted\"\r\n"+
		"Date: Mon, 2 Jan 2026 15:04:05 +0000\r\nMessage-ID: <fast@example.com>\r\n\r\nLine one <script>\r\n\u2028and \\ more.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(body, version string) (int, string, string) {
		req, _ := http.NewRequest("POST", h.url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if version != "" {
			req.Header.Set("Mcp-Protocol-Version", version)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	calls := []struct{ id, tool, args string }{
		{`1`, "list_accounts", `{}`},
		{`"req-<1>&"`, "search_messages", fmt.Sprintf(`{"account_id":%q,"folder":%q,"subject":"quoted"}`, acct, folder)},
		{`2.5`, "list_messages", fmt.Sprintf(`{"account_id":%q,"folder":%q,"snippets":true}`, acct, folder)},
		{`12345678901234567890`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":%d}`, acct, folder, uid)},
		{`-3`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":%d}`, acct, folder, uid+100)},
		{`4`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":"one"}`, acct, folder)},
		{`5`, "list_messages", `{"account_id":"no-such-account"}`},
		{`6`, "list_accounts", ``},
	}
	for _, c := range calls {
		params := fmt.Sprintf(`{"name":%q`, c.tool)
		if c.args != "" {
			params += `,"arguments":` + c.args
		}
		params += "}"
		for _, version := range []string{"", "2025-06-18"} {
			fast := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":%s}`, c.id, params)
			viaLibrary := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":%s,"ignored":true}`, c.id, params)
			fc, ft, fb := post(fast, version)
			lc, lt, lb := post(viaLibrary, version)
			fb, lb = withoutNonce(fb), withoutNonce(lb)
			if fc != lc || ft != lt || fb != lb {
				t.Errorf("%s %s (id %s, version %q):\nfast:    %d %s %s\nlibrary: %d %s %s", c.tool, c.args, c.id, version, fc, ft, fb, lc, lt, lb)
			}
			if fc != 200 || !strings.Contains(fb, `"result"`) {
				t.Errorf("%s (id %s): %d %s", c.tool, c.id, fc, fb)
			}
		}
	}
}
