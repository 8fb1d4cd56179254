package mail

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"mime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	gomail "github.com/wneessen/go-mail"
)

// findByMessageID polls folder until a message with id appears.
func findByMessageID(t *testing.T, e *Engine, acct *Account, folder, id string) *Message {
	t.Helper()
	ctx := testCtx(t)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page, err := e.Search(ctx, acct, folder, SearchQuery{Text: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Messages {
			if s.MessageID == id {
				m, err := e.GetMessage(ctx, acct, folder, s.UID, GetOptions{HTML: true})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
	}
	t.Fatalf("message %s never arrived in %s", id, folder)
	return nil
}

// rawOf returns the raw bytes of the message uid in folder.
func rawOf(t *testing.T, e *Engine, acct *Account, folder string, uid uint32) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Do(testCtx(t), acct, func(c *Conn) error {
		if _, err := c.selectFolder(folder); err != nil {
			return err
		}
		msgs, err := c.client.Fetch(uidSet([]uint32{uid}), &imapFetchWhole).Collect()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			for _, b := range m.BodySection {
				buf.Write(b.Bytes)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSendAppendsSameBytesToSentOnce(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	alice := rigAccount(t, rig, "alice")
	alice.ID = "send-alice"
	alice.Name = "Alice Example"
	alice.SignatureHTML = `<p>Alice <b>Example</b> <span style="color: #cc0000; position: fixed">Sales</span></p><script>alert(1)</script>`
	bob := rigAccount(t, rig, "bob")
	ctx := testCtx(t)

	res, err := e.Send(ctx, alice, Outgoing{
		To:               []string{"Bob Builder <" + bob.Email + ">"},
		Cc:               []string{"outsider@example.com"},
		Bcc:              []string{"carol@example.test"},
		Subject:          "Déjeuner ✓ " + uniqueFolder("s"),
		Text:             "Hello Bob,\nsee the file.",
		HTML:             "<p>Hello <b>Bob</b>,</p>",
		IncludeSignature: true,
		Attachments:      []OutgoingAttachment{{Filename: "notes.txt", ContentType: "text/plain", Data: []byte("attached notes")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SentCopy != "appended" || res.SentFolder != "Sent" {
		t.Fatalf("sent copy: %+v", res)
	}
	got := findByMessageID(t, e, bob, "INBOX", res.MessageID)
	if !strings.Contains(got.Text, "Hello Bob") || !strings.Contains(got.Text, "-- \nAlice Example") {
		t.Fatalf("received text %q", got.Text)
	}
	if !strings.Contains(got.HTML, "<b>Example</b>") || strings.Contains(got.HTML, "alert") {
		t.Fatalf("received html %q", got.HTML)
	}
	// The signature's colour is sent (reading shows HTML without styles).
	if raw := string(rawOf(t, e, bob, "INBOX", got.UID)); !strings.Contains(raw, "#cc0000") || strings.Contains(raw, "position: fixed") {
		t.Fatalf("sent signature styles: %q", raw)
	}
	if len(got.Attachments) != 1 || got.Attachments[0].Filename != "notes.txt" || got.Attachments[0].Size != 14 {
		t.Fatalf("attachments %+v", got.Attachments)
	}
	if got.From != "Alice Example <"+alice.Email+">" || !slices.Contains(got.To, "Bob Builder <"+bob.Email+">") {
		t.Fatalf("addresses from %q to %v", got.From, got.To)
	}
	carol := rigAccount(t, rig, "carol")
	carol.ID = "send-carol"
	if blind := findByMessageID(t, e, carol, "INBOX", res.MessageID); len(blind.Cc) != 1 {
		t.Fatalf("Bcc recipient sees cc %v", blind.Cc)
	}
	sent := findByMessageID(t, e, alice, "Sent", res.MessageID)
	if !slices.Contains(sent.Flags, FlagSeen) {
		t.Fatalf("Sent copy flags %v", sent.Flags)
	}
	sentRaw := rawOf(t, e, alice, "Sent", sent.UID)
	inboxRaw := rawOf(t, e, bob, "INBOX", got.UID)
	if bytes.Contains(inboxRaw, []byte("carol@")) {
		t.Fatal("Bcc address visible to the recipients")
	}
	bccLine, sentBody, _ := bytes.Cut(sentRaw, []byte("\r\n"))
	if string(bccLine) != "Bcc: <carol@example.test>" {
		t.Fatalf("Sent copy does not say who got it blind: %q", bccLine)
	}
	if !bytes.HasSuffix(inboxRaw, sentBody) {
		t.Fatalf("Sent copy differs from what was delivered:\nsent %d bytes\ninbox %d bytes", len(sentRaw), len(inboxRaw))
	}

	// Saving again finds the copy by Message-ID and does not duplicate it.
	var again SendResult
	if err := e.Do(ctx, alice, func(c *Conn) error { return c.saveSent(Filed{Raw: sentRaw}, res.MessageID, &again) }); err != nil {
		t.Fatal(err)
	}
	if again.SentCopy != "already in Sent" {
		t.Fatalf("second save: %+v", again)
	}
	page, err := e.Search(ctx, alice, "Sent", SearchQuery{Text: res.MessageID})
	if err != nil || page.Total != 1 {
		t.Fatalf("Sent holds %v copies (%v)", page, err)
	}
}

func TestSendRefusesHeaderInjection(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	for _, out := range []Outgoing{
		{To: []string{"bob@example.test"}, Subject: "hi\r\nBcc: victim@example.com"},
		{To: []string{"bob@example.test\nBcc: victim@example.com"}, Subject: "hi"},
		{To: []string{"bob@example.test"}, Subject: "hi", Attachments: []OutgoingAttachment{{Filename: "a\r\n.txt"}}},
		{Subject: "no recipients"},
		{To: []string{"not an address"}, Subject: "x"},
	} {
		if _, err := e.Send(testCtx(t), acct, out); KindOf(err) != KindInvalid {
			t.Errorf("%+v: %v", out, err)
		}
	}
}

func TestReplyAllThreadsAndAnswers(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	carol := rigAccount(t, rig, "carol")
	carol.ID = "reply-carol"
	bob := rigAccount(t, rig, "bob")
	bob.ID = "reply-bob"
	alice := rigAccount(t, rig, "alice")
	ctx := testCtx(t)

	first, err := e.Send(ctx, bob, Outgoing{
		To: []string{carol.Email, alice.Email}, Cc: []string{"Zoë <zoe@example.org>"},
		Subject: "Plan " + uniqueFolder("r"), Text: "Original line one.\nLine two.",
	})
	if err != nil {
		t.Fatal(err)
	}
	orig := findByMessageID(t, e, carol, "INBOX", first.MessageID)
	res, err := e.Reply(ctx, carol, ReplyOptions{Folder: "INBOX", UID: orig.UID, ReplyAll: true, Quote: true, Text: "Sounds good."})
	if err != nil {
		t.Fatal(err)
	}
	got := findByMessageID(t, e, bob, "INBOX", res.MessageID)
	if got.Subject != "Re: "+orig.Subject || got.InReplyTo != first.MessageID || !slices.Equal(got.References, []string{first.MessageID}) {
		t.Fatalf("threading: %+v", got.Header)
	}
	if !slices.Equal(got.To, []string{"bob <" + bob.Email + ">", alice.Email}) || !slices.Equal(got.Cc, []string{"Zoë <zoe@example.org>"}) {
		t.Fatalf("reply-all recipients to %v cc %v", got.To, got.Cc)
	}
	if !strings.HasPrefix(got.Text, "Sounds good.") || !strings.Contains(got.Text, "> Original line one.\n> Line two.") {
		t.Fatalf("quote: %q", got.Text)
	}
	again, err := e.GetMessage(ctx, carol, "INBOX", orig.UID, GetOptions{MaxChars: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(again.Flags, FlagAnswered) {
		t.Fatalf("original flags %v", again.Flags)
	}
}

func TestReplyRecipients(t *testing.T) {
	acct := &Account{Email: "me@example.test", Aliases: []string{"Me@Alias.test"}}
	h := Header{From: "Ann <ann@example.com>", ReplyTo: []string{"List <list@example.com>"},
		To: []string{"me@example.test", "Bea <bea@example.com>"}, Cc: []string{"ME@alias.test", "ann@example.com", "cy@example.com"}}
	to, cc := replyRecipients(acct, h, false, nil)
	if !slices.Equal(to, []string{"List <list@example.com>"}) || cc != nil {
		t.Fatalf("reply: %v %v", to, cc)
	}
	to, cc = replyRecipients(acct, h, true, nil)
	if !slices.Equal(to, []string{"List <list@example.com>", "Bea <bea@example.com>"}) ||
		!slices.Equal(cc, []string{"ann@example.com", "cy@example.com"}) {
		t.Fatalf("reply all: %v %v", to, cc)
	}
}

var imapFetchWhole = imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}

func TestSendLeavesSentToProviderThatKeepsACopy(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	alice := rigAccount(t, rig, "alice")
	alice.ID, alice.Provider = "send-outlook", "outlook"
	bob := rigAccount(t, rig, "bob")
	ctx := testCtx(t)
	res, err := e.Send(ctx, alice, Outgoing{To: []string{bob.Email}, Subject: "no copy " + uniqueFolder("o"), Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SentCopy != "provider keeps its own copy" || res.SentFolder != "" {
		t.Fatalf("result %+v", res)
	}
	findByMessageID(t, e, bob, "INBOX", res.MessageID)
	page, err := e.Search(ctx, alice, "Sent", SearchQuery{Text: res.MessageID})
	if err != nil || page.Total != 0 {
		t.Fatalf("Sent holds %v (%v)", page, err)
	}
}

// TestSendHostileDisplayNameAndTooManyRecipients: a display name with
// quotes and angle brackets is quoted, not a broken From; reply-all to a
// message with more people than a message may have is refused before
// anything is sent.
func TestSendHostileDisplayNameAndTooManyRecipients(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	carol := rigAccount(t, rig, "carol")
	carol.ID, carol.Name = "hostile-carol", `Carol "><script>`
	ctx := testCtx(t)
	res, err := e.Send(ctx, carol, Outgoing{To: []string{carol.Email}, Subject: "Quoted " + uniqueFolder("q"), Text: "x"})
	if err != nil {
		t.Fatalf("send with display name %q: %v", carol.Name, err)
	}
	if got := findByMessageID(t, e, carol, "INBOX", res.MessageID); !strings.Contains(got.From, `Carol \"><script>`) {
		t.Fatalf("delivered from %q", got.From)
	}

	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var to []string
	for i := range 150 {
		to = append(to, fmt.Sprintf("p%d@example.org", i))
	}
	folder := uniqueFolder("crowd")
	uid, err := app.Append(folder, []byte("From: boss@example.org\r\nTo: "+strings.Join(to, ", ")+"\r\nSubject: all hands\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Reply(ctx, carol, ReplyOptions{Folder: folder, UID: uid, ReplyAll: true, Text: "ok"})
	if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "151") {
		t.Fatalf("reply-all to 151: %v", err)
	}
	if _, err := e.Send(ctx, carol, Outgoing{To: to[:101], Subject: "x", Text: "x"}); KindOf(err) != KindInvalid {
		t.Fatalf("send to 101: %v", err)
	}
}

// TestFilesWrittenAsGoMailWrites: a message whose files are written in
// place of their stand-ins has the same bytes go-mail writes with the
// files themselves, whatever their sizes (empty, under a line, on and
// around a line's 57 bytes, many lines).
func TestFilesWrittenAsGoMailWrites(t *testing.T) {
	date := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	build := func(files [][]byte) *gomail.Msg {
		m := gomail.NewMsg()
		if err := m.From("ann@example.org"); err != nil {
			t.Fatal(err)
		}
		_ = m.To("bob@example.org")
		m.Subject("files")
		m.SetMessageIDWithValue("id@example.org")
		m.SetDateWithValue(date)
		m.SetBoundary("boundary")
		m.SetBodyString(gomail.TypeTextPlain, "see the files")
		for i, f := range files {
			m.AttachReadSeeker(fmt.Sprintf("f%d.bin", i), bytes.NewReader(f), gomail.WithFileContentType("application/octet-stream"))
		}
		return m
	}
	for _, sizes := range [][]int{{0}, {1}, {2}, {3}, {56}, {57}, {58}, {114}, {1000}, {57 * 100}, {100_003}, {5, 0, 57, 200_000}} {
		files := make([][]byte, len(sizes))
		standIns := make([][]byte, len(sizes))
		for i, n := range sizes {
			files[i] = make([]byte, n)
			_, _ = rand.Read(files[i])
			standIns[i] = newStandIn()
		}
		var want bytes.Buffer
		if _, err := build(files).WriteTo(&want); err != nil {
			t.Fatal(err)
		}
		got, err := writeWithFiles(build(standIns), standIns, files)
		if err != nil {
			t.Fatalf("sizes %v: %v", sizes, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("sizes %v: %d bytes written, go-mail writes %d", sizes, len(got), want.Len())
		}
		if cap(got) != len(got) {
			t.Errorf("sizes %v: %d bytes held for a %d-byte message", sizes, cap(got), len(got))
		}
	}
	// A stand-in go-mail did not write as one base64 line is an error.
	if _, err := writeWithFiles(build([][]byte{[]byte("short")}), [][]byte{[]byte("short")}, [][]byte{{1}}); err == nil {
		t.Error("a file that is no stand-in was replaced")
	}
}

// TestSendType: a file goes as its given type reduced to type/subtype
// (and a text type's plain charset), or as the type its name suggests;
// what is no media type, or a multipart or message type (never sent in
// base64), is refused when given and not guessed.
func TestSendType(t *testing.T) {
	mime.AddExtensionType(".vpm-test", "multipart/voice-message") // as some /etc/mime.types have it
	for _, tc := range []struct{ given, filename, data, want string }{
		{"", "Report.PDF", "%PDF", "application/pdf"},
		{"", "notes", "x", "application/octet-stream"},
		{"", "notes.txt", "Grüße", "text/plain; charset=utf-8"},
		{"", "latin1.txt", "Gr\xfc\xdfe", "text/plain"},
		{"", "mail.eml", "Subject: x", "application/octet-stream"},
		{"", "a.vpm-test", "x", "application/octet-stream"},
		{"image/png", "a.bin", "x", "image/png"},
		{"Application/PDF; name=\"invoice.exe\"", "report.pdf", "x", "application/pdf"},
		{"application/pdf; name=my file.pdf", "my file.pdf", "x", "application/pdf"},
		{"text/plain; charset=UTF-8; name=x.exe", "a.txt", "x", "text/plain; charset=utf-8"},
		{`text/plain; charset="utf-8\"; name=evil.exe"`, "a.txt", "x", "text/plain"},
		{"text/plain; charset*=utf-8''%22%3B%20name%3Devil.exe", "a.txt", "x", "text/plain"},
		{"application/json; charset=utf-8", "a.json", "x", "application/json"},
		{"multipart/mixed; boundary=evil", "a.eml", "x", ""},
		{"message/rfc822", "a.eml", "x", ""},
		{"not a type", "a.bin", "x", ""},
		{"text/", "a.txt", "x", ""},
	} {
		got, err := sendType(tc.given, tc.filename, []byte(tc.data))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("sendType(%q, %q) = %q, %v; want %q", tc.given, tc.filename, got, err, tc.want)
		}
	}
	acct := &Account{Email: "ann@example.org"}
	_, _, _, err := buildMessage(acct, Outgoing{To: []string{"bob@example.org"}, Text: "x",
		Attachments: []OutgoingAttachment{{Filename: "a.eml", ContentType: "multipart/mixed; boundary=b", Data: []byte("x")}}}, false)
	if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "not a file's type") {
		t.Errorf("a multipart attachment: %v", err)
	}
	raw, _, _, err := buildMessage(acct, Outgoing{To: []string{"bob@example.org"}, Text: "x",
		Attachments: []OutgoingAttachment{{Filename: "q3.pdf", Data: []byte("%PDF-1.4")}}}, false)
	if err != nil || !bytes.Contains(raw, []byte("Content-Type: application/pdf; name=\"q3.pdf\"")) {
		t.Errorf("a PDF without a type: %v\n%s", err, raw)
	}
}

// TestFiledCopyKeepsTheMessageInPlace: the Sent copy of a message with
// blind recipients is its Bcc field and the sent bytes themselves, not a
// copy of them.
func TestFiledCopyKeepsTheMessageInPlace(t *testing.T) {
	raw := []byte("Subject: x\r\n\r\nbody\r\n")
	f := FiledCopy(raw, []string{"Carol <carol@example.test>", "not an address"})
	if string(f.Head) != "Bcc: \"Carol\" <carol@example.test>\r\n" || &f.Raw[0] != &raw[0] || f.Len() != len(f.Head)+len(raw) {
		t.Fatalf("filed %q + %d bytes (the same bytes: %v)", f.Head, len(f.Raw), &f.Raw[0] == &raw[0])
	}
	if f := FiledCopy(raw, nil); f.Head != nil || &f.Raw[0] != &raw[0] {
		t.Fatalf("without Bcc: %q", f.Head)
	}
}
