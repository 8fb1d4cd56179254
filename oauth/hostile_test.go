package oauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// publicClient registers a public client with a loopback redirect.
func publicClient(t testing.TB, h *harness) *oauth2.Config {
	t.Helper()
	status, reg := h.register(t, `{"client_name":"Test","redirect_uris":["http://127.0.0.1:9999/cb"],"token_endpoint_auth_method":"none"}`)
	if status != 201 {
		t.Fatalf("register = %d %v", status, reg)
	}
	return oauthConfig(h, reg["client_id"].(string), "", "http://127.0.0.1:9999/cb", oauth2.AuthStyleInParams)
}

// codeFor runs consent and returns a code and its verifier.
func codeFor(t testing.TB, h *harness, conf *oauth2.Config) (string, string) {
	t.Helper()
	v := oauth2.GenerateVerifier()
	back := newPerson(t, h, "user_alice").authorize(t, h, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "allow", nil)
	return back.Query().Get("code"), v
}

func exchange(t testing.TB, h *harness, conf *oauth2.Config, code, verifier string, extra ...string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {conf.ClientID}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {conf.RedirectURL}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	status, body, _ := postForm(t, h.url+"/api/oauth/token", form, "", "")
	return status, body
}

func TestAuthorizeRequestErrors(t *testing.T) {
	h := newHarness(t, nil)
	conf := publicClient(t, h)
	p := newPerson(t, h, "user_alice")
	base := url.Values{"client_id": {conf.ClientID}, "redirect_uri": {conf.RedirectURL}, "response_type": {"code"},
		"state": {"xyz"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	with := func(k, v string) string {
		q := url.Values{}
		for key, vals := range base {
			q[key] = vals
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return h.url + "/api/oauth/authorize?" + q.Encode()
	}

	// Errors about the client or redirect are pages, never redirects.
	for name, u := range map[string]string{
		"unknown client":    with("client_id", "nope"),
		"missing client":    with("client_id", ""),
		"redirect mismatch": with("redirect_uri", "http://127.0.0.1:9999/other"),
		"foreign redirect":  with("redirect_uri", "https://evil.example/cb"),
	} {
		resp, body := p.get(t, u)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, `data-testid="error"`) {
			t.Errorf("%s: %d Location=%q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The rest are pages too: before the person decides, the registered
	// redirect URI is only the client's word (an open redirect otherwise).
	for name, tc := range map[string]struct{ url, says string }{
		"missing PKCE":     {with("code_challenge", ""), "code_challenge is required"},
		"plain PKCE":       {with("code_challenge_method", "plain"), "code_challenge_method must be S256"},
		"malformed PKCE":   {with("code_challenge", "short"), "code_challenge must be"},
		"token flow":       {with("response_type", "token"), "response_type must be code"},
		"foreign resource": {with("resource", "https://other.example/api/mcp"), "resource must be"},
	} {
		resp, body := p.get(t, tc.url)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d Location=%q, want a page saying %q", name, resp.StatusCode, resp.Header.Get("Location"), tc.says)
		}
	}
	// The canonical resource, and unknown scopes, are fine.
	if resp, _ := p.get(t, with("resource", issuer+"/api/mcp")); resp.StatusCode != 200 {
		t.Fatalf("canonical resource = %d", resp.StatusCode)
	}
	if resp, body := p.get(t, with("scope", "openid email profile")); resp.StatusCode != 200 || strings.Contains(body, `data-testid="scope-send"`) ||
		strings.Contains(body, `data-testid="scope-modify"`) {
		t.Fatalf("unknown scopes = %d: only mail.read may be offered", resp.StatusCode)
	}

	// Not signed in: to sign-in and back.
	resp, _ := newPerson(t, h, "").get(t, with("state", "back"))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 303 || !strings.HasPrefix(loc, "/sign-in?redirect_url=") {
		t.Fatalf("signed out = %d %q", resp.StatusCode, loc)
	}
	back, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/sign-in?redirect_url="))
	if !strings.HasPrefix(back, "/api/oauth/authorize?") || !strings.Contains(back, "state=back") {
		t.Fatalf("sign-in returns to %q", back)
	}
}

func TestConsentDecisions(t *testing.T) {
	h := newHarness(t, nil)
	conf := publicClient(t, h)
	authURL := conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	denied := newPerson(t, h, "user_alice").authorize(t, h, authURL, "deny", nil)
	if denied.Query().Get("error") != "access_denied" || denied.Query().Get("state") != "s1" || denied.Query().Get("code") != "" {
		t.Fatalf("deny = %s", denied)
	}

	// Unticking send grants read and modify only.
	v := oauth2.GenerateVerifier()
	back := newPerson(t, h, "user_alice").authorize(t, h, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(v)), "allow",
		func(f url.Values) { f.Del("allow_send") })
	status, tok := exchange(t, h, conf, back.Query().Get("code"), v)
	if status != 200 || tok["scope"] != "mail.read mail.modify" {
		t.Fatalf("unticked send: %d %v", status, tok)
	}

	// Without the CSRF token, or from another origin, consent is refused.
	p := newPerson(t, h, "user_alice")
	form, _, _ := p.consentForm(t, authURL)
	form.Set("decision", "allow")
	noToken := url.Values{}
	for k, vals := range form {
		if k != "_csrf" {
			noToken[k] = vals
		}
	}
	if resp, _ := p.post(t, h.url+"/api/oauth/authorize", noToken); resp.StatusCode != 403 || resp.Header.Get("Location") != "" {
		t.Fatalf("consent without CSRF token = %d", resp.StatusCode)
	}
	if resp, _ := p.post(t, h.url+"/api/oauth/authorize", form, "Origin", "https://evil.example"); resp.StatusCode != 403 {
		t.Fatalf("consent from another origin = %d", resp.StatusCode)
	}
	if resp, _ := newPerson(t, h, "user_alice").post(t, h.url+"/api/oauth/authorize", form); resp.StatusCode != 403 {
		t.Fatalf("consent with another browser's token = %d", resp.StatusCode)
	}
}

func TestTokenErrors(t *testing.T) {
	h := newHarness(t, nil)
	conf := publicClient(t, h)

	code, v := codeFor(t, h, conf)
	if status, body := exchange(t, h, conf, code, oauth2.GenerateVerifier()); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier = %d %v", status, body)
	}
	if status, body := exchange(t, h, conf, code, v); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("code reused after a failed attempt = %d %v", status, body)
	}

	code, v = codeFor(t, h, conf)
	if status, body := exchange(t, h, conf, code, v, "redirect_uri", "http://127.0.0.1:9999/other"); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("redirect mismatch at /token = %d %v", status, body)
	}
	code, v = codeFor(t, h, conf)
	if status, body := exchange(t, h, conf, code, v, "resource", "https://other.example/api/mcp"); status != 400 || body["error"] != "invalid_target" {
		t.Fatalf("foreign resource at /token = %d %v", status, body)
	}

	// Code replay, twice in parallel: at most one redemption wins, and the
	// replay revokes the grant, so no token it got keeps working.
	code, v = codeFor(t, h, conf)
	var wg sync.WaitGroup
	results := make(chan map[string]any, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, body := exchange(t, h, conf, code, v); s == 200 {
				results <- body
			}
		}()
	}
	wg.Wait()
	close(results)
	ok := 0
	for body := range results {
		ok++
		if status, _, _ := h.callMCP(t, body["access_token"].(string)); status != 401 {
			t.Fatalf("token of a replayed code works: %d", status)
		}
	}
	if ok > 1 {
		t.Fatalf("%d of 2 parallel redemptions succeeded, want at most 1", ok)
	}

	// Unknown client and unknown grant type.
	status, body, _ := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"ghost"}, "code": {"x"}}, "", "")
	if status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("unknown client = %d %v", status, body)
	}
	status, body, _ = postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {conf.ClientID}}, "", "")
	if status != 400 || body["error"] != "unsupported_grant_type" {
		t.Fatalf("password grant = %d %v", status, body)
	}
	_, _, hdr := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {conf.ClientID}, "refresh_token": {"x"}}, "", "")
	if hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("token response Cache-Control = %q", hdr.Get("Cache-Control"))
	}
}

