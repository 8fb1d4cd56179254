package mail

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/imap-mcp/imap-mcp/mail/gmailtest"
)

func TestDraftsSaveReplaceSend(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	alice := rigAccount(t, rig, "alice")
	alice.ID, alice.Name = "draft-alice", "Alice Example"
	alice.SignatureHTML = "<p>Alice <b>Example</b></p>"
	bob := rigAccount(t, rig, "bob")
	bob.ID = "draft-bob"
	carol := rigAccount(t, rig, "carol")
	carol.ID = "draft-carol"
	ctx := testCtx(t)
	subject := "Plan " + uniqueFolder("d")

	first, err := e.SaveDraft(ctx, alice, Outgoing{To: []string{bob.Email}, Bcc: []string{carol.Email}, Subject: subject,
		Text: "First thoughts.", IncludeSignature: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Folder != "Drafts" || first.UID == 0 {
		t.Fatalf("saved draft: %+v", first)
	}
	saved, err := e.GetMessage(ctx, alice, "Drafts", first.UID, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(saved.Flags, `\Draft`) || !strings.Contains(saved.Text, "-- \nAlice Example") || saved.Subject != subject {
		t.Fatalf("draft as saved: flags %v text %q", saved.Flags, saved.Text)
	}
	if raw := rawOf(t, e, alice, "Drafts", first.UID); !bytes.HasPrefix(raw, []byte("Bcc: <"+carol.Email+">\r\n")) {
		t.Fatalf("the draft does not keep its Bcc: %.200q", raw)
	}

	second, err := e.SaveDraft(ctx, alice, Outgoing{To: []string{"Bob <" + bob.Email + ">"}, Bcc: []string{carol.Email}, Subject: subject,
		Text: "Second thoughts, final.", IncludeSignature: true}, first.UID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.Search(ctx, alice, "Drafts", SearchQuery{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || page.Messages[0].UID != second.UID || second.UID == first.UID {
		t.Fatalf("after update, Drafts holds %+v (new uid %d, old %d)", page.Messages, second.UID, first.UID)
	}

	res, err := e.SendDraft(ctx, alice, second.UID)
	if err != nil {
		t.Fatal(err)
	}
	if res.MessageID != second.MessageID || res.SentCopy != "appended" {
		t.Fatalf("send draft: %+v", res)
	}
	got := findByMessageID(t, e, bob, "INBOX", res.MessageID)
	if !strings.Contains(got.Text, "Second thoughts") || got.From != "Alice Example <"+alice.Email+">" {
		t.Fatalf("delivered: from %q text %q", got.From, got.Text)
	}
	if raw := rawOf(t, e, bob, "INBOX", got.UID); bytes.Contains(raw, []byte(carol.Email)) {
		t.Fatal("the Bcc recipient is visible to the others")
	}
	findByMessageID(t, e, carol, "INBOX", res.MessageID) // the blind copy arrives
	sent := findByMessageID(t, e, alice, "Sent", res.MessageID)
	if raw := rawOf(t, e, alice, "Sent", sent.UID); !bytes.Contains(raw, []byte("Bcc: <"+carol.Email+">")) {
		t.Fatal("the Sent copy does not say who got it blind")
	}
	if page, _ := e.Search(ctx, alice, "Drafts", SearchQuery{Subject: subject}); page.Total != 0 {
		t.Fatalf("the sent draft is still in Drafts: %+v", page.Messages)
	}

	// A reply drafted by bob keeps the thread; sending it marks the
	// original answered.
	reply, err := e.ReplyOutgoing(ctx, bob, ReplyOptions{Folder: "INBOX", UID: got.UID, Text: "Agreed.", Quote: true})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := e.SaveDraft(ctx, bob, reply, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Updating it without threading of its own keeps the thread.
	rd, err = e.SaveDraft(ctx, bob, Outgoing{To: reply.To, Subject: reply.Subject, Text: "Agreed, with one change."}, rd.UID)
	if err != nil {
		t.Fatal(err)
	}
	sentReply, err := e.SendDraft(ctx, bob, rd.UID)
	if err != nil {
		t.Fatal(err)
	}
	back := findByMessageID(t, e, alice, "INBOX", sentReply.MessageID)
	if back.InReplyTo != res.MessageID || !slices.Contains(back.References, res.MessageID) || back.Subject != "Re: "+subject {
		t.Fatalf("reply draft threading: in-reply-to %q references %v subject %q", back.InReplyTo, back.References, back.Subject)
	}
	orig, err := e.GetMessage(ctx, bob, "INBOX", got.UID, GetOptions{})
	if err != nil || !slices.Contains(orig.Flags, FlagAnswered) {
		t.Fatalf("original not marked answered: %v %v", orig.Flags, err)
	}

	// A draft without recipients is saved, but not sent; a UID that is no
	// draft is not found.
	empty, err := e.SaveDraft(ctx, alice, Outgoing{Subject: "no one yet", Text: "idea"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SendDraft(ctx, alice, empty.UID); KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "no recipients") {
		t.Fatalf("sending a draft without recipients: %v", err)
	}
	if _, err := e.SendDraft(ctx, alice, 999999); KindOf(err) != KindNotFound {
		t.Fatalf("sending a missing draft: %v", err)
	}
	if _, err := e.SaveDraft(ctx, alice, Outgoing{Subject: "x", Text: "y"}, 999999); KindOf(err) != KindNotFound {
		t.Fatalf("replacing a missing draft: %v", err)
	}
}

// TestRewriteHeader: the fields named go (with their continuation lines),
// the new ones come first, the body stays byte for byte; when the new
// header fits in the old one and the room before it, the body is not
// copied.
func TestRewriteHeader(t *testing.T) {
	drop := func(name string) bool { return name == "Bcc" || name == "Date" }
	body := "\r\nBcc: body line\r\n"
	for _, tc := range []struct {
		raw, head string
		room      int
		inPlace   bool
	}{
		{"Bcc: a@example.org,\r\n b@example.org\r\nSubject: s\r\nDate: old\r\nX-Bcc: keep\r\n", "Date: new\r\n", 0, true},
		{"Subject: s\r\n", "Date: a much longer field than the old header\r\n", 0, false},
		{"Subject: s\r\n", "Date: a much longer field than the old header\r\n", 64, true},
		{"Subject: s\nDate: lf only\n", "Date: new\r\n", 8, true},
	} {
		buf := append(make([]byte, tc.room), tc.raw+body...)
		got := rewriteHeader(buf, tc.room, tc.head, drop)
		var kept strings.Builder
		skipping := false
		for _, line := range strings.SplitAfter(tc.raw, "\n") {
			if line == "" {
				continue
			}
			if line[0] != ' ' {
				name, _, _ := strings.Cut(line, ":")
				skipping = drop(name)
			}
			if !skipping {
				kept.WriteString(line)
			}
		}
		if want := tc.head + kept.String() + body; string(got) != want {
			t.Errorf("rewriteHeader(%q) = %q, want %q", tc.raw, got, want)
		}
		if inPlace := &got[len(got)-1] == &buf[len(buf)-1]; inPlace != tc.inPlace {
			t.Errorf("rewriteHeader(%q, room %d): body kept in place %v, want %v", tc.raw, tc.room, inPlace, tc.inPlace)
		}
	}
	// A message that is all header keeps nothing after it.
	if got := string(rewriteHeader([]byte("Bcc: x\r\nSubject: s\r\n"), 0, "Date: d\r\n", drop)); got != "Date: d\r\nSubject: s\r\n" {
		t.Errorf("header only: %q", got)
	}
}

// TestGmailDrafts: on Gmail a replaced or sent draft must leave every
// label (through Trash), not linger in All Mail, and Gmail files the
// sent copy itself.
func TestGmailDrafts(t *testing.T) {
	t.Parallel()
	e, acct, srv := startGmail(t, Config{})
	rig := testRig(t)
	srv.RootCAs().AppendCertsFromPEM(rig.CAPEM) // the engine trusts both
	alice, _ := rig.User("alice")
	acct.SMTP, acct.SMTPUsername, acct.SMTPPassword, acct.Email = endpoint(t, rig.SMTPSAddr(), TLSImplicit), alice.Email, alice.Password, alice.Email
	bob := rigAccount(t, rig, "bob")
	bob.ID = "gmail-draft-bob"
	ctx := testCtx(t)

	first, err := e.SaveDraft(ctx, acct, Outgoing{To: []string{bob.Email}, Subject: "Gmail draft " + uniqueFolder("g"), Text: "v1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Labels(first.MessageID); first.Folder != gmailtest.Drafts || !slices.Equal(got, []string{gmailtest.AllMail, gmailtest.Drafts}) {
		t.Fatalf("saved draft: %+v, labels %v", first, got)
	}
	second, err := e.SaveDraft(ctx, acct, Outgoing{To: []string{bob.Email}, Subject: "Gmail draft v2", Text: "v2"}, first.UID)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Labels(first.MessageID); got != nil {
		t.Fatalf("the replaced draft lingers in %v", got)
	}
	res, err := e.SendDraft(ctx, acct, second.UID)
	if err != nil {
		t.Fatal(err)
	}
	if res.SentCopy != "provider keeps its own copy" {
		t.Fatalf("send: %+v", res)
	}
	if got := srv.Labels(second.MessageID); got != nil {
		t.Fatalf("the sent draft lingers in %v", got)
	}
	if m := findByMessageID(t, e, bob, "INBOX", res.MessageID); !strings.Contains(m.Text, "v2") {
		t.Fatalf("delivered %q", m.Text)
	}
}

// TestSendDraftSendsOnlyOwnDrafts: a message that reached Drafts
// otherwise (copied from INBOX) is not a draft and is not sent, nor once
// it carries \Draft; the From that is checked is the one sent (a second
// address, a second From field, a From past a padded header or a group
// with a Sender are refused); trace and mail-app fields stay home.
func TestSendDraftSendsOnlyOwnDrafts(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	alice := rigAccount(t, rig, "alice")
	alice.ID = "own-drafts-alice"
	bob := rigAccount(t, rig, "bob")
	bob.ID = "own-drafts-bob"
	ctx := testCtx(t)
	app, err := rig.Appender("alice")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	// inDrafts appends a message with head to folder, copies it to Drafts
	// when it is not there, and returns its UID in Drafts.
	inDrafts := func(folder, subject, head string, flag bool) uint32 {
		t.Helper()
		raw := head + "To: " + bob.Email + "\r\nSubject: " + subject + "\r\n\r\nwire the money\r\n"
		uid, err := app.Append(folder, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if folder != "Drafts" {
			if err := e.Copy(ctx, alice, folder, []uint32{uid}, "Drafts"); err != nil {
				t.Fatal(err)
			}
		}
		page, err := e.Search(ctx, alice, "Drafts", SearchQuery{Subject: subject})
		if err != nil || page.Total != 1 {
			t.Fatal(page, err)
		}
		if uid = page.Messages[0].UID; flag {
			if err := e.SetFlags(ctx, alice, "Drafts", []uint32{uid}, []string{`\Draft`}, nil); err != nil {
				t.Fatal(err)
			}
		}
		return uid
	}
	foreign := "Received: from evil.example by mx.evil.example\r\nFrom: \"The CEO\" <ceo@bank.example>\r\nReply-To: attacker@evil.example\r\n"
	if _, err := e.SendDraft(ctx, alice, inDrafts("INBOX", "copied "+uniqueFolder("x"), foreign, false)); KindOf(err) != KindInvalid ||
		!strings.Contains(err.Error(), "not a draft") {
		t.Fatalf("sending a copied message: %v", err)
	}
	pad := strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 1100)
	for name, c := range map[string]struct{ head, want string }{
		"foreign":       {foreign, "ceo@bank.example) is not this account's address"},
		"two addresses": {"From: " + alice.Email + ", \"The CEO\" <ceo@bank.example>\r\n", "holds 2 addresses"},
		"two fields":    {"From: " + alice.Email + "\r\nFrom: \"The CEO\" <ceo@bank.example>\r\n", "2 From fields"},
		"padded":        {"Sender: " + alice.Email + "\r\n" + pad + "From: \"The CEO\" <ceo@bank.example>\r\n", "larger than 1024 KB"},
		"group":         {"Sender: " + alice.Email + "\r\nFrom: The CEO of Bank:;\r\n", "holds 0 addresses"},
		"none":          {"Sender: " + alice.Email + "\r\n", "0 From fields"},
	} {
		uid := inDrafts("Drafts", name+" "+uniqueFolder("f"), c.head, true)
		if _, err := e.SendDraft(ctx, alice, uid); KindOf(err) != KindInvalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}

	traced := "Received: from attacker.example\r\nDKIM-Signature: v=1; d=attacker.example\r\nAuthentication-Results: attacker.example\r\n" +
		"Resent-From: attacker.example\r\nFrom: =?utf-8?q?M=C3=BCller=2C_Hans?= <" + alice.Email + ">\r\n" +
		"Fcc: imap://alice%40example.test@imap.example.test/Sent\r\nX-Mozilla-Draft-Info: internal/draft; vcard=0\r\nX-Identity-Key: id1\r\n"
	res, err := e.SendDraft(ctx, alice, inDrafts("Drafts", "own "+uniqueFolder("f"), traced, true))
	if err != nil {
		t.Fatal(err)
	}
	got := findByMessageID(t, e, bob, "INBOX", res.MessageID)
	raw := string(rawOf(t, e, bob, "INBOX", got.UID))
	if got.From != `"Müller, Hans" <`+alice.Email+">" {
		t.Fatalf("sent from %q", got.From)
	}
	for _, gone := range []string{"attacker.example", "imap://", "X-Mozilla", "X-Identity-Key"} {
		if strings.Contains(raw, gone) {
			t.Errorf("%s went out:\n%s", gone, raw)
		}
	}
}

// TestRefusedAppendFreesTheConnection: a server that refuses an APPEND
// whose literal waits for its go-ahead (a full mailbox, a folder gone)
// gives an error, and the account's next command is served (go-imap
// ends that connection, so on a new one) instead of waiting for good.
func TestRefusedAppendFreesTheConnection(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	acct.ID = "acct-carol-refused-append"
	ctx := testCtx(t)
	big := Filed{Head: []byte("Bcc: <x@example.test>\r\n"), Raw: bytes.Repeat([]byte("Subject: x\r\n"), 1000)}
	err := e.Do(ctx, acct, func(c *Conn) error {
		_, err := c.appendMessage("No such folder "+uniqueFolder("gone"), big, imap.FlagSeen)
		return err
	})
	if err == nil {
		t.Fatal("an APPEND to a missing folder succeeded")
	}
	done := make(chan error, 1)
	go func() { done <- e.Do(ctx, acct, func(c *Conn) error { return c.client.Noop().Wait() }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the refused APPEND: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the connection hangs after a refused APPEND")
	}
}

// TestDraftReadOnce: a draft read to be sent is read into one buffer of
// its size, with the room in front that sending's fields take.
func TestDraftReadOnce(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	acct.ID = "acct-carol-draft-read"
	ctx := testCtx(t)
	saved, err := e.SaveDraft(ctx, acct, Outgoing{To: []string{"bob@example.test"}, Subject: "big draft", Text: "see the file",
		Attachments: []OutgoingAttachment{{Filename: "a.bin", Data: bytes.Repeat([]byte{7}, 1<<20)}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var d *draft
	if err := e.Read(ctx, acct, func(c *Conn) (err error) {
		d, err = c.readDraft(saved.Folder, saved.UID, maxDraftBytes)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Grown by doubling it would hold about 2 MB; sized once, what the
	// allocator rounds up to its pages.
	if len(d.raw()) < 1<<20 || len(d.buf) != draftRoom+len(d.raw()) || cap(d.buf)-len(d.buf) > 16<<10 {
		t.Fatalf("a %d-byte draft read into %d bytes (%d held)", len(d.raw()), len(d.buf), cap(d.buf))
	}
}
