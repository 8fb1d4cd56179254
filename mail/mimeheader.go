package mail

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// Header reading limits: a longer line is cut, a larger block is read
// to its end but the excess is dropped.
const (
	maxHeaderLine  = 256 << 10
	maxHeaderBlock = 1 << 20
)

// readHeader reads a header block up to the empty line that ends it, or
// EOF, and never fails. Folded fields are unfolded and values keep their
// raw bytes. A continuation before any field is dropped. A line that is
// neither a field nor a continuation is dropped when a field follows it
// (a header folded without indent); otherwise it is taken for the start
// of the body (a missing empty line), which readHeader then returns
// together with the rest of br.
func readHeader(br *bufio.Reader) (textproto.Header, io.Reader) {
	var fields [][2]string
	var key string
	var val []byte
	var body io.Reader = br
	size := 0
	flush := func() {
		if key != "" && size <= maxHeaderBlock {
			fields = append(fields, [2]string{key, string(bytes.TrimSpace(val))})
		}
		key, val = "", val[:0] // the value was copied; its buffer serves the next field
	}
	line, eof := readLine(br, maxHeaderLine)
	for len(line) > 0 {
		size += len(line)
		switch {
		case line[0] == ' ' || line[0] == '\t':
			if key != "" && len(val) < maxHeaderBlock {
				val = append(val, line...)
			}
		case isField(line):
			flush()
			i := bytes.IndexByte(line, ':')
			key = string(bytes.TrimRight(line[:i], " \t"))
			val = append(val, line[i+1:]...)
		case !eof:
			next, nextEOF := readLine(br, maxHeaderLine)
			if len(next) > 0 && (next[0] == ' ' || next[0] == '\t' || isField(next)) {
				line, eof = next, nextEOF
				continue
			}
			body = io.MultiReader(bytes.NewReader(slices.Concat(line, []byte("\n"), next, []byte("\n"))), br)
			line = nil
			continue
		default:
			body = bytes.NewReader(line)
		}
		if eof {
			break
		}
		line, eof = readLine(br, maxHeaderLine)
	}
	flush()
	// textproto.Header keeps fields bottom-up, as its own reader adds
	// them, so that Get returns the first field of a name in the message.
	var h textproto.Header
	for _, f := range slices.Backward(fields) {
		h.Add(f[0], f[1])
	}
	return h, body
}

// headerBytes reads a header block held in memory.
func headerBytes(raw []byte) textproto.Header {
	h, _ := readHeader(bufio.NewReader(bytes.NewReader(raw)))
	return h
}

func isField(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	return i > 0 && validFieldName(bytes.TrimRight(line[:i], " \t"))
}

