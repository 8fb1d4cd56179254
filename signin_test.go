package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"
)

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// csrfFrom returns the CSRF token of the first form in a page.
func csrfFrom(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in page:\n%s", page)
	}
	return m[1]
}

func TestLocalSetupSignInSignOut(t *testing.T) {
	inst := start(t, map[string]string{"DATA_DIR": t.TempDir()})
	m := regexp.MustCompile(`/setup\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(inst.logs.String())
	if m == nil {
		t.Fatalf("no setup link printed:\n%s", inst.logs)
	}
	token := m[1]
	if strings.Contains(inst.logs.String(), "level=") && regexp.MustCompile(`level=\S+ .*`+token).MatchString(inst.logs.String()) {
		t.Fatal("the setup token went into the structured log")
	}
	b := browser(t)

	if resp, _ := send(t, b, "GET", inst.url+"/setup?token=wrong", nil); resp.StatusCode != 404 {
		t.Fatalf("setup with a wrong token = %d, want 404", resp.StatusCode)
	}
	_, page := send(t, b, "GET", inst.url+"/setup?token="+token, nil)
	csrf := csrfFrom(t, page)

	// Without the CSRF token, or from another site, nothing changes.
	form := neturl.Values{"token": {token}, "password": {"correct horse"}, "confirm": {"correct horse"}}
	if resp, _ := send(t, b, "POST", inst.url+"/setup", form); resp.StatusCode != 403 {
		t.Fatalf("setup without CSRF token = %d, want 403", resp.StatusCode)
	}
	form.Set("_csrf", csrf)
	if resp, _ := send(t, b, "POST", inst.url+"/setup", form, "Origin", "https://evil.example"); resp.StatusCode != 403 {
		t.Fatalf("setup from another origin = %d, want 403", resp.StatusCode)
	}
	if resp, _ := send(t, browser(t), "POST", inst.url+"/setup", form); resp.StatusCode != 403 {
		t.Fatalf("setup with a token but no CSRF cookie = %d, want 403", resp.StatusCode)
	}
	short := neturl.Values{"_csrf": {csrf}, "token": {token}, "password": {"short"}, "confirm": {"short"}}
	if resp, body := send(t, b, "POST", inst.url+"/setup", short); resp.StatusCode != 422 || !strings.Contains(body, "at least 8 characters") {
		t.Fatalf("short password = %d", resp.StatusCode)
	}
	differ := neturl.Values{"_csrf": {csrf}, "token": {token}, "password": {"correct horse"}, "confirm": {"correct horses"}}
	if resp, body := send(t, b, "POST", inst.url+"/setup", differ); resp.StatusCode != 422 || !strings.Contains(body, "differ") {
		t.Fatalf("mismatched passwords = %d", resp.StatusCode)
	}
	resp, _ := send(t, b, "POST", inst.url+"/setup", form)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("setup = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, home := send(t, b, "GET", inst.url+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(home, `data-testid="user">Local admin`) || !strings.Contains(home, "/api/mcp") {
		t.Fatalf("home after setup = %d\n%s", resp.StatusCode, home)
	}

	// The setup link works once.
	if resp, _ := send(t, browser(t), "GET", inst.url+"/setup?token="+token, nil); resp.StatusCode != 404 {
		t.Fatalf("used setup link = %d, want 404", resp.StatusCode)
	}

	// An HTMX request without a session gets 401 + HX-Refresh; an API request 401.
	if resp, _ := send(t, browser(t), "GET", inst.url+"/", nil, "HX-Request", "true"); resp.StatusCode != 401 || resp.Header.Get("HX-Refresh") != "true" {
		t.Fatalf("HTMX signed out = %d HX-Refresh=%q", resp.StatusCode, resp.Header.Get("HX-Refresh"))
	}
	if resp, _ := send(t, browser(t), "GET", inst.url+"/", nil, "Accept", "application/json"); resp.StatusCode != 401 {
		t.Fatalf("API signed out = %d, want 401", resp.StatusCode)
	}

	// Sign out, then the session is gone even if its cookie were replayed.
	old := b.Jar.Cookies(mustURL(t, inst.url))
	_, home = send(t, b, "GET", inst.url+"/", nil)
	resp, _ = send(t, b, "POST", inst.url+"/sign-out", neturl.Values{"_csrf": {csrfFrom(t, home)}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/sign-in" {
		t.Fatalf("sign-out = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	replay := browser(t)
	replay.Jar.SetCookies(mustURL(t, inst.url), old)
	if resp, _ := send(t, replay, "GET", inst.url+"/", nil); resp.StatusCode != 303 {
		t.Fatalf("replayed session after sign-out = %d, want 303 to sign-in", resp.StatusCode)
	}

	// Sign in again, back to where the person was going; open redirects are refused.
	_, page = send(t, b, "GET", inst.url+"/sign-in?redirect_url=%2F%3Fx%3D1", nil)
	csrf = csrfFrom(t, page)
	resp, _ = send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"correct horse"}, "redirect_url": {"/?x=1"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/?x=1" {
		t.Fatalf("sign-in = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	send(t, b, "POST", inst.url+"/sign-out", neturl.Values{"_csrf": {csrf}})
	resp, _ = send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"correct horse"}, "redirect_url": {"//evil.example/x"}})
	if resp.Header.Get("Location") != "/" {
		t.Fatalf("open redirect: Location = %q", resp.Header.Get("Location"))
	}
	send(t, b, "POST", inst.url+"/sign-out", neturl.Values{"_csrf": {csrf}})

	// Wrong passwords are rate-limited per address: after 5 failures even
	// the right one waits. They come from an address of their own, so the
	// limit's one-minute window starts with the first of them however long
	// the steps above took.
	b = browser(t)
	b.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	_, page = send(t, b, "GET", inst.url+"/sign-in", nil)
	csrf = csrfFrom(t, page)
	for i := range 5 {
		resp, body := send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"wrong"}})
		if resp.StatusCode != 401 || !strings.Contains(body, "not right") {
			t.Fatalf("wrong password #%d = %d", i+1, resp.StatusCode)
		}
	}
	if resp, _ := send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"correct horse"}}); resp.StatusCode != 429 {
		t.Fatalf("sixth attempt = %d, want 429", resp.StatusCode)
	}
}

func TestLocalAdminPassword(t *testing.T) {
	inst := start(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "from-the-env"})
	if strings.Contains(inst.logs.String(), "/setup?token=") {
		t.Fatal("a setup link was printed although LOCAL_ADMIN_PASSWORD is set")
	}
	b := browser(t)
	_, page := send(t, b, "GET", inst.url+"/sign-in", nil)
	csrf := csrfFrom(t, page)
	if resp, _ := send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"from-the-envX"}}); resp.StatusCode != 401 {
		t.Fatalf("wrong password = %d", resp.StatusCode)
	}
	if resp, _ := send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"from-the-env"}}); resp.StatusCode != 303 {
		t.Fatalf("right password = %d", resp.StatusCode)
	}
	if resp, _ := send(t, b, "GET", inst.url+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("home = %d", resp.StatusCode)
	}
	if resp, _ := send(t, b, "GET", inst.url+"/setup?token=x", nil); resp.StatusCode != 404 {
		t.Fatalf("setup with a fixed password = %d, want 404", resp.StatusCode)
	}
}

func mustURL(t *testing.T, s string) *neturl.URL {
	u, err := neturl.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A client behind a trusted proxy cannot dodge the sign-in limit by
// forging the first X-Forwarded-For entry.
func TestSignInLimitBehindAProxy(t *testing.T) {
	inst := start(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "proxy-secret", "TRUST_PROXY_HEADERS": "true"})
	b := browser(t)
	_, page := send(t, b, "GET", inst.url+"/sign-in", nil)
	csrf := csrfFrom(t, page)
	for i := range 6 {
		resp, _ := send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrf}, "password": {"wrong"}},
			"X-Forwarded-For", fmt.Sprintf("10.9.8.%d, 203.0.113.50", i))
		want := 401
		if i == 5 {
			want = 429
		}
		if resp.StatusCode != want {
			t.Fatalf("attempt %d = %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
