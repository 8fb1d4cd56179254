package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"mime"
	netmail "net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	gomail "github.com/wneessen/go-mail"
)

// Outgoing is a message to send. Addresses are "addr" or "Name <addr>".
type Outgoing struct {
	To, Cc, Bcc []string
	Subject     string
	Text        string // plain text body
	HTML        string // optional HTML body, sent as an alternative
	// IncludeSignature appends the account's signature: sanitized to the
	// HTML body and as text to the text body.
	IncludeSignature bool
	Attachments      []OutgoingAttachment
	// InReplyTo and References thread the message (Message-IDs without
	// angle brackets); Reply sets them.
	InReplyTo  string
	References []string
}

// OutgoingAttachment is a file to attach.
type OutgoingAttachment struct {
	Filename    string
	ContentType string // default: see sendType
	Data        []byte
}

// SendResult reports where a sent message was filed (see FileSent).
type SendResult struct {
	MessageID string // without angle brackets
	// SentFolder is the folder the copy was appended to, "" when none was
	// appended; SentCopy says why.
	SentFolder string
	SentCopy   string // "appended", "provider keeps its own copy", "already in Sent", "no Sent folder"
}

// Composed is a message ready to go: the bytes to submit, its
// Message-ID and envelope. Sent keeps FiledCopy(Raw, Bcc).
type Composed struct {
	Raw       []byte
	MessageID string
	Rcpts     []string
	// Bcc are the blind recipients, which Raw does not name.
	Bcc     []string
	Subject string
}

// Compose renders out once: the bytes that are submitted and filed.
// Header fields with CR or LF are refused (KindInvalid).
func (e *Engine) Compose(acct *Account, out Outgoing) (*Composed, error) {
	raw, msgID, rcpts, err := buildMessage(acct, out, false)
	if err != nil {
		return nil, err
	}
	return &Composed{Raw: raw, MessageID: msgID, Rcpts: rcpts, Bcc: out.Bcc, Subject: out.Subject}, nil
}

// Submit sends raw to rcpts over SMTP, from the account's address.
// committing, when set, is called once the message has been written,
// just before the end of DATA that makes the server take it: from then
// on it may have been delivered, whatever happens next; an error from
// committing aborts the session with nothing delivered.
func (e *Engine) Submit(ctx context.Context, acct *Account, raw []byte, rcpts []string, committing func() error) error {
	sess, err := e.dial.dialSMTP(ctx, acct)
	if err != nil {
		return err
	}
	err = sess.send(ctx, e.cfg.Submission, acct.Email, rcpts, raw, committing)
	sess.close()
	return err
}

// FileSent appends filed, a message that was sent, to Sent with \Seen,
// unless the provider keeps its own copy or Sent already holds msgID.
// The result says where the copy is, also with an error.
func (e *Engine) FileSent(ctx context.Context, acct *Account, filed Filed, msgID string) (*SendResult, error) {
	res := &SendResult{MessageID: msgID}
	if p, ok := accountPreset(acct); ok && p.KeepsSentCopy {
		res.SentCopy = "provider keeps its own copy"
		return res, nil
	}
	err := e.Do(ctx, acct, func(c *Conn) error { return c.saveSent(filed, msgID, res) })
	return res, err
}

// FileSentAgain is FileSent for a copy whose first append may have been
// cut short, or may still be arriving over a slow link from a process
// that stopped: it waits up to wait for that copy to show before it
// appends, and keeps only the first of the copies it then finds.
func (e *Engine) FileSentAgain(ctx context.Context, acct *Account, filed Filed, msgID string, wait time.Duration) (*SendResult, error) {
	for deadline := time.Now().Add(wait); ; {
		found, err := e.InSent(ctx, acct, msgID)
		if err != nil {
			return &SendResult{MessageID: msgID}, err
		}
		if found {
			return &SendResult{MessageID: msgID, SentCopy: "already in Sent"}, nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return &SendResult{MessageID: msgID}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	res, err := e.FileSent(ctx, acct, filed, msgID)
	if err != nil || res.SentFolder == "" {
		return res, err
	}
	err = e.Do(ctx, acct, func(c *Conn) error {
		if _, err := c.selectFolder(res.SentFolder); err != nil {
			return err
		}
		uids, err := c.search(SearchQuery{}, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}})
		if err != nil || len(uids) < 2 {
			return err
		}
		slices.Sort(uids)
		return c.expunge(imap.UIDSetNum(uids[1:]...)) // the first copy stays
	})
	return res, err
}

