package mail

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DefaultMaxChars is the body window when GetOptions.MaxChars is zero.
const DefaultMaxChars = 20000

// GetOptions selects the body window and the optional HTML.
type GetOptions struct {
	MaxChars int  // runes of text returned; default DefaultMaxChars
	MaxBytes int  // when set, the window also ends before this many bytes of UTF-8
	Offset   int  // rune offset of the window
	HTML     bool // also return the HTML body, sanitized
}

// Message is one message read for a person or a model. Date is the
// received date (INTERNALDATE) with DateOK false when the message has no
// readable Date header, as in Summary.
type Message struct {
	UID    uint32
	Folder string
	Header
	Flags        []string
	Size         int64
	InternalDate time.Time
	// Text is the window of the readable body (HTML converted to text when
	// there is no plain part) starting at TextOffset; TextLength is the
	// whole body's length in runes.
	Text        string
	TextOffset  int
	TextLength  int
	HTML        string // sanitized HTML body, only when asked
	Attachments []Attachment
}

// GetMessage reads one message without setting \Seen (BODY.PEEK). A
// missing UID yields KindNotFound.
func (e *Engine) GetMessage(ctx context.Context, acct *Account, folder string, uid uint32, opt GetOptions) (*Message, error) {
	var msg *Message
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
		msg, err = c.getMessage(folder, uid, opt)
		return err
	})
	return msg, err
}

var (
	wholeBody = &imap.FetchItemBodySection{Peek: true}
	// firstBytes is the start of a message, all of it when it is not read
	// by sections.
	firstBytes = &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Size: sectionedOver}}
)

// getMessage reads a message of up to sectionedOver bytes in one FETCH;
// a larger one by sections (structure, headers, text parts).
func (c *Conn) getMessage(folder string, uid uint32, opt GetOptions) (*Message, error) {
	stale, err := c.openFolder(folder)
	if err != nil {
		return nil, err
	}
	if opt.MaxChars <= 0 {
		opt.MaxChars = DefaultMaxChars
	}
	msg, start, err := c.fetchStart(uid)
	if err == nil && start == nil && stale {
		if err = c.catchUp(); err == nil {
			msg, start, err = c.fetchStart(uid)
		}
	}
	if err != nil {
		return nil, err
	}
	if start == nil {
		return nil, notFound("get message", "no message with UID %d in %q", uid, folder)
	}
	msg.Folder = folder
	var parsed *parsedMessage
	if len(start) < sectionedOver || msg.Size <= int64(len(start)) {
		parsed = parseMessage(bytes.NewReader(start))
	} else if parsed, err = c.readLarge(folder, uid); err != nil {
		return nil, err
	}
	msg.Header, msg.Attachments = parsed.Header, parsed.Attachments
	if !msg.DateOK {
		msg.Date = msg.InternalDate
	}
	msg.Text, msg.TextLength = windowBytes(parsed.Text, opt.Offset, opt.MaxChars, opt.MaxBytes)
	msg.TextOffset = opt.Offset
	if opt.HTML && parsed.HTML != "" {
		msg.HTML = sanitizeHTML(parsed.HTML)
	}
	return msg, nil
}

// fetchStart fetches uid's flags, size, dates and first sectionedOver
// bytes from the selected folder; start is nil when there is no such
// message.
func (c *Conn) fetchStart(uid uint32) (msg *Message, start []byte, err error) {
	msg = &Message{UID: uid}
	found := false
	// The server sends at most the bytes asked for.
	err = c.stream("fetch message", sectionedOver, func() error {
		cmd := c.client.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, Flags: true,
			RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{firstBytes}})
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					found = found || uint32(it.UID) == uid
				case imapclient.FetchItemDataFlags:
					for _, f := range it.Flags {
						msg.Flags = append(msg.Flags, string(f))
					}
				case imapclient.FetchItemDataRFC822Size:
					msg.Size = it.Size
				case imapclient.FetchItemDataInternalDate:
					msg.InternalDate = it.Time
				case imapclient.FetchItemDataBodySection:
					if it.Literal != nil {
						buf := bytes.NewBuffer(make([]byte, 0, min(it.Literal.Size(), sectionedOver)+bytes.MinRead))
						if _, err := buf.ReadFrom(io.LimitReader(&armedReader{r: it.Literal, c: c}, sectionedOver)); err != nil {
							return err
						}
						start = buf.Bytes()
					}
				}
			}
		}
		return cmd.Close()
	})
	if !found {
		start = nil
	}
	return msg, start, err
}

