package mcp

import (
	"errors"
	"strings"
	"testing"

	"github.com/imap-mcp/imap-mcp/mail"
)

func TestSentAfterAFailedFollowUpIsASuccessWithAWarning(t *testing.T) {
	saveFailed := &mail.Error{Kind: mail.KindTimeout, Op: "append to Sent", Err: errors.New("i/o timeout")}
	out, text, err := sent(&mail.SendResult{MessageID: "m1@example.test"}, saveFailed, "Sent.")
	if err != nil {
		t.Fatalf("a sent message reported as failed: %v (the model would send it again)", err)
	}
	if r := out.(SentResult); r.MessageID != "m1@example.test" || !strings.Contains(r.Warning, "do not send it again") ||
		!strings.Contains(text, "do not send it again") {
		t.Fatalf("result = %+v, text %q", r, text)
	}
	if _, _, err := sent(nil, saveFailed, "Sent."); err == nil {
		t.Fatal("a send that failed before submission reported success")
	}
}
