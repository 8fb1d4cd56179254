package mail

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Snippet sizes: bytes fetched from the start of the text part, runes
// kept.
const (
	snippetFetch = 600
	SnippetRunes = 160
)

// snippetPart returns the section path of the first text/plain part that
// is not an attachment, else of the first such text/html part.
func snippetPart(bs imap.BodyStructure) ([]int, *imap.BodyStructureSinglePart) {
	var plainPath, htmlPath []int
	var plain, html *imap.BodyStructureSinglePart
	if bs == nil {
		return nil, nil
	}
	bs.Walk(func(path []int, p imap.BodyStructure) bool {
		sp, ok := p.(*imap.BodyStructureSinglePart)
		if !ok {
			return true
		}
		if text, _ := partRole(mediaTypeOf(sp), dispositionOf(sp), sp.Filename()); !text {
			return true
		}
		switch {
		case sp.MediaType() == "text/plain" && plain == nil:
			plainPath, plain = slices.Clone(path), sp
		case sp.MediaType() == "text/html" && html == nil:
			htmlPath, html = slices.Clone(path), sp
		}
		return true
	})
	if plain != nil {
		return plainPath, plain
	}
	return htmlPath, html
}

// addSnippets fetches the start of each message's text part, one FETCH
// per distinct part number (nearly always "1" or "1.1"), and fills
// Summary.Snippet. structures maps UIDs to body structures.
func (c *Conn) addSnippets(out []Summary, structures map[uint32]imap.BodyStructure) error {
	type group struct {
		path []int
		uids []imap.UID
	}
	groups := map[string]*group{}
	parts := map[uint32]*imap.BodyStructureSinglePart{}
	for _, s := range out {
		path, sp := snippetPart(structures[s.UID])
		if sp == nil {
			continue
		}
		key := partString(path)
		if groups[key] == nil {
			groups[key] = &group{path: path}
		}
		groups[key].uids = append(groups[key].uids, imap.UID(s.UID))
		parts[s.UID] = sp
	}
	snippets := map[uint32]string{}
	for _, g := range groups {
		section := &imap.FetchItemBodySection{Peek: true, Part: g.path, Partial: &imap.SectionPartial{Size: snippetFetch}}
		var bufs []*imapclient.FetchMessageBuffer
		if err := c.do("fetch snippets", func() (err error) {
			bufs, err = c.client.Fetch(imap.UIDSetNum(g.uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
			return err
		}); err != nil {
			return err
		}
		for _, b := range bufs {
			for _, sec := range b.BodySection {
				snippets[uint32(b.UID)] = snippetText(parts[uint32(b.UID)], sec.Bytes)
			}
		}
	}
	for i := range out {
		out[i].Snippet = snippets[out[i].UID]
	}
	return nil
}

// snippetText decodes the start of a text part (which may end in the
// middle of an encoded character) into at most SnippetRunes runes of
// single-spaced text.
func snippetText(sp *imap.BodyStructureSinglePart, raw []byte) string {
	if sp == nil {
		return ""
	}
	decoded, _ := io.ReadAll(decodeTransfer(sp.Encoding, bytes.NewReader(raw)))
	s := decodeCharset(trimPartialRune(decoded), sp.Params["charset"])
	if sp.MediaType() == "text/html" {
		s = htmlToText(s)
	}
	s = strings.Join(strings.FieldsFunc(s, isSpace), " ")
	if utf8.RuneCountInString(s) > SnippetRunes {
		s, _ = window(s, 0, SnippetRunes)
		s += "…"
	}
	return s
}

// trimPartialRune drops a UTF-8 sequence cut off at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if c := b[len(b)-i]; c < 0x80 {
			return b
		} else if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// partString renders a BODYSTRUCTURE path as an IMAP section number.
func partString(path []int) string {
	s := make([]string, len(path))
	for i, n := range path {
		s[i] = strconv.Itoa(n)
	}
	if len(s) == 0 {
		return "1"
	}
	return strings.Join(s, ".")
}
