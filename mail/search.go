package mail

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-imap/v2"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// SearchQuery selects messages. All set criteria must match. Text
// criteria are case-insensitive substrings as the server implements
// them. Since is inclusive (on or after that day), Before is exclusive
// (strictly before that day); both compare INTERNALDATE at day
// granularity in the server's time zone.
type SearchQuery struct {
	From, To, Cc, Subject string
	Body                  string // message body only
	Text                  string // headers and body
	Since, Before         time.Time
	Unread                bool // only without \Seen
	Flagged               bool // only with \Flagged
	Answered              bool // only with \Answered
	// HasAttachment keeps messages whose top-level type is
	// multipart/mixed, the structure nearly every attachment lives in.
	HasAttachment bool
	Larger        int64 // size in bytes strictly above
	Smaller       int64 // size in bytes strictly below
	// GmailRaw is a Gmail search query (X-GM-RAW, the syntax of Gmail's
	// search box); only on Gmail, and only alone.
	GmailRaw string
	Limit    int
	Cursor   string
	// Snippets adds the start of each message's text to the summaries.
	Snippets bool
}

// Search returns a page of folder's messages matching q, newest first,
// with the total number of matches. When the server answers BADCHARSET to
// a UTF-8 search, it is retried with the criteria folded to US-ASCII
// (accents dropped), which may match more.
func (e *Engine) Search(ctx context.Context, acct *Account, folder string, q SearchQuery) (*Page, error) {
	var page *Page
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
		page, err = c.page(folder, q)
		return err
	})
	return page, err
}

// criteria translates q, or returns nil when q selects everything.
func (q SearchQuery) criteria() (*imap.SearchCriteria, error) {
	if q.GmailRaw != "" {
		if strings.ContainsAny(q.GmailRaw, "\r\n") {
			return nil, invalid("search", "search text contains a line break")
		}
		if q != (SearchQuery{GmailRaw: q.GmailRaw, Limit: q.Limit, Cursor: q.Cursor, Snippets: q.Snippets}) {
			return nil, invalid("search", "a Gmail query cannot be combined with other criteria; put them in the Gmail query")
		}
		return &imap.SearchCriteria{}, nil
	}
	cr := &imap.SearchCriteria{Since: q.Since, Before: q.Before, Larger: q.Larger, Smaller: q.Smaller}
	for _, h := range []struct{ key, value string }{{"From", q.From}, {"To", q.To}, {"Cc", q.Cc}, {"Subject", q.Subject}} {
		if h.value != "" {
			cr.Header = append(cr.Header, imap.SearchCriteriaHeaderField{Key: h.key, Value: h.value})
		}
	}
	if q.HasAttachment {
		cr.Header = append(cr.Header, imap.SearchCriteriaHeaderField{Key: "Content-Type", Value: "multipart/mixed"})
	}
	if q.Body != "" {
		cr.Body = []string{q.Body}
	}
	if q.Text != "" {
		cr.Text = []string{q.Text}
	}
	if q.Unread {
		cr.NotFlag = append(cr.NotFlag, imap.FlagSeen)
	}
	if q.Flagged {
		cr.Flag = append(cr.Flag, imap.FlagFlagged)
	}
	if q.Answered {
		cr.Flag = append(cr.Flag, imap.FlagAnswered)
	}
	for _, s := range []string{q.From, q.To, q.Cc, q.Subject, q.Body, q.Text} {
		if strings.ContainsAny(s, "\r\n") {
			return nil, invalid("search", "search text contains a line break")
		}
	}
	if !q.Before.IsZero() && !q.Since.IsZero() && !q.Before.After(q.Since) {
		return nil, invalid("search", "before must be after since")
	}
	if q.Larger < 0 || q.Smaller < 0 {
		return nil, invalid("search", "sizes must not be negative")
	}
	if len(cr.Header) == 0 && cr.Body == nil && cr.Text == nil && cr.Flag == nil && cr.NotFlag == nil &&
		cr.Since.IsZero() && cr.Before.IsZero() && cr.Larger == 0 && cr.Smaller == 0 {
		return nil, nil
	}
	return cr, nil
}

// search returns the ascending UIDs in the selected folder matching
// criteria (all messages when criteria is nil).
func (c *Conn) search(q SearchQuery, criteria *imap.SearchCriteria) ([]imap.UID, error) {
	if q.GmailRaw != "" {
		if !c.has(capGmail) {
			return nil, &Error{Kind: KindUnsupported, Op: "search", Addr: c.addr, Err: errors.New("gmail_raw queries work only on Gmail (X-GM-EXT-1)")}
		}
		return c.gmailSearch(c.selected, q.GmailRaw)
	}
	if criteria == nil {
		criteria = &imap.SearchCriteria{}
	}
	var opts *imap.SearchOptions
	if c.has(imap.CapESearch) {
		opts = &imap.SearchOptions{ReturnAll: true}
	}
	var data *imap.SearchData
	run := func(cr *imap.SearchCriteria) error {
		return c.do("search", func() (err error) {
			data, err = c.client.UIDSearch(cr, opts).Wait()
			return err
		})
	}
	err := run(criteria)
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeBadCharset {
		err = run(asciiCriteria(criteria))
	}
	if err != nil {
		return nil, err
	}
	uids, _ := data.All.(imap.UIDSet)
	list, _ := uids.Nums()
	slices.Sort(list)
	return list, nil
}

// asciiCriteria returns a copy of cr with every string folded to ASCII.
func asciiCriteria(cr *imap.SearchCriteria) *imap.SearchCriteria {
	out := *cr
	out.Header = slices.Clone(cr.Header)
	for i := range out.Header {
		out.Header[i].Value = foldASCII(out.Header[i].Value)
	}
	fold := func(ss []string) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = foldASCII(s)
		}
		return out
	}
	out.Body, out.Text = fold(cr.Body), fold(cr.Text)
	return &out
}

// foldASCII drops accents and then every remaining non-ASCII rune:
// "Müller" becomes "Muller", "東京" becomes "".
func foldASCII(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), runes.Remove(runes.Predicate(func(r rune) bool { return r > unicode.MaxASCII })))
	out, _, err := transform.String(t, s)
	if err != nil {
		return ""
	}
	return out
}
