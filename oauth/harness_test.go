package oauth_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// issuer is fixed so discovery documents are stable; requests go to the
// test server's address.
const issuer = "https://mail-mcp.example.com"

// testAuth signs in whoever carries the cookie test_user=<clerk id>.
type testAuth struct{ st *store.Store }

func (a testAuth) Mode() string { return "test" }

func (a testAuth) Resolve(ctx context.Context, c auth.Cookies) (store.User, auth.State, error) {
	id := c["test_user"]
	if id == "" {
		return store.User{}, auth.SignedOut, nil
	}
	u, err := a.st.UpsertClerkUser(ctx, id, id+"@example.com")
	return u, auth.SignedIn, err
}

type harness struct {
	url string
	st  *store.Store
	srv *oauth.Server
}

// newHarness runs the OAuth routes and a bearer-guarded /api/mcp that
// echoes the principal. opts may adjust the options.
func newHarness(t testing.TB, opts func(*oauth.Options)) *harness {
	st := dbtest.SQLiteStore(t)
	keys, _ := secret.New(secret.Generate())
	o := oauth.Options{
		Issuer: issuer, Resource: issuer + "/api/mcp", Store: st, Auth: testAuth{st},
		CSRF: auth.NewCSRF(keys.CookieKey(), issuer), Logger: slog.New(slog.DiscardHandler),
		Page: func(title string, u *store.User, csrf string) views.Page {
			return views.Page{Title: title, CSRF: csrf, Mode: "test"}
		},
	}
	if opts != nil {
		opts(&o)
	}
	srv := oauth.New(o)
	mux := http.NewServeMux()
	srv.Routes(mux)
	echo := srv.Bearer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := oauth.PrincipalFrom(r.Context())
		json.NewEncoder(w).Encode(p)
	}))
	for _, path := range oauth.MCPPaths {
		mux.Handle(path, echo) // every method, as main mounts it
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &harness{url: ts.URL, st: st, srv: srv}
}

// register performs DCR and returns the response.
func (h *harness) register(t testing.TB, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(h.url+"/api/oauth/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// person is a browser signed in as a user.
type person struct {
	c *http.Client
}

func newPerson(t testing.TB, h *harness, clerkID string) *person {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(h.url)
	if clerkID != "" {
		jar.SetCookies(u, []*http.Cookie{{Name: "test_user", Value: clerkID}})
	}
	return &person{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var (
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
	checkbox    = regexp.MustCompile(`name="(allow_[a-z]+)"`)
)

// consentForm loads the consent page at authURL and returns its form.
func (p *person) consentForm(t testing.TB, authURL string) (url.Values, *http.Response, string) {
	t.Helper()
	resp, body := p.get(t, authURL)
	if resp.StatusCode != 200 {
		return nil, resp, body
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	for _, m := range checkbox.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], "1")
	}
	return form, resp, body
}

// authorize walks the consent page at authURL, answering decision
// ("allow" or "deny") after edit changes the form, and returns the
// redirect back to the client.
func (p *person) authorize(t testing.TB, h *harness, authURL, decision string, edit func(url.Values)) *url.URL {
	t.Helper()
	form, resp, body := p.consentForm(t, authURL)
	if form == nil {
		t.Fatalf("consent page = %d\n%s", resp.StatusCode, body)
	}
	form.Set("decision", decision)
	if edit != nil {
		edit(form)
	}
	resp, body = p.post(t, h.url+"/api/oauth/authorize", form, "Origin", issuer)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent POST = %d\n%s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func (p *person) get(t testing.TB, u string) (*http.Response, string) {
	t.Helper()
	resp, err := p.c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (p *person) post(t testing.TB, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// postForm posts a form without cookies and decodes a JSON answer.
func postForm(t testing.TB, u string, form url.Values, basicUser, basicPass string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

// callMCP calls the guarded endpoint with a bearer token.
func (h *harness) callMCP(t testing.TB, token string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	return h.callMCPAt(t, "/api/mcp", token, hdr...)
}

// callMCPAt calls the guarded endpoint at path.
func (h *harness) callMCPAt(t testing.TB, path, token string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.url+path, strings.NewReader("{}"))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&quot;", `"`)
	return r.Replace(s)
}

// tlsPool trusts the certificate of an httptest TLS server.
func tlsPool(ts *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return pool
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
