// Package oauthprovider is a local OAuth 2.0 and OpenID Connect provider
// that stands in for Google or Microsoft in tests. Like them it has an
// authorization endpoint with a consent page, a token endpoint that
// redeems codes (PKCE S256 required) and refresh tokens and returns RS256
// ID tokens, and, for Dovecot's oauth2 passdb, an RFC 7662 introspection
// endpoint. Tests can revoke a person's grants, rotate refresh tokens,
// shorten token lifetimes and replace the token endpoint's answers.
package oauthprovider

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Provider is a running provider. Its exported fields are set by Start.
type Provider struct {
	// URL is the base URL, http://127.0.0.1:port; the endpoints are
	// URL+"/authorize", "/token" and "/introspect".
	URL string
	// Issuer is the iss of its ID tokens (URL).
	Issuer string
	// ClientID and ClientSecret are the one registered client.
	ClientID, ClientSecret string

	srv *http.Server
	key *rsa.PrivateKey

	mu         sync.Mutex
	codes      map[string]*code
	access     map[string]*issued
	refresh    map[string]*grant
	ttl        time.Duration
	rotate     bool
	intercept  func(w http.ResponseWriter, r *http.Request) bool
	refreshes  int
	introspect int
}

type code struct {
	email, redirect, challenge string
	expires                    time.Time
}

type grant struct {
	email   string
	revoked bool
}

type issued struct {
	g       *grant
	expires time.Time
}

// Start runs a provider on a free loopback port.
func Start() (*Provider, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Provider{URL: "http://" + ln.Addr().String(), ClientID: "imap-mcp-test-client", ClientSecret: random(),
		key: key, codes: map[string]*code{}, access: map[string]*issued{}, refresh: map[string]*grant{}, ttl: time.Hour}
	p.Issuer = p.URL
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorizePage)
	mux.HandleFunc("POST /authorize", p.decide)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /introspect", p.introspectToken)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() error { return p.srv.Close() }

// SetAccessTTL sets the lifetime of access tokens issued from now on.
func (p *Provider) SetAccessTTL(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ttl = d
}

// SetRotation makes every refresh return a new refresh token and retire
// the one redeemed.
func (p *Provider) SetRotation(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rotate = on
}

// Intercept lets f answer token requests first; f returns true when it
// answered. nil removes it.
func (p *Provider) Intercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.intercept = f
}

// Revoke withdraws every grant of email: its refresh and access tokens stop working.
func (p *Provider) Revoke(email string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.refresh {
		if g.email == email {
			g.revoked = true
		}
	}
}

// Issue grants email access as a completed sign-in would and returns the
// access and refresh tokens.
func (p *Provider) Issue(email string) (access, refresh string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := &grant{email: email}
	access, refresh = random(), random()
	p.refresh[refresh] = g
	p.access[access] = &issued{g: g, expires: time.Now().Add(p.ttl)}
	return access, refresh
}

// Refreshes returns how many refresh-token grants were redeemed.
func (p *Provider) Refreshes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes
}

// Introspections returns how many introspection requests arrived.
func (p *Provider) Introspections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.introspect
}

var consent = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in – test provider</title></head>
<body><h1>Sign in to the test provider</h1>
<form method="post" action="/authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label for="email">Email</label> <input id="email" name="email" value="{{.Hint}}">
<p>imap-mcp wants to read, send and manage your mail.</p>
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>`))

func (p *Provider) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	}
	params := map[string]string{}
	for _, k := range []string{"redirect_uri", "state", "code_challenge", "scope"} {
		params[k] = q.Get(k)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = consent.Execute(w, map[string]any{"Params": params, "Hint": q.Get("login_hint")})
}

func (p *Provider) decide(w http.ResponseWriter, r *http.Request) {
	back, err := url.Parse(r.FormValue("redirect_uri"))
	if err != nil || back.Scheme == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := back.Query()
	q.Set("state", r.FormValue("state"))
	if r.FormValue("decision") != "allow" {
		q.Set("error", "access_denied")
	} else {
		c := random()
		p.mu.Lock()
		p.codes[c] = &code{email: r.FormValue("email"), redirect: back.String(), challenge: r.FormValue("code_challenge"), expires: time.Now().Add(time.Minute)}
		p.mu.Unlock()
		q.Set("code", c)
	}
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	intercept := p.intercept
	p.mu.Unlock()
	if intercept != nil && intercept(w, r) {
		return
	}
	if r.FormValue("client_id") != p.ClientID || r.FormValue("client_secret") != p.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var g *grant
	refreshToken := ""
	switch r.FormValue("grant_type") {
	case "authorization_code":
		c := p.codes[r.FormValue("code")]
		delete(p.codes, r.FormValue("code"))
		sum := sha256.Sum256([]byte(r.FormValue("code_verifier")))
		if c == nil || time.Now().After(c.expires) || c.redirect != r.FormValue("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		g = &grant{email: c.email}
		refreshToken = random()
		p.refresh[refreshToken] = g
	case "refresh_token":
		rt := r.FormValue("refresh_token")
		if g = p.refresh[rt]; g == nil || g.revoked {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		p.refreshes++
		if p.rotate {
			delete(p.refresh, rt)
			refreshToken = random()
			p.refresh[refreshToken] = g
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	at := random()
	p.access[at] = &issued{g: g, expires: time.Now().Add(p.ttl)}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(p.ttl.Seconds()),
		"scope": "https://mail.google.com/ openid email"}
	if refreshToken != "" {
		resp["refresh_token"] = refreshToken
	}
	if r.FormValue("grant_type") == "authorization_code" {
		resp["id_token"] = p.IDToken(map[string]any{"email": g.email, "email_verified": true, "name": "Test Person"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// IDToken returns an RS256-signed ID token for the registered client with
// claims over the defaults (iss, aud, sub, iat, exp).
func (p *Provider) IDToken(claims map[string]any) string {
	now := time.Now().Unix()
	all := map[string]any{"iss": p.Issuer, "aud": p.ClientID, "sub": "subject-1", "iat": now, "exp": now + 3600}
	for k, v := range claims {
		all[k] = v
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "test", "typ": "JWT"})
	payload, _ := json.Marshal(all)
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return signed + "." + b64(sig)
}

// introspectToken answers Dovecot: active with the address while the
// token is unexpired and its grant not revoked.
func (p *Provider) introspectToken(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.introspect++
	t := p.access[r.FormValue("token")]
	resp := map[string]any{"active": false}
	if t != nil && !t.g.revoked && time.Now().Before(t.expires) {
		resp = map[string]any{"active": true, "email": t.g.email, "client_id": p.ClientID, "exp": t.expires.Unix()}
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`, code)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func random() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b64(b)
}
