package mail

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DefaultLimit and MaxLimit bound a page of messages.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Summary is the compact view of one message in a list or search page.
type Summary struct {
	UID            uint32
	Date           time.Time // Date header, else INTERNALDATE
	From           string    // "Name <addr>"
	To             []string
	Subject        string
	Flags          []string
	Size           int64
	HasAttachments bool
	MessageID      string
	// Snippet is the start of the text, single-spaced, when asked for.
	Snippet string
}

// Page is one page of messages, newest (highest UID) first.
type Page struct {
	Messages []Summary
	// Total counts all messages of the folder that match, not only this
	// page.
	Total int
	// NextCursor fetches the next (older) page; empty on the last page.
	NextCursor string
}

// ListOptions filters and pages ListMessages. Dates compare on the
// server's day granularity: Since is inclusive (on or after that day),
// Before is exclusive (strictly before that day).
type ListOptions struct {
	Limit   int    // default DefaultLimit, at most MaxLimit
	Cursor  string // from a previous Page.NextCursor
	Unread  bool   // only messages without \Seen
	Flagged bool   // only messages with \Flagged
	Since   time.Time
	Before  time.Time
	From    string // substring of the From header
	// Snippets adds the start of each message's text (one more round
	// trip).
	Snippets bool
}

// ListMessages returns a page of folder's messages, newest first, and the
// number of messages matching the filters. Reading never sets \Seen.
func (e *Engine) ListMessages(ctx context.Context, acct *Account, folder string, opt ListOptions) (*Page, error) {
	q := SearchQuery{Limit: opt.Limit, Cursor: opt.Cursor, Unread: opt.Unread, Flagged: opt.Flagged,
		Since: opt.Since, Before: opt.Before, From: opt.From, Snippets: opt.Snippets}
	var page *Page
	err := e.Do(ctx, acct, func(c *Conn) (err error) {
		page, err = c.page(folder, q)
		return err
	})
	return page, err
}

// page selects folder and returns the page q asks for.
func (c *Conn) page(folder string, q SearchQuery) (*Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	sel, err := c.selectFolder(folder)
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor(q.Cursor, sel.UIDValidity)
	if err != nil {
		return nil, err
	}
	criteria, err := q.criteria()
	if err != nil {
		return nil, err
	}
	if criteria == nil && before == 0 {
		return c.newest(sel, limit, q.Snippets)
	}
	uids, err := c.search(q, criteria)
	if err != nil {
		return nil, err
	}
	page := &Page{Total: len(uids)}
	if before != 0 {
		uids = uids[:sortedIndex(uids, before)]
	}
	if len(uids) > limit {
		uids = uids[len(uids)-limit:]
		page.NextCursor = encodeCursor(sel.UIDValidity, uids[0])
	}
	if len(uids) == 0 {
		return page, nil
	}
	page.Messages, err = c.summaries(imap.UIDSetNum(uids...), q.Snippets)
	return page, err
}

// newest lists the last limit messages by sequence number, which needs
// no SEARCH.
func (c *Conn) newest(sel *imap.SelectData, limit int, snippets bool) (*Page, error) {
	n := sel.NumMessages
	page := &Page{Total: int(n)}
	if n == 0 {
		return page, nil
	}
	first := uint32(1)
	if n > uint32(limit) {
		first = n - uint32(limit) + 1
	}
	var err error
	page.Messages, err = c.summaries(imap.SeqSetNum(seqRange(first, n)...), snippets)
	if err == nil && first > 1 && len(page.Messages) > 0 {
		page.NextCursor = encodeCursor(sel.UIDValidity, imap.UID(page.Messages[len(page.Messages)-1].UID))
	}
	return page, err
}

func seqRange(a, b uint32) []uint32 {
	out := make([]uint32, 0, b-a+1)
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

// sortedIndex returns the number of uids below limit in ascending uids.
func sortedIndex(uids []imap.UID, limit imap.UID) int {
	i, _ := slices.BinarySearch(uids, limit)
	return i
}

var summaryFetch = &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true,
	InternalDate: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}

// summaries fetches the summaries of set, newest (highest UID) first,
// with snippets when asked.
func (c *Conn) summaries(set imap.NumSet, snippets bool) ([]Summary, error) {
	var msgs []*imapclient.FetchMessageBuffer
	if err := c.do("fetch summaries", func() (err error) {
		msgs, err = c.client.Fetch(set, summaryFetch).Collect()
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(msgs))
	structures := make(map[uint32]imap.BodyStructure, len(msgs))
	for _, m := range msgs {
		out = append(out, summaryOf(m))
		structures[uint32(m.UID)] = m.BodyStructure
	}
	slices.SortFunc(out, func(a, b Summary) int { return int(int64(b.UID) - int64(a.UID)) })
	if snippets {
		return out, c.addSnippets(out, structures)
	}
	return out, nil
}

func summaryOf(m *imapclient.FetchMessageBuffer) Summary {
	s := Summary{UID: uint32(m.UID), Size: m.RFC822Size, Date: m.InternalDate, HasAttachments: hasAttachments(m.BodyStructure)}
	for _, f := range m.Flags {
		s.Flags = append(s.Flags, string(f))
	}
	if env := m.Envelope; env != nil {
		if !env.Date.IsZero() {
			s.Date = env.Date
		}
		s.Subject, s.MessageID = env.Subject, env.MessageID
		if len(env.From) > 0 {
			s.From = formatAddress(env.From[0])
		}
		for _, a := range env.To {
			s.To = append(s.To, formatAddress(a))
		}
	}
	return s
}

// formatAddress renders "Name <addr>" or "addr".
func formatAddress(a imap.Address) string {
	if a.Name == "" {
		return a.Addr()
	}
	return a.Name + " <" + a.Addr() + ">"
}

// hasAttachments reports any part with an attachment disposition, a file
// name, or of type message/rfc822.
func hasAttachments(bs imap.BodyStructure) bool {
	found := false
	if bs == nil {
		return false
	}
	bs.Walk(func(_ []int, part imap.BodyStructure) bool {
		if sp, ok := part.(*imap.BodyStructureSinglePart); ok {
			d := sp.Disposition()
			if (d != nil && strings.EqualFold(d.Value, "attachment")) || sp.Filename() != "" ||
				strings.EqualFold(sp.MediaType(), "message/rfc822") {
				found = true
			}
		}
		return !found
	})
	return found
}

// Cursors are opaque to callers: "v1:<uidvalidity>:<uid>" in base64url.
func encodeCursor(validity uint32, uid imap.UID) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "v1:%d:%d", validity, uid))
}

// decodeCursor returns the UID the page ends below, or 0 for no cursor.
// A cursor from another folder generation yields KindInvalid.
func decodeCursor(cursor string, validity uint32) (imap.UID, error) {
	if cursor == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	parts := strings.Split(string(raw), ":")
	if err != nil || len(parts) != 3 || parts[0] != "v1" {
		return 0, invalid("cursor", "malformed cursor")
	}
	v, err1 := strconv.ParseUint(parts[1], 10, 32)
	uid, err2 := strconv.ParseUint(parts[2], 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return 0, invalid("cursor", "malformed cursor")
	}
	if uint32(v) != validity {
		return 0, invalid("cursor", "the folder changed (UIDVALIDITY); start again without a cursor")
	}
	return imap.UID(uid), nil
}
