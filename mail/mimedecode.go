package mail

import (
	"bufio"
	"bytes"
	"cmp"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
)

// decodeTransfer undoes a Content-Transfer-Encoding while streaming. Every
// decoder is lenient the way mail readers are: characters outside the
// alphabet are skipped, a broken escape is kept as written, and nothing
// is an error.
func decodeTransfer(enc string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		return newBase64Reader(r)
	case "quoted-printable":
		return &qpReader{br: bufio.NewReaderSize(r, 4<<10)}
	case "x-uuencode", "uuencode", "x-uue":
		return &uuReader{br: bufio.NewReaderSize(r, 4<<10)}
	}
	return r
}

var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	t['-'], t['_'] = 62, 63 // URL-safe alphabet, seen in broken encoders
	return t
}()

// base64Reader decodes base64, skipping anything outside the alphabet
// and tolerating missing or early padding.
type base64Reader struct {
	r   io.Reader
	in  []byte
	out []byte
	acc uint32 // the pending quantum's values, 6 bits each
	n   int    // how many values acc holds
	eof bool
}

func newBase64Reader(r io.Reader) *base64Reader {
	return &base64Reader{r: r, in: make([]byte, 4<<10)}
}

// decodeBase64 decodes all of src as base64Reader does.
func decodeBase64(src []byte) []byte {
	d := base64Reader{out: make([]byte, 0, len(src)/4*3+3)}
	d.feed(src)
	d.flush()
	return d.out
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.eof {
			return 0, io.EOF
		}
		n, err := d.r.Read(d.in)
		d.feed(d.in[:n])
		if err != nil {
			d.flush()
			d.eof = true
			if err != io.EOF {
				return copyOut(p, &d.out), err
			}
		}
	}
	return copyOut(p, &d.out), nil
}

