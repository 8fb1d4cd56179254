package mcp_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/store"
)

func TestMain(m *testing.M) { os.Exit(mailrig.Main(m)) }

// mailHarness serves the tools with a real engine against the rig.
func mailHarness(t testing.TB) (*harness, *mailrig.Rig, *secret.Keys) {
	return mailHarnessWith(t, mcp.Options{})
}

// mailHarnessWith is mailHarness with options for the server.
func mailHarnessWith(t testing.TB, o mcp.Options) (*harness, *mailrig.Rig, *secret.Keys) {
	rig := mailrig.Shared(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rig.CAPEM)
	engine := mail.New(mail.Config{AllowPrivateHosts: true, RootCAs: pool})
	t.Cleanup(func() { engine.Close() })
	keys, _ := secret.New(secret.Generate())
	o.Mail, o.Secrets, o.Sealer, o.AttachmentKey = engine, keys, keys, keys.AttachmentKey()
	h := newHarness(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.srv.RunOutbox(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, rig, keys
}

// addRigAccount stores the rig user's account (STARTTLS both ways) for u.
func addRigAccount(t testing.TB, h *harness, rig *mailrig.Rig, keys *secret.Keys, u store.User, name string) string {
	ru, _ := rig.User(name)
	a := &store.MailAccount{UserID: u.ID, Label: name, Email: ru.Email, DisplayName: strings.ToUpper(name[:1]) + name[1:],
		IMAPHost: rig.Host, IMAPPort: rig.IMAPPort, IMAPTLSMode: "starttls", IMAPUser: ru.Email, IMAPPasswordEnc: keys.Seal([]byte(ru.Password), store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)),
		SMTPHost: rig.Host, SMTPPort: rig.SubmissionPort, SMTPTLSMode: "starttls", SMTPUser: ru.Email, SMTPPasswordEnc: keys.Seal([]byte(ru.Password), store.AccountSecretContext(u.ID, store.ColumnSMTPPassword)),
		SignatureHTML: "<p>-- <b>" + name + "</b></p>"}
	if err := h.st.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// structured calls a tool, fails on a tool error and decodes the result.
func structured[T any](t *testing.T, c *client.Client, name string, args map[string]any) T {
	t.Helper()
	res := call(t, c, name, args)
	if res.IsError {
		t.Fatalf("%s(%v): %s", name, args, res.Content[0].(mcplib.TextContent).Text)
	}
	var out T
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func toolError(t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	res := call(t, c, name, args)
	if !res.IsError {
		t.Fatalf("%s(%v) succeeded, want a tool error", name, args)
	}
	return res.Content[0].(mcplib.TextContent).Text
}

func TestReadingTools(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "reader", oauth.ScopeRead)
	acct := addRigAccount(t, h, rig, keys, u, "carol")
	folder := "Seeded-read"
	seeded, err := rig.Seed("carol", folder, 30, mailrig.SeedOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	c := h.client(t, tok)

	folders := structured[mcp.FolderList](t, c, "list_folders", map[string]any{"account_id": acct})
	roles := map[string]string{}
	counts := map[string]int{}
	for _, f := range folders.Folders {
		roles[f.Name], counts[f.Name] = f.Role, f.Messages
	}
	if roles["INBOX"] != "inbox" || roles["Sent"] != "sent" || roles["Trash"] != "trash" || counts[folder] != 30 {
		t.Fatalf("list_folders: roles %v counts %v", roles, counts)
	}

	// Paging through the whole folder, newest first, default account.
	seen := map[uint32]bool{}
	cursor := ""
	var first mcp.MessagePage
	for i := 0; ; i++ {
		args := map[string]any{"folder": folder, "limit": 7}
		if cursor != "" {
			args["cursor"] = cursor
		}
		page := structured[mcp.MessagePage](t, c, "list_messages", args)
		if i == 0 {
			first = page
		}
		if page.Total != 30 {
			t.Fatalf("total = %d", page.Total)
		}
		for _, m := range page.Messages {
			if seen[m.UID] {
				t.Fatalf("uid %d listed twice", m.UID)
			}
			seen[m.UID] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	newest := seeded.Messages[len(seeded.Messages)-1]
	if len(seen) != 30 || first.Messages[0].Subject != newest.Subject {
		t.Fatalf("paged %d messages; first %q, want %q", len(seen), first.Messages[0].Subject, newest.Subject)
	}

	uid := first.Messages[0].UID
	msg := structured[mcp.MessageDetail](t, c, "get_message", map[string]any{"account_id": acct, "folder": folder, "uid": uid, "max_chars": 200})
	if msg.Subject != newest.Subject || msg.BodyLength == 0 || msg.Notice == "" || (msg.BodyLength > 200 && msg.NextOffset != 200) {
		t.Fatalf("get_message = %+v", msg)
	}
	res := call(t, c, "get_message", map[string]any{"folder": folder, "uid": uid})
	if text := res.Content[0].(mcplib.TextContent).Text; !strings.Contains(text, "<untrusted-email-body") {
		t.Fatalf("text copy does not frame the body:\n%s", text)
	}
	after := structured[mcp.MessagePage](t, c, "list_messages", map[string]any{"folder": folder, "limit": 1})
	for _, f := range after.Messages[0].Flags {
		if f == `\Seen` && !newest.Seen {
			t.Fatal("get_message marked the message read")
		}
	}

	found := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"folder": folder, "subject": newest.Subject})
	if found.Total < 1 || found.Messages[0].UID != uid {
		t.Fatalf("search by subject = %+v", found)
	}
	// Schema limits are enforced, not only advertised.
	for name, args := range map[string]map[string]any{
		"list_messages":   {"folder": folder, "limit": 5000},
		"get_thread":      {"folder": folder, "uid": 1, "max_messages": 100000},
		"search_messages": {"folder": folder, "subject": strings.Repeat("x", 600)},
	} {
		res, err := c.CallTool(context.Background(), mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: name, Arguments: args}})
		if err == nil && !res.IsError {
			t.Errorf("%s accepted arguments beyond its schema's limits", name)
		}
	}
	if msg := toolError(t, c, "search_messages", map[string]any{"folder": folder, "date_from": "last week"}); !strings.Contains(msg, "date like") {
		t.Fatalf("bad date: %s", msg)
	}

	thread := seeded.Thread
	hit := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"folder": folder, "subject": thread[len(thread)-1].Subject})
	var threadUID uint32
	for _, m := range hit.Messages {
		if m.Date == thread[len(thread)-1].Date.UTC().Format(time.RFC3339) {
			threadUID = m.UID
		}
	}
	tr := structured[mcp.ThreadResult](t, c, "get_thread", map[string]any{"folder": folder, "uid": threadUID})
	if len(tr.Messages) != len(thread) {
		t.Fatalf("get_thread found %d messages, want %d (%s)", len(tr.Messages), len(thread), tr.Method)
	}

	// The read-only token sees no modifying or sending tool, and another
	// user's account id is refused.
	if msg := toolError(t, c, "list_folders", map[string]any{"account_id": "00000000-0000-0000-0000-000000000000"}); !strings.Contains(msg, "Unknown account_id") {
		t.Fatalf("unknown account: %s", msg)
	}
	otherTok, other := h.token(t, "other", oauth.ScopeRead)
	addRigAccount(t, h, rig, keys, other, "bob")
	if msg := toolError(t, h.client(t, otherTok), "list_folders", map[string]any{"account_id": acct}); !strings.Contains(msg, "Unknown account_id") {
		t.Fatalf("another user's account: %s", msg)
	}
	res, err = c.CallTool(context.Background(), mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: "send_message",
		Arguments: map[string]any{"to": []string{"x@example.com"}, "subject": "x", "body_text": "x"}}})
	if err == nil && !res.IsError {
		t.Fatal("a read-only token sent mail")
	}
}

