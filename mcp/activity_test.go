package mcp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/store"
)

// TestActivityLog: every tool call is recorded once, with the client,
// the account, a one-line summary, the outcome and the duration, and
// never the content of a message, a body or a search text.
func TestActivityLog(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "activity", "mail.read mail.modify mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	bobAddr, _ := rig.User("bob")
	c := h.client(t, tok)
	subject := "Budget " + time.Now().Format("150405.000")

	structured[mcp.AccountList](t, c, "list_accounts", map[string]any{})
	structured[mcp.SentResult](t, c, "send_message", map[string]any{"account_id": alice, "to": []string{bobAddr.Email},
		"subject": subject, "body_text": "SECRET-BODY of the message"})
	structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "folder": "Sent", "body": "SECRET-SEARCH"})
	structured[mcp.DraftResult](t, c, "create_draft", map[string]any{"account_id": alice, "subject": "Plan", "body_text": "SECRET-DRAFT"})
	toolError(t, c, "get_message", map[string]any{"account_id": alice, "folder": "Sent", "uid": 999999})
	toolError(t, c, "move_messages", map[string]any{"account_id": alice, "uids": []int{999998, 999999}, "destination": "Archive"})
	toolError(t, c, "list_messages", map[string]any{"account_id": alice, "limit": 5000}) // refused by the schema
	h.srv.Flush()

	rows, err := h.st.ListActivity(context.Background(), u.ID, store.ActivityFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ tool, summary, outcome string }{
		{"list_messages", "listed messages in INBOX", store.ActivityRefused},
		{"move_messages", "moved 2 messages INBOX → Archive", store.ActivityRefused},
		{"get_message", "read message 999999 in Sent", store.ActivityRefused},
		{"create_draft", `saved a draft "Plan"`, store.ActivityOK},
		{"search_messages", "searched Sent by body", store.ActivityOK},
		{"send_message", `sent a message to ` + bobAddr.Email + `: ` + subject, store.ActivityOK},
		{"list_accounts", "listed the accounts", store.ActivityOK},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows for %d calls: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Tool != w.tool || r.Summary != w.summary || r.Outcome != w.outcome || r.ClientID == "" {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
		if w.tool != "list_accounts" && w.tool != "list_messages" && (r.AccountID != alice || r.AccountLabel != "alice") {
			t.Errorf("row %d (%s): account %q %q", i, r.Tool, r.AccountID, r.AccountLabel)
		}
		if strings.Contains(r.Summary, "SECRET") {
			t.Errorf("row %d holds content: %q", i, r.Summary)
		}
	}
	// Filters.
	if only, _ := h.st.ListActivity(context.Background(), u.ID, store.ActivityFilter{AccountID: alice}); len(only) != 5 {
		t.Fatalf("%d rows for the account", len(only))
	}
	if other, _ := h.st.ListActivity(context.Background(), "00000000-0000-0000-0000-000000000000", store.ActivityFilter{}); len(other) != 0 {
		t.Fatalf("another user sees %d rows", len(other))
	}
	// A call the schema refuses is summarised from its arguments too.
	toolError(t, c, "get_message", map[string]any{"account_id": alice, "folder": "Drafts", "uid": 0})
	h.srv.Flush()
	if rows, _ = h.st.ListActivity(context.Background(), u.ID, store.ActivityFilter{Limit: 1}); len(rows) != 1 || rows[0].Summary != "read message 0 in Drafts" {
		t.Fatalf("refused call: %+v", rows)
	}
}
