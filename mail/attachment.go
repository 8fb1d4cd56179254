package mail

import (
	"context"
	"io"
	"regexp"

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
	var exists, found bool
	var sinkErr error
	sink := func(a Attachment, r io.Reader) error {
		info.Filename, info.ContentType = a.Filename, a.ContentType
		n, err := io.Copy(open(info), r)
		info.Size = n
		return err
	}
	// The part is found by the same parser that listed it, over the whole
	// message as it streams in, so numbering and decoding always agree
	// with get_message. A writer's error stops the copy; Close drains the
	// rest, so the connection stays usable.
	err := c.stream("fetch attachment", func() error {
		cmd := c.client.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{wholeBody}})
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				if it, ok := item.(imapclient.FetchItemDataBodySection); ok && it.Literal != nil && !exists {
					exists = true
					found, sinkErr = streamPart(&armedReader{r: it.Literal, c: c}, part, sink)
				}
			}
		}
		return cmd.Close()
	})
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
