package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	josejwt "github.com/go-jose/go-jose/v3/jwt"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/handlers"
	"github.com/imap-mcp/imap-mcp/internal/clerktest"
	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/server"
	"github.com/imap-mcp/imap-mcp/store"
)

const appOrigin = "https://mail-mcp.example.com"

type clerkApp struct {
	url   string
	st    *store.Store
	clerk *clerktest.Server
}

func startClerkApp(t *testing.T) *clerkApp {
	st := dbtest.SQLiteStore(t)
	fake := clerktest.New(t, appOrigin)
	keys, _ := secret.New(secret.Generate())
	log := slog.New(slog.DiscardHandler)
	metrics := server.NewMetrics()
	web := handlers.New(handlers.Deps{
		Logger: log, Metrics: metrics, MCPURL: appOrigin + "/api/mcp", Version: "test",
		Auth:             auth.NewClerk(st, auth.ClerkOptions{SecretKey: clerktest.SecretKey, AppOrigin: appOrigin, BackendURL: fake.BackendURL}),
		ClerkFrontendAPI: clerktest.FrontendAPI, ClerkPublishableKey: clerktest.PublishableKey,
		CSRF: auth.NewCSRF(keys.CookieKey(), appOrigin), SecureCookies: true, Accounts: st, Apps: st,
	})
	srv := server.New(server.Options{Web: adaptor.FiberApp(web), WebObserved: true, DB: st, Metrics: metrics, Logger: log,
		HTTPS: true, CSP: server.ContentSecurityPolicy(clerktest.FrontendAPI)})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &clerkApp{url: ts.URL, st: st, clerk: fake}
}

// get requests path with cookies and header pairs, without following redirects.
func (a *clerkApp) get(t *testing.T, path string, cookies map[string]string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.url+path, nil)
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestClerkSession(t *testing.T) {
	a := startClerkApp(t)
	f := a.clerk
	valid := f.Token(t, "", nil)

	for i := range 20 {
		resp, body := a.get(t, "/", map[string]string{"__session": valid, "__client_uat": "1700000000"})
		if resp.StatusCode != 200 || !strings.Contains(body, `data-testid="user">user_alice@example.com`) {
			t.Fatalf("request %d with a valid token = %d\n%s", i, resp.StatusCode, body)
		}
	}
	if n := f.JWKSCalls.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times for 20 requests, want 1", n)
	}
	if n := f.UsersCalls.Load(); n != 1 {
		t.Fatalf("Clerk user fetched %d times for 20 requests, want 1", n)
	}
	u, err := a.st.UpsertClerkUser(context.Background(), "user_alice", "user_alice@example.com")
	if err != nil || u.Email != "user_alice@example.com" {
		t.Fatalf("mapped user = %+v, %v", u, err)
	}

	// Suffixed cookie names work too.
	if resp, _ := a.get(t, "/", map[string]string{"__session_Ab12Cd34": valid}); resp.StatusCode != 200 {
		t.Fatalf("suffixed __session = %d", resp.StatusCode)
	}

	signedOut := []struct {
		name string
		tok  string
	}{
		{"expired", f.Token(t, "", func(c *clerktest.Claims) { c.Expiry = josejwt.NewNumericDate(time.Now().Add(-time.Minute)) })},
		{"not yet valid", f.Token(t, "", func(c *clerktest.Claims) { c.NotBefore = josejwt.NewNumericDate(time.Now().Add(time.Minute)) })},
		{"wrong issuer", f.Token(t, "", func(c *clerktest.Claims) { c.Issuer = "https://evil.example.com" })},
		{"wrong azp", f.Token(t, "", func(c *clerktest.Claims) { c.AZP = "https://evil.example.com" })},
		{"missing azp", f.Token(t, "", func(c *clerktest.Claims) { c.AZP = "" })},
		{"unknown kid", f.Token(t, "ins_other", nil)},
		{"tampered", valid[:len(valid)-4] + "AAAA"},
		{"garbage", "not.a.jwt"},
	}
	for _, tc := range signedOut {
		resp, _ := a.get(t, "/", map[string]string{"__session": tc.tok})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/sign-in?redirect_url=") {
			t.Errorf("%s token: %d %q, want 303 to sign-in", tc.name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := f.JWKSCalls.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times in all, want 1 (unknown kids right after a fetch are rate-limited)", n)
	}

	// A browser that Clerk says is signed in, with an expired or missing
	// token, gets the refresh page once, then sign-in.
	expired := signedOut[0].tok
	for _, cookies := range []map[string]string{
		{"__session": expired, "__client_uat": "1700000000"},
		{"__client_uat": "1700000000"},
		{"__client_uat_Ab12Cd34": "1700000000"},
	} {
		resp, body := a.get(t, "/?tab=x", cookies)
		if resp.StatusCode != 200 || !strings.Contains(body, `data-action="refresh"`) ||
			!strings.Contains(body, `data-redirect="/?__clerk_refresh=1&amp;tab=x"`) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("refresh page for %v = %d\n%s", cookies, resp.StatusCode, body)
		}
		resp, _ = a.get(t, "/?__clerk_refresh=1&tab=x", cookies)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/sign-in?redirect_url=%2F%3Ftab%3Dx" {
			t.Fatalf("second refresh attempt = %d %q, want sign-in (no loop)", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := a.get(t, "/", map[string]string{"__session": expired, "__client_uat": "0"}); resp.StatusCode != 303 {
		t.Fatalf("__client_uat=0 (signed out) = %d, want 303", resp.StatusCode)
	}

	// HTMX never redirects: 401 + HX-Refresh. API requests get 401.
	resp, _ := a.get(t, "/", map[string]string{"__session": expired, "__client_uat": "1700000000"}, "HX-Request", "true")
	if resp.StatusCode != 401 || resp.Header.Get("HX-Refresh") != "true" {
		t.Fatalf("HTMX with expired session = %d HX-Refresh=%q", resp.StatusCode, resp.Header.Get("HX-Refresh"))
	}
	if resp, _ := a.get(t, "/", nil, "Accept", "application/json"); resp.StatusCode != 401 {
		t.Fatalf("API request signed out = %d", resp.StatusCode)
	}
}

func TestClerkPages(t *testing.T) {
	a := startClerkApp(t)
	resp, body := a.get(t, "/sign-in?redirect_url=%2Fapps", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-action="sign-in"`) || !strings.Contains(body, `data-redirect="/apps"`) ||
		!strings.Contains(body, `data-fapi="clerk.example.com"`) || !strings.Contains(body, `src="/static/clerk.js"`) {
		t.Fatalf("sign-in page = %d\n%s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self' https://clerk.example.com") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP in Clerk mode = %q", csp)
	}
	if strings.Contains(body, "<script>") {
		t.Fatal("inline script on the sign-in page")
	}
	if _, body := a.get(t, "/sign-up?redirect_url=https%3A%2F%2Fevil.example", nil); !strings.Contains(body, `data-action="sign-up"`) || !strings.Contains(body, `data-redirect="/"`) {
		t.Fatalf("sign-up page:\n%s", body)
	}
	if resp, _ := a.get(t, "/setup?token=x", nil); resp.StatusCode != 404 {
		t.Fatalf("/setup in Clerk mode = %d, want 404", resp.StatusCode)
	}
	// Signed in, /sign-in goes straight to the target.
	resp, _ = a.get(t, "/sign-in?redirect_url=%2Fapps", map[string]string{"__session": a.clerk.Token(t, "", nil)})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/apps" {
		t.Fatalf("sign-in when signed in = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
