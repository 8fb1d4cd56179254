package mail

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// A message larger than sectionedOver is read by sections: its
// BODYSTRUCTURE, its header, each part's MIME header and the bodies of the
// text parts, never the bodies of attachments. Smaller messages are read
// whole in the first FETCH, which costs no extra round trip. A TNEF part
// (winmail.dat) is fetched too, to list the files inside it.
const sectionedOver = 256 << 10

// Bounds of a sectioned read: leaf parts (a message with more is read
// whole), bytes of a MIME header, and encoded bytes of one text part
// or TNEF part (enough for the maxTextPart bytes of text the reader
// keeps, in any transfer encoding; a larger TNEF part is listed as one
// file).
const (
	maxSectionLeaves  = 200
	maxSectionHeader  = 1 << 20
	maxSectionMIME    = 64 << 10
	maxSectionTextRaw = 3 * maxTextPart
)

// structureOf fetches the BODYSTRUCTURE of uid in the selected folder.
// ok is false when the server's answer could not be read (the connection
// is then replaced), when the borrow may not risk that any more (mayRisk),
// or when the structure is one the server could not split; the caller
// reads the message whole instead.
func (c *Conn) structureOf(uid uint32) (bs imap.BodyStructure, ok bool, err error) {
	if !c.mayRisk() {
		return nil, false, nil
	}
	folder := c.selected
	bufs, err := c.fetch("fetch structure", imap.UIDSetNum(imap.UID(uid)), structureFetch)
	switch {
	case err != nil && c.recoverable():
		c.cfg.Logger.Warn("mail: BODYSTRUCTURE unreadable, reading the message whole", "addr", c.addr, "folder", folder, "uid", uid, "err", err)
		return nil, false, c.redial(folder)
	case err != nil:
		return nil, false, err
	case len(bufs) != 1 || bufs[0].BodyStructure == nil:
		return nil, false, nil
	}
	bs = bufs[0].BodyStructure
	return bs, !unsplit(bs), nil
}

// sectionPlan is what a sectioned read fetches for one structure.
type sectionPlan struct {
	sections []*imap.FetchItemBodySection
	leaves   map[string]*imap.BodyStructureSinglePart // by part number
	tooBig   bool
}

// planSections lists the sections that describe bs and hold its text.
func planSections(bs imap.BodyStructure) *sectionPlan {
	p := &sectionPlan{leaves: map[string]*imap.BodyStructureSinglePart{},
		sections: []*imap.FetchItemBodySection{{Peek: true, Specifier: imap.PartSpecifierHeader}}}
	var walk func(bs imap.BodyStructure, path []int, depth int)
	walk = func(bs imap.BodyStructure, path []int, depth int) {
		if p.tooBig {
			return
		}
		if len(path) > 0 {
			p.sections = append(p.sections, &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierMIME, Part: path})
		}
		switch n := bs.(type) {
		case *imap.BodyStructureMultiPart:
			if depth >= maxDepth {
				p.tooBig = true
				return
			}
			for i, child := range n.Children {
				walk(child, append(path[:len(path):len(path)], i+1), depth+1)
			}
		case *imap.BodyStructureSinglePart:
			if p.leaves[partString(path)] = n; len(p.leaves) > maxSectionLeaves {
				p.tooBig = true
				return
			}
			if bodyFetched(n) {
				body := path
				if len(body) == 0 {
					body = []int{1}
				}
				p.sections = append(p.sections, &imap.FetchItemBodySection{Peek: true, Part: body, Partial: &imap.SectionPartial{Size: maxSectionTextRaw}})
			}
		}
	}
	walk(bs, nil, 0)
	return p
}

// sectionKey names a fetched section: "H" for the message header,
// "M1.2" for part 1.2's MIME header, "B1.2" for its body.
func sectionKey(s *imap.FetchItemBodySection) string {
	switch s.Specifier {
	case imap.PartSpecifierHeader:
		return "H"
	case imap.PartSpecifierMIME:
		return "M" + partString(s.Part)
	}
	return "B" + partString(s.Part)
}

