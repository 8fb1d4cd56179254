package mail

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

func TestSearchCriteria(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "bob")
	folder := uniqueFolder("search")
	seeded, err := rig.Seed("bob", folder, 150, mailrig.SeedOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	msgs := seeded.Messages
	mid := msgs[75].Date
	day := time.Date(mid.Year(), mid.Month(), mid.Day(), 0, 0, 0, 0, time.UTC)
	utf8Subject := ""
	for _, m := range msgs {
		if strings.ContainsAny(m.Subject, "éüöñå") {
			utf8Subject = m.Subject
			break
		}
	}
	count := func(pred func(mailrig.SeededMessage) bool) int {
		n := 0
		for _, m := range msgs {
			if pred(m) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name string
		q    SearchQuery
		want int
	}{
		{"flagged", SearchQuery{Flagged: true}, count(func(m mailrig.SeededMessage) bool { return m.Flagged })},
		{"unread answered", SearchQuery{Unread: true, Answered: false}, count(func(m mailrig.SeededMessage) bool { return !m.Seen })},
		{"answered", SearchQuery{Answered: true}, count(func(m mailrig.SeededMessage) bool { return m.Answered })},
		{"since inclusive", SearchQuery{Since: day}, count(func(m mailrig.SeededMessage) bool { return !m.Date.Before(day) })},
		{"before exclusive", SearchQuery{Before: day}, count(func(m mailrig.SeededMessage) bool { return m.Date.Before(day) })},
		{"from", SearchQuery{From: msgs[10].From}, count(func(m mailrig.SeededMessage) bool { return m.From == msgs[10].From })},
		{"utf-8 subject", SearchQuery{Subject: utf8Subject}, count(func(m mailrig.SeededMessage) bool { return strings.Contains(m.Subject, utf8Subject) })},
		{"has attachment", SearchQuery{HasAttachment: true}, count(func(m mailrig.SeededMessage) bool { return m.Kind == mailrig.KindMixed })},
		{"larger", SearchQuery{Larger: 90_000}, count(func(m mailrig.SeededMessage) bool { return m.Kind == mailrig.KindNewsletter || m.Size > 120_000 })},
	} {
		page, err := e.Search(ctx, acct, folder, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if page.Total != tc.want || tc.want == 0 {
			t.Errorf("%s: %d matches, want %d (non-zero)", tc.name, page.Total, tc.want)
		}
		if !slices.IsSortedFunc(page.Messages, func(a, b Summary) int { return int(int64(b.UID) - int64(a.UID)) }) {
			t.Errorf("%s: not newest first", tc.name)
		}
	}
	// Three criteria, paged.
	q := SearchQuery{Text: "the", Since: msgs[0].Date, Smaller: 1 << 20, Limit: 7}
	var all []uint32
	total := -1
	for {
		page, err := e.Search(ctx, acct, folder, q)
		if err != nil {
			t.Fatal(err)
		}
		total = page.Total
		for _, m := range page.Messages {
			all = append(all, m.UID)
		}
		if q.Cursor = page.NextCursor; q.Cursor == "" {
			break
		}
	}
	if len(all) != total || total < 50 || !slices.IsSortedFunc(all, func(a, b uint32) int { return int(b) - int(a) }) {
		t.Fatalf("paged search: %d of %d", len(all), total)
	}
	for _, bad := range []SearchQuery{{Subject: "a\r\nb"}, {Since: day, Before: day}, {Larger: -1}, {Cursor: "garbage"}} {
		if _, err := e.Search(ctx, acct, folder, bad); KindOf(err) != KindInvalid {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestFoldASCII(t *testing.T) {
	for in, want := range map[string]string{"Müller": "Muller", "Réunion de lundi": "Reunion de lundi", "東京 tower": " tower", "plain": "plain"} {
		if got := foldASCII(in); got != want {
			t.Errorf("foldASCII(%q) = %q, want %q", in, got, want)
		}
	}
}
