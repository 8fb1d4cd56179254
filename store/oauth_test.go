package store_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/store"
)

func TestOAuth(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice, _ := s.UpsertClerkUser(ctx, "user_alice", "alice@example.test")
		bob, _ := s.UpsertClerkUser(ctx, "user_bob", "bob@example.test")

		soon := time.Now().Add(time.Hour)
		c := &store.OAuthClient{ID: "client-1", ClientName: "Claude", RedirectURIs: `["https://claude.ai/api/mcp/auth_callback"]`,
			TokenEndpointAuthMethod: "none", ExpiresAt: &soon}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateClient(ctx, &store.OAuthClient{ID: "client-1", RedirectURIs: "[]", TokenEndpointAuthMethod: "none"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate client: err = %v, want ErrConflict", err)
		}
		past := time.Now().Add(-time.Minute)
		if err := s.CreateClient(ctx, &store.OAuthClient{ID: "stale", RedirectURIs: "[]", TokenEndpointAuthMethod: "none", ExpiresAt: &past}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(ctx, "stale"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired client: err = %v, want ErrNotFound", err)
		}
		if n, err := s.DeleteExpiredClients(ctx); err != nil || n != 1 {
			t.Fatalf("DeleteExpiredClients = %d, %v; want 1", n, err)
		}

		g, err := s.CreateGrant(ctx, alice.ID, c.ID, "mail.read mail.modify")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetClient(ctx, c.ID); err != nil || got.ExpiresAt != nil || got.ClientName != "Claude" {
			t.Fatalf("client after consent = %+v, %v; want no expiry", got, err)
		}

		// A code is redeemed exactly once, even by parallel callers.
		code := store.AuthCode{CodeHash: "h-code", ClientID: c.ID, UserID: alice.ID, GrantID: g.ID,
			RedirectURI: "https://claude.ai/api/mcp/auth_callback", CodeChallenge: "chal", Scope: g.Scope,
			Resource: "http://localhost:3000/api/mcp", ExpiresAt: time.Now().Add(10 * time.Minute)}
		if err := s.CreateAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wins := make(chan store.AuthCode, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.ConsumeAuthCode(ctx, "h-code")
				if err == nil {
					wins <- got
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d parallel redemptions succeeded, want exactly 1", len(wins))
		}
		if got := <-wins; got.UserID != alice.ID || got.CodeChallenge != "chal" || got.ConsumedAt == nil {
			t.Fatalf("redeemed code = %+v", got)
		}
		expired := code
		expired.CodeHash, expired.ExpiresAt = "h-old", time.Now().Add(-time.Second)
		if err := s.CreateAuthCode(ctx, expired); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeAuthCode(ctx, "h-old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired code: err = %v, want ErrNotFound", err)
		}

		tok := &store.Token{GrantID: g.ID, AccessTokenHash: "h-access", RefreshTokenHash: "h-refresh", Scope: g.Scope,
			Resource: code.Resource, AccessExpiresAt: time.Now().Add(time.Hour), RefreshExpiresAt: time.Now().Add(30 * 24 * time.Hour)}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		ag, err := s.LookupAccessToken(ctx, "h-access")
		if err != nil {
			t.Fatal(err)
		}
		if ag.UserID != alice.ID || ag.ClientID != c.ID || ag.Scope != "mail.read mail.modify" || ag.Resource != code.Resource {
			t.Fatalf("LookupAccessToken = %+v", ag)
		}
		old := &store.Token{GrantID: g.ID, AccessTokenHash: "h-access-old", RefreshTokenHash: "h-refresh-old", Scope: g.Scope,
			Resource: code.Resource, AccessExpiresAt: time.Now().Add(-time.Second), RefreshExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateToken(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccessToken(ctx, "h-access-old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired access token: err = %v, want ErrNotFound", err)
		}

		apps, err := s.ListConnectedApps(ctx, alice.ID)
		if err != nil || len(apps) != 1 || apps[0].ClientName != "Claude" || apps[0].GrantID != g.ID {
			t.Fatalf("ListConnectedApps(alice) = %+v, %v", apps, err)
		}
		if apps, _ := s.ListConnectedApps(ctx, bob.ID); len(apps) != 0 {
			t.Fatalf("bob sees alice's apps: %+v", apps)
		}
		if err := s.RevokeGrant(ctx, bob.ID, g.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bob revoking alice's grant: err = %v, want ErrNotFound", err)
		}
		if _, err := s.LookupAccessToken(ctx, "h-access"); err != nil {
			t.Fatalf("token died after another user's revoke attempt: %v", err)
		}

		// Re-consent replaces the grant and kills the old grant's tokens.
		g2, err := s.CreateGrant(ctx, alice.ID, c.ID, "mail.read")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccessToken(ctx, "h-access"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token of a replaced grant: err = %v, want ErrNotFound", err)
		}
		tok2 := &store.Token{GrantID: g2.ID, AccessTokenHash: "h-access-2", RefreshTokenHash: "h-refresh-2", Scope: g2.Scope,
			Resource: code.Resource, AccessExpiresAt: time.Now().Add(time.Hour), RefreshExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateToken(ctx, tok2); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeGrant(ctx, alice.ID, g2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccessToken(ctx, "h-access-2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token of a revoked grant: err = %v, want ErrNotFound", err)
		}
		if apps, _ := s.ListConnectedApps(ctx, alice.ID); len(apps) != 0 {
			t.Fatalf("revoked grant still listed: %+v", apps)
		}
		if err := s.RevokeGrant(ctx, alice.ID, g2.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second revoke: err = %v, want ErrNotFound", err)
		}
	})
}

func TestTokenRotationAndRevocation(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_rot", "rot@example.test")
		c := &store.OAuthClient{ID: "https://client.example/meta.json", ClientName: "Old", RedirectURIs: `["http://localhost/cb"]`,
			TokenEndpointAuthMethod: "none", MetadataURL: "https://client.example/meta.json"}
		if err := s.UpsertMetadataClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.ClientName = "New"
		soon := time.Now().Add(time.Hour)
		c.ExpiresAt = &soon
		if err := s.UpsertMetadataClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetClient(ctx, c.ID); got.ClientName != "New" || got.MetadataURL != c.ID {
			t.Fatalf("metadata client after update = %+v", got)
		}
		g, _ := s.CreateGrant(ctx, u.ID, c.ID, "mail.read")
		if err := s.UpsertMetadataClient(ctx, c); err != nil { // a later fetch after consent
			t.Fatal(err)
		}
		if got, _ := s.GetClient(ctx, c.ID); got.ExpiresAt != nil {
			t.Fatalf("a consented metadata client expires at %v", got.ExpiresAt)
		}
		mk := func(n string) *store.Token {
			return &store.Token{GrantID: g.ID, AccessTokenHash: "a" + n, RefreshTokenHash: "r" + n, Scope: "mail.read",
				Resource: "r", AccessExpiresAt: time.Now().Add(time.Hour), RefreshExpiresAt: time.Now().Add(time.Hour)}
		}
		first := mk("1")
		if err := s.CreateToken(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := s.RotateToken(ctx, first.ID, mk("2")); err != nil {
			t.Fatal(err)
		}
		r1, err := s.LookupRefreshToken(ctx, "r1")
		if err != nil || r1.RotatedAt == nil || r1.UserID != u.ID || r1.ClientID != c.ID || r1.GrantScope != "mail.read" {
			t.Fatalf("rotated token = %+v, %v", r1, err)
		}
		firstRotation := *r1.RotatedAt
		time.Sleep(10 * time.Millisecond)
		if err := s.RotateToken(ctx, first.ID, mk("3")); err != nil { // within grace: allowed by the caller
			t.Fatal(err)
		}
		if r1, _ = s.LookupRefreshToken(ctx, "r1"); !r1.RotatedAt.Equal(firstRotation) {
			t.Fatalf("second rotation moved rotated_at from %v to %v", firstRotation, r1.RotatedAt)
		}
		if err := s.TouchToken(ctx, first.ID, g.ID, c.ID); err != nil {
			t.Fatal(err)
		}
		if apps, err := s.ListConnectedApps(ctx, u.ID); err != nil || len(apps) != 1 || apps[0].LastUsedAt == nil {
			t.Fatalf("apps after use = %+v, %v", apps, err)
		}

		if err := s.RevokeToken(ctx, "another-client", "a2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccessToken(ctx, "a2"); err != nil {
			t.Fatalf("another client revoked our token: %v", err)
		}
		// Revoking one token of a grant, here by its refresh hash, revokes
		// the grant: every access token, and the predecessors still in
		// their grace window.
		if err := s.RevokeToken(ctx, c.ID, "r2"); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"a1", "a2", "a3"} {
			if _, err := s.LookupAccessToken(ctx, h); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s alive after revoking one token of its grant: %v", h, err)
			}
		}
		if err := s.RotateToken(ctx, first.ID, mk("4")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a predecessor in its grace window rotated after revocation: %v", err)
		}
		if err := s.RevokeGrantByID(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(ctx, mk("6")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token for a revoked grant: err = %v, want ErrNotFound", err)
		}
		if err := s.RotateToken(ctx, first.ID, mk("5")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotation in a revoked grant: err = %v, want ErrNotFound", err)
		}
		if _, err := s.LookupRefreshToken(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown refresh token: %v", err)
		}
	})
}