// maxSectionBytes bounds all the sections of one read together.
const maxSectionBytes = maxSectionTextRaw + 4<<20

// fetchSections fetches the planned sections of uid, each read up to its
// bound and all of them up to maxSectionBytes; a section the plan did not
// ask for, or one sent twice, is skipped.
func (c *Conn) fetchSections(uid uint32, p *sectionPlan) (map[string][]byte, error) {
	got := map[string][]byte{}
	planned := map[string]bool{}
	for _, sec := range p.sections {
		planned[sectionKey(sec)] = true
	}
	budget := int64(maxSectionBytes)
	err := c.stream("fetch sections", 0, func() error {
		cmd := c.client.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: p.sections})
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				it, ok := item.(imapclient.FetchItemDataBodySection)
				if !ok || it.Literal == nil || it.Section == nil {
					continue
				}
				key := sectionKey(it.Section)
				if !planned[key] {
					continue
				}
				planned[key] = false
				limit := int64(maxSectionTextRaw)
				switch key[0] {
				case 'H':
					limit = maxSectionHeader
				case 'M':
					limit = maxSectionMIME
				}
				b, err := io.ReadAll(io.LimitReader(&armedReader{r: it.Literal, c: c}, min(limit, budget)))
				if err != nil {
					return err
				}
				budget -= int64(len(b))
				got[key] = b
			}
		}
		return cmd.Close()
	})
	return got, err
}

// parseSections reads a message from its structure and fetched sections
// as parseMessage reads it whole: the same text, the same attachments
// (their sizes from the structure, as their bodies were not fetched).
// Part numbers are the server's.
func parseSections(bs imap.BodyStructure, p *sectionPlan, got map[string][]byte) *parsedMessage {
	w := &mimeWalker{}
	top, _ := readHeader(bufio.NewReader(bytes.NewReader(got["H"])))
	var walk func(bs imap.BodyStructure, path []int, digest bool) content
	walk = func(bs imap.BodyStructure, path []int, digest bool) content {
		h := top
		if len(path) > 0 {
			h, _ = readHeader(bufio.NewReader(bytes.NewReader(got["M"+partString(path)])))
		}
		if mp, ok := bs.(*imap.BodyStructureMultiPart); ok {
			parts := make([]content, 0, len(mp.Children))
			for i, child := range mp.Children {
				parts = append(parts, walk(child, append(path[:len(path):len(path)], i+1), strings.EqualFold(mp.Subtype, "digest")))
			}
			return w.combine("multipart/"+strings.ToLower(mp.Subtype), parts)
		}
		body := got["B"+partString(path)]
		if len(path) == 0 {
			body = got["B1"]
		}
		// maxDepth: the server found no parts here, so none are read.
		return w.entity(h, bytes.NewReader(body), partString(path), maxDepth, digest)
	}
	c := w.resolve(walk(bs, nil, false))
	for i, a := range w.atts {
		if sp := p.leaves[a.Part]; sp != nil && !bodyFetched(sp) {
			w.atts[i].Size = decodedSize(sp)
		}
	}
	return &parsedMessage{Header: headerOf(top), Text: strings.TrimSpace(c.text), HTML: c.html, Attachments: w.atts}
}

// bodyFetched reports a leaf whose body a sectioned read fetches: text
// shown as the message, and a TNEF part, whose files are listed.
func bodyFetched(sp *imap.BodyStructureSinglePart) bool {
	text, _ := partRole(mediaTypeOf(sp), dispositionOf(sp), sp.Filename())
	return (text || isTNEF(mediaTypeOf(sp), sp.Filename())) && int64(sp.Size) <= maxSectionTextRaw
}

// decodedSize estimates a part's decoded size from its encoded size:
// base64 is taken to be written in lines of 76 characters.
func decodedSize(sp *imap.BodyStructureSinglePart) int64 {
	n := int64(sp.Size)
	if strings.EqualFold(strings.TrimSpace(sp.Encoding), "base64") {
		lines := (n + 77) / 78
		return max(0, n-2*lines) * 3 / 4
	}
	return n
}
