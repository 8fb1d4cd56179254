package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/store"
)

// TestHotCache: the bearer lookup and the account list are kept for at
// most a second. This Store's own writes are seen at once; another
// process's (a second Store on the same database) within the second; a
// token is never served past its expiry.
func TestHotCache(t *testing.T) {
	for name, opts := range map[string]func(t *testing.T) store.Options{
		"sqlite":   func(t *testing.T) store.Options { return store.Options{SQLitePath: dbtest.SQLitePath(t)} },
		"postgres": func(t *testing.T) store.Options { return store.Options{DatabaseURL: dbtest.PostgresURL(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := opts(t)
			s, other := openMigrated(t, o), open(t, o)
			s.KeepHotReads()
			ctx := context.Background()
			var mu sync.Mutex
			now := time.Now().UTC() // the wall clock
			mono := now             // the monotonic clock
			s.SetNowForTest(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
			s.SetHotClockForTest(func() time.Time { mu.Lock(); defer mu.Unlock(); return mono })
			advance := func(d time.Duration) { mu.Lock(); now, mono = now.Add(d), mono.Add(d); mu.Unlock() }
			stepWall := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

			alice, err := s.UpsertClerkUser(ctx, "user_alice", "alice@example.test")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateClient(ctx, &store.OAuthClient{ID: "c1", ClientName: "Claude", RedirectURIs: `["http://localhost/cb"]`,
				TokenEndpointAuthMethod: "none"}); err != nil {
				t.Fatal(err)
			}
			g, err := s.CreateGrant(ctx, alice.ID, "c1", "mail.read")
			if err != nil {
				t.Fatal(err)
			}
			newToken := func(hash string, expires time.Time) {
				t.Helper()
				if err := s.CreateToken(ctx, &store.Token{GrantID: g.ID, AccessTokenHash: hash, RefreshTokenHash: "r-" + hash,
					Scope: "mail.read", Resource: "https://mcp.example/api/mcp", AccessExpiresAt: expires,
					RefreshExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			lookup := func(hash string) error {
				_, err := s.LookupAccessToken(ctx, hash)
				return err
			}
			newToken("h1", now.Add(time.Hour))
			newToken("h-short", now.Add(500*time.Millisecond))
			a := newAccount(alice.ID, "work")
			if err := s.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			label := func() string {
				t.Helper()
				got, err := s.GetAccount(ctx, alice.ID, a.ID)
				if err != nil {
					t.Fatal(err)
				}
				list, err := s.ListAccounts(ctx, alice.ID)
				if err != nil || len(list) != 1 || list[0].Label != got.Label {
					t.Fatalf("ListAccounts = %+v, %v; GetAccount's label %q", list, err, got.Label)
				}
				return got.Label
			}
			if err := lookup("h1"); err != nil {
				t.Fatal(err)
			}
			if err := lookup("h-short"); err != nil {
				t.Fatal(err)
			}
			if got := label(); got != "work" {
				t.Fatalf("label %q", got)
			}

			// Another process revokes and renames: kept answers stand
			// until the second is up, then the change shows.
			if err := other.RevokeGrant(ctx, alice.ID, g.ID); err != nil {
				t.Fatal(err)
			}
			b := *a
			b.Label = "renamed elsewhere"
			if err := other.UpdateAccount(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if err := lookup("h1"); err != nil {
				t.Fatalf("within the second: %v, want the kept answer", err)
			}
			if got := label(); got != "work" {
				t.Fatalf("within the second: label %q, want the kept %q", got, "work")
			}
			advance(600 * time.Millisecond)
			if err := lookup("h-short"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("token past its expiry: %v, want ErrNotFound", err)
			}
			// The wall clock stepping back does not keep an answer longer.
			stepWall(-10 * time.Minute)
			advance(400 * time.Millisecond)
			if err := lookup("h1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a second after another process revoked: %v, want ErrNotFound", err)
			}
			stepWall(10 * time.Minute)
			if got := label(); got != "renamed elsewhere" {
				t.Fatalf("a second after another process renamed: label %q", got)
			}

			// This store's own writes show at once.
			g2, err := s.CreateGrant(ctx, alice.ID, "c1", "mail.read")
			if err != nil {
				t.Fatal(err)
			}
			g = g2
			newToken("h2", now.Add(time.Hour))
			if err := lookup("h2"); err != nil {
				t.Fatal(err)
			}
			if got := label(); got != "renamed elsewhere" {
				t.Fatalf("label %q", got)
			}
			b.Label = "renamed here"
			if err := s.UpdateAccount(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if got := label(); got != "renamed here" {
				t.Fatalf("after this store's rename: label %q", got)
			}
			if err := lookup("h2"); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeGrant(ctx, alice.ID, g2.ID); err != nil {
				t.Fatal(err)
			}
			if err := lookup("h2"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("after this store's revoke: %v, want ErrNotFound", err)
			}
			if err := s.DeleteAccount(ctx, alice.ID, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetAccount(ctx, alice.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted account: %v, want ErrNotFound", err)
			}
		})
	}
}
