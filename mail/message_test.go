package mail

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

func TestGetMessageReadsWithoutSeen(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	folder, seeded := seedFolder(t, rig, "alice", "get", 60)
	ctx := testCtx(t)
	page, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 60})
	if err != nil {
		t.Fatal(err)
	}
	uidOf := map[string]uint32{}
	for _, s := range page.Messages {
		uidOf[s.MessageID] = s.UID
	}
	kinds := map[string]bool{}
	for _, want := range seeded.Messages {
		uid := uidOf[want.MessageID]
		msg, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{HTML: true})
		if err != nil {
			t.Fatalf("get %d: %v", uid, err)
		}
		kinds[want.Kind] = true
		if msg.Subject != want.Subject || msg.MessageID != want.MessageID || !strings.Contains(msg.From, want.From) {
			t.Fatalf("header %+v, want %+v", msg.Header, want)
		}
		if msg.TextLength == 0 || msg.Text == "" || strings.Contains(msg.Text, "<p>") || strings.Contains(msg.Text, "=C3") {
			t.Fatalf("%s message %d: body not readable text: %q", want.Kind, uid, msg.Text)
		}
		if phrase, ok := charsetPhrases[want.Charset]; ok && !strings.Contains(msg.Text, phrase) {
			t.Errorf("%s body not decoded: %q", want.Charset, msg.Text)
		}
		if strings.Contains(msg.Text, "\r") {
			t.Errorf("text keeps CR: %q", msg.Text)
		}
		if (want.Kind == mailrig.KindAlternative || want.Kind == mailrig.KindNewsletter) && (msg.HTML == "" || strings.Contains(msg.HTML, "<script")) {
			t.Errorf("%s: html %q", want.Kind, msg.HTML[:min(80, len(msg.HTML))])
		}
		if (len(msg.Attachments) > 0) != (want.Kind == mailrig.KindMixed) {
			t.Errorf("%s: attachments %+v", want.Kind, msg.Attachments)
		}
		if slices.Contains(msg.Flags, FlagSeen) != want.Seen {
			t.Errorf("flags %v, want seen=%v", msg.Flags, want.Seen)
		}
	}
	if len(kinds) < 3 {
		t.Fatalf("corpus too narrow: %v", kinds)
	}
	after, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 60, Unread: true})
	if err != nil {
		t.Fatal(err)
	}
	unread := 0
	for _, m := range seeded.Messages {
		if !m.Seen {
			unread++
		}
	}
	if after.Total != unread {
		t.Fatalf("reading changed \\Seen: %d unread, want %d", after.Total, unread)
	}
}

func TestGetMessageWindow(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	folder, _ := seedFolder(t, rig, "alice", "window", 5)
	ctx := testCtx(t)
	page, err := e.ListMessages(ctx, acct, folder, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid := page.Messages[0].UID
	full, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var joined strings.Builder
	for off := 0; off < full.TextLength; off += 37 {
		part, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{MaxChars: 37, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		if part.TextLength != full.TextLength || part.TextOffset != off {
			t.Fatalf("window meta %d/%d", part.TextOffset, part.TextLength)
		}
		joined.WriteString(part.Text)
	}
	if joined.String() != full.Text {
		t.Fatalf("windows do not add up:\n%q\n%q", joined.String(), full.Text)
	}
	if _, err := e.GetMessage(ctx, acct, folder, 999999, GetOptions{}); KindOf(err) != KindNotFound {
		t.Fatalf("missing uid: %v", err)
	}
	if _, err := e.GetMessage(ctx, acct, "No/Such/Folder", uid, GetOptions{}); KindOf(err) != KindNotFound {
		t.Fatalf("missing folder: %v", err)
	}
}

func TestGetAttachmentMatchesParsedPart(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	folder, seeded := seedFolder(t, rig, "alice", "att", 40)
	ctx := testCtx(t)
	page, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 40})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	types := map[string]bool{}
	for i, s := range page.Messages {
		if seeded.Messages[len(seeded.Messages)-1-i].Kind != mailrig.KindMixed {
			continue
		}
		msg, err := e.GetMessage(ctx, acct, folder, s.UID, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range msg.Attachments {
			var buf bytes.Buffer
			var opened AttachmentInfo
			info, err := e.GetAttachment(ctx, acct, folder, s.UID, a.Part, func(i AttachmentInfo) io.Writer { opened = i; return &buf })
			if err != nil {
				t.Fatalf("attachment %s: %v", a.Part, err)
			}
			if info.Size != a.Size || int64(buf.Len()) != a.Size || info.ContentType != a.ContentType ||
				opened != (AttachmentInfo{Part: a.Part, Filename: info.Filename, ContentType: a.ContentType}) {
				t.Fatalf("attachment %+v, streamed %+v (%d bytes)", a, info, buf.Len())
			}
			if a.ContentType == "application/pdf" && !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
				t.Fatalf("pdf content %x", sha256.Sum256(buf.Bytes()))
			}
			if a.ContentType == "image/png" && !bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG")) {
				t.Fatalf("png content %q", buf.Bytes()[:8])
			}
			checked++
			types[a.ContentType] = true
		}
		if _, err := e.GetAttachment(ctx, acct, folder, s.UID, "9.9", discard); KindOf(err) != KindNotFound {
			t.Fatalf("missing part: %v", err)
		}
	}
	// A writer that gives up mid-stream ends the call with its error.
	errFull := errors.New("full")
	msg, err := e.GetMessage(ctx, acct, folder, page.Messages[firstMixed(t, seeded)].UID, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := msg.Attachments[0]
	info, err := e.GetAttachment(ctx, acct, folder, msg.UID, a.Part, func(AttachmentInfo) io.Writer { return failingWriter{errFull} })
	if !errors.Is(err, errFull) || info.ContentType != a.ContentType {
		t.Fatalf("writer error: %v, info %+v", err, info)
	}
	if checked == 0 || !types["message/rfc822"] || !types["application/pdf"] {
		t.Fatalf("attachment types checked: %v", types)
	}
	if _, err := e.GetAttachment(ctx, acct, folder, 1, "1;2", discard); KindOf(err) != KindInvalid {
		t.Fatalf("bad part: %v", err)
	}
}

// firstMixed returns the page index (newest first) of the newest
// message with attachments.
func firstMixed(t *testing.T, seeded mailrig.SeedResult) int {
	t.Helper()
	for i := range seeded.Messages {
		if seeded.Messages[len(seeded.Messages)-1-i].Kind == mailrig.KindMixed {
			return i
		}
	}
	t.Fatal("no message with attachments")
	return 0
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// discard is an attachment opener that fails the test if called.
func discard(AttachmentInfo) io.Writer { panic("opened a missing attachment") }

// charsetPhrases are words of the rig's charset samples, decoded.
var charsetPhrases = map[string]string{"ISO-8859-1": "München", "windows-1252": "42 €", "KOI8-R": "Привет",
	"ISO-2022-JP": "こんにちは", "Shift_JIS": "お疲れ様です"}
