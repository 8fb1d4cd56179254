package mail

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
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
// Its Header is decoded by the same code as get_message's, so the two
// always agree; Date is the received date (INTERNALDATE) with DateOK
// false when the message has no readable Date header.
type Summary struct {
	UID uint32
	Header
	Flags          []string
	Size           int64
	HasAttachments bool
	// Snippet is the start of the text, single-spaced, when asked for.
	Snippet string
	// Note says what could not be read of this message, if anything.
	Note string
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
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
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

// summaryHeader holds the header fields a summary is decoded from.
var summaryHeader = &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader,
	HeaderFields: []string{"Date", "From", "Sender", "To", "Cc", "Subject", "Message-Id", "In-Reply-To", "References", "Content-Type"}}

var (
	summaryFetch = &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: []*imap.FetchItemBodySection{summaryHeader}}
	summaryFetchBare = &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{summaryHeader}}
	structureFetch = &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
)

// maxParseForStructure bounds a message read whole because the server's
// BODYSTRUCTURE of it could not be parsed.
const maxParseForStructure = 16 << 20

// summaries fetches the summaries of set, newest (highest UID) first,
// with snippets when asked.
func (c *Conn) summaries(set imap.NumSet, snippets bool) ([]Summary, error) {
	out, structures, err := c.cachedSummaries(set, snippets)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Summary) int { return int(int64(b.UID) - int64(a.UID)) })
	if !snippets || c.broken { // a connection lost for good lists what it read, without snippets
		return out, nil
	}
	return out, c.addSnippets(out, structures)
}

// fetched is a summary with the structure it was made from.
type fetched struct {
	Summary
	structure imap.BodyStructure
}

// fetchSummaries fetches set in one command. When the answer cannot be
// parsed (go-imap fails on some servers' BODYSTRUCTURE of unusual parts,
// and the connection is lost with it), it reads the set again without
// structures and then each structure alone, so one message never breaks
// a page: a message whose structure still cannot be read is read whole
// to find its attachments, and gets a Note if even that fails. Each lost
// connection costs a login; once the borrow may risk no more (mayRisk),
// no structure is asked for, and the messages not read get notReadYet.
func (c *Conn) fetchSummaries(set imap.NumSet) ([]fetched, error) {
	folder := c.selected
	if c.mayRisk() {
		bufs, err := c.fetch("fetch summaries", set, summaryFetch)
		if err == nil {
			out := summariesOf(bufs)
			for i := range out {
				if unsplit(out[i].structure) {
					out[i].HasAttachments, out[i].Note = c.attachmentsByReading(folder, out[i].UID, out[i].Size)
				}
			}
			return out, nil
		}
		if !c.recoverable() {
			return nil, err
		}
		c.cfg.Logger.Warn("mail: FETCH answer unreadable, reading the page again without BODYSTRUCTURE", "addr", c.addr, "folder", folder, "err", err)
		if err := c.redial(folder); err != nil {
			return nil, err
		}
	}
	bufs, err := c.fetch("fetch summaries", set, summaryFetchBare)
	if err != nil {
		return nil, err
	}
	out := summariesOf(bufs)
	slices.SortFunc(out, func(a, b fetched) int { return int(int64(b.UID) - int64(a.UID)) }) // newest first: the page's top is read
	for i := range out {
		if !c.mayRisk() || c.broken {
			for j := i; j < len(out); j++ {
				out[j].Note = notReadYet
			}
			break
		}
		uid := imap.UIDSetNum(imap.UID(out[i].UID))
		one, err := c.fetch("fetch structure", uid, structureFetch)
		if err == nil && len(one) == 1 {
			out[i].structure = one[0].BodyStructure
			out[i].HasAttachments = hasAttachments(one[0].BodyStructure)
			continue
		}
		if err != nil {
			if !c.recoverable() {
				return nil, err
			}
			c.cfg.Logger.Warn("mail: BODYSTRUCTURE unreadable", "addr", c.addr, "folder", folder, "uid", out[i].UID, "err", err)
			if err := c.redial(folder); err != nil {
				return nil, err
			}
		}
		out[i].HasAttachments, out[i].Note = c.attachmentsByReading(folder, out[i].UID, out[i].Size)
	}
	return out, nil
}