// readLarge reads message uid of the selected folder by sections, or
// whole when its structure cannot guide the read.
func (c *Conn) readLarge(folder string, uid uint32) (*parsedMessage, error) {
	bs, ok, err := c.structureOf(uid)
	if err != nil {
		return nil, err
	}
	if ok {
		if plan := planSections(bs); !plan.tooBig {
			got, err := c.fetchSections(uid, plan)
			if err != nil {
				return nil, err
			}
			return parseSections(bs, plan, got), nil
		}
	}
	var parsed *parsedMessage
	exists, err := c.streamWhole("fetch message", uid, 0, func(r io.Reader) { parsed = parseMessage(r) })
	if err == nil && !exists {
		err = notFound("get message", "no message with UID %d in %q", uid, folder)
	}
	return parsed, err
}

// streamWhole fetches message uid of the selected folder whole and calls
// read once with its body as it streams in; exists is false when there
// is no such message. When limit is not 0, an answer with more than limit
// bytes of bodies fails (ErrLimit) and loses the connection: the server
// said the message was smaller.
func (c *Conn) streamWhole(op string, uid uint32, limit int64, read func(io.Reader)) (exists bool, err error) {
	err = c.stream(op, limit, func() error {
		cmd := c.client.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{wholeBody}})
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				if it, ok := item.(imapclient.FetchItemDataBodySection); ok && it.Literal != nil && !exists {
					exists = true
					read(&armedReader{r: it.Literal, c: c})
				}
			}
		}
		return cmd.Close()
	})
	return exists, err
}

// rearmBytes is how much of a streamed body renews the command timeout.
const rearmBytes = 64 << 10

// armedReader renews the command timeout after every rearmBytes of a
// streamed body, so a long transfer is bounded per 64 KiB rather than as
// a whole, and a server that drips bytes cannot hold a command open.
type armedReader struct {
	r     imap.LiteralReader
	c     *Conn
	since int
}

// Size is the size of the body being read, as the server announced it.
func (a *armedReader) Size() int64 { return a.r.Size() }

func (a *armedReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if a.since += n; a.since >= rearmBytes {
		a.since = 0
		a.c.arm(a.c.cfg.Command)
	}
	return n, err
}

// ReadRaw reads a whole message held in memory (one waiting in the
// outbox) as GetMessage reads one from the server: header, text,
// sanitized HTML and attachments. Hidden lists what the HTML as sent
// holds that the sanitized HTML does not show: addresses it loads or
// links to elsewhere, style sheets, comments.
func ReadRaw(raw []byte) (m *Message, hidden []string) {
	p := parseMessage(bytes.NewReader(raw))
	m = &Message{Header: p.Header, Size: int64(len(raw)), Text: p.Text, TextLength: utf8.RuneCountInString(p.Text),
		HTML: sanitizeHTML(p.HTML), Attachments: p.Attachments}
	lower := strings.ToLower(p.HTML)
	if strings.Contains(lower, "<style") {
		hidden = append(hidden, "a style sheet (it can add or hide text)")
	}
	if strings.Contains(lower, "<!--") {
		hidden = append(hidden, "comments (not shown, but read by anyone who looks at the source)")
	}
	seen := map[string]bool{}
	for _, ref := range remoteRef.FindAllStringSubmatch(p.HTML, 200) {
		if u := ref[1] + ref[2]; !seen[u] && len(seen) < 20 {
			seen[u] = true
			hidden = append(hidden, "a remote address: "+cleanLine(u[:min(len(u), 300)]))
		}
	}
	return m, hidden
}

// remoteRef finds the http(s) addresses an HTML body loads (src, srcset,
// background, CSS url()); links (href) are shown by the preview itself.
var remoteRef = regexp.MustCompile(`(?i)(?:src|srcset|background|poster)\s*=\s*["']?\s*(https?://[^"'\s>]+)|url\(\s*["']?(https?://[^"')\s]+)`)
