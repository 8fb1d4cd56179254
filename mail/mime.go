package mail

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// maxTextPart bounds how much of one text part is kept in memory.
const maxTextPart = 8 << 20

// maxDepth bounds multipart nesting.
const maxDepth = 20

// maxParts bounds the parts read of one message; the rest is skipped.
const maxParts = 5000

// Attachment describes one attachment part. Part is the IMAP section
// number ("2", "1.3") that GetAttachment takes.
type Attachment struct {
	Part        string
	Filename    string
	ContentType string
	Size        int64 // decoded bytes
	ContentID   string
	Inline      bool
}

// parsedMessage is what parseMessage extracts from raw MIME.
type parsedMessage struct {
	Header      Header
	Text        string // the readable text: plain parts, HTML parts converted
	HTML        string // the HTML body as sent (not sanitized)
	Attachments []Attachment
}

// Header holds the decoded headers the engine exposes. Every value is one
// line of clean text (see decodeHeaderText).
type Header struct {
	MessageID  string
	Subject    string
	From       string
	To, Cc     []string
	ReplyTo    []string
	Date       time.Time
	DateOK     bool // Date holds the Date header; false when it is missing or unreadable
	InReplyTo  string
	References []string
}

// parseMessage reads a whole message and never fails: a malformed header
// line costs that line, a broken MIME structure still yields every part
// that can be read, and decoding is lenient everywhere. Part numbers are
// IMAP section numbers; files inside a TNEF (winmail.dat) part are
// numbered below it ("2.1", "2.2").
func parseMessage(r io.Reader) *parsedMessage {
	w := &mimeWalker{}
	size := 32 << 10
	if br, ok := r.(*bytes.Reader); ok {
		size = min(size, max(br.Len(), 16)) // a small message needs no 32 KB buffer
	}
	h, body := readHeader(bufio.NewReaderSize(r, size))
	c := w.resolve(w.entity(h, body, "", 0, false))
	p := &parsedMessage{Header: headerOf(h), HTML: c.html, Attachments: w.atts}
	p.Text = strings.TrimSpace(c.text)
	return p
}

// streamPart finds part in the message read from r and calls sink with
// its description and decoded content. It reports whether the part was
// found; sink's error is returned.
func streamPart(r io.Reader, part string, sink func(Attachment, io.Reader) error) (bool, error) {
	w := &mimeWalker{target: part, sink: sink}
	h, body := readHeader(bufio.NewReaderSize(r, 32<<10))
	w.entity(h, body, "", 0, false)
	return w.found, w.err
}

// mimeWalker walks a message's MIME tree, collecting the text and the
// attachments, or, with a target, streaming that one part to sink.
type mimeWalker struct {
	atts   []Attachment
	target string
	sink   func(Attachment, io.Reader) error
	found  bool
	err    error
	text   int // bytes of text kept so far
	parts  int // parts seen so far
}

// content is what an entity contributes to the readable text.
type content struct {
	text     string // readable text
	html     string // HTML as sent, when the text came from HTML
	fromHTML bool
	// pending: text is still to be made from html, which is done only
	// when the text is used (a plain alternative usually wins).
	pending bool
}

// resolve makes the text of c when it is pending.
func (w *mimeWalker) resolve(c content) content {
	if c.pending {
		c.text, c.pending = w.keep(cleanText(htmlToText(c.html))), false // entities can spell controls
	}
	return c
}

func (w *mimeWalker) entity(h textproto.Header, body io.Reader, num string, depth int, digest bool) content {
	mt, params := parseMediaType(h.Get("Content-Type"))
	switch {
	case mt == "" && digest:
		mt = "message/rfc822"
	case !validMediaType(mt):
		// RFC 2045's default for a missing or unreadable type; IMAP
		// servers report no parameters of an unreadable one either.
		mt, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] == "" {
		mt = "text/plain" // no way to find its parts: it reads as text, as IMAP servers show it
	}
	if strings.HasPrefix(mt, "multipart/") && depth < maxDepth {
		return w.multipart(mt, newSplitter(body, params["boundary"]), num, depth)
	}
	if num == "" {
		num = "1"
	}
	return w.leaf(h, mt, params, body, num)
}

// multipart walks the parts of a multipart entity. A part that is itself
// multipart with the same boundary (seen in real mail) takes the parts
// that follow, up to a close delimiter, as IMAP servers read it; its
// parent then goes on at the next delimiter.
func (w *mimeWalker) multipart(mt string, sp *splitter, num string, depth int) content {
	var parts []content
	n := 0
	for w.parts < maxParts && sp.next() {
		n++
		w.parts++
		ph, body := readHeader(bufio.NewReaderSize(sp, 4<<10))
		if cmt, cparams := parseMediaType(ph.Get("Content-Type")); strings.HasPrefix(cmt, "multipart/") &&
			cparams["boundary"] == sp.boundary && depth+1 < maxDepth {
			parts = append(parts, w.multipart(cmt, sp, joinPart(num, n), depth+1))
			sp.resume()
		} else {
			parts = append(parts, w.entity(ph, body, joinPart(num, n), depth+1, mt == "multipart/digest"))
		}
		if w.found || w.err != nil {
			return content{}
		}
	}
	if n == 0 && w.target == "" {
		// No delimiter at all: what there is can only be text.
		return content{text: w.keep(decodeCharset(sp.preamble.Bytes(), ""))}
	}
	return w.combine(mt, parts)
}