func TestSendingAndOrganizingTools(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "writer", "mail.read mail.modify mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	bob := addRigAccount(t, h, rig, keys, u, "bob")
	c := h.client(t, tok)
	bobAddr, _ := rig.User("bob")

	subject := "Quarterly numbers " + time.Now().Format("150405.000")
	pdf := []byte("%PDF-1.4 fake report \x00\x01\x02 with binary bytes")
	sent := structured[mcp.SentResult](t, c, "send_message", map[string]any{"account_id": alice,
		"to": []string{"Bob <" + bobAddr.Email + ">"}, "subject": subject, "body_text": "Hi Bob,\nthe numbers are attached.",
		"attachments": []map[string]any{{"filename": "report.pdf", "content_type": "application/pdf", "content_base64": base64.StdEncoding.EncodeToString(pdf)}}})
	if sent.MessageID == "" || sent.SentCopy != "appended" {
		t.Fatalf("send_message = %+v", sent)
	}

	// Bob receives it; the attachment URL gives back the same bytes.
	var inbox mcp.MessagePage
	deadline := time.Now().Add(10 * time.Second)
	for {
		inbox = structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": bob, "subject": subject})
		if inbox.Total == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if inbox.Total != 1 || !inbox.Messages[0].HasAttachments {
		t.Fatalf("bob's INBOX: %+v", inbox)
	}
	got := structured[mcp.MessageDetail](t, c, "get_message", map[string]any{"account_id": bob, "uid": inbox.Messages[0].UID})
	if !strings.Contains(got.Body, "the numbers are attached") || !strings.Contains(got.Body, "alice") || len(got.Attachments) != 1 {
		t.Fatalf("delivered message: %+v", got)
	}
	att := structured[mcp.AttachmentResult](t, c, "get_attachment", map[string]any{"account_id": bob, "uid": got.UID, "part": got.Attachments[0].Part})
	resp, err := http.Get(att.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(pdf) || resp.Header.Get("Content-Type") != "application/pdf" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "filename=report.pdf") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("download: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	tampered := strings.Replace(att.URL, "/api/attachments/", "/api/attachments/x", 1)
	if resp, err := http.Get(tampered); err != nil || resp.StatusCode != 404 {
		t.Fatalf("tampered URL: %v %v", resp.StatusCode, err)
	}

	// Bob replies; the reply threads back to Alice's message.
	reply := structured[mcp.SentResult](t, c, "reply_message", map[string]any{"account_id": bob, "uid": got.UID, "body_text": "Thanks!"})
	if reply.MessageID == "" {
		t.Fatal("reply has no Message-ID")
	}
	var aliceInbox mcp.MessagePage
	for deadline = time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		aliceInbox = structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "subject": "Re: " + subject})
		if aliceInbox.Total == 1 || time.Now().After(deadline) {
			break
		}
	}
	if aliceInbox.Total != 1 {
		t.Fatalf("alice did not get the reply: %+v", aliceInbox)
	}
	tr := structured[mcp.ThreadResult](t, c, "get_thread", map[string]any{"account_id": alice, "uid": aliceInbox.Messages[0].UID})
	if len(tr.Messages) != 2 {
		t.Fatalf("thread of the reply has %d messages, want 2 (the original in Sent and the reply)", len(tr.Messages))
	}
	orig := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": bob, "subject": subject, "answered": true})
	if orig.Total != 1 {
		t.Fatal("the original was not marked answered")
	}

	// Flags, folders, move, copy, delete on Alice's INBOX copy of the reply.
	uid := aliceInbox.Messages[0].UID
	flagsOf := func() []string {
		p := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "subject": "Re: " + subject})
		return p.Messages[0].Flags
	}
	has := func(flags []string, f string) bool {
		for _, x := range flags {
			if x == f {
				return true
			}
		}
		return false
	}
	structured[mcp.Done](t, c, "mark_read", map[string]any{"account_id": alice, "uids": []uint32{uid}})
	structured[mcp.Done](t, c, "flag_messages", map[string]any{"account_id": alice, "uids": []uint32{uid}})
	structured[mcp.Done](t, c, "set_flags", map[string]any{"account_id": alice, "uids": []uint32{uid}, "add": []string{"$Important"}})
	if f := flagsOf(); !has(f, `\Seen`) || !has(f, `\Flagged`) || !has(f, "$Important") {
		t.Fatalf("flags after setting: %v", f)
	}
	structured[mcp.Done](t, c, "mark_unread", map[string]any{"account_id": alice, "uids": []uint32{uid}})
	structured[mcp.Done](t, c, "unflag_messages", map[string]any{"account_id": alice, "uids": []uint32{uid}})
	if f := flagsOf(); has(f, `\Seen`) || has(f, `\Flagged`) {
		t.Fatalf("flags after clearing: %v", f)
	}
	if msg := toolError(t, c, "set_flags", map[string]any{"account_id": alice, "uids": []uint32{uid}}); !strings.Contains(msg, "at least one flag") {
		t.Fatalf("set_flags without flags: %s", msg)
	}

	work := "Projects-" + time.Now().Format("150405")
	structured[mcp.Done](t, c, "create_folder", map[string]any{"account_id": alice, "name": work})
	structured[mcp.Done](t, c, "copy_messages", map[string]any{"account_id": alice, "uids": []uint32{uid}, "destination": work})
	structured[mcp.Done](t, c, "rename_folder", map[string]any{"account_id": alice, "folder": work, "new_name": work + "-done"})
	moved := structured[mcp.MessagePage](t, c, "list_messages", map[string]any{"account_id": alice, "folder": work + "-done"})
	if moved.Total != 1 {
		t.Fatalf("copied folder has %d messages", moved.Total)
	}
	structured[mcp.Done](t, c, "delete_messages", map[string]any{"account_id": alice, "folder": work + "-done", "uids": []uint32{moved.Messages[0].UID}})
	trash := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "folder": "Trash", "subject": "Re: " + subject})
	if trash.Total != 1 {
		t.Fatalf("deleted message not in Trash: %+v", trash)
	}
	structured[mcp.Done](t, c, "delete_messages", map[string]any{"account_id": alice, "folder": "Trash", "uids": []uint32{trash.Messages[0].UID}, "permanent": true})
	if p := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "folder": "Trash", "subject": "Re: " + subject}); p.Total != 0 {
		t.Fatal("permanent delete left the message in Trash")
	}
	structured[mcp.Done](t, c, "move_messages", map[string]any{"account_id": alice, "uids": []uint32{uid}, "destination": "Archive"})
	if p := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "folder": "Archive", "subject": "Re: " + subject}); p.Total != 1 {
		t.Fatal("moved message not in Archive")
	}
	structured[mcp.Done](t, c, "delete_folder", map[string]any{"account_id": alice, "folder": work + "-done"})
	if msg := toolError(t, c, "delete_folder", map[string]any{"account_id": alice, "folder": "INBOX"}); !strings.Contains(msg, "INBOX") {
		t.Fatalf("deleting INBOX: %s", msg)
	}
	if msg := toolError(t, c, "send_message", map[string]any{"account_id": alice, "to": []string{bobAddr.Email}, "subject": "x\r\nBcc: evil@example.com", "body_text": "x"}); msg == "" {
		t.Fatal("header injection accepted")
	}
}