// InSent reports whether the account's Sent folder holds msgID (always
// false where the provider keeps its own copy and none is appended).
func (e *Engine) InSent(ctx context.Context, acct *Account, msgID string) (bool, error) {
	var found bool
	err := e.Read(ctx, acct, func(c *Conn) error {
		sent, err := c.roleFolder(RoleSent)
		if err != nil || sent == "" {
			return err
		}
		if _, err := c.selectFolder(sent); err != nil {
			return err
		}
		uids, err := c.search(SearchQuery{}, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}})
		found = len(uids) > 0
		return err
	})
	return found, err
}

// Filed is a message as a folder keeps it (see FiledCopy): the bytes
// sent after a head of fields the recipients did not get, kept apart so
// that a large message is not copied to put a line in front of it.
type Filed struct{ Head, Raw []byte }

// Len is the size of the message filed.
func (f Filed) Len() int { return len(f.Head) + len(f.Raw) }

// FiledCopy is what Sent keeps: the bytes sent and, when there were blind
// recipients, a Bcc field in front of them, as mail clients keep it, so
// that the sender can see who got the message.
func FiledCopy(raw []byte, bcc []string) Filed {
	var list []string
	for _, a := range bcc {
		if p, err := netmail.ParseAddress(a); err == nil {
			list = append(list, p.String())
		}
	}
	if len(list) == 0 {
		return Filed{Raw: raw}
	}
	return Filed{Head: []byte("Bcc: " + strings.Join(list, ",\r\n ") + "\r\n"), Raw: raw}
}

// saveSent appends filed to Sent unless a copy is already there.
func (c *Conn) saveSent(filed Filed, msgID string, res *SendResult) error {
	sent, err := c.roleFolder(RoleSent)
	if err != nil || sent == "" {
		res.SentCopy = "no Sent folder"
		return err
	}
	if c.has(capGmail) {
		res.SentCopy = "provider keeps its own copy"
		return nil
	}
	if _, err := c.selectFolder(sent); err != nil {
		return err
	}
	found, err := c.search(SearchQuery{}, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}})
	if err != nil {
		return err
	}
	if len(found) > 0 {
		res.SentCopy = "already in Sent"
		return nil
	}
	if _, err := c.appendMessage(sent, filed, imap.FlagSeen); err != nil {
		return err
	}
	res.SentFolder, res.SentCopy = sent, "appended"
	return nil
}