// readLine returns the next line without its line ending, at most max
// bytes of it (the rest of a longer line is skipped), and whether input
// ended. A line holding only spaces and tabs is returned as one space so
// that it never ends a header block.
func readLine(br *bufio.Reader, max int) (line []byte, eof bool) {
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line) < max {
			line = append(line, chunk[:min(len(chunk), max-len(line))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		eof = err != nil
		break
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && len(bytes.Trim(line, " \t")) == 0 {
		line = []byte{' '}
	}
	return line, eof
}

func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// encodedWord matches one RFC 2047 encoded word, as leniently as common
// mail readers do (spaces inside a word are tolerated). No part of a word
// holds "?", which keeps every match short and the scan linear.
var encodedWord = regexp.MustCompile(`=\?([^?]*)\?([bBqQ])\?([^?]*)\?=`)

// maxWordBytes bounds the encoded word looked for at one position.
const maxWordBytes = 1 << 10

// encodedWordAt returns the length of the encoded word s starts with, or
// 0. It looks at most maxWordBytes ahead, and only at the one candidate
// that ends at the fourth "?" (charset?enc?text?=).
func encodedWordAt(s string) int {
	if !strings.HasPrefix(s, "=?") {
		return 0
	}
	end := 2
	for range 3 {
		j := strings.IndexByte(s[end:min(len(s), maxWordBytes)], '?')
		if j < 0 {
			return 0
		}
		end += j + 1
	}
	if end >= len(s) || s[end] != '=' {
		return 0
	}
	// "=?" charset "?" one of bBqQ "?" text "?=": the encoding is the
	// one byte between the second and third "?".
	if enc := strings.IndexByte(s[2:], '?') + 3; s[enc+1] != '?' || strings.IndexByte("bBqQ", s[enc]) < 0 {
		return 0
	}
	return end + 1
}

// decodeHeaderText turns a raw header value into display text: raw 8-bit
// bytes decoded as UTF-8 when valid, else in charset (the message's
// declared one, Windows-1252 when that is unknown), RFC 2047 words
// decoded (adjacent words of one charset joined before decoding, so a
// character split across words survives), and control and bidi-override
// characters removed with white space collapsed. The result is one line.
func decodeHeaderText(raw, charset string) string {
	if strings.Contains(raw, "=?") {
		return cleanLine(decodeWords(raw, charset)) // raw 8-bit bytes inside a word are in the word's charset
	}
	return cleanLine(rawText(raw, charset))
}

// rawText reads header text outside encoded words: UTF-8 when valid, else
// in charset (Windows-1252 when that is unknown).
func rawText(s, charset string) string {
	if utf8.ValidString(s) {
		return s
	}
	return decodeCharset([]byte(s), charset)
}

// decodeWords decodes the RFC 2047 encoded words in s; the text between
// them is read with rawText in charset.
func decodeWords(s, charset string) string {
	var out strings.Builder
	var pending []byte
	pendingCS := ""
	flush := func() {
		if pending != nil {
			out.WriteString(decodeCharset(pending, pendingCS))
			pending, pendingCS = nil, ""
		}
	}
	last := 0
	for _, m := range encodedWord.FindAllStringSubmatchIndex(s, -1) {
		between := s[last:m[0]]
		cs, _, _ := strings.Cut(s[m[2]:m[3]], "*") // RFC 2231 language suffix
		data := decodeWordData(s[m[4]:m[5]], s[m[6]:m[7]])
		switch {
		case pending != nil && strings.TrimSpace(between) == "" && strings.EqualFold(cs, pendingCS):
			pending = append(pending, data...) // white space between encoded words is not text
		case pending != nil && strings.TrimSpace(between) == "":
			flush()
			pending, pendingCS = data, cs
		default:
			flush()
			out.WriteString(rawText(between, charset))
			pending, pendingCS = data, cs
		}
		last = m[1]
	}
	flush()
	out.WriteString(rawText(s[last:], charset))
	return out.String()
}

// decodeWordData undoes the B or Q encoding of an encoded word's text.
func decodeWordData(enc, text string) []byte {
	if enc == "b" || enc == "B" {
		return decodeBase64([]byte(text))
	}
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
			out = append(out, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

// cleanLine removes what must never reach a reader from a header value:
// line breaks and other C0 and C1 controls, and invisible format
// characters (isInvisible); runs of white space become one space.
func cleanLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xa0:
			space = b.Len() > 0
			continue
		case r < 0x20 || (r >= 0x7f && r < 0xa0), isInvisible(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isInvisible reports format characters (Unicode Cf): bidi embeddings,
// overrides and isolates that reorder the text around them, zero-width
// characters, soft hyphens, byte order marks, and tag characters that a
// model reads but a person does not see. ZWNJ and ZWJ, which some scripts
// and emoji need, stay.
func isInvisible(r rune) bool {
	return r >= 0xad && unicode.Is(unicode.Cf, r) && r != 0x200c && r != 0x200d
}

// addressParser parses with our charset decoding for encoded words.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(r)
	return strings.NewReader(decodeCharset(b, cs)), err
}}}

// parseAddressList reads an address header as "Name <addr>" strings. An
// item the strict parser refuses is kept as its decoded text, so nothing
// a sender wrote is lost.
func parseAddressList(raw, charset string) []string {
	if !utf8.ValidString(raw) {
		raw = decodeCharset([]byte(raw), charset)
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	if list, err := addressParser.ParseList(raw); err == nil {
		return formatAddresses(list)
	}
	var out []string
	for _, item := range splitAddresses(raw) {
		if a, err := addressParser.Parse(item); err == nil {
			out = append(out, formatAddresses([]*mail.Address{a})...)
		} else if m := nameAddr.FindStringSubmatch(item); m != nil {
			name := decodeHeaderText(unquote(strings.TrimSpace(m[1])), "")
			out = append(out, formatAddresses([]*mail.Address{{Name: name, Address: strings.TrimSpace(m[2])}})...)
		} else if text := decodeHeaderText(item, ""); text != "" {
			out = append(out, text)
		}
	}
	return out
}

// nameAddr reads "phrase <addr>" when the phrase is not valid RFC 5322
// (unquoted specials, encoded words holding commas).
var nameAddr = regexp.MustCompile(`^\s*(.*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$`)

// quotedPair escapes a display name for an RFC 5322 quoted string.
var quotedPair = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// formatAddresses renders "Name <addr>", quoting a name that holds
// specials so that each result parses back as one address.
func formatAddresses(list []*mail.Address) []string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		name, addr := a.Name, cleanLine(a.Address)
		if strings.Contains(name, "=?") {
			name = decodeWords(name, "") // words net/mail leaves as they are
		}
		name = cleanLine(name)
		switch {
		case name == "" || name == addr:
			out = append(out, addr)
		case strings.ContainsAny(name, `()<>[]:;@\,."`):
			out = append(out, `"`+quotedPair.Replace(name)+`" <`+addr+">")
		default:
			out = append(out, name+" <"+addr+">")
		}
	}
	return out
}

// splitAddresses splits an address list at the commas that are outside
// quotes, comments and angle brackets; group names and their ";" are
// dropped.
func splitAddresses(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '=' && !quoted && strings.HasPrefix(s[i:], "=?") {
			if n := encodedWordAt(s[i:]); n > 0 {
				i += n - 1 // an encoded word is one unit, whatever it holds
				continue
			}
		}
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '<':
			depth++
		case (c == ')' || c == '>') && depth > 0:
			depth--
		case depth == 0 && (c == ',' || c == ';'):
			out = append(out, s[start:i])
			start = i + 1
		case depth == 0 && c == ':' && !strings.Contains(s[start:i], "@"):
			start = i + 1 // "group:" prefix
		}
	}
	out = append(out, s[start:])
	return strings.FieldsFunc(strings.Join(out, "\x00"), func(r rune) bool { return r == 0 })
}

