package mcp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imap-mcp/imap-mcp/mail"
)

// Bounds of what one message contributes to a tool's text, whatever it
// holds. Structured content carries the same capped values plus counts.
const (
	maxSubjectRunes  = 300 // a subject anywhere
	maxAddressRunes  = 120 // one address
	maxAddressesText = 5   // addresses of one list in get_message's text
	maxAddressesJSON = 20  // addresses of one list in structured content
	maxAttachText    = 20  // attachment lines in get_message's text
	maxAttachJSON    = 100 // attachments in structured content
	maxFilenameRunes = 120
	// A list line: the subject and sender are cut by bytes, which keeps
	// scripts that need more tokens per character within the budget too.
	listSubjectBytes = 90
	listFromBytes    = 45
	threadFromBytes  = 28
)

// frame marks where mail-derived text starts and ends in one tool
// result. Its markers carry a random nonce that the content cannot know,
// and any marker-like text inside the content is neutralised, so mail
// can neither close the frame nor forge one.
type frame struct {
	nonce    string
	notified bool // the untrusted notice has been written
}

func newFrame() *frame {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &frame{nonce: hex.EncodeToString(b)}
}

// wrap returns content between an opening and a closing marker of kind,
// the first of a response preceded by the untrusted notice. attrs are our
// own, never mail's.
func (f *frame) wrap(kind, attrs, content string) string {
	var b strings.Builder
	f.wrapTo(&b, kind, attrs, content)
	return b.String()
}

// wrapTo writes what wrap returns to b.
func (f *frame) wrapTo(b *strings.Builder, kind, attrs, content string) {
	content = neutralise(strings.TrimRight(content, "\n"))
	b.Grow(len(untrustedNotice) + len(content) + len(attrs) + 2*len(kind) + 3*len(f.nonce) + 100)
	write := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	if !f.notified {
		f.notified = true
		write(untrustedNotice, ` Mail text ends only at a closing marker with id="`, f.nonce, "\".\n")
	}
	write("<untrusted-", kind, ` id="`, f.nonce, `"`)
	if attrs != "" {
		write(" ", attrs)
	}
	write(">\n", content, "\n</untrusted-", kind, ` id="`, f.nonce, "\">\n")
}

// markerText matches anything that reads like one of our markers: the
// word followed by any dash or dash-like sign, with anything invisible in
// between (spaces of any kind, format and control characters, combining
// marks).
var markerText = regexp.MustCompile(`(?i)(untrusted)([\s\p{Z}\p{Cf}\p{Cc}\p{Mn}\p{Me}]*` +
	`[\p{Pd}\x{2212}\x{FE63}\x{FF0D}\x{2043}\x{207B}\x{208B}\x{2796}\x{02D7}\x{2500}\x{2501}\x{30FC}\x{FF70}\x{00AD}])`)

// neutralise rewrites marker-like text in content visibly, "untrusted-"
// to "untrusted_-", so no line of mail can pass for a marker, whatever
// nonce it guesses. The text around the word stays as it was: the match
// may span a line end ("untrusted" ending one line, "- …" the next).
func neutralise(s string) string {
	if !mayHoldMarker(s) {
		return s
	}
	return markerText.ReplaceAllString(s, "${1}_${2}")
}

// mayHoldMarker is a fast test that markerText cannot match s: the word
// in ASCII letters of any case, or a long s (which folds to s), must be
// there.
func mayHoldMarker(s string) bool {
	if strings.Contains(s, "\u017f") {
		return true
	}
	for i := 0; i+len("untrusted") <= len(s); i++ {
		if s[i]|0x20 == 'u' && strings.EqualFold(s[i:i+len("untrusted")], "untrusted") {
			return true
		}
	}
	return false
}

// maxContentTypeRunes bounds a media type in any output.
const maxContentTypeRunes = 100

// displayFolder renders a folder name from the server on one line: a
// name holding control or invisible characters is shown quoted, so it can
// neither break the line nor hide what it is.
func displayFolder(name string) string {
	if strings.ContainsFunc(name, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029
	}) {
		name = strconv.Quote(name)
	}
	return capBytes(name, 200)
}

// capRunes cuts s to at most n runes, marking the cut with "…".
func capRunes(s string, n int) string {
	if len(s) <= n || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// capBytes cuts s to at most n bytes at a rune boundary, marking the cut.
func capBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// capList keeps the first n entries of list, each capped, and returns
// how many there were in all.
func capList(list []string, n int) ([]string, int) {
	if len(list) <= n && !slices.ContainsFunc(list, func(a string) bool { return len(a) > maxAddressRunes }) {
		if list == nil {
			return []string{}, 0
		}
		return list, len(list) // nothing to cut: shared, never written to
	}
	out := make([]string, 0, min(n, len(list)))
	for _, a := range list[:min(n, len(list))] {
		out = append(out, capRunes(a, maxAddressRunes))
	}
	return out, len(list)
}

// joinList renders at most n addresses and says how many more there are.
func joinList(list []string, n int) string {
	shown, total := capList(list, n)
	s := strings.Join(shown, ", ")
	if total > len(shown) {
		s += fmt.Sprintf(" (+%d more)", total-len(shown))
	}
	return s
}

// shortDate renders a summary's date for one line; a received date
// stands in for a missing Date header and says so.
func shortDate(h mail.Header) string {
	var b strings.Builder
	writeShortDate(&b, h)
	return b.String()
}

// writeShortDate writes shortDate's text to b.
func writeShortDate(b *strings.Builder, h mail.Header) {
	var d [24]byte
	b.Write(h.Date.UTC().AppendFormat(d[:0], "2006-01-02 15:04"))
	if !h.DateOK {
		b.WriteString(" (received)")
	}
}

// longDate renders get_message's date line.
func longDate(h mail.Header) string {
	d := h.Date.UTC().Format(time.RFC1123Z)
	if !h.DateOK {
		d += " (received; the message has no readable Date header)"
	}
	return d
}

// dateJSON renders a date for structured content.
func dateJSON(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// sender renders the From of a thread line: the name when there is one.
func sender(from string) string {
	if i := strings.LastIndex(from, " <"); i > 0 {
		from = strings.Trim(from[:i], `"' `)
	}
	return capBytes(from, threadFromBytes)
}