// appendMessage appends filed to folder with flags and returns what the
// server said of it (its UID, with UIDPLUS).
func (c *Conn) appendMessage(folder string, filed Filed, flags ...imap.Flag) (*imap.AppendData, error) {
	var data *imap.AppendData
	err := c.do("append to "+folder, func() error {
		cmd := c.client.Append(folder, int64(filed.Len()), &imap.AppendOptions{Flags: flags, Time: time.Now()})
		for _, b := range [][]byte{filed.Head, filed.Raw} {
			if _, err := cmd.Write(b); err != nil {
				// A server that refuses the literal (NO instead of its
				// go-ahead) leaves the command holding the connection's
				// writer until it is closed.
				_ = cmd.Close()
				return err
			}
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		var err error
		data, err = cmd.Wait()
		return err
	})
	return data, err
}

// MaxRecipients bounds the To, Cc and Bcc of one message together.
const MaxRecipients = 100

// buildMessage renders out once and returns its bytes, its Message-ID and
// the envelope recipients. A draft may have no recipients yet.
func buildMessage(acct *Account, out Outgoing, draft bool) ([]byte, string, []string, error) {
	const op = "build message"
	fields := append([]string{out.Subject, acct.Name, acct.Email, out.InReplyTo}, out.References...)
	for _, list := range [][]string{out.To, out.Cc, out.Bcc} {
		fields = append(fields, list...)
	}
	for _, a := range out.Attachments {
		fields = append(fields, a.Filename, a.ContentType)
	}
	for _, f := range fields {
		if strings.ContainsAny(f, "\r\n") {
			return nil, "", nil, invalid(op, "a header field contains a line break")
		}
	}
	switch n := len(out.To) + len(out.Cc) + len(out.Bcc); {
	case n == 0 && !draft:
		return nil, "", nil, invalid(op, "no recipients")
	case n > MaxRecipients:
		return nil, "", nil, invalid(op, "%d recipients: at most %d per message", n, MaxRecipients)
	}
	m := gomail.NewMsg()
	if _, err := netmail.ParseAddress(acct.Email); err != nil {
		return nil, "", nil, invalid(op, "sender %q: %v", acct.Email, err)
	}
	// The display name is quoted (or encoded) by net/mail, whatever it holds.
	m.FromMailAddress(&netmail.Address{Name: acct.Name, Address: acct.Email})
	var rcpts []string
	for _, set := range []struct {
		name string
		list []string
		fn   func(...string) error
	}{{"to", out.To, m.To}, {"cc", out.Cc, m.Cc}, {"bcc", out.Bcc, m.Bcc}} {
		if len(set.list) == 0 {
			continue
		}
		for _, a := range set.list {
			parsed, err := netmail.ParseAddress(a)
			if err != nil {
				return nil, "", nil, invalid(op, "%s address %q: %v", set.name, a, err)
			}
			rcpts = append(rcpts, parsed.Address)
		}
		if err := set.fn(set.list...); err != nil {
			return nil, "", nil, invalid(op, "%s: %v", set.name, err)
		}
	}
	m.Subject(out.Subject)
	msgID := newMessageID(acct.Email)
	m.SetMessageIDWithValue(msgID)
	m.SetDate()
	m.SetUserAgent("imap-mcp")
	if out.InReplyTo != "" {
		m.SetGenHeader(gomail.HeaderInReplyTo, "<"+out.InReplyTo+">")
	}
	if len(out.References) > 0 {
		m.SetGenHeader(gomail.HeaderReferences, "<"+strings.Join(out.References, "> <")+">")
	}
	text, htmlBody := out.Text, out.HTML
	if out.IncludeSignature && strings.TrimSpace(acct.SignatureHTML) != "" {
		sig := SanitizeSignature(acct.SignatureHTML)
		text = strings.TrimRight(text, "\n") + "\n\n-- \n" + htmlToText(sig)
		if htmlBody != "" {
			htmlBody += "<br><br>-- <br>" + sig
		}
	}
	m.SetBodyString(gomail.TypeTextPlain, text)
	if htmlBody != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, htmlBody)
	}
	standIns, files := make([][]byte, len(out.Attachments)), make([][]byte, len(out.Attachments))
	for i, a := range out.Attachments {
		ct, err := sendType(a.ContentType, a.Filename, a.Data)
		if err != nil {
			return nil, "", nil, invalid(op, "attachment %q: %v", a.Filename, err)
		}
		standIns[i], files[i] = newStandIn(), a.Data
		m.AttachReadSeeker(a.Filename, bytes.NewReader(standIns[i]), gomail.WithFileContentType(gomail.ContentType(ct)))
	}
	raw, err := writeWithFiles(m, standIns, files)
	if err != nil {
		return nil, "", nil, &Error{Kind: KindOther, Op: op, Err: err}
	}
	return raw, msgID, rcpts, nil
}

