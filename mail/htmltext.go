package mail

import (
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders HTML as readable plain text: blocks on their own
// lines, list items with "- ", links as "text (url)", scripts, styles and
// the head dropped, whitespace collapsed.
func htmlToText(src string) string {
	var b textBuilder
	z := html.NewTokenizer(strings.NewReader(src))
	skip := 0
	var href []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			switch {
			case a == atom.Script || a == atom.Style || a == atom.Head || a == atom.Title:
				skip++
			case a == atom.Br:
				b.newline(1)
			case a == atom.Li:
				b.newline(1)
				b.raw("- ")
			case a == atom.A:
				href = append(href, attr(z, hasAttr, "href"))
			case a == atom.Img:
				if alt := attr(z, hasAttr, "alt"); alt != "" {
					b.text("[" + alt + "]")
				}
			case blockTags[a]:
				b.newline(2)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case a == atom.Script || a == atom.Style || a == atom.Head || a == atom.Title:
				skip = max(0, skip-1)
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

var blockTags = map[atom.Atom]bool{atom.P: true, atom.Div: true, atom.Table: true, atom.Tr: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Ul: true, atom.Ol: true, atom.Blockquote: true, atom.Pre: true, atom.Hr: true, atom.Section: true,
	atom.Article: true, atom.Header: true, atom.Footer: true}

func attr(z *html.Tokenizer, more bool, want string) string {
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		if string(k) == want {
			return string(v)
		}
	}
	return ""
}

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
