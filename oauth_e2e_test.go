package main

import (
	"context"
	"encoding/json"
	"net/http"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcplib "github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/oauth2"
)

// TestOAuthEndToEnd runs the real server in local mode: a client
// registers, the person signs in, consents, the client gets tokens, the
// person sees and revokes the app on /apps, and the client's refresh fails.
func TestOAuthEndToEnd(t *testing.T) {
	inst := start(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "local-secret"})
	conf, tok, b := authorizeLocal(t, inst.url, "http://localhost:0")

	// The token works on the MCP endpoint, through a real MCP client.
	mc, err := client.NewStreamableHttpClient(inst.url+"/api/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx := context.Background()
	if err := mc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Initialize(ctx, mcplib.InitializeRequest{Params: mcplib.InitializeParams{ProtocolVersion: mcplib.LATEST_PROTOCOL_VERSION,
		ClientInfo: mcplib.Implementation{Name: "e2e", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	res, err := mc.CallTool(ctx, mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: "list_accounts"}})
	if err != nil || res.IsError {
		t.Fatalf("list_accounts = %+v, %v", res, err)
	}

	// The person sees the app and revokes it; the client's tokens die.
	_, apps := send(t, b, "GET", inst.url+"/apps", nil)
	if !strings.Contains(apps, "mcp-remote") || !strings.Contains(apps, "localhost:3335") || !strings.Contains(apps, "send mail") {
		t.Fatalf("/apps:\n%s", apps)
	}
	action := regexp.MustCompile(`action="(/apps/[^"]+/revoke)"`).FindStringSubmatch(apps)[1]
	resp, _ := send(t, b, "POST", inst.url+action, neturl.Values{"_csrf": {csrfFrom(t, apps)}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/apps?revoked=1" {
		t.Fatalf("revoke = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, apps = send(t, b, "GET", inst.url+"/apps", nil); !strings.Contains(apps, `data-testid="no-apps"`) {
		t.Fatal("revoked app still listed")
	}
	if _, err := mc.CallTool(ctx, mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: "list_accounts"}}); err == nil {
		t.Fatal("MCP call with a revoked token succeeded")
	}
	if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after revocation: %v, want invalid_grant", err)
	}
	// Revoking it again: nothing to revoke.
	resp, _ = send(t, b, "POST", inst.url+action, neturl.Values{"_csrf": {csrfFrom(t, apps)}})
	if resp.StatusCode != 404 {
		t.Fatalf("second revoke = %d, want 404", resp.StatusCode)
	}
}

// authorizeLocal runs the whole authorization against the local-mode
// server at base (whose issuer is issuer): mcp-remote registers, the
// person signs in with the password local-secret and consents to every
// scope, and the client exchanges the code. It returns the client's
// config, its token and the person's browser.
func authorizeLocal(t *testing.T, base, issuer string) (*oauth2.Config, *oauth2.Token, *http.Client) {
	t.Helper()
	inst := &instance{url: base}
	resp, err := http.Post(inst.url+"/register", "application/json",
		strings.NewReader(`{"client_name":"mcp-remote","redirect_uris":["http://localhost:3335/oauth/callback"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("register = %d %v", resp.StatusCode, reg)
	}
	conf := &oauth2.Config{ClientID: reg["client_id"].(string), RedirectURL: "http://localhost:3335/oauth/callback", Scopes: []string{"mail.read", "mail.modify", "mail.send"},
		Endpoint: oauth2.Endpoint{AuthURL: inst.url + "/authorize", TokenURL: inst.url + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("abc", oauth2.S256ChallengeOption(verifier))

	b := browser(t)
	cb := consentLocal(t, b, inst.url, authURL, issuer, "mcp-remote", "localhost:3335")
	tok, err := conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	return conf, tok, b
}

// consentLocal walks an authorization request as the person would in b:
// signed out, so sign-in (password local-secret) first, then the consent
// page, which must name app and host, allowing every scope. It returns
// the client's callback URL with the code, unvisited.
func consentLocal(t *testing.T, b *http.Client, base, authURL, issuer, app, host string) *neturl.URL {
	t.Helper()
	inst := &instance{url: base}
	// Signed out: sign-in first, then back to the authorization request.
	resp, _ := send(t, b, "GET", authURL, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 303 || !strings.HasPrefix(loc, "/sign-in?redirect_url=") {
		t.Fatalf("authorize signed out = %d %q", resp.StatusCode, loc)
	}
	_, page := send(t, b, "GET", inst.url+loc, nil)
	back := regexp.MustCompile(`name="redirect_url" value="([^"]+)"`).FindStringSubmatch(page)[1]
	back = strings.ReplaceAll(back, "&amp;", "&")
	resp, _ = send(t, b, "POST", inst.url+"/sign-in", neturl.Values{"_csrf": {csrfFrom(t, page)}, "password": {"local-secret"}, "redirect_url": {back}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.HasPrefix(loc, "/authorize?") && !strings.HasPrefix(loc, "/api/oauth/authorize?") {
		t.Fatalf("sign-in did not return to the authorization request: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, consent := send(t, b, "GET", inst.url+resp.Header.Get("Location"), nil)
	if resp.StatusCode != 200 || !strings.Contains(consent, "Allow "+app+"?") || !strings.Contains(consent, host) {
		t.Fatalf("consent page = %d\n%s", resp.StatusCode, consent)
	}
	form := neturl.Values{"decision": {"allow"}, "allow_modify": {"1"}, "allow_send": {"1"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(consent, -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	resp, _ = send(t, b, "POST", inst.url+"/api/oauth/authorize", form)
	cb, _ := neturl.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 303 || cb.Query().Get("code") == "" || cb.Query().Get("iss") != issuer {
		t.Fatalf("consent = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return cb
}
