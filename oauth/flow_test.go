package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/imap-mcp/imap-mcp/oauth"
)

// client is an OAuth client under test: its config and a loopback address
// its redirect URI points at (nothing needs to listen there: the browser
// redirect is read from the Location header).
func oauthConfig(h *harness, clientID, secret, redirect string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect,
		Scopes:   []string{oauth.ScopeRead, oauth.ScopeModify, oauth.ScopeSend},
		Endpoint: oauth2.Endpoint{AuthURL: h.url + "/api/oauth/authorize", TokenURL: h.url + "/api/oauth/token", AuthStyle: style},
	}
}

// fullFlow authorizes with PKCE, exchanges the code, calls the API,
// refreshes and checks the new token works. It returns the final token.
func fullFlow(t *testing.T, h *harness, conf *oauth2.Config, user string) *oauth2.Token {
	t.Helper()
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier))
	back := newPerson(t, h, user).authorize(t, h, authURL, "allow", nil)
	q := back.Query()
	if q.Get("state") != "st-123" || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("redirect back = %s", back)
	}
	if !strings.HasPrefix(back.String(), conf.RedirectURL) {
		t.Fatalf("redirected to %s, want %s", back, conf.RedirectURL)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || time.Until(tok.Expiry) < 50*time.Minute {
		t.Fatalf("token = %+v", tok)
	}
	if sc, _ := tok.Extra("scope").(string); sc != "mail.read mail.modify mail.send" {
		t.Fatalf("scope = %q", sc)
	}
	code, body, _ := h.callMCP(t, tok.AccessToken)
	var p oauth.Principal
	json.Unmarshal([]byte(body), &p)
	if code != 200 || p.ClientID != conf.ClientID || !p.Has(oauth.ScopeSend) || p.UserID == "" {
		t.Fatalf("API call = %d %s", code, body)
	}

	// Refresh: a new pair; the new access token works.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	next, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatal(err)
	}
	if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate both tokens")
	}
	if code, _, _ := h.callMCP(t, next.AccessToken); code != 200 {
		t.Fatalf("API call with refreshed token = %d", code)
	}
	return next
}

func TestFlowDCRPublicClient(t *testing.T) {
	h := newHarness(t, nil)
	status, reg := h.register(t, `{"client_name":"Claude","redirect_uris":["http://127.0.0.1/callback"],
		"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"software_id":"ignored","logo_uri":"https://x/y.png"}`)
	if status != 201 {
		t.Fatalf("register = %d %v", status, reg)
	}
	for k, v := range reg {
		if v == nil {
			t.Fatalf("registration response has null %s", k)
		}
	}
	if _, ok := reg["client_secret"]; ok {
		t.Fatal("a public client got a secret")
	}
	// Loopback redirects match on any port (RFC 8252).
	conf := oauthConfig(h, reg["client_id"].(string), "", "http://127.0.0.1:54321/callback", oauth2.AuthStyleInParams)
	tok := fullFlow(t, h, conf, "user_alice")

	// Revoke (RFC 7009) ends that token.
	status, _, _ = postForm(t, h.url+"/api/oauth/revoke", url.Values{"client_id": {conf.ClientID}, "token": {tok.AccessToken}}, "", "")
	if status != 200 {
		t.Fatalf("revoke = %d", status)
	}
	if code, _, _ := h.callMCP(t, tok.AccessToken); code != 401 {
		t.Fatalf("revoked token = %d, want 401", code)
	}
	status, _, _ = postForm(t, h.url+"/api/oauth/revoke", url.Values{"client_id": {conf.ClientID}, "token": {"unknown"}}, "", "")
	if status != 200 {
		t.Fatalf("revoking an unknown token = %d, want 200", status)
	}
}

func TestFlowConfidentialClient(t *testing.T) {
	h := newHarness(t, nil)
	status, reg := h.register(t, `{"client_name":"Server app","redirect_uris":["https://app.example.org/oauth/cb"]}`)
	if status != 201 || reg["token_endpoint_auth_method"] != "client_secret_basic" || reg["client_secret"] == "" {
		t.Fatalf("register = %d %v", status, reg)
	}
	conf := oauthConfig(h, reg["client_id"].(string), reg["client_secret"].(string), "https://app.example.org/oauth/cb", oauth2.AuthStyleInHeader)
	fullFlow(t, h, conf, "user_bob")

	// The wrong secret is refused with 401 invalid_client.
	status, body, hdr := postForm(t, h.url+"/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, conf.ClientID, "wrong")
	if status != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong secret = %d %v", status, body)
	}
}

func TestFlowCIMDClient(t *testing.T) {
	var docURL string
	doc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "Claude Code",
			"redirect_uris": []string{"http://localhost/callback"}, "token_endpoint_auth_method": "none"})
	}))
	defer doc.Close()
	docURL = doc.URL + "/oauth/client.json"
	h := newHarness(t, func(o *oauth.Options) {
		o.CIMD = oauth.NewCIMDFetcher(oauth.CIMDOptions{AllowPrivate: true, RootCAs: tlsPool(doc)})
	})
	conf := oauthConfig(h, docURL, "", "http://localhost:61000/callback", oauth2.AuthStyleInParams)
	_, _, body := newPerson(t, h, "user_carol").consentForm(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if !strings.Contains(body, "Allow Claude Code?") || !strings.Contains(body, docURL) {
		t.Fatalf("consent page for a CIMD client:\n%s", body)
	}
	fullFlow(t, h, conf, "user_carol")
}