func TestCleanup(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_clean", "clean@example.test")
		old := time.Now().Add(-48 * time.Hour)
		live := time.Now().Add(time.Hour)
		s.CreateClient(ctx, &store.OAuthClient{ID: "kept", RedirectURIs: "[]", TokenEndpointAuthMethod: "none", ExpiresAt: &live})
		s.CreateClient(ctx, &store.OAuthClient{ID: "stale", RedirectURIs: "[]", TokenEndpointAuthMethod: "none", ExpiresAt: &old})
		g, _ := s.CreateGrant(ctx, u.ID, "kept", "mail.read")
		s.CreateAuthCode(ctx, store.AuthCode{CodeHash: "old-code", ClientID: "kept", UserID: u.ID, GrantID: g.ID, ExpiresAt: old})
		s.CreateAuthCode(ctx, store.AuthCode{CodeHash: "new-code", ClientID: "kept", UserID: u.ID, GrantID: g.ID, ExpiresAt: live})
		s.CreateToken(ctx, &store.Token{GrantID: g.ID, AccessTokenHash: "a-dead", RefreshTokenHash: "r-dead", AccessExpiresAt: old, RefreshExpiresAt: old})
		s.CreateToken(ctx, &store.Token{GrantID: g.ID, AccessTokenHash: "a-live", RefreshTokenHash: "r-live", AccessExpiresAt: live, RefreshExpiresAt: live})
		s.CreateWebSession(ctx, "s-old", u.ID, old)
		s.CreateWebSession(ctx, "s-live", u.ID, live)
		n, err := s.Cleanup(ctx)
		if err != nil || n != 4 {
			t.Fatalf("Cleanup = %d, %v; want 4 rows (stale client, old code, dead token, old session)", n, err)
		}
		if _, err := s.LookupRefreshToken(ctx, "r-live"); err != nil {
			t.Fatalf("live token deleted: %v", err)
		}
		if _, err := s.ConsumeAuthCode(ctx, "new-code"); err != nil {
			t.Fatalf("live code deleted: %v", err)
		}
		if _, err := s.GetClient(ctx, "kept"); err != nil {
			t.Fatalf("client deleted: %v", err)
		}
		if _, err := s.WebSessionUser(ctx, "s-live"); err != nil {
			t.Fatalf("live session deleted: %v", err)
		}
	})
}

