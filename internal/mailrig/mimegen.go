package mailrig

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"
)

// part is a MIME entity: header lines plus an already encoded body.
// Multiparts carry their children in parts and render them at write time.
type part struct {
	header   []string
	body     []byte
	boundary string
	parts    []part
}

// Transfer encodings used by the generator.
const (
	cte7bit   = "7bit"
	cte8bit   = "8bit"
	cteQP     = "quoted-printable"
	cteBase64 = "base64"
)

// leaf returns a single-part entity with raw encoded as cte. Extra header
// lines (e.g. Content-Disposition) follow Content-Type.
func leaf(contentType, cte string, raw []byte, extra ...string) part {
	header := append([]string{"Content-Type: " + contentType}, extra...)
	header = append(header, "Content-Transfer-Encoding: "+cte)
	return part{header: header, body: encodeBody(cte, raw)}
}

// multipart returns a multipart/subtype entity holding parts.
func multipart(subtype, boundary string, parts ...part) part {
	return part{
		header:   []string{fmt.Sprintf("Content-Type: multipart/%s;\n boundary=%q", subtype, boundary)},
		boundary: boundary,
		parts:    parts,
	}
}

// write renders the entity (header, blank line, body) into b.
func (p part) write(b *bytes.Buffer) {
	for _, h := range p.header {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if p.boundary == "" {
		b.Write(p.body)
		return
	}
	b.WriteString("This is a multi-part message in MIME format.\n")
	for _, child := range p.parts {
		fmt.Fprintf(b, "\n--%s\n", p.boundary)
		child.write(b)
	}
	fmt.Fprintf(b, "\n--%s--\n", p.boundary)
}

// encodeBody applies a Content-Transfer-Encoding, with LF line ends.
func encodeBody(cte string, raw []byte) []byte {
	var out []byte
	switch cte {
	case cteQP:
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		// The writer only fails when its destination does, and a
		// bytes.Buffer never does.
		_, _ = w.Write(raw)
		_ = w.Close()
		out = bytes.ReplaceAll(b.Bytes(), []byte("\r\n"), []byte("\n"))
	case cteBase64:
		out = wrapBase64(raw)
	default:
		out = raw
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

// wrapBase64 encodes raw in base64 lines of 76 characters.
func wrapBase64(raw []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(raw)
	out := make([]byte, 0, len(enc)+len(enc)/76+1)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, '\n')
		enc = enc[76:]
	}
	return append(append(out, enc...), '\n')
}

// headerWord encodes s for a header per RFC 2047 with the given style:
// 'b' UTF-8 B, 'q' UTF-8 Q, 'l' ISO-8859-1 Q (falls back to UTF-8 Q when s
// is not Latin-1). ASCII text is returned unchanged.
func headerWord(s string, style byte) string {
	if isASCII(s) {
		return s
	}
	switch style {
	case 'b':
		return mime.BEncoding.Encode("UTF-8", s)
	case 'l':
		if l, ok := latin1(s); ok {
			return mime.QEncoding.Encode("ISO-8859-1", l)
		}
	}
	return mime.QEncoding.Encode("UTF-8", s)
}

// address formats a participant for From/To/Cc with an encoded or quoted
// display name.
func address(p person, style byte) string {
	switch {
	case p.Name == "":
		return p.Addr
	case !isASCII(p.Name):
		return headerWord(p.Name, style) + " <" + p.Addr + ">"
	case strings.ContainsAny(p.Name, `,.;:'"()<>@[]\`):
		return fmt.Sprintf("%q <%s>", p.Name, p.Addr)
	default:
		return p.Name + " <" + p.Addr + ">"
	}
}

// fileParam returns a filename parameter, using RFC 2231 for non-ASCII.
func fileParam(key, name string) string {
	if isASCII(name) {
		return fmt.Sprintf("%s=%q", key, name)
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return fmt.Sprintf("%s*=UTF-8''%s", key, b.String())
}

// foldList joins header list items, one per continuation line.
func foldList(items []string) string {
	return strings.Join(items, "\n ")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// latin1 converts s to ISO-8859-1 bytes if every rune fits.
func latin1(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return "", false
		}
		b = append(b, byte(r))
	}
	return string(b), true
}