// dateLayouts are the shapes of Date headers seen in real mail that
// net/mail refuses, after comments and the weekday are removed.
var dateLayouts = []string{
	"2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04 -0700", "2 Jan 06 15:04:05 -0700", "2 Jan 06 15:04 -0700",
	"2 Jan 2006 15:04:05 MST", "2 Jan 2006 15:04 MST", "2 Jan 06 15:04:05 MST", "2 Jan 2006 15:04:05", "2 Jan 2006 15:04",
	"2 January 2006 15:04:05 -0700", "2-Jan-2006 15:04:05 -0700", "2-Jan-06 15:04:05 -0700",
	"Jan 2 15:04:05 2006", "Jan 2 15:04:05 MST 2006", "Jan 2 15:04:05 -0700 2006", "Jan 2 2006 15:04:05 -0700", "Jan 2, 2006 15:04:05 -0700",
	"2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05",
	"2 Jan 2006 15:04:05 -07:00", "2 Jan 2006 15.04.05 -0700", "2006/01/02 15:04:05",
	"2 Jan 06 03:04:05 PM", "2 Jan 2006 03:04:05 PM", "2 Jan 06 03:04:05 PM -0700", "2 Jan 2006 03:04:05 PM -0700",
}

var (
	dateComment = regexp.MustCompile(`\([^)]*\)`)
	dateWeekday = regexp.MustCompile(`^(?i)(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s*`)
	dateZoneFix = regexp.MustCompile(`\s(?:GMT|UTC|UT)?([+-]\d{1,2}):?(\d{2})$`)
	dateGlued   = regexp.MustCompile(`(\d:\d\d)([+-]\d{4})$`)
)

