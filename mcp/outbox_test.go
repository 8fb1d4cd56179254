package mcp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/store"
)

// TestOutbox: sends go through the outbox: at once by default, once
// only for a repeated call; after the account's undo window, unless
// cancelled; or when the user approves, never when discarded.
func TestOutbox(t *testing.T) {
	h, rig, keys := mailHarnessWith(t, mcp.Options{CallsPerMinute: 100000}) // the test polls
	tok, u := h.token(t, "outbox", "mail.read mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	bob := addRigAccount(t, h, rig, keys, u, "bob")
	bobAddr, _ := rig.User("bob")
	c := h.client(t, tok)
	ctx := context.Background()
	stamp := time.Now().Format("150405.000")
	delivered := func(subject string, want int, within time.Duration) {
		t.Helper()
		var n int
		for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
			n = structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": bob, "subject": subject}).Total
			if n > want || n == want && time.Now().After(deadline) {
				break
			}
		}
		if n != want {
			t.Fatalf("%q delivered %d times, want %d", subject, n, want)
		}
	}
	setAccount := func(delay int, approval bool) {
		a, err := h.st.GetAccount(ctx, u.ID, alice)
		if err != nil {
			t.Fatal(err)
		}
		a.SendDelayS, a.SendRequiresApproval = delay, approval
		if err := h.st.UpdateAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	send := func(subject string) mcp.SentResult {
		return structured[mcp.SentResult](t, c, "send_message", map[string]any{"account_id": alice, "to": []string{bobAddr.Email},
			"subject": subject, "body_text": "Hello"})
	}

	// At once; the same call again sends nothing.
	now := "Now " + stamp
	first := send(now)
	if first.State != store.OutboxSent || first.OutboxID == "" || first.SentCopy != "appended" {
		t.Fatalf("send: %+v", first)
	}
	res := call(t, c, "send_message", map[string]any{"account_id": alice, "to": []string{bobAddr.Email}, "subject": now, "body_text": "Hello"})
	if text := res.Content[0].(mcplib.TextContent).Text; res.IsError || !strings.Contains(text, "nothing was sent again") || !strings.Contains(text, first.OutboxID) {
		t.Fatalf("repeated call: %s", text)
	}
	delivered(now, 1, time.Second)

	// An undo window: cancelled in time, nothing goes; else it goes
	// after the window, and then it is too late to cancel.
	setAccount(2, false)
	undone := "Undone " + stamp
	held := send(undone)
	if held.State != store.OutboxScheduled || held.SendAt == "" {
		t.Fatalf("held: %+v", held)
	}
	if got := structured[mcp.SentResult](t, c, "cancel_send", map[string]any{"outbox_id": held.OutboxID}); got.State != store.OutboxCancelled {
		t.Fatalf("cancel_send: %+v", got)
	}
	later := "Later " + stamp
	goes := send(later)
	delivered(undone, 0, 3*time.Second)
	delivered(later, 1, 5*time.Second)
	if got := structured[mcp.SentResult](t, c, "get_send_status", map[string]any{"outbox_id": goes.OutboxID}); got.State != store.OutboxSent {
		t.Fatalf("status after the window: %+v", got)
	}
	res = call(t, c, "cancel_send", map[string]any{"outbox_id": goes.OutboxID})
	if text := res.Content[0].(mcplib.TextContent).Text; !strings.Contains(text, "Too late to cancel") {
		t.Fatalf("cancel after sending: %s", text)
	}

	// Approval: nothing goes until the user sends it; a discarded one
	// never goes.
	setAccount(0, true)
	approved, discarded := "Approved "+stamp, "Discarded "+stamp
	wait := send(approved)
	drop := send(discarded)
	if wait.State != store.OutboxPendingApproval || drop.State != store.OutboxPendingApproval {
		t.Fatalf("waiting: %+v %+v", wait, drop)
	}
	delivered(approved, 0, time.Second)
	if _, err := h.st.MoveOutbox(ctx, u.ID, wait.OutboxID, []string{store.OutboxPendingApproval}, store.OutboxScheduled, time.Now(), store.OutcomeApproved); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.MoveOutbox(ctx, u.ID, drop.OutboxID, []string{store.OutboxPendingApproval}, store.OutboxCancelled, time.Now(), "discarded"); err != nil {
		t.Fatal(err)
	}
	delivered(approved, 1, 5*time.Second)
	delivered(discarded, 0, time.Second)
	// Sent, but the copy cannot be filed (the IMAP server is gone): a
	// success with a warning, never to be sent again.
	setAccount(0, false)
	a, _ := h.st.GetAccount(ctx, u.ID, alice)
	a.IMAPPort = 1 // nothing listens there
	if err := h.st.UpdateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	noCopy := "No copy " + stamp
	if got := send(noCopy); got.State != store.OutboxSentCopyFailed || !strings.Contains(got.Warning, "do not send it again") {
		t.Fatalf("sent without a copy: %+v", got)
	}
	delivered(noCopy, 1, 5*time.Second)
	if msg := toolError(t, c, "get_send_status", map[string]any{"outbox_id": "00000000-0000-0000-0000-000000000000"}); !strings.Contains(msg, "Unknown outbox_id") {
		t.Fatalf("unknown id: %s", msg)
	}
}
