package mcp

import (
	"strings"
	"testing"

	"github.com/imap-mcp/imap-mcp/store"
)

// TestSentResultOfEveryState: a message sent whose Sent copy failed is a
// success with a warning (the model must not send it again); the other
// states say what happens next.
func TestSentResultOfEveryState(t *testing.T) {
	for state, want := range map[string]string{
		store.OutboxSent:            "Sent",
		store.OutboxSentCopyFailed:  "do not send it again",
		store.OutboxScheduled:       "cancel_send with outbox_id=o1",
		store.OutboxPendingApproval: "waiting for the user's approval",
		store.OutboxSending:         "do not send it again",
		store.OutboxCancelled:       "nothing was sent",
		store.OutboxFailed:          "was not sent",
	} {
		out, text := sentResult(store.OutboxItem{ID: "o1", State: state, MessageID: "m1@example.test", Recipients: `["ann@example.org"]`, Subject: "Hi"})
		if out.State != state || out.OutboxID != "o1" || !strings.Contains(text, want) || !strings.Contains(text, "ann@example.org") {
			t.Errorf("%s: %+v %q", state, out, text)
		}
		if state == store.OutboxSentCopyFailed && !strings.Contains(out.Warning, "do not send it again") {
			t.Errorf("no warning in %+v", out)
		}
	}
}