// combine is what a multipart entity of type mt whose parts read as
// parts contributes: one alternative, or the texts of all its parts.
func (w *mimeWalker) combine(mt string, parts []content) content {
	if mt == "multipart/alternative" {
		return w.pickAlternative(parts)
	}
	var out content
	var texts, htmls []string
	out.fromHTML = true
	for _, c := range parts {
		c = w.resolve(c)
		if strings.TrimSpace(c.text) != "" {
			texts = append(texts, strings.TrimSpace(c.text))
			out.fromHTML = out.fromHTML && c.fromHTML
		}
		if c.html != "" {
			htmls = append(htmls, c.html)
		}
	}
	out.text, out.html = strings.Join(texts, "\n\n"), strings.Join(htmls, "\n")
	out.fromHTML = out.fromHTML && len(texts) > 0
	return out
}

// pickAlternative prefers the first plain-text alternative that has text,
// else the last (richest) one that has any; the HTML shown on request is
// the last HTML alternative.
func (w *mimeWalker) pickAlternative(parts []content) content {
	var out content
	for _, c := range parts {
		if c.html != "" {
			out.html = c.html
		}
	}
	for _, c := range parts {
		if !c.fromHTML && strings.TrimSpace(c.text) != "" {
			out.text = c.text
			return out
		}
	}
	for _, c := range slices.Backward(parts) {
		if c = w.resolve(c); strings.TrimSpace(c.text) != "" {
			out.text, out.fromHTML = c.text, c.fromHTML
			break
		}
	}
	return out
}

// partRole says what a leaf part is to a reader: text shown as the
// message (plain or HTML not marked as an attachment), an attachment
// (every other part, and text parts with a file name, which readers both
// show and offer as files), or both. Listing (from the server's
// BODYSTRUCTURE) and reading (from the message) decide by this one rule.
func partRole(mediaType, disposition, filename string) (text, attachment bool) {
	text = (mediaType == "text/plain" || mediaType == "text/html") && !strings.EqualFold(disposition, "attachment")
	return text, !text || filename != ""
}

// textBufs holds the buffers a text part is read into before
// decodeCharset copies it into a string; buffers that grew past
// maxPooledText are left to the collector.
var textBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledText = 256 << 10

func (w *mimeWalker) leaf(h textproto.Header, mt string, params map[string]string, body io.Reader, num string) content {
	disp, dparams := parseMediaType(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	filename = decodeHeaderText(filename, params["charset"])
	cte := h.Get("Content-Transfer-Encoding")
	a := Attachment{Part: num, Filename: filename, ContentType: mt, Inline: strings.EqualFold(disp, "inline"),
		ContentID: cleanLine(strings.Trim(h.Get("Content-Id"), "<> \t"))}
	isText, isAttachment := partRole(mt, disp, filename)
	if isText {
		r := textReader(body, cte, params["charset"])
		if w.target != "" {
			if w.target == num && isAttachment {
				w.emit(a, r)
			}
			return content{}
		}
		buf := textBufs.Get().(*bytes.Buffer)
		buf.Reset()
		_, _ = buf.ReadFrom(io.LimitReader(r, maxTextPart))
		rest, _ := io.Copy(io.Discard, r)
		if isAttachment {
			a.Size = int64(buf.Len()) + rest
			w.atts = append(w.atts, a)
		}
		s := cleanText(strings.ReplaceAll(decodeCharset(buf.Bytes(), params["charset"]), "\r\n", "\n"))
		if buf.Cap() <= maxPooledText {
			textBufs.Put(buf)
		}
		if mt == "text/html" {
			return content{html: s, fromHTML: true, pending: true}
		}
		return content{text: w.keep(s)}
	}
	dec := decodeTransfer(cte, body)
	if uu, ok := dec.(*uuReader); ok && a.Filename == "" {
		a.Filename = cleanLine(uu.peekName())
	}
	if a.ContentType == "application/octet-stream" && a.Filename != "" {
		a.ContentType = typeByName(a.Filename, a.ContentType) // what a sender's mailer did not know
	}
	if isTNEF(mt, filename) {
		w.tnef(a, dec)
		return content{}
	}
	w.emit(a, dec)
	return content{}
}

// textReader undoes a text part's transfer encoding. A part labelled
// base64 that is not base64 (its decoding is not UTF-8 though the part is
// labelled so, while the bytes as written are) reads as written, as mail
// readers show it; that is decided for parts up to maxTextPart, the same
// way for reading and for downloading.
func textReader(body io.Reader, cte, charset string) io.Reader {
	if strings.ToLower(strings.TrimSpace(cte)) != "base64" { // as decodeTransfer tells it
		return decodeTransfer(cte, body)
	}
	raw, _ := io.ReadAll(io.LimitReader(body, maxTextPart))
	if len(raw) == maxTextPart {
		return decodeTransfer(cte, io.MultiReader(bytes.NewReader(raw), body))
	}
	b := decodeBase64(raw)
	switch strings.ToLower(charset) {
	case "", "utf-8", "us-ascii", "utf8":
		if !utf8.Valid(b) && utf8.Valid(raw) {
			return bytes.NewReader(raw)
		}
	}
	return bytes.NewReader(b)
}

// cleanText removes from body text the characters that only disguise it:
// C0 and C1 controls other than tab and line feed, and invisible format
// characters (isInvisible).
func cleanText(s string) string {
	if !hasHiddenControl(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isHiddenControl(r) {
			return -1
		}
		return r
	}, s)
}

