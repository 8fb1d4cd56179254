package mail

import (
	"context"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// AttachmentInfo describes a part written by GetAttachment.
type AttachmentInfo struct {
	Part        string
	Filename    string
	ContentType string
	Size        int64 // decoded bytes written
}

var partPattern = regexp.MustCompile(`^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,19}$`)

// GetAttachment streams the decoded content of one body part (as listed
// in Message.Attachments). Once the part is found, open is called exactly
// once with its Part, Filename and ContentType (Size is still 0) and
// returns the writer the content goes to, so a caller can set headers
// first. Only that section is fetched and it is copied as it arrives:
// memory does not grow with the part's size. The returned info has the
// decoded Size written. A missing message or part yields KindNotFound
// and open is not called; an error from the writer is returned wrapped.
func (e *Engine) GetAttachment(ctx context.Context, acct *Account, folder string, uid uint32, part string, open func(AttachmentInfo) io.Writer) (AttachmentInfo, error) {
	var info AttachmentInfo
	if !partPattern.MatchString(part) {
		return info, invalid("get attachment", "part %q is not a section number such as 2 or 1.3", part)
	}
	err := e.Do(ctx, acct, func(c *Conn) (err error) {
		info, err = c.getAttachment(folder, uid, part, open)
		return err
	})
	return info, err
}

func (c *Conn) getAttachment(folder string, uid uint32, part string, open func(AttachmentInfo) io.Writer) (AttachmentInfo, error) {
	info := AttachmentInfo{Part: part}
	if _, err := c.selectFolder(folder); err != nil {
		return info, err
	}
	set := imap.UIDSetNum(imap.UID(uid))
	var bufs []*imapclient.FetchMessageBuffer
	if err := c.do("fetch structure", func() (err error) {
		bufs, err = c.client.Fetch(set, &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
		return err
	}); err != nil {
		return info, err
	}
	if len(bufs) == 0 {
		return info, notFound("get attachment", "no message with UID %d in %q", uid, folder)
	}
	sp := findPart(bufs[0].BodyStructure, part)
	if sp == nil {
		return info, notFound("get attachment", "message %d has no part %s", uid, part)
	}
	info.ContentType, info.Filename = sp.MediaType(), sp.Filename()
	w := open(info)
	path := make([]int, 0, 4)
	for _, s := range strings.Split(part, ".") {
		n, _ := strconv.Atoi(s)
		path = append(path, n)
	}
	section := &imap.FetchItemBodySection{Peek: true, Part: path}
	err := c.do("fetch attachment", func() error {
		cmd := c.client.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				if it, ok := item.(imapclient.FetchItemDataBodySection); ok && it.Literal != nil {
					n, err := io.Copy(w, decodeTransfer(sp.Encoding, &armedReader{r: it.Literal, c: c}))
					info.Size += n
					if err != nil {
						return err
					}
				}
			}
		}
		return cmd.Close()
	})
	return info, err
}

// findPart returns the single part at IMAP section number part.
func findPart(bs imap.BodyStructure, part string) *imap.BodyStructureSinglePart {
	var found *imap.BodyStructureSinglePart
	if bs == nil {
		return nil
	}
	bs.Walk(func(path []int, p imap.BodyStructure) bool {
		if sp, ok := p.(*imap.BodyStructureSinglePart); ok && partString(path) == part {
			found = sp
		}
		return found == nil
	})
	return found
}

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

// decodeTransfer undoes a Content-Transfer-Encoding while streaming.
func decodeTransfer(enc string, r io.Reader) io.Reader {
	switch strings.ToLower(enc) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// newlineStripper drops line breaks and the spaces and tabs some
// senders leave in base64 lines; base64.NewDecoder skips only CR and LF.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, b := range p[:n] {
		if b != '\r' && b != '\n' && b != ' ' && b != '\t' {
			p[j] = b
			j++
		}
	}
	return j, err
}