// feed appends the bytes that in completes to d.out; a padding character
// ends the pending quantum.
func (d *base64Reader) feed(in []byte) {
	d.out = slices.Grow(d.out, len(in)/4*3+3)
	out, acc, n := d.out, d.acc, d.n
	for _, c := range in {
		v := b64Value[c]
		if v == 0xff {
			if c == '=' {
				out, acc, n = appendQuantum(out, acc, n), 0, 0
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		if n++; n == 4 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	d.acc, d.n, d.out = acc, n, out
}

// flush emits the bytes of the pending (possibly partial) quantum.
func (d *base64Reader) flush() {
	d.out, d.acc, d.n = appendQuantum(d.out, d.acc, d.n), 0, 0
}

// appendQuantum appends the bytes of a quantum of n values (at most 4,
// held in acc): a partial one gives what its bits complete.
func appendQuantum(out []byte, acc uint32, n int) []byte {
	switch n {
	case 4:
		return append(out, byte(acc>>16), byte(acc>>8), byte(acc))
	case 3:
		return append(out, byte(acc>>10), byte(acc>>2))
	case 2:
		return append(out, byte(acc>>4))
	}
	return out
}

func copyOut(p []byte, out *[]byte) int {
	n := copy(p, *out)
	if n == len(*out) {
		*out = (*out)[:0] // drained: the next fill reuses the whole buffer
	} else {
		*out = (*out)[n:]
	}
	return n
}

// qpReader decodes quoted-printable; line endings stay as written.
type qpReader struct {
	br    *bufio.Reader
	out   []byte
	carry []byte // an escape cut by the end of a chunk
	eof   bool
}

func (d *qpReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 && !d.eof {
		line, err := d.br.ReadSlice('\n')
		if len(d.carry) > 0 {
			line = append(d.carry, line...)
			d.carry = nil
		}
		d.eof = err != nil && err != bufio.ErrBufferFull
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return 0, err
		}
		var eol []byte
		switch {
		case bytes.HasSuffix(line, []byte("\r\n")):
			eol, line = line[len(line)-2:], line[:len(line)-2]
		case bytes.HasSuffix(line, []byte("\n")):
			eol, line = line[len(line)-1:], line[:len(line)-1]
		case !d.eof:
			if i := bytes.LastIndexByte(line, '='); i >= 0 && i >= len(line)-2 {
				d.carry = append([]byte(nil), line[i:]...)
				line = line[:i]
			}
			d.out = qpDecode(d.out[:0], line)
			continue
		}
		line = bytes.TrimRight(line, " \t")
		d.out = qpDecode(d.out[:0], line)
		if len(line) > 0 && line[len(line)-1] == '=' {
			d.out = d.out[:len(d.out)-1] // soft line break
		} else {
			d.out = append(d.out, eol...)
		}
	}
	if len(d.out) == 0 {
		return 0, io.EOF
	}
	return copyOut(p, &d.out), nil
}

// qpDecode appends line with its =XX escapes decoded; an "=" that starts
// no valid escape is kept.
func qpDecode(dst, line []byte) []byte {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
			dst = append(dst, unhex(line[i+1])<<4|unhex(line[i+2]))
			i += 2
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// uuReader decodes the first uuencoded file ("begin … end") of its input.
type uuReader struct {
	br      *bufio.Reader
	out     []byte
	started bool
	done    bool
}

// peekName returns the file name of the begin line when it is within the
// first few KiB, without consuming input.
func (d *uuReader) peekName() string {
	head, _ := d.br.Peek(4 << 10)
	for _, line := range bytes.Split(head, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 3 && f[0] == "begin" {
			return strings.Join(f[2:], " ")
		}
	}
	return ""
}

func (d *uuReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 && !d.done {
		line, eof := readLine(d.br, 1<<10)
		d.done = eof
		switch s := string(line); {
		case !d.started:
			d.started = strings.HasPrefix(s, "begin ")
		case strings.TrimSpace(s) == "end":
			d.done = true
		case len(line) > 0:
			n := int((line[0] - ' ') & 63)
			data := line[1:]
			for i := 0; i+1 < len(data) && n > 0; i += 4 {
				var q [4]byte
				for j := range 4 {
					if i+j < len(data) {
						q[j] = (data[i+j] - ' ') & 63
					}
				}
				for _, b := range [3]byte{q[0]<<2 | q[1]>>4, q[1]<<4 | q[2]>>2, q[2]<<6 | q[3]} {
					if n > 0 {
						d.out = append(d.out, b)
						n--
					}
				}
			}
		}
	}
	if len(d.out) == 0 {
		return 0, io.EOF
	}
	return copyOut(p, &d.out), nil
}

var charsetCache sync.Map // lower-case label -> encoding.Encoding (nil: unknown)

// lookupCharset finds a decoder for a MIME charset label by the WHATWG
// names (which map the labels mail really carries, such as
// ks_c_5601-1987, to the encodings that produce them), then the IANA
// and MIME registries. It returns nil for an unknown label.
func lookupCharset(label string) encoding.Encoding {
	label = strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	if v, ok := charsetCache.Load(label); ok {
		e, _ := v.(encoding.Encoding)
		return e
	}
	var e encoding.Encoding
	switch label {
	case "utf-16", "utf16", "ucs-2":
		e = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM) // without a BOM, as Windows writes it
	default:
		if h, err := htmlindex.Get(label); err == nil {
			e = h
		} else if m, err := ianaindex.MIME.Encoding(label); err == nil && m != nil {
			e = m
		} else if i, err := ianaindex.IANA.Encoding(label); err == nil && i != nil {
			e = i
		}
	}
	charsetCache.Store(label, e)
	return e
}

// decodeCharset converts b from charset to UTF-8. Text labelled ASCII,
// UTF-8 or nothing, or with an unknown label, is read as UTF-8 where it
// is valid and each stray byte as Windows-1252, so U+FFFD appears only
// where a known charset's bytes really are undecodable.
func decodeCharset(b []byte, charset string) string {
	label := strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"'`))
	switch label {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unknown-8bit", "x-unknown", "unknown", "default", "8bit", "binary", "x-user-defined":
		return utf8OrLatin(b)
	case "utf-7", "unicode-1-1-utf-7", "csunicode11utf7":
		return decodeUTF7(b)
	}
	e := lookupCharset(label)
	if e == nil {
		return utf8OrLatin(b)
	}
	if e == encoding.Replacement {
		return utf8OrLatin(b)
	}
	out, err := e.NewDecoder().Bytes(b)
	if err != nil {
		return utf8OrLatin(b)
	}
	return string(out)
}

// utf8OrLatin reads valid UTF-8 sequences as such and every other byte
// as Windows-1252.
func utf8OrLatin(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	s.Grow(len(b) + len(b)/4)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			r = charmap.Windows1252.DecodeByte(b[0])
		}
		s.WriteRune(r)
		b = b[n:]
	}
	return s.String()
}