// hasHiddenControl is strings.ContainsFunc(s, isHiddenControl), with a
// fast path for ASCII, which is most of any body.
func hasHiddenControl(s string) bool {
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b < 0x20 && b != '\t' && b != '\n' || b == 0x7f {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if isHiddenControl(r) {
			return true
		}
		i += n
	}
	return false
}

func isHiddenControl(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' || r >= 0x7f && r < 0xa0 || isInvisible(r)
}

// emit lists attachment a, or streams it when it is the target.
func (w *mimeWalker) emit(a Attachment, r io.Reader) {
	if w.target == "" {
		a.Size, _ = io.Copy(io.Discard, r)
		w.atts = append(w.atts, a)
		return
	}
	if a.Part == w.target {
		w.found = true
		w.err = w.sink(a, r)
	}
}

// maxTNEF bounds a winmail.dat that is expanded; a larger one is listed
// as it is.
const maxTNEF = 32 << 20

func isTNEF(mediaType, filename string) bool {
	return mediaType == "application/ms-tnef" || mediaType == "application/vnd.ms-tnef" || strings.EqualFold(filename, "winmail.dat")
}

// tnef lists (or streams) the files inside a TNEF part as its children;
// a part that holds no file, or cannot be read, stays one attachment.
func (w *mimeWalker) tnef(a Attachment, r io.Reader) {
	data, _ := io.ReadAll(io.LimitReader(r, maxTNEF+1))
	var files []tnefFile
	if len(data) <= maxTNEF {
		files, _ = tnefFiles(data)
	}
	if len(files) == 0 || strings.Count(a.Part, ".") >= maxDepth-1 {
		w.emit(a, io.MultiReader(bytes.NewReader(data), r)) // no files, or too deep for numbered children
		return
	}
	for i, f := range files {
		child := Attachment{Part: a.Part + "." + strconv.Itoa(i+1), Filename: cleanLine(f.Name), ContentType: strings.ToLower(strings.TrimSpace(f.ContentType))}
		if !validMediaType(child.ContentType) {
			child.ContentType = typeByName(child.Filename, "application/octet-stream")
		}
		w.emit(child, bytes.NewReader(f.Data))
		if w.found {
			return
		}
	}
}

// validMediaType reports a media type fit to show and to serve:
// type/subtype as lower-case RFC 2045 tokens, of at most 40 and 80 bytes.
func validMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && len(typ) <= 40 && len(sub) <= 80 && isMediaToken(typ) && isMediaToken(sub)
}

// isMediaToken reports a non-empty run of lower-case token characters.
func isMediaToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+.^_`{|}~-", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// typeByName guesses a media type from a file name's extension.
func typeByName(name, fallback string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if t, _, err := mime.ParseMediaType(mime.TypeByExtension(strings.ToLower(name[i:]))); err == nil && t != "" {
			return t
		}
	}
	return fallback
}

// keep bounds the text kept from one message to maxTextPart bytes.
func (w *mimeWalker) keep(s string) string {
	if w.text+len(s) > maxTextPart {
		s = strings.ToValidUTF8(s[:max(0, maxTextPart-w.text)], "")
	}
	w.text += len(s)
	return s
}

func joinPart(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}

// window returns at most maxChars runes of s from rune offset, and the
// total rune count.
func window(s string, offset, maxChars int) (string, int) {
	return windowBytes(s, offset, maxChars, 0)
}

// windowBytes is window that also stops before maxBytes bytes when
// maxBytes is positive (always returning at least one rune).
func windowBytes(s string, offset, maxChars, maxBytes int) (string, int) {
	total := utf8.RuneCountInString(s)
	if offset >= total {
		return "", total
	}
	i := 0
	for range offset {
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	j := i
	for k := 0; k < maxChars && j < len(s); k++ {
		_, n := utf8.DecodeRuneInString(s[j:])
		if maxBytes > 0 && j+n-i > maxBytes && k > 0 {
			break
		}
		j += n
	}
	return s[i:j], total
}
