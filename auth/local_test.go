package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/internal/dbtest"
)

func TestLocalSetupWorksOnce(t *testing.T) {
	ctx := context.Background()
	l := auth.NewLocal(dbtest.SQLiteStore(t), "", 4)
	first, err := l.PrepareSetup(ctx)
	if err != nil || first == "" {
		t.Fatalf("PrepareSetup = %q, %v", first, err)
	}
	tok, err := l.PrepareSetup(ctx) // a restart replaces the link
	if err != nil || tok == first || l.SetupTokenValid(ctx, first) || !l.SetupTokenValid(ctx, tok) {
		t.Fatalf("second PrepareSetup: %v; old valid %v", err, l.SetupTokenValid(ctx, first))
	}
	if _, err := l.SignIn(ctx, "anything"); !errors.Is(err, auth.ErrNoPassword) {
		t.Fatalf("sign-in before setup: %v, want ErrNoPassword", err)
	}
	if _, err := l.CompleteSetup(ctx, tok, "short"); !errors.Is(err, auth.ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.CompleteSetup(ctx, tok, "a long password")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, auth.ErrBadSetupLink) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d parallel setups succeeded with one link, want 1", wins)
	}
	if again, _ := l.PrepareSetup(ctx); again != "" {
		t.Fatal("PrepareSetup made a link although a password exists")
	}

	if _, err := l.SignIn(ctx, "a long passworD"); !errors.Is(err, auth.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	session, err := l.SignIn(ctx, "a long password")
	if err != nil {
		t.Fatal(err)
	}
	u, state, err := l.Resolve(ctx, auth.Cookies{auth.SessionCookie: session})
	if err != nil || state != auth.SignedIn || !u.Local {
		t.Fatalf("Resolve = %+v, %v, %v", u, state, err)
	}
	if _, state, _ := l.Resolve(ctx, auth.Cookies{auth.SessionCookie: session + "x"}); state != auth.SignedOut {
		t.Fatal("a tampered session cookie resolved")
	}
	if err := l.SignOut(ctx, session); err != nil {
		t.Fatal(err)
	}
	if _, state, _ := l.Resolve(ctx, auth.Cookies{auth.SessionCookie: session}); state != auth.SignedOut {
		t.Fatal("session still valid after sign-out")
	}
}

func TestSafeRedirect(t *testing.T) {
	for in, want := range map[string]string{
		"/apps": "/apps", "/accounts/1/edit?x=1": "/accounts/1/edit?x=1", "": "/", "apps": "/",
		"//evil.example": "/", "/\\evil.example": "/", "https://evil.example/": "/", "javascript:alert(1)": "/",
	} {
		if got := auth.SafeRedirect(in); got != want {
			t.Errorf("SafeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSRF(t *testing.T) {
	c := auth.NewCSRF([]byte("0123456789abcdef0123456789abcdef"), "https://app.example")
	v := c.NewCookieValue()
	if !c.Valid(v, c.Token(v)) || c.Valid(v, c.Token(c.NewCookieValue())) || c.Valid("", c.Token("")) || c.Valid(v, "") {
		t.Fatal("CSRF token validation is wrong")
	}
	if auth.NewCSRF([]byte("another key, another key, 32 byt"), "https://app.example").Valid(v, c.Token(v)) {
		t.Fatal("a token signed with another key is valid")
	}
	for _, tc := range []struct {
		headers map[string]string
		want    bool
	}{
		{nil, true},
		{map[string]string{"Origin": "https://app.example"}, true},
		{map[string]string{"Origin": "https://APP.example"}, true},
		{map[string]string{"Origin": "https://evil.example"}, false},
		{map[string]string{"Origin": "null"}, false},
		{map[string]string{"Origin": "null", "Referer": "https://app.example/accounts"}, true},
		{map[string]string{"Referer": "https://evil.example/x"}, false},
		{map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example"}, false},
		{map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://app.example"}, false},
		{map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"}, true},
		{map[string]string{"Sec-Fetch-Site": "none"}, false},
	} {
		if got := c.Check(v, c.Token(v), func(k string) string { return tc.headers[k] }); got != tc.want {
			t.Errorf("Check with %v = %v, want %v", tc.headers, got, tc.want)
		}
	}
}
