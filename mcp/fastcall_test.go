package mcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
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
// through the library, which gives the answer to compare with. (That
// plain calls take the fast path at all, TestCancelReachesOnlyTheCallersCall
// shows: only there does a cancellation reach them.)
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
	post := func(body, version string) (int, string, string) { return postJSON(t, h.url, tok, body, version) }
	calls := []struct{ id, tool, args string }{
		{`1`, "list_accounts", `{}`},
		{`"req-<1>&"`, "search_messages", fmt.Sprintf(`{"account_id":%q,"folder":%q,"subject":"quoted"}`, acct, folder)},
		{`2.5`, "list_messages", fmt.Sprintf(`{"account_id":%q,"folder":%q,"snippets":true}`, acct, folder)},
		{`12345678901234567890`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":%d}`, acct, folder, uid)},
		{`-3`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":%d}`, acct, folder, uid+100)},
		{`4`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":"one"}`, acct, folder)},
		{`5`, "list_messages", `{"account_id":"no-such-account"}`},
		{`6`, "list_accounts", ``},
		{`1e3`, "list_accounts", `{},"_meta":{"progressToken":"p<1>"}`},
		{`-0`, "list_accounts", `null`},
		{`7`, "get_message", fmt.Sprintf(`{"account_id":%q,"folder":%q,"uid":0}`, acct, folder)},
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
	// Both ways record the same activity, a call the schema refuses too.
	h.srv.Flush()
	rows, err := h.st.ListActivity(context.Background(), u.ID, store.ActivityFilter{})
	if err != nil || len(rows) != 4*len(calls) {
		t.Fatalf("%d activity rows for %d calls, err %v", len(rows), 4*len(calls), err)
	}
	for i := 0; i < len(rows); i += 2 {
		if lib, fast := rows[i], rows[i+1]; lib.Summary != fast.Summary || lib.Outcome != fast.Outcome {
			t.Errorf("activity of %s: fast %q %s, library %q %s", fast.Tool, fast.Summary, fast.Outcome, lib.Summary, lib.Outcome)
		}
	}
}

// postJSON posts body to the MCP endpoint with token and, unless empty,
// a protocol version header; it returns the status, content type and body.
func postJSON(t *testing.T, url, token, body, version string) (int, string, string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if version != "" {
		req.Header.Set("Mcp-Protocol-Version", version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestCancelReachesOnlyTheCallersCall: notifications/cancelled ends the
// caller's own call in flight, and no one else's with the same id. The
// MCP library, stateless, keyed calls by id alone, so anyone's cancel
// for id 42 ended every call numbered 42.
func TestCancelReachesOnlyTheCallersCall(t *testing.T) {
	h, _, keys := mailHarness(t)
	tokA, ua := h.token(t, "user_cancel_a", "mail.read")
	tokB, ub := h.token(t, "user_cancel_b", "mail.read")
	// An IMAP server that accepts and never greets: a call to it waits.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	account := func(u store.User) string {
		a := &store.MailAccount{UserID: u.ID, Label: "silent", Email: "silent@example.test", IMAPHost: "127.0.0.1", IMAPPort: port,
			IMAPTLSMode: "starttls", IMAPUser: "silent", IMAPPasswordEnc: keys.Seal([]byte("pw"), store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)),
			SMTPHost: "127.0.0.1", SMTPPort: port, SMTPTLSMode: "starttls", SMTPUser: "silent",
			SMTPPasswordEnc: keys.Seal([]byte("pw"), store.AccountSecretContext(u.ID, store.ColumnSMTPPassword))}
		if err := h.st.CreateAccount(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	acctA, acctB := account(ua), account(ub)
	const cancel42 = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,"reason":"stop"}}`
	start := func(token, acct string) chan string {
		done := make(chan string, 1)
		go func() {
			_, _, b := postJSON(t, h.url, token, fmt.Sprintf(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"list_messages","arguments":{"account_id":%q}}}`, acct), "")
			done <- b
		}()
		select {
		case c := <-accepted:
			t.Cleanup(func() { c.Close() })
		case <-time.After(10 * time.Second):
			t.Fatal("the call never reached the IMAP server")
		}
		return done
	}
	ended := func(call chan string, within time.Duration) bool {
		select {
		case <-call:
			return true
		case <-time.After(within):
			return false
		}
	}
	cancel := func(token string) {
		if code, _, body := postJSON(t, h.url, token, cancel42, ""); code != http.StatusAccepted {
			t.Fatalf("cancel = %d %s, want 202", code, body)
		}
	}
	callA := start(tokA, acctA)
	cancel(tokB)
	if ended(callA, 300*time.Millisecond) {
		t.Fatal("another person's cancel ended the call")
	}
	callB := start(tokB, acctB)
	cancel(tokA)
	if !ended(callA, 5*time.Second) {
		t.Fatal("the caller's own cancel did not end their call")
	}
	if ended(callB, 300*time.Millisecond) {
		t.Fatal("another person's cancel ended the call")
	}
	cancel(tokB)
	if !ended(callB, 5*time.Second) {
		t.Fatal("the caller's own cancel did not end their call")
	}
}
