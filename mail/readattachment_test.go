package mail

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imap-mcp/imap-mcp/extract"
)

// TestReadAttachmentWindowsAndCache: the windows of an attachment's text
// join up; the second window is served from the text read for the first
// (no second download), but never after the message is gone or for
// another message that took its UID in a recreated folder.
func TestReadAttachmentWindowsAndCache(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "bob")
	acct.ID = "read-attachment-bob"
	proxy := newCountingProxy(t, rig.IMAPSAddr())
	acct.IMAP = endpoint(t, proxy.ln.Addr().String(), TLSImplicit)
	ctx := testCtx(t)
	withText := func(text string) []byte {
		return []byte(fmt.Sprintf("From: ann@example.org\r\nSubject: notes\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
			"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: text/csv; name=notes.csv\r\nContent-Disposition: attachment; filename=notes.csv\r\n\r\n%s\r\n--b--\r\n", text))
	}
	var rows strings.Builder
	for i := range 400 {
		fmt.Fprintf(&rows, "row %d,value %d\r\n", i, i*i)
	}
	folder, uid := appendOne(t, rig, "bob", "Read", withText(rows.String()))

	first, err := e.ReadAttachment(ctx, acct, folder, uid, "2", GetOptions{MaxChars: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if first.ReadAs != "csv" || !strings.HasPrefix(first.Text, "row 0 | value 0\nrow 1 | value 1\n") || first.Length <= 1000 {
		t.Fatalf("first window: %+v", first)
	}
	downloaded := proxy.down.Load()
	var whole strings.Builder
	whole.WriteString(first.Text)
	for off := 1000; off < first.Length; off += 1000 {
		w, err := e.ReadAttachment(ctx, acct, folder, uid, "2", GetOptions{MaxChars: 1000, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		whole.WriteString(w.Text)
	}
	if !strings.HasSuffix(whole.String(), "row 399 | value 159201") || len([]rune(whole.String())) != first.Length {
		t.Fatalf("the windows join to %d of %d characters", len([]rune(whole.String())), first.Length)
	}
	if more := proxy.down.Load() - downloaded; more > 2000 {
		t.Errorf("later windows downloaded %d bytes again", more)
	}

	// A refused file is refused again without a second download.
	broken := []byte("From: ann@example.org\r\nSubject: broken\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: application/pdf; name=x.pdf\r\n\r\n%PDF-1.4 " +
		strings.Repeat("truncated ", 5000) + "\r\n--b--\r\n")
	brokenFolder, brokenUID := appendOne(t, rig, "bob", "Read-broken", broken)
	for i := range 2 {
		before := proxy.down.Load()
		_, err := e.ReadAttachment(ctx, acct, brokenFolder, brokenUID, "2", GetOptions{MaxChars: 1000})
		var refusal *extract.Error
		if !errors.As(err, &refusal) || !strings.Contains(err.Error(), "not a valid PDF") {
			t.Fatalf("broken PDF: %v", err)
		}
		if got := proxy.down.Load() - before; i == 1 && got > 2000 {
			t.Errorf("the refused file was downloaded again (%d bytes)", got)
		}
	}

	// A new message under the same UID in the recreated folder reads as
	// itself; an expunged one is not found.
	if _, err := recreateFolder(t, e, rig, acct, "bob", folder).Append(folder, withText("other,file")); err != nil {
		t.Fatal(err)
	}
	again, err := e.ReadAttachment(ctx, acct, folder, uid, "2", GetOptions{MaxChars: 1000})
	if err != nil || again.Text != "other | file" {
		t.Fatalf("after the folder was recreated: %+v %v", again, err)
	}
	if err := e.Delete(ctx, acct, folder, []uint32{uid}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ReadAttachment(ctx, acct, folder, uid, "2", GetOptions{MaxChars: 1000}); KindOf(err) != KindNotFound {
		t.Fatalf("an expunged message: %v", err)
	}
}