// parseDate reads a Date header leniently. It reports false when the
// value has no recognisable date, or one before 1900 or far in the
// future, so that callers fall back to the received date.
func parseDate(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	// The form RFC 5322 recommends, which nearly all mail uses, is read
	// first: net/mail tries two dozen layouts before it, each failure
	// allocating an error.
	t, err := time.Parse(rfc5322Date, v)
	if err != nil {
		t, err = mail.ParseDate(v)
	}
	if err != nil {
		s := dateComment.ReplaceAllString(v, " ")
		s = strings.Join(strings.Fields(s), " ")
		s = dateWeekday.ReplaceAllString(s, "")
		s = strings.TrimSuffix(strings.TrimSuffix(s, " GMT"), " UT")
		s = dateZoneFix.ReplaceAllStringFunc(s, func(m string) string {
			sub := dateZoneFix.FindStringSubmatch(m)
			return " " + sub[1][:1] + leftPad(sub[1][1:]) + sub[2]
		})
		s = dateGlued.ReplaceAllString(s, "$1 $2")
		t, err = parseDateLayouts(s)
		if i := strings.LastIndexByte(s, ' '); err != nil && i > 0 {
			t, err = parseDateLayouts(s[:i]) // an unreadable zone: read the rest as UTC
		}
		if err != nil {
			return time.Time{}, false
		}
	}
	if t.Year() < 1900 || t.After(time.Now().AddDate(10, 0, 0)) {
		return time.Time{}, false
	}
	return t, true
}

// rfc5322Date is RFC 5322's date-time with a weekday and a numeric zone.
const rfc5322Date = "Mon, 2 Jan 2006 15:04:05 -0700"

func parseDateLayouts(s string) (t time.Time, err error) {
	for _, layout := range dateLayouts {
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return t, err
}

func leftPad(h string) string {
	if len(h) == 1 {
		return "0" + h
	}
	return h
}

// headerOf decodes the fields the engine exposes from a raw header.
// charset is used for raw 8-bit bytes that are not UTF-8; when empty,
// the header's own Content-Type charset is tried.
func headerOf(h textproto.Header) Header {
	_, params := parseMediaType(h.Get("Content-Type"))
	cs := params["charset"]
	out := Header{Subject: decodeHeaderText(h.Get("Subject"), cs)}
	out.Date, out.DateOK = parseDate(h.Get("Date"))
	if from := parseAddressList(h.Get("From"), cs); len(from) > 0 {
		out.From = from[0]
	} else if sender := parseAddressList(h.Get("Sender"), cs); len(sender) > 0 {
		out.From = sender[0]
	}
	out.To, out.Cc, out.ReplyTo = parseAddressList(h.Get("To"), cs), parseAddressList(h.Get("Cc"), cs), parseAddressList(h.Get("Reply-To"), cs)
	out.MessageID = firstMsgID(h.Get("Message-Id"))
	out.InReplyTo = firstMsgID(h.Get("In-Reply-To"))
	out.References = msgIDs(h.Get("References"))
	return out
}

// msgIDs returns the message ids of a References-like field, without
// angle brackets: each "<id>" whose id holds no angle bracket or ASCII
// space, at most 200.
func msgIDs(v string) []string {
	var out []string
	for i := 0; len(out) < 200; {
		j := strings.IndexByte(v[i:], '<')
		if j < 0 {
			break
		}
		start := i + j + 1
		k := start
		for k < len(v) && !strings.ContainsRune("<> \t\n\f\r", rune(v[k])) {
			k++
		}
		if k < len(v) && v[k] == '>' && k > start {
			out = append(out, cleanLine(v[start:k]))
			k++
		}
		i = k
	}
	return out
}

// firstMsgID returns the first message id of v; an id written without
// angle brackets is accepted when it is a single word with an "@".
func firstMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	if v = strings.TrimSpace(v); v != "" && !strings.ContainsFunc(v, unicode.IsSpace) && strings.Contains(v, "@") {
		return cleanLine(v)
	}
	return ""
}