func TestExpiredCode(t *testing.T) {
	h := newHarness(t, func(o *oauth.Options) { o.CodeTTL = time.Millisecond })
	conf := publicClient(t, h)
	code, v := codeFor(t, h, conf)
	time.Sleep(5 * time.Millisecond)
	if status, body := exchange(t, h, conf, code, v); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("expired code = %d %v", status, body)
	}
}

func TestRefreshRotationGraceAndReuse(t *testing.T) {
	h := newHarness(t, func(o *oauth.Options) { o.RefreshGrace = 2 * time.Second })
	conf := publicClient(t, h)
	code, v := codeFor(t, h, conf)
	_, first := exchange(t, h, conf, code, v)
	refresh := func(rt string) (int, map[string]any) {
		s, b, _ := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {conf.ClientID}, "refresh_token": {rt}}, "", "")
		return s, b
	}
	rt1 := first["refresh_token"].(string)
	s, second := refresh(rt1)
	if s != 200 {
		t.Fatalf("first refresh = %d %v", s, second)
	}
	// Within the grace window the previous refresh token still works (two
	// refreshes racing from two places).
	if s, b := refresh(rt1); s != 200 {
		t.Fatalf("refresh within grace = %d %v", s, b)
	}
	time.Sleep(2500 * time.Millisecond)
	if s, b := refresh(rt1); s != 400 || b["error"] != "invalid_grant" {
		t.Fatalf("reuse after grace = %d %v", s, b)
	}
	// The reuse revoked the whole grant: every token of it is dead.
	if code, _, _ := h.callMCP(t, second["access_token"].(string)); code != 401 {
		t.Fatalf("access token of a revoked grant = %d, want 401", code)
	}
	if s, b := refresh(second["refresh_token"].(string)); s != 400 || b["error"] != "invalid_grant" {
		t.Fatalf("refresh of a revoked grant = %d %v", s, b)
	}
}

