package mail

import (
	"bufio"
	"bytes"
	"context"
	"io"
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
	stale, err := c.openFolder(folder)
	if err != nil {
		return info, err
	}
	var found bool
	var sinkErr error
	sink := func(a Attachment, r io.Reader) error {
		info.Filename, info.ContentType = a.Filename, a.ContentType
		n, err := io.Copy(open(info), r)
		info.Size = n
		return err
	}
	// The part is found by the same parser that listed it, over the same
	// bytes (the whole message as it streams in, or for a message read by
	// sections the part alone), so numbering and decoding always agree
	// with get_message. A writer's error stops the copy; Close drains the
	// rest, so the connection stays usable. The size is asked for first,
	// so that a large message's other parts are never fetched.
	size, err := c.sizeOf(uid, stale)
	if err != nil {
		return info, err
	}
	if size > sectionedOver {
		bs, ok, err := c.structureOf(uid)
		if err != nil {
			return info, err
		}
		if plan := planSections(bs); ok && !plan.tooBig {
			return info, c.getSection(bs, plan, uid, part, sink)
		}
	}
	exists, err := c.streamWhole("fetch attachment", uid, 0, func(r io.Reader) { found, sinkErr = streamPart(r, part, sink) })
	switch {
	case err != nil:
		return info, err
	case !exists:
		return info, notFound("get attachment", "no message with UID %d in %q", uid, folder)
	case !found:
		return info, notFound("get attachment", "message %d has no part %s: take part numbers from get_message", uid, part)
	}
	return info, sinkErr
}

// sizeOf returns the RFC822.SIZE of uid in the selected folder, looked
// for again after a NOOP when stale (see openFolder); a missing message
// yields KindNotFound.
func (c *Conn) sizeOf(uid uint32, stale bool) (int64, error) {
	size, err := c.fetchSize(uid)
	if KindOf(err) == KindNotFound && stale {
		if err = c.catchUp(); err == nil {
			size, err = c.fetchSize(uid)
		}
	}
	return size, err
}

func (c *Conn) fetchSize(uid uint32) (int64, error) {
	bufs, err := c.fetch("fetch size", imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, RFC822Size: true})
	if err != nil {
		return 0, err
	}
	for _, b := range bufs {
		if uint32(b.UID) == uid {
			return b.RFC822Size, nil
		}
	}
	return 0, notFound("get attachment", "no message with UID %d in %q", uid, c.selected)
}

// getSection streams one part of a message read by sections: its MIME
// header and body fetched alone, read by the parser as a message of one
// part.
func (c *Conn) getSection(bs imap.BodyStructure, plan *sectionPlan, uid uint32, part string, sink func(Attachment, io.Reader) error) error {
	missing := notFound("get attachment", "message %d has no part %s: take part numbers from get_message", uid, part)
	// The walker reads the part as a message of one part, "1"; a file
	// inside a TNEF part "2" is "2.1" there and "1.1" here.
	target := "1"
	if plan.leaves[part] == nil {
		i := strings.LastIndexByte(part, '.')
		if sp := plan.leaves[part[:max(i, 0)]]; i < 0 || sp == nil || !isTNEF(mediaTypeOf(sp), sp.Filename()) {
			return missing
		}
		part, target = part[:i], "1"+part[i:]
	}
	path, digest := partPath(bs, part)
	head := &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierMIME, Part: path}
	if len(path) == 0 {
		head = &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader}
		path = []int{1}
	}
	bufs, err := c.fetch("fetch part header", imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{head}})
	if err != nil {
		return err
	}
	var mime []byte
	for _, b := range bufs {
		for _, sec := range b.BodySection {
			mime = sec.Bytes[:min(len(sec.Bytes), maxSectionMIME)]
		}
	}
	if mime = bytes.TrimRight(mime, "\r\n"); len(mime) > 0 {
		mime = append(mime, "\r\n"...)
	}
	mime = append(mime, "\r\n"...) // the header ends at the blank line
	var found bool
	var sinkErr error
	err = c.stream("fetch attachment", 0, func() error {
		cmd := c.client.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true, Part: path}}})
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				if it, ok := item.(imapclient.FetchItemDataBodySection); ok && it.Literal != nil && !found {
					w := &mimeWalker{target: target, sink: sink}
					h, body := readHeader(bufio.NewReaderSize(io.MultiReader(bytes.NewReader(mime), &armedReader{r: it.Literal, c: c}), 32<<10))
					w.entity(h, body, "", maxDepth, digest)
					found, sinkErr = w.found, w.err
				}
			}
		}
		return cmd.Close()
	})
	switch {
	case err != nil:
		return err
	case !found:
		return missing
	}
	return sinkErr
}

// partPath returns the path of leaf part (a key of sectionPlan.leaves)
// in bs, nil for a message of one part, and whether its parent is a
// multipart/digest (where a part without a type is a message).
func partPath(bs imap.BodyStructure, part string) ([]int, bool) {
	var path []int
	digest := false
	for _, s := range strings.Split(part, ".") {
		mp, ok := bs.(*imap.BodyStructureMultiPart)
		if !ok {
			break
		}
		n, _ := strconv.Atoi(s)
		path, digest, bs = append(path, n), strings.EqualFold(mp.Subtype, "digest"), mp.Children[n-1]
	}
	return path, digest
}
