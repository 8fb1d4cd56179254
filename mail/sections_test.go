package mail

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

// countingProxy forwards loopback connections to addr and counts the
// connections made and the bytes the server sent.
type countingProxy struct {
	ln    net.Listener
	conns atomic.Int64
	down  atomic.Int64
}

// countedAccount returns the rig account of user, named id, reached
// through a countingProxy of its own.
func countedAccount(t *testing.T, rig *mailrig.Rig, user, id string) (*Account, *countingProxy) {
	t.Helper()
	proxy := newCountingProxy(t, rig.IMAPSAddr())
	acct := rigAccount(t, rig, user)
	acct.ID, acct.IMAP = id, endpoint(t, proxy.ln.Addr().String(), TLSImplicit)
	return acct, proxy
}

func newCountingProxy(t *testing.T, addr string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer s.Close()
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { defer wg.Done(); _, _ = io.Copy(s, c); _ = s.Close() }()
				_, _ = io.Copy(countingWriter{c, &p.down}, s)
				_ = c.Close()
				wg.Wait()
			}()
		}
	}()
	return p
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// largeMessage is a 12 MB message: text and HTML alternatives, a binary
// attachment, a text file, an attached message and a TNEF part holding a file.
func largeMessage(t *testing.T) []byte {
	t.Helper()
	data := make([]byte, 9<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and the data\r\n" +
		"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <large@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Hello Bob, the data is attached. Gr=C3=BC=C3=9Fe,=\r\n Ann\r\n--alt\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello Bob, the <b>data</b> is attached.</p>\r\n--alt--\r\n--outer\r\n" +
		"Content-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--outer\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n" +
		"caf\xe9 notes\r\n--outer\r\n" +
		"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" +
		"From: carol@example.org\r\nSubject: forwarded\r\n\r\nthe forwarded text\r\n--outer\r\n" +
		"Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(largeTNEF) + "\r\n--outer--\r\n")
	return []byte(b.String())
}

// largeTNEF is a TNEF part that holds one file, listed as part 5.1.
var largeTNEF = newTNEFStream().
	attr(tnefLevelMessage, tagMessageClass, []byte("IPM.Note\x00")).
	attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
	attr(tnefLevelAttachment, tagAttachTitle, []byte("INNER.TXT\x00")).
	attr(tnefLevelAttachment, tagAttachData, []byte("inside the tnef")).Bytes()

// TestLargeMessageReadBySections: a message over sectionedOver is read
// without its attachments' bodies, and reads as the same text, HTML and
// attachments (server part numbers, sizes from the structure) as the
// whole message; each attachment streams as the whole-message parser
// decodes it, over the one pooled connection.
func TestLargeMessageReadBySections(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct, proxy := countedAccount(t, rig, "carol", "acct-carol-proxied")
	raw := largeMessage(t)
	folder, uid := appendOne(t, rig, "carol", "large", raw)
	ctx := testCtx(t)
	before := proxy.down.Load()
	msg, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{HTML: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := proxy.down.Load() - before; got > sectionedOver+64<<10 {
		t.Errorf("get_message of a %d-byte message received %d bytes", len(raw), got)
	}
	want := parseMessage(bytes.NewReader(raw))
	if msg.Text != want.Text || msg.HTML != sanitizeHTML(want.HTML) || msg.Subject != "Grüße and the data" || msg.MessageID != want.Header.MessageID {
		t.Errorf("text %q html %q subject %q, want %q %q", msg.Text, msg.HTML, msg.Subject, want.Text, sanitizeHTML(want.HTML))
	}
	wantParts := map[string]string{"2": "data.bin application/octet-stream", "3": "notes.txt text/plain",
		"4": " message/rfc822", "5.1": "INNER.TXT text/plain"}
	if len(msg.Attachments) != len(wantParts) {
		t.Fatalf("attachments %+v", msg.Attachments)
	}
	for _, a := range msg.Attachments {
		if wantParts[a.Part] != a.Filename+" "+a.ContentType {
			t.Errorf("part %s: %q %s", a.Part, a.Filename, a.ContentType)
		}
		var buf bytes.Buffer
		before := proxy.down.Load()
		info, err := e.GetAttachment(ctx, acct, folder, uid, a.Part, func(AttachmentInfo) io.Writer { return &buf })
		if err != nil {
			t.Fatalf("part %s: %v", a.Part, err)
		}
		wantData := partBytes(t, raw, a.Part)
		if !bytes.Equal(buf.Bytes(), wantData) || info.Size != int64(len(wantData)) {
			t.Errorf("part %s: streamed %d bytes, want %d", a.Part, buf.Len(), len(wantData))
		}
		if off := a.Size - int64(len(wantData)); max(off, -off) > int64(len(wantData))/50+4 {
			t.Errorf("part %s: listed size %d, decoded %d", a.Part, a.Size, len(wantData))
		}
		if got := proxy.down.Load() - before; a.Part != "2" && got > 64<<10 {
			t.Errorf("part %s: received %d bytes", a.Part, got)
		}
	}
	if _, err := e.GetAttachment(ctx, acct, folder, uid, "1.1", discard); KindOf(err) != KindNotFound {
		t.Errorf("text part as attachment: %v", err)
	}
	for _, part := range []string{"7", "5.2", "2.1", "1"} {
		if _, err := e.GetAttachment(ctx, acct, folder, uid, part, discard); KindOf(err) != KindNotFound {
			t.Errorf("missing part %s: %v", part, err)
		}
	}
	// A download the writer stops keeps the connection: no new login.
	if _, err := e.GetAttachment(ctx, acct, folder, uid, "2", func(AttachmentInfo) io.Writer { return failingWriter{io.ErrShortWrite} }); err == nil {
		t.Fatal("a failing writer went unnoticed")
	}
	if _, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := proxy.conns.Load(); n != 1 {
		t.Errorf("%d connections for one account's calls", n)
	}
}

// TestLargeMessageWithUnreadableStructure: a large message whose
// BODYSTRUCTURE go-imap cannot parse is read whole instead.
func TestLargeMessageWithUnreadableStructure(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	pad := strings.Repeat("padding line of the first part\r\n", sectionedOver/30)
	raw := []byte(strings.Replace(globalMessage, "Hello\r\n", "Hello\r\n"+pad, 1))
	folder, uid := appendOne(t, rig, "carol", "largeglobal", raw)
	ctx := testCtx(t)
	msg, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{MaxChars: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := parseMessage(bytes.NewReader(raw))
	if msg.Text != "Hello" || msg.TextLength != len([]rune(want.Text)) || fmt.Sprint(msg.Attachments) != fmt.Sprint(want.Attachments) {
		t.Errorf("read %q (%d) %+v, want %+v", msg.Text, msg.TextLength, msg.Attachments, want.Attachments)
	}
	var buf bytes.Buffer
	if _, err := e.GetAttachment(ctx, acct, folder, uid, "2", func(AttachmentInfo) io.Writer { return &buf }); err != nil || !strings.Contains(buf.String(), "Thank you") {
		t.Errorf("attachment: %v %q", err, buf.String())
	}
}

// appendOne stores raw in a new folder of user and returns the folder
// and the message's UID.
func appendOne(t *testing.T, rig *mailrig.Rig, user, prefix string, raw []byte) (string, uint32) {
	t.Helper()
	app, err := rig.Appender(user)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	folder := uniqueFolder(prefix)
	uid, err := app.Append(folder, raw)
	if err != nil {
		t.Fatal(err)
	}
	return folder, uid
}

// partBytes is part of raw as the whole-message parser streams it.
func partBytes(t *testing.T, raw []byte, part string) []byte {
	t.Helper()
	var out []byte
	found, err := streamPart(bytes.NewReader(raw), part, func(_ Attachment, r io.Reader) (err error) {
		out, err = io.ReadAll(r)
		return err
	})
	if !found || err != nil {
		t.Fatalf("part %s not in the message: %v", part, err)
	}
	return out
}

// TestGetMessageArrivedAfterSelect: a pooled connection that has the
// folder selected reads a message delivered since, by its UID.
func TestGetMessageArrivedAfterSelect(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	acct.ID = "acct-carol-arrived"
	folder := uniqueFolder("arrived")
	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	first, err := app.Append(folder, []byte("Subject: first\r\n\r\none\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := e.GetMessage(ctx, acct, folder, first, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	second, err := app.Append(folder, []byte("Subject: second\r\n\r\ntwo\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.GetMessage(ctx, acct, folder, second, GetOptions{})
	if err != nil || msg.Subject != "second" || msg.Text != "two" {
		t.Fatalf("new message: %+v, %v", msg, err)
	}
	var buf bytes.Buffer
	if _, err := e.GetAttachment(ctx, acct, folder, second, "1", func(AttachmentInfo) io.Writer { return &buf }); KindOf(err) != KindNotFound {
		t.Fatalf("a text body is no attachment: %v", err)
	}
}

// TestSectionsFromHostileServer: a server that answers the sections
// FETCH with sections nobody asked for (30 of 8 MiB) costs no memory for
// them (before they were kept: +346 MiB).
// Not parallel: the heap is measured for the whole process.
func TestSectionsFromHostileServer(t *testing.T) {
	const n, each = 30, 8 << 20
	fill := strings.Repeat("a", each)
	var last string
	s := &hostileServer{lineHook: func(line string) { last = line }}
	s.answer = func(tag, cmd string, w *bufio.Writer) bool {
		if cmd != "FETCH" && cmd != "UID FETCH" {
			return false
		}
		switch {
		case strings.Contains(last, "RFC822.SIZE"):
			hdr := "Subject: big\r\n\r\n"
			body := hdr + strings.Repeat("x", sectionedOver-len(hdr))
			fmt.Fprintf(w, "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 100000000 INTERNALDATE \"01-Jan-2026 00:00:00 +0000\" BODY[]<0> {%d}\r\n%s)\r\n", len(body), body)
		case strings.Contains(last, "BODYSTRUCTURE"):
			w.WriteString("* 1 FETCH (UID 1 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\n")
		default:
			w.WriteString("* 1 FETCH (UID 1")
			for i := range n {
				fmt.Fprintf(w, " BODY[%d] {%d}\r\n%s", 100+i, each, fill)
			}
			w.WriteString(")\r\n")
		}
		return false
	}
	acct := startHostile(t, s)
	e := New(Config{AllowPrivateHosts: true, Timeouts: Timeouts{Command: time.Minute, TLSHandshake: time.Minute}})
	defer e.Close()
	var err error
	if peak := peakHeap(func() { _, err = e.GetMessage(testCtx(t), acct, "INBOX", 1, GetOptions{}) }); peak > 100<<20 {
		t.Errorf("unasked sections held %d MiB (err %v)", peak>>20, err)
	}
}