func TestBearerChallenges(t *testing.T) {
	h := newHarness(t, nil)
	want := `Bearer resource_metadata="https://mail-mcp.example.com/.well-known/oauth-protected-resource/api/mcp", scope="mail.read mail.modify mail.send"`
	code, _, hdr := h.callMCP(t, "")
	if code != 401 || hdr.Get("WWW-Authenticate") != want {
		t.Fatalf("no token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	code, _, hdr = h.callMCP(t, "imcp_at_made-up")
	if code != 401 || hdr.Get("WWW-Authenticate") != want+`, error="invalid_token", error_description="the access token is unknown, expired or revoked"` {
		t.Fatalf("unknown token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}

	conf := publicClient(t, h)
	code1, v := codeFor(t, h, conf)
	_, tok := exchange(t, h, conf, code1, v)
	at := tok["access_token"].(string)
	if c, _, _ := h.callMCP(t, at[:len(at)-1]+"x"); c != 401 {
		t.Fatalf("tampered token = %d", c)
	}
	if c, _, _ := h.callMCP(t, at, "Origin", "https://evil.example"); c != 403 {
		t.Fatalf("foreign Origin = %d, want 403", c)
	}
	if c, _, _ := h.callMCP(t, at, "Origin", "http://localhost:6274"); c != 200 {
		t.Fatalf("loopback Origin (MCP Inspector) = %d, want 200", c)
	}

	// A token minted for another audience is refused.
	ctx := context.Background()
	u, _ := h.st.UpsertClerkUser(ctx, "user_aud", "aud@example.com")
	g, _ := h.st.CreateGrant(ctx, u.ID, conf.ClientID, "mail.read")
	other := &store.Token{GrantID: g.ID, AccessTokenHash: sha("other-audience"), RefreshTokenHash: sha("r-other"), Scope: "mail.read",
		Resource: "https://other.example/api/mcp", AccessExpiresAt: time.Now().Add(time.Hour), RefreshExpiresAt: time.Now().Add(time.Hour)}
	if err := h.st.CreateToken(ctx, other); err != nil {
		t.Fatal(err)
	}
	code, _, hdr = h.callMCP(t, "other-audience")
	if code != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), "another resource") {
		t.Fatalf("other audience: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
}

func TestRegistrationRules(t *testing.T) {
	h := newHarness(t, nil)
	for body, wantErr := range map[string]string{
		`{"redirect_uris":["http://evil.example/cb"]}`:                                              "invalid_redirect_uri",
		`{"redirect_uris":[]}`:                                                                      "invalid_redirect_uri",
		`{"redirect_uris":["https://a.example/cb#frag"]}`:                                           "invalid_redirect_uri",
		`{"redirect_uris":["javascript:alert(1)"]}`:                                                 "invalid_redirect_uri",
		`{"redirect_uris":["file:///etc/passwd"]}`:                                                  "invalid_redirect_uri",
		`{"redirect_uris":["data://x/text"]}`:                                                       "invalid_redirect_uri",
		`{"redirect_uris":["Evil Scheme://x/cb"]}`:                                                  "invalid_redirect_uri",
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["password"]}`:                     "invalid_client_metadata",
		`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`: "invalid_client_metadata",
		`not json`: "invalid_client_metadata",
	} {
		status, out := h.register(t, body)
		if status != 400 || out["error"] != wantErr {
			t.Errorf("register %s = %d %v, want %s", body, status, out, wantErr)
		}
	}
	for _, uri := range []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback", "http://localhost:33418/oauth/callback", "http://[::1]:5000/cb",
		// Native apps' own schemes (RFC 8252 §7.1), as Cursor and VS Code use them.
		"cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback", "vscode://vscode.github-authentication/did-authenticate", "com.example.app:/oauth2redirect"} {
		if status, out := h.register(t, fmt.Sprintf(`{"redirect_uris":[%q],"token_endpoint_auth_method":"none"}`, uri)); status != 201 {
			t.Errorf("register %s = %d %v", uri, status, out)
		}
	}

	// A long name is cut at a character boundary, never mid-character.
	long, _ := json.Marshal(strings.Repeat("a", 199) + "é\u0007x")
	if status, out := h.register(t, fmt.Sprintf(`{"client_name":%s,"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`, long)); status != 201 ||
		out["client_name"] != strings.Repeat("a", 199) {
		t.Errorf("long name = %d %q", status, out["client_name"])
	}

	// Registration is rate-limited per address.
	limited := newHarness(t, nil)
	for i := range 21 {
		status, out := limited.register(t, `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`)
		if i < 20 && status != 201 {
			t.Fatalf("registration %d = %d", i+1, status)
		}
		if i == 20 && (status != 429 || out["error"] != "slow_down") {
			t.Fatalf("registration 21 = %d %v, want 429", status, out)
		}
	}
}

func TestCIMDRefusals(t *testing.T) {
	var base string
	mux := http.NewServeMux()
	doc := func(clientID string, pad int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"client_id": clientID, "client_name": strings.Repeat("x", pad),
				"redirect_uris": []string{"http://localhost/cb"}})
		}
	}
	mux.HandleFunc("/other.json", func(w http.ResponseWriter, r *http.Request) { doc("https://elsewhere.example/c.json", 0)(w, r) })
	mux.HandleFunc("/big.json", func(w http.ResponseWriter, r *http.Request) { doc(base+"/big.json", 6000)(w, r) })
	mux.HandleFunc("/slow.json", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		doc(base+"/slow.json", 0)(w, r)
	})
	mux.HandleFunc("/ok.json", func(w http.ResponseWriter, r *http.Request) { doc(base+"/ok.json", 0)(w, r) })
	ts := httptest.NewTLSServer(mux)
	defer ts.Close()
	base = ts.URL

	lenient := newHarness(t, func(o *oauth.Options) {
		o.CIMD = oauth.NewCIMDFetcher(oauth.CIMDOptions{AllowPrivate: true, RootCAs: tlsPool(ts), Timeout: 300 * time.Millisecond})
	})
	guarded := newHarness(t, func(o *oauth.Options) {
		o.CIMD = oauth.NewCIMDFetcher(oauth.CIMDOptions{RootCAs: tlsPool(ts)})
	})
	for _, tc := range []struct {
		h    *harness
		id   string
		want string
	}{
		{lenient, base + "/other.json", "does not equal the URL"},
		{lenient, base + "/big.json", "larger than 5120 bytes"},
		{lenient, base + "/slow.json", "could not be fetched within 300ms"},
		{lenient, "https://127.0.0.1:1/closed.json", "could not be reached"}, // fails at once: no talk of a timeout
		{guarded, base + "/ok.json", "private or local address"},
	} {
		q := url.Values{"client_id": {tc.id}, "redirect_uri": {"http://localhost:1234/cb"}, "response_type": {"code"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		resp, body := newPerson(t, tc.h, "user_alice").get(t, tc.h.url+"/api/oauth/authorize?"+q.Encode())
		if resp.StatusCode != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want a page saying %q\n%s", tc.id, resp.StatusCode, tc.want, body)
		}
	}

	// Anyone can make the server fetch, before signing in: each host
	// gets a bounded number of fetches a minute (this one has had 4).
	fetches := 0
	for i := range 20 {
		q := url.Values{"client_id": {fmt.Sprintf("%s/missing-%d.json", base, i)}, "redirect_uri": {"http://localhost:1234/cb"}}
		_, body := newPerson(t, lenient, "").get(t, lenient.url+"/api/oauth/authorize?"+q.Encode())
		if strings.Contains(body, "too many metadata documents") {
			break
		}
		fetches++
	}
	if fetches != 10-4 {
		t.Errorf("%d more fetches from one host in a minute, want 6", fetches)
	}
}

// TestDiscoverySnapshots compares the discovery documents with committed
// files; UPDATE_SNAPSHOTS=1 rewrites them.
func TestDiscoverySnapshots(t *testing.T) {
	h := newHarness(t, nil)
	for path, file := range map[string]string{
		"/.well-known/oauth-authorization-server":       "authorization-server.json",
		"/.well-known/openid-configuration":             "authorization-server.json",
		"/.well-known/oauth-protected-resource":         "protected-resource.json",
		"/.well-known/oauth-protected-resource/api/mcp": "protected-resource.json",
		"/.well-known/oauth-protected-resource/mcp":     "protected-resource-mcp.json",
	} {
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS", path)
		}
		got, _ := json.MarshalIndent(v, "", "  ")
		got = append(got, '\n')
		golden := filepath.Join("testdata", file)
		if os.Getenv("UPDATE_SNAPSHOTS") != "" {
			os.WriteFile(golden, got, 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with UPDATE_SNAPSHOTS=1 to create it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s:\n%s", path, golden, got)
		}
	}
}

func TestCodeOfARevokedGrant(t *testing.T) {
	h := newHarness(t, nil)
	conf := publicClient(t, h)
	code, v := codeFor(t, h, conf)
	ctx := context.Background()
	u, _ := h.st.UpsertClerkUser(ctx, "user_alice", "user_alice@example.com")
	apps, _ := h.st.ListConnectedApps(ctx, u.ID)
	if len(apps) != 1 {
		t.Fatalf("%d grants", len(apps))
	}
	if err := h.st.RevokeGrant(ctx, u.ID, apps[0].GrantID); err != nil { // revoked on /apps before the client redeemed
		t.Fatal(err)
	}
	if status, body := exchange(t, h, conf, code, v); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("code of a revoked grant = %d %v, want invalid_grant", status, body)
	}
}

// TestMCPAlias: /mcp is a resource of its own, with its own metadata; a
// token works only at the URL it was asked for.
func TestMCPAlias(t *testing.T) {
	h := newHarness(t, nil)
	code, _, hdr := h.callMCPAt(t, "/mcp", "")
	if code != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), `resource_metadata="https://mail-mcp.example.com/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("/mcp without a token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	conf := publicClient(t, h)
	v := oauth2.GenerateVerifier()
	back := newPerson(t, h, "user_alice").authorize(t, h, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v),
		oauth2.SetAuthURLParam("resource", issuer+"/mcp")), "allow", nil)
	status, tok := exchange(t, h, conf, back.Query().Get("code"), v)
	if status != 200 {
		t.Fatalf("exchange = %d %v", status, tok)
	}
	alias := tok["access_token"].(string)
	if c, _, _ := h.callMCPAt(t, "/mcp", alias); c != 200 {
		t.Fatalf("alias token at /mcp = %d", c)
	}
	if c, _, hdr := h.callMCPAt(t, "/api/mcp", alias); c != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), "another resource") {
		t.Fatalf("alias token at /api/mcp = %d", c)
	}
	code1, v1 := codeFor(t, h, conf)
	_, canon := exchange(t, h, conf, code1, v1)
	if c, _, _ := h.callMCPAt(t, "/mcp", canon["access_token"].(string)); c != 401 {
		t.Fatalf("canonical token at /mcp = %d", c)
	}
}

// TestRevocationEndsTheGrant: a replayed code and the revocation of any
// one token both end every token of the grant (RFC 6749 §4.1.2, RFC 7009
// §2.1), predecessors in their grace window included.
func TestRevocationEndsTheGrant(t *testing.T) {
	h := newHarness(t, func(o *oauth.Options) { o.RefreshGrace = time.Minute })
	conf := publicClient(t, h)

	code, v := codeFor(t, h, conf)
	_, first := exchange(t, h, conf, code, v)
	if s, b := exchange(t, h, conf, code, v); s != 400 || b["error"] != "invalid_grant" {
		t.Fatalf("replayed code = %d %v", s, b)
	}
	if status, _, _ := h.callMCP(t, first["access_token"].(string)); status != 401 {
		t.Fatalf("token of a replayed code still works: %d", status)
	}

	code, v = codeFor(t, h, conf)
	_, first = exchange(t, h, conf, code, v)
	s, second, _ := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {conf.ClientID},
		"refresh_token": {first["refresh_token"].(string)}}, "", "")
	if s != 200 {
		t.Fatalf("refresh = %d %v", s, second)
	}
	if s, b, _ := postForm(t, h.url+"/api/oauth/revoke", url.Values{"client_id": {conf.ClientID},
		"token": {second["refresh_token"].(string)}}, "", ""); s != 200 {
		t.Fatalf("revoke = %d %v", s, b)
	}
	for _, tok := range []string{first["access_token"].(string), second["access_token"].(string)} {
		if status, _, _ := h.callMCP(t, tok); status != 401 {
			t.Fatalf("access token alive after revoking its grant's refresh token: %d", status)
		}
	}
	if s, b, _ := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {conf.ClientID},
		"refresh_token": {first["refresh_token"].(string)}}, "", ""); s != 400 || b["error"] != "invalid_grant" {
		t.Fatalf("predecessor in its grace window after revocation = %d %v", s, b)
	}
}

// TestStoreOutage: while the database cannot answer, every endpoint says
// so with 503 and Retry-After, never an error that makes a client throw
// away its registration or tokens.
func TestStoreOutage(t *testing.T) {
	h := newHarness(t, nil)
	conf := publicClient(t, h)
	code, v := codeFor(t, h, conf)
	_, tok := exchange(t, h, conf, code, v)
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(what string, status int, hdr http.Header, body map[string]any) {
		t.Helper()
		if status != 503 || hdr.Get("Retry-After") == "" || body != nil && body["error"] != "temporarily_unavailable" {
			t.Errorf("%s during an outage = %d %v (Retry-After %q)", what, status, body, hdr.Get("Retry-After"))
		}
	}
	s, b, hdr := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {conf.ClientID},
		"refresh_token": {tok["refresh_token"].(string)}}, "", "")
	check("refresh", s, hdr, b)
	s, b, hdr = postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {conf.ClientID},
		"code": {"x"}, "code_verifier": {v}}, "", "")
	check("code exchange", s, hdr, b)
	s, b, hdr = postForm(t, h.url+"/api/oauth/revoke", url.Values{"client_id": {conf.ClientID}, "token": {"x"}}, "", "")
	check("revoke", s, hdr, b)
	status, _, hdr := h.callMCP(t, tok["access_token"].(string))
	check("bearer check", status, hdr, nil)
	resp, err := http.Post(h.url+"/api/oauth/register", "application/json",
		strings.NewReader(`{"client_name":"T","redirect_uris":["http://127.0.0.1:9999/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check("registration", resp.StatusCode, resp.Header, nil)
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	h := newHarness(t, nil)
	conf := publicClient(t, h)
	code, v := codeFor(t, h, conf)
	_, tok := exchange(t, h, conf, code, v)
	for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
		if status, _, _ := h.callMCP(t, "", "Authorization", scheme+" "+tok["access_token"].(string)); status != 200 {
			t.Fatalf("%q scheme = %d", scheme, status)
		}
	}
}

// TestNativeAppRedirect: a client with a private-use scheme gets its code
// at that scheme, and the consent page names it.
func TestNativeAppRedirect(t *testing.T) {
	h := newHarness(t, nil)
	status, reg := h.register(t, `{"client_name":"Cursor","redirect_uris":["cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback"],"token_endpoint_auth_method":"none"}`)
	if status != 201 {
		t.Fatalf("register = %d %v", status, reg)
	}
	conf := oauthConfig(h, reg["client_id"].(string), "", "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback", oauth2.AuthStyleInParams)
	v := oauth2.GenerateVerifier()
	p := newPerson(t, h, "user_native")
	_, _, page := p.consentForm(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)))
	if !strings.Contains(page, "cursor://anysphere.cursor-retrieval") {
		t.Fatal("the consent page does not name the app's scheme")
	}
	back := p.authorize(t, h, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), "allow", nil)
	if back.Scheme != "cursor" || back.Query().Get("code") == "" || back.Query().Get("state") != "st" {
		t.Fatalf("redirect = %s", back)
	}
	if s, body := exchange(t, h, conf, back.Query().Get("code"), v); s != 200 || body["access_token"] == nil {
		t.Fatalf("exchange = %d %v", s, body)
	}
}

// TestMCPPreflight: a browser-based client on a loopback origin (MCP
// Inspector) passes the CORS preflight and can read the headers it needs;
// another origin gets no CORS grant.
func TestMCPPreflight(t *testing.T) {
	h := newHarness(t, nil)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", h.url+"/api/mcp", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version, mcp-session-id")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("http://localhost:6274")
	allowHeaders := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(allowHeaders, "mcp-session-id") ||
		!strings.Contains(allowHeaders, "authorization") {
		t.Fatalf("preflight from a loopback origin = %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin = %d %v", resp.StatusCode, resp.Header)
	}
	// The 401 challenge and the session id are readable by the page.
	_, _, hdr := h.callMCP(t, "", "Origin", "http://localhost:6274")
	if hdr.Get("Access-Control-Allow-Origin") != "http://localhost:6274" || !strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") ||
		!strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id") {
		t.Fatalf("401 to a loopback origin: %v", hdr)
	}
}
