package mail

import (
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders HTML as readable plain text: blocks on their own
// lines, list items with "- ", links as "text (url)", whitespace
// collapsed. What a reader never sees is left out: scripts, styles, the
// head, templates, and elements hidden by the hidden or aria-hidden
// attribute or by an inline style (display:none, visibility:hidden, a
// font size or opacity below one, zero height with overflow hidden,
// mso-hide:all). Styles from <style> rules and colours are not followed.
func htmlToText(src string) string {
	var b textBuilder
	z := html.NewTokenizer(strings.NewReader(src))
	var open []openTag // elements that may hide their content
	hidden := 0        // open elements that hide their content
	var href []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if hidden == 0 {
				b.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			attrs := readAttrs(z, hasAttr)
			if !voidTags[a] { // browsers ignore "/>" on elements that are not void
				h := a == atom.Script || a == atom.Style || a == atom.Head || a == atom.Title || a == atom.Template || hides(attrs)
				open = append(open, openTag{a: a, name: string(name), hides: h})
				if h {
					hidden++
				}
			}
			if hidden > 0 {
				continue
			}
			switch {
			case a == atom.Br:
				b.newline(1)
			case a == atom.Li:
				b.newline(1)
				b.raw("- ")
			case a == atom.A:
				href = append(href, attrs["href"])
			case a == atom.Img:
				if alt := attrs["alt"]; alt != "" && !hides(attrs) {
					b.text("[" + alt + "]")
				}
			case blockTags[a]:
				b.newline(2)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			wasHidden := hidden > 0
			if i := lastOpen(open, string(name)); i >= 0 && !hidesAbove(open, i) {
				if open[i].hides {
					hidden--
				}
				open = open[:i]
			}
			if wasHidden {
				continue
			}
			switch {
			case a == atom.A && len(href) > 0:
				if u := href[len(href)-1]; strings.HasPrefix(u, "http") && !strings.HasSuffix(b.String(), u) {
					b.text(" (" + u + ")")
				}
				href = href[:len(href)-1]
			case blockTags[a]:
				b.newline(2)
			}
		}
	}
}

// openTag is an element whose end tag has not been seen yet.
type openTag struct {
	a     atom.Atom
	name  string
	hides bool
}

// maxEndTagSearch bounds how far down the open elements an end tag is
// matched, which keeps text conversion linear; an element opened deeper
// than that stays open (and, if hidden, hidden).
const maxEndTagSearch = 64

// lastOpen returns the index of the innermost open element called name.
func lastOpen(open []openTag, name string) int {
	for i := len(open) - 1; i >= 0 && i >= len(open)-maxEndTagSearch; i-- {
		if open[i].name == name {
			return i
		}
	}
	return -1
}

// hidesAbove reports a hidden element opened inside open[i]: an end tag
// that would close it implicitly (a stray </font> around a hidden div) is
// ignored, as browsers keep such content hidden.
func hidesAbove(open []openTag, i int) bool {
	for _, t := range open[i+1:] {
		if t.hides {
			return true
		}
	}
	return false
}

var voidTags = map[atom.Atom]bool{atom.Br: true, atom.Img: true, atom.Hr: true, atom.Meta: true, atom.Link: true,
	atom.Input: true, atom.Area: true, atom.Base: true, atom.Col: true, atom.Embed: true, atom.Source: true,
	atom.Track: true, atom.Wbr: true, atom.Param: true}

// hiddenStyle matches inline styles that make an element invisible.
var hiddenStyle = regexp.MustCompile(`(?i)(^|;)\s*(display\s*:\s*none|visibility\s*:\s*(hidden|collapse)|mso-hide\s*:\s*all|` +
	`(font-size|opacity)\s*:\s*(0+(\.\d*)?|\.\d+)\s*[a-z%]*\s*(!\s*important)?\s*(;|$))`)

// zeroHeight and overflowHidden together hide an element (preheaders).
var (
	zeroHeight     = regexp.MustCompile(`(?i)(^|;)\s*(max-)?height\s*:\s*0+[a-z%]*\s*(!\s*important)?\s*(;|$)`)
	overflowHidden = regexp.MustCompile(`(?i)(^|;)\s*overflow\s*:\s*hidden`)
)

// hides reports whether an element's attributes hide it from a reader.
func hides(attrs map[string]string) bool {
	if _, ok := attrs["hidden"]; ok {
		return true
	}
	if strings.EqualFold(strings.TrimSpace(attrs["aria-hidden"]), "true") {
		return true
	}
	style := attrs["style"]
	return hiddenStyle.MatchString(style) || zeroHeight.MatchString(style) && overflowHidden.MatchString(style)
}

func readAttrs(z *html.Tokenizer, more bool) map[string]string {
	var out map[string]string
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		if out == nil {
			out = map[string]string{}
		}
		if _, dup := out[string(k)]; !dup {
			out[string(k)] = string(v)
		}
	}
	return out
}