func TestSendingIsRateLimited(t *testing.T) {
	h, rig, keys := mailHarnessWith(t, mcp.Options{SendsPerHour: 1})
	tok, u := h.token(t, "sender", "mail.read mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	c := h.client(t, tok)
	carol, _ := rig.User("carol")
	args := map[string]any{"account_id": alice, "to": []string{carol.Email}, "subject": "limit", "body_text": "one"}
	structured[mcp.SentResult](t, c, "send_message", args)
	if msg := toolError(t, c, "send_message", args); !strings.Contains(msg, "Retry in") {
		t.Fatalf("second send within the hour: %s", msg)
	}
}

// TestHugeNumbersAreRefused: numbers past what an int holds get a clear
// error, not a negative offset or "sizes must not be negative".
func TestHugeNumbersAreRefused(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "numbers", oauth.ScopeRead)
	acct := addRigAccount(t, h, rig, keys, u, "carol")
	c := h.client(t, tok)
	if msg := toolError(t, c, "get_message", map[string]any{"account_id": acct, "uid": 1, "offset": 1e19}); !strings.Contains(msg, "offset must be at most") {
		t.Fatalf("offset 1e19: %s", msg)
	}
	if msg := toolError(t, c, "search_messages", map[string]any{"account_id": acct, "larger": 1e30}); !strings.Contains(msg, "larger must be a size") {
		t.Fatalf("larger 1e30: %s", msg)
	}
}
