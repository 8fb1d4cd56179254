package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/imap-mcp/imap-mcp/extract"
)

// Kinds of attachment read here rather than by package extract.
const (
	readHTML    extract.Kind = "html"
	readMessage extract.Kind = "message"
	readTNEF    extract.Kind = "tnef"
)

// ReadableAs names how ReadAttachment reads a file of this type and name
// ("pdf", "docx", "html", "message", …), or "" when it cannot.
func ReadableAs(contentType, filename string) string {
	return string(readKind(contentType, filename))
}

func readKind(contentType, filename string) extract.Kind {
	ct := strings.ToLower(contentType)
	ext := strings.ToLower(path.Ext(filename))
	switch {
	case ct == "text/html" || ct == "application/xhtml+xml" || (ext == ".html" || ext == ".htm") && !strings.HasPrefix(ct, "image/"):
		return readHTML
	case ct == "message/rfc822" || ct == "message/global" || ext == ".eml":
		return readMessage
	case isTNEF(ct, filename):
		return readTNEF
	}
	return extract.Detect(ct, filename)
}

// AttachmentText is a window of an attachment's text.
type AttachmentText struct {
	AttachmentInfo
	// ReadAs is how the file was read (see ReadableAs).
	ReadAs string
	// Text is the window; Offset and Length are in characters (runes),
	// Length counting the whole text.
	Text           string
	Offset, Length int
	// Cut is set when the text was cut at extract.MaxOutput bytes.
	Cut bool
}

// ReadableTypes lists what ReadAttachment reads, for messages.
const ReadableTypes = "PDF, Word (DOCX), Excel (XLSX), PowerPoint (PPTX), OpenDocument (ODT, ODS, ODP), calendar (ICS), CSV, " +
	"plain text, HTML, attached messages (EML) and winmail.dat (TNEF)"

// errNotReadable stops the fetch of an attachment of a type
// ReadAttachment does not read.
var errNotReadable = errors.New("not a readable type")

// ReadAttachment returns a window of the text of one attachment (part as
// in Message.Attachments): the part is streamed from IMAP, at most
// extract.MaxInput bytes of it, and read by its type (see ReadableAs).
// A type it does not read, and a file too large or too broken to read,
// yield an *extract.Error that says so; the connection is kept.
func (e *Engine) ReadAttachment(ctx context.Context, acct *Account, folder string, uid uint32, part string, opt GetOptions) (*AttachmentText, error) {
	if !partPattern.MatchString(part) {
		return nil, invalid("read attachment", "part %q is not a section number such as 2 or 1.3", part)
	}
	var buf bytes.Buffer
	var kind extract.Kind
	var refused error
	var key textKey
	t, cached := readText{}, false
	err := e.Do(ctx, acct, func(c *Conn) (err error) {
		stale, err := c.openFolder(folder)
		if err != nil {
			return err
		}
		key = textKey{account: c.accountKey(), folder: folder, validity: c.selData.UIDValidity, uid: uid, part: part}
		if t, cached = e.texts.get(key); cached {
			// The message may have been expunged since.
			_, err := c.sizeOf(uid, stale)
			return err
		}
		t.info, err = c.getAttachment(folder, uid, part, func(a AttachmentInfo) io.Writer {
			if kind = readKind(a.ContentType, a.Filename); kind == "" {
				// The type is the sender's: get_message shows it, framed.
				refused = &extract.Error{Reason: "its type is not one read_attachment reads: it reads " + ReadableTypes +
					"; get_attachment gives a download link for the rest"}
				return failWriter{}
			}
			return &limitWriter{w: &buf, left: extract.MaxInput}
		})
		return err
	})
	switch {
	case refused != nil:
		return nil, refused
	case errors.Is(err, errInputTooLarge):
		return nil, &extract.Error{Kind: kind, Reason: fmt.Sprintf("it is larger than %d MB, the most read_attachment reads", extract.MaxInput>>20)}
	case err != nil:
		return nil, err
	}
	if !cached {
		t.kind = kind
		t.text, t.cut, t.err = textOf(ctx, kind, part, buf.Bytes())
		var refusal *extract.Error
		if t.err != nil && !(errors.As(t.err, &refusal) && !refusal.Passing) {
			return nil, t.err // the caller's context, or a passing refusal: not kept
		}
		e.texts.put(key, t, 256+len(t.text))
	}
	if t.err != nil {
		return nil, t.err
	}
	out := &AttachmentText{AttachmentInfo: t.info, ReadAs: string(t.kind), Cut: t.cut, Offset: opt.Offset}
	out.Text, out.Length = windowBytes(t.text, opt.Offset, opt.MaxChars, opt.MaxBytes)
	return out, nil
}

// readText is the text of an attachment as read, or why it cannot be;
// texts keeps it by textKey, so that reading the next window (or trying
// a refused file again) costs no fetch and no parse.
type readText struct {
	info AttachmentInfo
	kind extract.Kind
	text string
	cut  bool
	err  error // the file's refusal, kept as its text would be
}

type textKey struct {
	account, folder string
	validity, uid   uint32
	part            string
}

// textCacheBytes bounds the texts kept.
const textCacheBytes = 32 << 20

// textOf reads data, an attachment of kind in part, as text.
func textOf(ctx context.Context, kind extract.Kind, part string, data []byte) (text string, cut bool, err error) {
	switch kind {
	case readHTML:
		var html string
		if html, cut, err = extract.Read(ctx, extract.Text, data, ""); err != nil {
			return "", false, err
		}
		text = htmlToText(html)
	case readMessage:
		text = messageText(data)
	case readTNEF:
		files, _ := tnefFiles(data)
		if len(files) == 0 {
			return "", false, &extract.Error{Type: "TNEF (winmail.dat)", Reason: "it holds no files"}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "A winmail.dat (TNEF) holding %d file(s); read each by its own part (%s.1, %s.2, …):\n", len(files), part, part)
		for i, f := range files {
			fmt.Fprintf(&b, "%s.%d: %s (%s, %d bytes)\n", part, i+1, cleanLine(f.Name), f.ContentType, len(f.Data))
		}
		text = b.String()
	default:
		if text, cut, err = extract.Read(ctx, kind, data, ""); err != nil {
			return "", false, err
		}
	}
	if text = strings.TrimSpace(text); text == "" {
		return "", false, &extract.Error{Kind: kind, Reason: "it holds no text"}
	}
	return text, cut, nil
}

// messageText shows an attached message: its main header fields, its
// text, and its attachments by name.
func messageText(raw []byte) string {
	p := parseMessage(bytes.NewReader(raw))
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\nTo: %s\n", p.Header.From, strings.Join(p.Header.To, ", "))
	if len(p.Header.Cc) > 0 {
		fmt.Fprintf(&b, "Cc: %s\n", strings.Join(p.Header.Cc, ", "))
	}
	if p.Header.DateOK {
		fmt.Fprintf(&b, "Date: %s\n", p.Header.Date.Format("Mon, 2 Jan 2006 15:04 -0700"))
	}
	fmt.Fprintf(&b, "Subject: %s\n\n%s\n", p.Header.Subject, p.Text)
	for _, a := range p.Attachments {
		fmt.Fprintf(&b, "[attachment: %s (%s, %d bytes)]\n", a.Filename, a.ContentType, a.Size)
	}
	return b.String()
}

var errInputTooLarge = errors.New("attachment larger than the read limit")

// limitWriter fails once more than left bytes are written.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		return 0, errInputTooLarge
	}
	l.left -= len(p)
	return l.w.Write(p)
}

// failWriter refuses every write, which stops a fetch at once.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errNotReadable }
