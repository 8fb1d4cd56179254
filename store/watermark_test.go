package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/imap-mcp/imap-mcp/store"
)

func TestWatermarks(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice, _ := s.UpsertClerkUser(ctx, "user_wm_alice", "alice@example.test")
		mallory, _ := s.UpsertClerkUser(ctx, "user_wm_mallory", "mallory@example.test")
		acct := newAccount(alice.ID, "work")
		if err := s.CreateAccount(ctx, acct); err != nil {
			t.Fatal(err)
		}
		var grants []string
		for _, c := range []string{"wm-one", "wm-two"} {
			if err := s.CreateClient(ctx, &store.OAuthClient{ID: c, RedirectURIs: `["http://localhost/cb"]`, TokenEndpointAuthMethod: "none"}); err != nil {
				t.Fatal(err)
			}
			g, err := s.CreateGrant(ctx, alice.ID, c, "mail.read")
			if err != nil {
				t.Fatal(err)
			}
			grants = append(grants, g.ID)
		}
		inbox := store.Watermark{Folder: "INBOX", UIDValidity: 7, UIDNext: 100, ModSeq: 1 << 62}
		if err := s.SaveWatermarks(ctx, alice.ID, grants[0], acct.ID, []store.Watermark{inbox}); err != nil {
			t.Fatal(err)
		}
		inbox.UIDNext = 120 // replaces the mark
		if err := s.SaveWatermarks(ctx, alice.ID, grants[0], acct.ID, []store.Watermark{inbox, {Folder: "Work", UIDValidity: 1, UIDNext: 5}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Watermarks(ctx, alice.ID, grants[0], acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["INBOX"] != inbox || got["Work"].UIDNext != 5 {
			t.Fatalf("marks = %+v", got)
		}
		// Each client has its own marks; another user reaches none and
		// cannot write into alice's grant.
		if other, _ := s.Watermarks(ctx, alice.ID, grants[1], acct.ID); len(other) != 0 {
			t.Fatalf("second client sees %+v", other)
		}
		if stolen, _ := s.Watermarks(ctx, mallory.ID, grants[0], acct.ID); len(stolen) != 0 {
			t.Fatalf("another user reads %+v", stolen)
		}
		if err := s.SaveWatermarks(ctx, mallory.ID, grants[0], acct.ID, []store.Watermark{inbox}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user's save: %v", err)
		}

		// The oldest marks beyond the bound are forgotten.
		var many []store.Watermark
		for i := range store.MaxWatermarksPerGrant + 5 {
			many = append(many, store.Watermark{Folder: fmt.Sprintf("F%03d", i), UIDValidity: 1, UIDNext: 1})
		}
		if err := s.SaveWatermarks(ctx, alice.ID, grants[1], acct.ID, many); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Watermarks(ctx, alice.ID, grants[1], acct.ID); len(n) != store.MaxWatermarksPerGrant {
			t.Fatalf("%d marks kept, want %d", len(n), store.MaxWatermarksPerGrant)
		}

		// Deleting the account removes its marks.
		if err := s.DeleteAccount(ctx, alice.ID, acct.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.CountForTest(ctx, "SELECT COUNT(*) FROM watermarks"); n != 0 {
			t.Fatalf("%d marks left after the account was deleted", n)
		}
	})
}