// Notes of a summary whose attachments could not be told: its structure
// could not be read, or it was not read because the borrow's logins were
// spent on other such messages.
const (
	structureUnknown = "the server's description of this message could not be read; whether it has attachments is unknown"
	notReadYet       = "not read yet, as the server's answers about other messages could not be read; whether it has attachments is unknown (get_message tells)"
)

// attachmentsByReading reads a message of the selected folder whole to
// tell whether it has attachments, for when its structure could not be
// read. It never asks for the structure again: that would lose the
// connection once more, and cost another login.
func (c *Conn) attachmentsByReading(folder string, uid uint32, size int64) (bool, string) {
	if size > maxParseForStructure {
		return false, structureUnknown
	}
	var msg *parsedMessage
	exists, err := c.streamWhole("fetch message", uid, maxParseForStructure, func(r io.Reader) { msg = parseMessage(r) })
	if err != nil {
		if c.recoverable() {
			_ = c.redial(folder)
		}
		return false, structureUnknown
	}
	if !exists || msg == nil {
		return false, structureUnknown
	}
	return len(msg.Attachments) > 0, ""
}

// fetch runs one FETCH and collects its answer.
func (c *Conn) fetch(op string, set imap.NumSet, opt *imap.FetchOptions) (bufs []*imapclient.FetchMessageBuffer, err error) {
	err = c.do(op, func() error {
		bufs, err = c.client.Fetch(set, opt).Collect()
		return err
	})
	return bufs, err
}

func summariesOf(bufs []*imapclient.FetchMessageBuffer) []fetched {
	out := make([]fetched, 0, len(bufs))
	for _, m := range bufs {
		out = append(out, fetched{Summary: summaryOf(m), structure: m.BodyStructure})
	}
	return out
}

func summaryOf(m *imapclient.FetchMessageBuffer) Summary {
	var raw []byte
	for _, sec := range m.BodySection {
		raw = sec.Bytes
	}
	s := Summary{UID: uint32(m.UID), Size: m.RFC822Size, HasAttachments: hasAttachments(m.BodyStructure),
		Header: headerOf(headerBytes(raw))}
	if !s.DateOK {
		s.Date = m.InternalDate
	}
	for _, f := range m.Flags {
		s.Flags = append(s.Flags, string(f))
	}
	return s
}

// hasAttachments reports whether any leaf part is an attachment, by the
// rule get_message uses (partRole).
func hasAttachments(bs imap.BodyStructure) bool {
	found := false
	if bs == nil {
		return false
	}
	bs.Walk(func(_ []int, part imap.BodyStructure) bool {
		if sp, ok := part.(*imap.BodyStructureSinglePart); ok {
			if _, att := partRole(mediaTypeOf(sp), dispositionOf(sp), sp.Filename()); att {
				found = true
			}
		}
		return !found
	})
	return found
}

// unsplit reports a multipart part that the server could not split
// (it lists no boundary, for example one written in RFC 2231 pieces),
// where its structure says nothing about the attachments the message
// has.
func unsplit(bs imap.BodyStructure) bool {
	found := false
	if bs == nil {
		return false
	}
	bs.Walk(func(_ []int, part imap.BodyStructure) bool {
		if mp, ok := part.(*imap.BodyStructureMultiPart); ok && (mp.Extended == nil || mp.Extended.Params["boundary"] == "") {
			found = true
		}
		return !found
	})
	return found
}

// mediaTypeOf is a part's media type as the message parser reads it: a
// type the server could not read is the RFC 2045 default, text/plain.
func mediaTypeOf(sp *imap.BodyStructureSinglePart) string {
	if sp.Type == "" || sp.Subtype == "" {
		return "text/plain"
	}
	return sp.MediaType()
}

func dispositionOf(sp *imap.BodyStructureSinglePart) string {
	if d := sp.Disposition(); d != nil {
		return d.Value
	}
	return ""
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
