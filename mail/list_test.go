package mail

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

func TestListMessagesPagesWholeFolder(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	folder, seeded := seedFolder(t, rig, "alice", "list", 230)
	ctx := testCtx(t)

	var got []Summary
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("cursor never ends")
		}
		page, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 100, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 230 {
			t.Fatalf("total = %d, want 230", page.Total)
		}
		got = append(got, page.Messages...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != 230 {
		t.Fatalf("listed %d messages, want 230", len(got))
	}
	for i, s := range got {
		want := seeded.Messages[len(seeded.Messages)-1-i]
		if s.Subject != want.Subject || s.MessageID != want.MessageID || !s.Date.Equal(want.Date) {
			t.Fatalf("message %d = %q %q %v, want %q %q %v", i, s.Subject, s.MessageID, s.Date, want.Subject, want.MessageID, want.Date)
		}
		if s.HasAttachments != (want.Kind == mailrig.KindMixed) {
			t.Errorf("message %d (%s) has attachments = %v", i, want.Kind, s.HasAttachments)
		}
		if slices.Contains(s.Flags, `\Seen`) != want.Seen || slices.Contains(s.Flags, `\Flagged`) != want.Flagged {
			t.Errorf("message %d flags %v, want seen=%v flagged=%v", i, s.Flags, want.Seen, want.Flagged)
		}
	}
}

func TestListMessagesFilters(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	folder, seeded := seedFolder(t, rig, "alice", "filter", 120)
	ctx := testCtx(t)

	var unread, flagged []string
	for _, m := range seeded.Messages {
		if !m.Seen {
			unread = append(unread, m.MessageID)
		}
		if m.Flagged {
			flagged = append(flagged, m.MessageID)
		}
	}
	for _, tc := range []struct {
		name string
		opt  ListOptions
		want []string
	}{
		{"unread", ListOptions{Unread: true, Limit: 3}, unread},
		{"flagged", ListOptions{Flagged: true, Limit: 2}, flagged},
	} {
		var ids []string
		cursor := ""
		for {
			tc.opt.Cursor = cursor
			page, err := e.ListMessages(ctx, acct, folder, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != len(tc.want) {
				t.Fatalf("%s: total %d, want %d", tc.name, page.Total, len(tc.want))
			}
			for _, m := range page.Messages {
				ids = append(ids, m.MessageID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		slices.Reverse(ids)
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
}

func TestListSnippets(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	folder, seeded := seedFolder(t, rig, "alice", "snippet", 60)
	ctx := testCtx(t)
	page, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 60, Snippets: true})
	if err != nil {
		t.Fatal(err)
	}
	const prefix = 40
	for i, s := range page.Messages {
		kind := seeded.Messages[len(seeded.Messages)-1-i].Kind
		if kind == mailrig.KindNewsletter {
			continue
		}
		msg, err := e.GetMessage(ctx, acct, folder, s.UID, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := window(strings.Join(strings.FieldsFunc(msg.Text, isSpace), " "), 0, prefix)
		if got, _ := window(s.Snippet, 0, prefix); got != want || utf8.RuneCountInString(s.Snippet) > SnippetRunes+1 {
			t.Errorf("%s message %d: snippet %q, text starts %q", kind, s.UID, s.Snippet, want)
		}
	}
	plain, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 5})
	if err != nil || plain.Messages[0].Snippet != "" {
		t.Fatalf("snippet without asking: %v", err)
	}
}