// sendType is the media type a file goes as. A given type is reduced to
// type/subtype and, for text, a charset that is a plain token (go-mail
// names the file; other parameters could contradict it). Multipart and
// message types are refused: go-mail sends a file in base64, which their
// bodies may not be (RFC 2045, RFC 2046). Without a type, the one the
// file name suggests is used, or application/octet-stream when that is
// none or one of those; a text file that is valid UTF-8 says so.
func sendType(given, filename string, data []byte) (string, error) {
	if strings.TrimSpace(given) == "" {
		mt := typeByName(filename, "application/octet-stream")
		switch {
		case !fileType(mt):
			return "application/octet-stream", nil
		case strings.HasPrefix(mt, "text/") && utf8.Valid(data):
			return mt + "; charset=utf-8", nil
		}
		return mt, nil
	}
	mt, params, err := mime.ParseMediaType(given)
	switch {
	case (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) || !validMediaType(mt):
		return "", fmt.Errorf("content_type %q is not a media type such as application/pdf", given)
	case !fileType(mt):
		return "", fmt.Errorf("content_type %s is not a file's type: give the file's own, or application/octet-stream", mt)
	}
	if cs := strings.ToLower(params["charset"]); strings.HasPrefix(mt, "text/") && len(cs) <= 40 && isMediaToken(cs) {
		return mt + "; charset=" + cs, nil
	}
	return mt, nil
}

// fileType reports a media type a file can be sent as in base64.
func fileType(mt string) bool {
	return !strings.HasPrefix(mt, "multipart/") && !strings.HasPrefix(mt, "message/")
}

// go-mail encodes each part into a buffer of its own before it writes the
// part out: for a 10 MB file, 16 MB grown by doubling, beside the
// message. So a file goes through go-mail as a stand-in of standInSize
// random bytes, one base64 line, and writeWithFiles writes the file's
// base64 in that line's place, in lines of 76 as go-mail writes them:
// the message is held once, at its final size.
const standInSize = 45

func newStandIn() []byte {
	b := make([]byte, standInSize)
	_, _ = rand.Read(b)
	return b
}

// writeWithFiles writes m, whose attachments are the stand-ins, with
// standIns[i] replaced by files[i].
func writeWithFiles(m *gomail.Msg, standIns, files [][]byte) ([]byte, error) {
	var frame bytes.Buffer
	if _, err := m.WriteTo(&frame); err != nil {
		return nil, err
	}
	type spot struct{ at, file int }
	f, size := frame.Bytes(), frame.Len()
	var spots []spot
	for i, standIn := range standIns {
		line := []byte(base64.StdEncoding.EncodeToString(standIn) + "\r\n")
		at := bytes.Index(f, line)
		if len(standIn) != standInSize || at < 0 || bytes.Contains(f[at+1:], line) {
			return nil, errors.New("an attachment is not written as base64 in one place")
		}
		spots = append(spots, spot{at, i})
		size += base64LinesLen(len(files[i])) - len(line)
	}
	slices.SortFunc(spots, func(a, b spot) int { return a.at - b.at })
	raw := make([]byte, 0, size)
	prev := 0
	for _, s := range spots {
		raw = appendBase64Lines(append(raw, f[prev:s.at]...), files[s.file])
		prev = s.at + base64LinesLen(standInSize)
	}
	return append(raw, f[prev:]...), nil
}

// base64LinesLen is the length of n bytes in base64 lines of 76.
func base64LinesLen(n int) int {
	enc := base64.StdEncoding.EncodedLen(n)
	return enc + 2*((enc+75)/76)
}

// appendBase64Lines appends data in base64, each line of 76 characters
// (57 bytes) or fewer ending in CRLF.
func appendBase64Lines(dst, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), 57)
		dst = append(base64.StdEncoding.AppendEncode(dst, data[:n]), '\r', '\n')
		data = data[n:]
	}
	return dst
}

