package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
)

func TestMailOAuthStates(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.UpsertClerkUser(ctx, "user_ann", "ann@example.test")
		if err != nil {
			t.Fatal(err)
		}
		st := &store.MailOAuthState{StateHash: "h1", UserID: u.ID, SessionHash: "s1", Provider: "google", VerifierEnc: "sealed"}
		if err := s.CreateMailOAuthState(ctx, st, time.Minute); err != nil {
			t.Fatal(err)
		}
		// Of concurrent takers exactly one gets it.
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if taken, err := s.TakeMailOAuthState(ctx, "h1"); err == nil {
					mu.Lock()
					got++
					mu.Unlock()
					if taken.UserID != u.ID || taken.SessionHash != "s1" || taken.Provider != "google" || taken.VerifierEnc != "sealed" {
						t.Errorf("taken %+v", taken)
					}
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got != 1 {
			t.Fatalf("%d takers got the state, want 1", got)
		}
		// An expired state is not handed out.
		if err := s.CreateMailOAuthState(ctx, &store.MailOAuthState{StateHash: "h2", UserID: u.ID, Provider: "google"}, -time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeMailOAuthState(ctx, "h2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired state: %v", err)
		}
	})
}

func TestRefreshTokenRotationAndReauth(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_ben", "ben@example.test")
		other, _ := s.UpsertClerkUser(ctx, "user_eve", "eve@example.test")
		a := newAccount(u.ID, "ben")
		a.AuthKind, a.OAuthRefreshTokenEnc, a.IMAPPasswordEnc, a.SMTPPasswordEnc = store.AuthOAuthGoogle, "rt1", "", ""
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if a.OAuthProvider() != "google" {
			t.Fatalf("provider %q", a.OAuthProvider())
		}
		// A stale token does not mark the account; the current one does.
		if marked, err := s.MarkAccountNeedsReauth(ctx, u.ID, a.ID, "rt0"); marked || err != nil {
			t.Fatalf("mark with a stale token: %v %v", marked, err)
		}
		if marked, err := s.MarkAccountNeedsReauth(ctx, other.ID, a.ID, "rt1"); marked || err != nil {
			t.Fatalf("another user marked the account: %v %v", marked, err)
		}
		if marked, err := s.MarkAccountNeedsReauth(ctx, u.ID, a.ID, "rt1"); !marked || err != nil {
			t.Fatalf("mark: %v %v", marked, err)
		}
		if got, _ := s.GetAccount(ctx, u.ID, a.ID); !got.NeedsReauth {
			t.Fatal("not marked")
		}
		// Rotation replaces only the token it rotated, for its owner only.
		if stored, err := s.SetAccountRefreshToken(ctx, other.ID, a.ID, "rt1", "evil"); stored || err != nil {
			t.Fatalf("another user set the token: %v %v", stored, err)
		}
		if stored, err := s.SetAccountRefreshToken(ctx, u.ID, a.ID, "rt0", "stale"); stored || err != nil {
			t.Fatalf("a rotation of a replaced token was stored: %v %v", stored, err)
		}
		if stored, err := s.SetAccountRefreshToken(ctx, u.ID, a.ID, "rt1", "rt2"); !stored || err != nil {
			t.Fatalf("rotation: %v %v", stored, err)
		}
		got, _ := s.GetAccount(ctx, u.ID, a.ID)
		if !got.NeedsReauth || got.OAuthRefreshTokenEnc != "rt2" {
			t.Fatalf("after rotation %+v", got)
		}
		// Editing the account's settings leaves its sign-in alone.
		got.Label, got.OAuthRefreshTokenEnc, got.NeedsReauth, got.AuthKind = "renamed", "from-a-stale-form", false, store.AuthPassword
		if err := s.UpdateAccount(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.GetAccount(ctx, u.ID, a.ID); got.Label != "renamed" || got.OAuthRefreshTokenEnc != "rt2" || !got.NeedsReauth || got.AuthKind != store.AuthOAuthGoogle {
			t.Fatalf("an edit changed the sign-in: %+v", got)
		}
		// A new sign-in replaces the token and subject and clears the mark.
		if err := s.SetAccountSignIn(ctx, other.ID, a.ID, "evil", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user signed the account in: %v", err)
		}
		if err := s.SetAccountSignIn(ctx, u.ID, a.ID, "rt3", "iss|sub"); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.GetAccount(ctx, u.ID, a.ID); got.NeedsReauth || got.OAuthRefreshTokenEnc != "rt3" || got.OAuthSubject != "iss|sub" || !got.UpdatedAt.After(a.UpdatedAt) {
			t.Fatalf("after a new sign-in %+v", got)
		}
		// Password accounts have no refresh token to set.
		p := newAccount(u.ID, "pw")
		if err := s.CreateAccount(ctx, p); err != nil {
			t.Fatal(err)
		}
		if p.AuthKind != store.AuthPassword {
			t.Fatalf("default auth kind %q", p.AuthKind)
		}
		if stored, err := s.SetAccountRefreshToken(ctx, u.ID, p.ID, "", "rt"); stored || err != nil {
			t.Fatalf("refresh token on a password account: %v %v", stored, err)
		}
		if err := s.SetAccountSignIn(ctx, u.ID, p.ID, "rt", "s"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("sign-in on a password account: %v", err)
		}
	})
}
