package mail

import (
	"bufio"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers legacy charsets for go-message
	gomail "github.com/emersion/go-message/mail"
)

// maxTextPart bounds how much of one text part is kept in memory.
const maxTextPart = 8 << 20

// maxDepth bounds multipart nesting.
const maxDepth = 20

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
	Text        string // plain text, else HTML converted to text
	HTML        string // the HTML body as sent (not sanitized)
	Attachments []Attachment
}

// Header holds the decoded headers the engine exposes.
type Header struct {
	MessageID  string
	Subject    string
	From       string
	To, Cc     []string
	ReplyTo    []string
	Date       time.Time
	InReplyTo  string
	References []string
}

// parseMessage reads a whole message. It decodes transfer encodings and
// charsets, keeps going past damaged parts (best effort) and never
// returns an error for malformed MIME: what could be read is returned.
func parseMessage(r io.Reader) *parsedMessage {
	p := &parsedMessage{}
	ent, _ := message.Read(bufio.NewReader(r)) // a non-nil entity comes with charset/encoding warnings only
	if ent == nil {
		return p
	}
	p.Header = readHeader(ent.Header)
	var plain, htmlText strings.Builder
	walkEntity(ent, "", 0, p, &plain, &htmlText)
	p.HTML = htmlText.String()
	p.Text = strings.TrimSpace(strings.ReplaceAll(plain.String(), "\r\n", "\n"))
	if p.Text == "" && p.HTML != "" {
		p.Text = htmlToText(p.HTML)
	}
	if !utf8.ValidString(p.Text) {
		p.Text = strings.ToValidUTF8(p.Text, "\uFFFD")
	}
	return p
}

// walkEntity visits ent, numbered as IMAP numbers body parts.
func walkEntity(ent *message.Entity, num string, depth int, p *parsedMessage, plain, html *strings.Builder) {
	mediaType, params, _ := ent.Header.ContentType()
	if mr := ent.MultipartReader(); mr != nil && depth < maxDepth {
		for i := 1; ; i++ {
			part, err := mr.NextPart()
			if part == nil || err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				return
			}
			walkEntity(part, joinPart(num, i), depth+1, p, plain, html)
		}
	}
	if num == "" {
		num = "1"
	}
	disp, dparams, _ := ent.Header.ContentDisposition()
	filename := decodeWord(dparams["filename"])
	if filename == "" {
		filename = decodeWord(params["name"])
	}
	isText := mediaType == "text/plain" || mediaType == "text/html" || mediaType == ""
	if isText && disp != "attachment" && filename == "" {
		b, _ := io.ReadAll(io.LimitReader(ent.Body, maxTextPart))
		dst := plain
		if mediaType == "text/html" {
			dst = html
		}
		if dst.Len() > 0 {
			dst.WriteString("\n\n")
		}
		dst.Write(b)
		return
	}
	n, _ := io.Copy(io.Discard, ent.Body)
	cid := strings.Trim(ent.Header.Get("Content-Id"), "<> ")
	p.Attachments = append(p.Attachments, Attachment{Part: num, Filename: filename, ContentType: mediaType,
		Size: n, ContentID: cid, Inline: disp == "inline"})
}

func joinPart(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	return message.CharsetReader(cs, r)
}}

// decodeWord decodes RFC 2047 words, returning s unchanged on failure.
func decodeWord(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// readHeader decodes the headers the engine exposes, best effort.
func readHeader(h message.Header) Header {
	mh := gomail.Header{Header: h}
	out := Header{}
	out.MessageID, _ = mh.MessageID()
	if s, err := mh.Subject(); err == nil {
		out.Subject = s
	} else {
		out.Subject = h.Get("Subject")
	}
	out.Date, _ = mh.Date()
	addrs := func(key string) []string {
		list, err := mh.AddressList(key)
		if err != nil {
			if raw := strings.TrimSpace(h.Get(key)); raw != "" {
				return []string{decodeWord(raw)}
			}
			return nil
		}
		var out []string
		for _, a := range list {
			out = append(out, formatMailAddress(a.Name, a.Address))
		}
		return out
	}
	if from := addrs("From"); len(from) > 0 {
		out.From = from[0]
	}
	out.To, out.Cc, out.ReplyTo = addrs("To"), addrs("Cc"), addrs("Reply-To")
	if ids, err := mh.MsgIDList("In-Reply-To"); err == nil && len(ids) > 0 {
		out.InReplyTo = ids[0]
	}
	out.References, _ = mh.MsgIDList("References")
	return out
}

func formatMailAddress(name, addr string) string {
	if name == "" {
		return addr
	}
	return name + " <" + addr + ">"
}

// window returns at most maxChars runes of s from rune offset, and the
// total rune count.
func window(s string, offset, maxChars int) (string, int) {
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
		j += n
	}
	return s[i:j], total
}