// TestTouchTokenTakesNoWriteLockWhenRecent: while another connection
// holds SQLite's write lock, recording a use that was recorded a moment
// ago returns at once (before, every request took the write lock and
// waited out the busy timeout behind a writer).
func TestTouchTokenTakesNoWriteLockWhenRecent(t *testing.T) {
	path := dbtest.SQLitePath(t)
	s := openMigrated(t, store.Options{SQLitePath: path})
	ctx := context.Background()
	u, _ := s.UpsertClerkUser(ctx, "user_touch", "touch@example.test")
	c := &store.OAuthClient{ID: "client-touch", RedirectURIs: `["http://localhost/cb"]`, TokenEndpointAuthMethod: "none"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	g, _ := s.CreateGrant(ctx, u.ID, c.ID, "mail.read")
	tok := &store.Token{GrantID: g.ID, AccessTokenHash: "touch-a", RefreshTokenHash: "touch-r", Scope: "mail.read",
		AccessExpiresAt: time.Now().Add(time.Hour), RefreshExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchToken(ctx, tok.ID, g.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	writer, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Exec(`UPDATE users SET email = email WHERE id = ?`, u.ID); err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback()
	done := make(chan error, 1)
	go func() {
		for range 100 {
			if err := s.TouchToken(ctx, tok.ID, g.ID, c.ID); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("recording a recent use waited for the write lock")
	}
}