// parseMediaType reads a Content-Type or Content-Disposition value. When
// the strict parser refuses it (duplicate or broken parameters, stray
// characters) the value is read again parameter by parameter, keeping
// every one that parses, so one bad parameter does not cost the type or
// the file name. The media type is lower case; "" when there is none.
func parseMediaType(v string) (string, map[string]string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", map[string]string{}
	}
	if !utf8.ValidString(v) {
		v = utf8OrLatin([]byte(v))
	}
	mt, params, err := mime.ParseMediaType(v)
	if err == nil && !strings.Contains(v, "*=") {
		return mt, params
	}
	// The strict parser refused the value or silently dropped an RFC 2231
	// value in a charset it does not know: read it parameter by parameter.
	parts := splitParams(v)
	mt = strings.ToLower(strings.Trim(strings.TrimSpace(parts[0]), `"'`))
	if i := strings.IndexAny(mt, " \t,"); i >= 0 {
		mt = mt[:i]
	}
	params = map[string]string{}
	pieces := map[string][]string{} // RFC 2231 continuations, by name
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		k, val = strings.ToLower(strings.TrimSpace(k)), unquote(strings.TrimSpace(val))
		if name, idx, ok := strings.Cut(k, "*"); ok && idx != "" {
			pieces[name] = append(pieces[name], idx+"\x00"+val)
			continue
		}
		if name, ok := strings.CutSuffix(k, "*"); ok {
			k, val = name, decodeExtValue(val)
		}
		if _, dup := params[k]; !dup && k != "" {
			params[k] = val
		}
	}
	for name, ps := range pieces {
		if _, dup := params[name]; dup {
			continue
		}
		slices.SortFunc(ps, func(a, b string) int { return cmp.Compare(pieceIndex(a), pieceIndex(b)) })
		var joined strings.Builder
		extended := false
		for _, p := range ps {
			idx, val, _ := strings.Cut(p, "\x00")
			extended = extended || strings.HasSuffix(idx, "*")
			joined.WriteString(val)
		}
		if params[name] = joined.String(); extended {
			params[name] = decodeExtValue(params[name])
		}
	}
	return mt, params
}

// pieceIndex reads the number of an RFC 2231 continuation ("0", "1*").
func pieceIndex(p string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.Split(p, "\x00")[0], "*"))
	return n
}

// unquote removes the quotes of a quoted-string and its escapes.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' {
		return strings.Trim(v, `'`)
	}
	v = strings.TrimSuffix(v[1:], `"`)
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// decodeExtValue decodes an RFC 2231 extended value (charset'lang'text
// with percent escapes) in any charset.
func decodeExtValue(v string) string {
	cs, rest, ok := strings.Cut(v, "'")
	if !ok {
		return utf8OrLatin(percentDecode(v))
	}
	_, text, ok := strings.Cut(rest, "'")
	if !ok {
		return v
	}
	return decodeCharset(percentDecode(text), cs)
}

func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		} else {
			b = append(b, s[i])
		}
	}
	return b
}

// splitParams splits a header value at the semicolons outside quotes.
func splitParams(v string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}