var blockTags = map[atom.Atom]bool{atom.P: true, atom.Div: true, atom.Table: true, atom.Tr: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Ul: true, atom.Ol: true, atom.Blockquote: true, atom.Pre: true, atom.Hr: true, atom.Section: true,
	atom.Article: true, atom.Header: true, atom.Footer: true}

// textBuilder collapses whitespace and limits blank lines.
type textBuilder struct {
	sb       strings.Builder
	newlines int  // trailing newlines written
	space    bool // a space is pending
}

func (b *textBuilder) text(s string) {
	if s == "" {
		return
	}
	if isSpace(rune(s[0])) {
		b.space = true
	}
	words := strings.FieldsFunc(s, isSpace)
	for _, w := range words {
		if b.space && b.newlines == 0 && b.sb.Len() > 0 {
			b.sb.WriteByte(' ')
		}
		b.sb.WriteString(w)
		b.newlines, b.space = 0, true
	}
	if len(words) > 0 {
		b.space = isSpace(rune(s[len(s)-1]))
	}
}

func (b *textBuilder) raw(s string) {
	b.sb.WriteString(s)
	b.newlines, b.space = 0, false
}

func (b *textBuilder) newline(n int) {
	if b.sb.Len() == 0 {
		return
	}
	for ; b.newlines < n; b.newlines++ {
		b.sb.WriteByte('\n')
	}
	b.space = false
}

func (b *textBuilder) String() string { return strings.TrimFunc(b.sb.String(), isSpace) }

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == 0xa0
}

// sanitizeHTML keeps formatting and links and drops scripts, styles,
// event handlers and anything else that can act.
func sanitizeHTML(src string) string {
	return htmlPolicy.Sanitize(src)
}

var htmlPolicy = bluemonday.UGCPolicy()

// SanitizeSignature is the one rule for signatures, applied when one is
// saved, previewed and sent: formatting, links, https images and the
// inline styles mail clients render (colour, font, size, emphasis,
// alignment) stay; scripts, other styles and event handlers go, and an
// image whose source was dropped (a data: or other non-web URL) goes
// with it instead of staying as an empty tag.
func SanitizeSignature(src string) string {
	out := signaturePolicy.Sanitize(src)
	out = imgTag.ReplaceAllStringFunc(out, func(tag string) string {
		if strings.Contains(tag, ` src="`) {
			return tag
		}
		return ""
	})
	return strings.TrimSpace(out)
}

// DataImage reports whether html embeds an image as a data: URL, which
// most mail clients do not show.
func DataImage(html string) bool { return dataImage.MatchString(html) }

var (
	signaturePolicy = func() *bluemonday.Policy {
		p := bluemonday.UGCPolicy()
		p.AllowStyles("color", "background-color", "font-size", "font-family", "font-weight", "font-style",
			"text-decoration", "text-align").Globally()
		return p
	}()
	imgTag    = regexp.MustCompile(`<img\b[^>]*>`) // sanitized output: attributes quoted and escaped
	dataImage = regexp.MustCompile(`(?i)<img\b[^>]*\ssrc\s*=\s*["']?\s*data:`)
)