// newMessageID returns a random id at the sender's domain.
func newMessageID(email string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	domain := "imap-mcp.invalid"
	if i := strings.LastIndexByte(email, '@'); i >= 0 && i < len(email)-1 {
		domain = email[i+1:]
	}
	return hex.EncodeToString(b) + "@" + domain
}

// ReplyOptions says how to answer a message.
type ReplyOptions struct {
	Folder   string
	UID      uint32
	ReplyAll bool
	// Quote appends the original text, "> "-quoted (and as a blockquote
	// in HTML).
	Quote bool
	// Text, HTML, Cc, Bcc, Attachments and IncludeSignature are as in
	// Outgoing.
	Text, HTML       string
	Cc, Bcc          []string
	IncludeSignature bool
	Attachments      []OutgoingAttachment
}

// ReplyOutgoing composes the reply to the message opt.UID in opt.Folder:
// to its Reply-To (else From); with ReplyAll also to (To ∪ Cc ∪
// Reply-To) minus the account's own addresses. It keeps the thread
// (In-Reply-To, References) and prefixes "Re: " once; the quote is the
// original's text. The caller sends it and sets \Answered on the
// original.
func (e *Engine) ReplyOutgoing(ctx context.Context, acct *Account, opt ReplyOptions) (Outgoing, error) {
	orig, err := e.GetMessage(ctx, acct, opt.Folder, opt.UID, GetOptions{MaxChars: 1 << 30})
	if err != nil {
		return Outgoing{}, err
	}
	out := Outgoing{Subject: replySubject(orig.Subject), Text: opt.Text, HTML: opt.HTML, Cc: opt.Cc, Bcc: opt.Bcc,
		IncludeSignature: opt.IncludeSignature, Attachments: opt.Attachments, InReplyTo: orig.MessageID}
	out.To, out.Cc = replyRecipients(acct, orig.Header, opt.ReplyAll, opt.Cc)
	if len(out.To) == 0 {
		return Outgoing{}, invalid("reply", "the original has no address to reply to")
	}
	if n := len(out.To) + len(out.Cc) + len(out.Bcc); n > MaxRecipients {
		return Outgoing{}, invalid("reply", "replying to all would address %d people, and a message may have at most %d: "+
			"reply without reply_all and add in cc the people who need the answer", n, MaxRecipients)
	}
	if orig.MessageID != "" {
		out.References = append(append([]string{}, orig.References...), orig.MessageID)
	}
	if opt.Quote {
		intro := fmt.Sprintf("On %s, %s wrote:", orig.Date.Format("Mon, 2 Jan 2006 15:04"), orig.From)
		out.Text = strings.TrimRight(out.Text, "\n") + "\n\n" + intro + "\n" + quoteText(orig.Text)
		if out.HTML != "" {
			out.HTML += "<p>" + html.EscapeString(intro) + "</p><blockquote>" +
				strings.ReplaceAll(html.EscapeString(orig.Text), "\n", "<br>") + "</blockquote>"
		}
	}
	return out, nil
}

func replySubject(s string) string {
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// replyRecipients returns To and Cc of a reply. Addresses are compared
// case-insensitively; the account's own addresses are never included.
func replyRecipients(acct *Account, h Header, all bool, extraCc []string) (to, cc []string) {
	own := acct.ownAddresses()
	seen := map[string]bool{}
	add := func(dst *[]string, list []string) {
		for _, a := range list {
			p, err := netmail.ParseAddress(a)
			if err != nil {
				continue
			}
			k := strings.ToLower(p.Address)
			if own[k] || seen[k] {
				continue
			}
			seen[k] = true
			*dst = append(*dst, a)
		}
	}
	primary := h.ReplyTo
	if len(primary) == 0 {
		primary = []string{h.From}
	}
	add(&to, primary)
	if all {
		add(&to, h.To)
		add(&cc, h.Cc)
	}
	add(&cc, extraCc)
	if len(to) == 0 && all && len(cc) > 0 {
		to, cc = cc[:1], cc[1:]
	}
	return to, cc
}

func quoteText(s string) string {
	return "> " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n> ")
}
