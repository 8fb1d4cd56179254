package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/store"
)

// Provider is a mail provider's OAuth sign-in as this server is
// registered with it.
type Provider struct {
	mail.OAuthProvider
	conf oauth2.Config
}

// Credentials are the client id and secret an operator registered.
type Credentials struct{ ClientID, ClientSecret string }

// TokenStore is what token refresh needs from the store.
type TokenStore interface {
	GetAccount(ctx context.Context, userID, id string) (store.MailAccount, error)
	SetAccountRefreshToken(ctx context.Context, userID, id, prev, sealed string) (bool, error)
	MarkAccountNeedsReauth(ctx context.Context, userID, id, sealed string) (bool, error)
}

// Sealer seals and opens secrets (package secret implements it).
type Sealer interface {
	Opener
	Seal(plaintext []byte, context string) string
}

// OAuthOptions configure NewOAuth.
type OAuthOptions struct {
	// Providers is the provider table (mail.OAuthProviders); only those
	// with credentials are offered.
	Providers   []mail.OAuthProvider
	Credentials map[string]Credentials
	// RedirectURL is APP_URL/accounts/oauth/callback.
	RedirectURL string
	Store       TokenStore
	Secrets     Sealer
	// HTTP reaches the providers' token endpoints; nil means a client
	// with a 20 s timeout that follows no redirects.
	HTTP   *http.Client
	Logger *slog.Logger
}

// OAuth signs mail accounts in with their provider and keeps their access
// tokens: in memory only, renewed shortly before they expire, once per
// account however many calls need one at the same moment.
type OAuth struct {
	providers []*Provider
	store     TokenStore
	secrets   Sealer
	http      *http.Client
	log       *slog.Logger

	mu    sync.Mutex
	cache map[string]accessToken // by account id
	// forced is when a refused token last made an account renew.
	forced map[string]time.Time
	flight singleflight.Group
}

type accessToken struct {
	token  string
	expiry time.Time
}

// Token timing.
const (
	// renewBefore renews a token this long before it expires.
	renewBefore = 2 * time.Minute
	// forceEvery is how often a server's refusal may renew an account's
	// token: a server that refuses every token (IMAP turned off, SMTP
	// AUTH disabled) must not make each call ask the provider.
	forceEvery = time.Minute
	// defaultLifetime is assumed when a provider gives no expires_in.
	defaultLifetime = 50 * time.Minute
	// refreshTimeout bounds one call to a token endpoint.
	refreshTimeout = 20 * time.Second
)

// NewOAuth returns the sign-in and token keeper for the configured providers.
func NewOAuth(o OAuthOptions) *OAuth {
	x := &OAuth{store: o.Store, secrets: o.Secrets, http: o.HTTP, log: o.Logger, cache: map[string]accessToken{}, forced: map[string]time.Time{}}
	if x.http == nil {
		x.http = &http.Client{Timeout: refreshTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range o.Providers {
		c, ok := o.Credentials[p.Key]
		if !ok || c.ClientID == "" {
			continue
		}
		x.providers = append(x.providers, &Provider{OAuthProvider: p, conf: oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: o.RedirectURL, Scopes: p.Scopes,
			Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}})
	}
	return x
}

// Providers returns the configured providers, in table order.
func (x *OAuth) Providers() []*Provider {
	if x == nil {
		return nil
	}
	return x.providers
}

// Provider returns the configured provider key.
func (x *OAuth) Provider(key string) (*Provider, bool) {
	for _, p := range x.Providers() {
		if p.Key == key {
			return p, true
		}
	}
	return nil, false
}

// ProviderForPreset returns the configured provider that signs in accounts
// of preset key.
func (x *OAuth) ProviderForPreset(preset string) (*Provider, bool) {
	for _, p := range x.Providers() {
		if p.Preset == preset {
			return p, true
		}
	}
	return nil, false
}

// AuthCodeURL is where the person signs in: the authorization request with
// state, the S256 challenge of verifier and, when set, a login hint.
func (p *Provider) AuthCodeURL(state, verifier, loginHint string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	for k, v := range p.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	return p.conf.AuthCodeURL(state, opts...)
}

// SignIn is the outcome of a completed sign-in.
type SignIn struct {
	// Email is the mailbox address from the ID token; Name the person's
	// name when the provider gave one; Subject who signed in (issuer and
	// subject), which does not change with the address.
	Email, Name, Subject string
	RefreshToken         string
	token                accessToken
}

// Exchange redeems the authorization code with the PKCE verifier and reads
// who signed in from the ID token. The token comes straight from the
// provider's token endpoint over TLS, so its issuer, audience and expiry
// are checked but not its signature (OpenID Connect Core 3.1.3.7).
func (x *OAuth) Exchange(ctx context.Context, p *Provider, code, verifier string) (SignIn, error) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, x.http), refreshTimeout)
	defer cancel()
	tok, err := p.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return SignIn{}, providerError(p, "sign-in", err)
	}
	if tok.RefreshToken == "" {
		return SignIn{}, fmt.Errorf("%s gave no refresh token, so the account would stop working within the hour; sign in again and allow offline access", p.Name)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := p.identity(raw)
	if err != nil {
		return SignIn{}, err
	}
	id.RefreshToken = tok.RefreshToken
	id.token = newAccessToken(tok)
	return id, nil
}

// idClaims are the ID token claims sign-in reads.
type idClaims struct {
	Issuer            string          `json:"iss"`
	Subject           string          `json:"sub"`
	Audience          json.RawMessage `json:"aud"`
	Expiry            float64         `json:"exp"`
	Email             string          `json:"email"`
	EmailVerified     any             `json:"email_verified"`
	PreferredUsername string          `json:"preferred_username"`
	Name              string          `json:"name"`
}

// identity checks the ID token and returns the address it names.
func (p *Provider) identity(raw string) (SignIn, error) {
	bad := func(why string) (SignIn, error) {
		return SignIn{}, fmt.Errorf("%s's answer is not usable (%s); try again, and tell the operator if it keeps happening", p.Name, why)
	}
	parts := strings.Split(raw, ".")
	if raw == "" || len(parts) != 3 || len(raw) > 16<<10 {
		return bad("no ID token: the app registration must allow the openid and email scopes")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	var c idClaims
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return bad("the ID token cannot be read")
	}
	var aud []string
	if json.Unmarshal(c.Audience, &aud) != nil {
		var one string
		_ = json.Unmarshal(c.Audience, &one)
		aud = []string{one}
	}
	switch {
	case !slices.Contains(aud, p.conf.ClientID):
		return bad("the ID token was issued to another application")
	case !issuerMatches(p.Issuers, c.Issuer):
		return bad("the ID token comes from an unexpected issuer")
	case time.Unix(int64(c.Expiry), 0).Before(time.Now().Add(-5 * time.Minute)):
		return bad("the ID token has expired")
	}
	if c.Subject == "" || len(c.Subject) > 255 {
		return bad("the ID token names nobody")
	}
	if verified, ok := c.EmailVerified.(bool); ok && !verified || c.EmailVerified == "false" {
		return bad("it names no verified email address")
	}
	// Microsoft sends email only when the tenant configured it; the
	// sign-in name is the mailbox address of work and personal accounts.
	addr := c.Email
	if addr == "" && strings.Contains(c.PreferredUsername, "@") {
		addr = c.PreferredUsername
	}
	if a, err := netmail.ParseAddress(addr); err != nil || a.Address != addr || len(addr) > 254 {
		return bad("it names no verified email address")
	}
	return SignIn{Email: strings.ToLower(addr), Name: strings.TrimSpace(strings.Map(dropControl, c.Name)),
		Subject: c.Issuer + "|" + c.Subject}, nil
}

func dropControl(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

func issuerMatches(issuers []string, iss string) bool {
	for _, want := range issuers {
		if prefix, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(iss, prefix) || want == iss {
			return true
		}
	}
	return false
}

// Remember keeps the access token of a sign-in for account id.
func (x *OAuth) Remember(id string, s SignIn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cache[id] = s.token
}

// Forget drops the access token kept for account id.
func (x *OAuth) Forget(id string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.cache, id)
	delete(x.forced, id)
}

// bearer returns the engine's token source for OAuth account a of p.
func (x *OAuth) bearer(p *Provider, a store.MailAccount) *mail.OAuth {
	grant := sha256.Sum256([]byte(a.ID + "\x00" + a.UpdatedAt.String()))
	return &mail.OAuth{Grant: hex.EncodeToString(grant[:8]), Token: func(ctx context.Context, refused string) (string, error) {
		return x.token(ctx, p, a, refused)
	}}
}

// token returns a's access token, renewing it when it is due or when it
// is refused, the token a server just refused.
func (x *OAuth) token(ctx context.Context, p *Provider, a store.MailAccount, refused string) (string, error) {
	if a.NeedsReauth {
		return "", reauthError(p, errors.New("the account is marked as needing a new sign-in"))
	}
	if t, ok := x.fresh(a.ID, refused); ok {
		return t.token, nil
	}
	if refused != "" && !x.mayForce(a.ID) {
		if t, ok := x.fresh(a.ID, ""); ok {
			return t.token, nil // renewed on a refusal a moment ago: the refusal stands
		}
	}
	// The refresh outlives a caller that gives up; the others still wait
	// for it, each only as long as its own context allows.
	ch := x.flight.DoChan(a.ID, func() (any, error) {
		if t, ok := x.fresh(a.ID, refused); ok {
			return t, nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return x.refresh(ctx, p, a)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(accessToken).token, nil
	case <-ctx.Done():
		return "", &mail.Error{Kind: mail.KindTimeout, Op: "oauth token", Err: ctx.Err()}
	}
}

// fresh returns the kept token of account id when it is not due for
// renewal and is not the refused one. Callers that saw the same token
// refused share one renewal; later ones get its result.
func (x *OAuth) fresh(id, refused string) (accessToken, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t, ok := x.cache[id]
	if !ok || time.Until(t.expiry) < renewBefore || t.token == refused {
		return accessToken{}, false
	}
	return t, true
}

// mayForce reports whether a refusal may renew account id's token now,
// at most once per forceEvery, and records it.
func (x *OAuth) mayForce(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if time.Since(x.forced[id]) < forceEvery {
		return false
	}
	x.forced[id] = time.Now()
	return true
}

// refresh redeems a's current refresh token, stores a rotated one at once
// and, when the provider refuses it for good, marks the account. A token
// refused because another replica rotated it meanwhile is not the
// person's problem: the stored one is tried.
func (x *OAuth) refresh(ctx context.Context, p *Provider, a store.MailAccount) (accessToken, error) {
	t, err := x.refreshOnce(ctx, p, a)
	if errors.Is(err, errRotated) {
		t, err = x.refreshOnce(ctx, p, a)
	}
	if errors.Is(err, errRotated) {
		err = reauthError(p, errors.New("the provider refused the refresh token"))
	}
	return t, err
}

// errRotated is a refused refresh token that is no longer the stored one.
var errRotated = errors.New("account: refresh token rotated meanwhile")

func (x *OAuth) refreshOnce(ctx context.Context, p *Provider, a store.MailAccount) (accessToken, error) {
	// The stored token may have been rotated since a was read.
	cur, err := x.store.GetAccount(ctx, a.UserID, a.ID)
	if err != nil {
		return accessToken{}, err
	}
	if cur.NeedsReauth {
		return accessToken{}, reauthError(p, errors.New("the account is marked as needing a new sign-in"))
	}
	secretCtx := store.AccountSecretContext(cur.UserID, store.ColumnRefreshToken)
	rt, err := x.secrets.Open(cur.OAuthRefreshTokenEnc, secretCtx)
	if err != nil {
		return accessToken{}, fmt.Errorf("account: open refresh token of %s: %w", a.ID, err)
	}
	tok, err := p.conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, x.http), &oauth2.Token{RefreshToken: string(rt)}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		x.Forget(a.ID)
		marked, err2 := x.store.MarkAccountNeedsReauth(ctx, cur.UserID, cur.ID, cur.OAuthRefreshTokenEnc)
		if err2 != nil {
			return accessToken{}, err2
		}
		if !marked {
			return accessToken{}, errRotated
		}
		x.log.Warn("mail provider refused the refresh token; the account needs a new sign-in", "account", a.ID, "provider", p.Key)
		return accessToken{}, reauthError(p, providerError(p, "token refresh", err))
	}
	if err != nil {
		x.log.Warn("mail provider token refresh failed", "account", a.ID, "provider", p.Key, "err", providerError(p, "token refresh", err))
		return accessToken{}, &mail.Error{Kind: mail.KindTemporary, Op: "oauth token refresh", Err: providerError(p, "token refresh", err)}
	}
	if tok.RefreshToken != "" && tok.RefreshToken != string(rt) {
		stored, err := x.store.SetAccountRefreshToken(ctx, cur.UserID, cur.ID, cur.OAuthRefreshTokenEnc, x.secrets.Seal([]byte(tok.RefreshToken), secretCtx))
		if err != nil {
			return accessToken{}, fmt.Errorf("account: store rotated refresh token of %s: %w", a.ID, err)
		}
		if !stored {
			// A new sign-in or another replica stored a token meanwhile:
			// that one stays; this access token is still good until it expires.
			x.log.Info("rotated refresh token not stored: the account's token changed meanwhile", "account", a.ID)
		}
	}
	t := newAccessToken(tok)
	x.mu.Lock()
	x.cache[a.ID] = t
	x.mu.Unlock()
	x.log.Info("mail provider token renewed", "account", a.ID, "provider", p.Key, "expires_in", time.Until(t.expiry).Round(time.Second).String())
	return t, nil
}

func newAccessToken(tok *oauth2.Token) accessToken {
	t := accessToken{token: tok.AccessToken, expiry: tok.Expiry}
	if t.expiry.IsZero() {
		t.expiry = time.Now().Add(defaultLifetime)
	}
	return t
}

func reauthError(p *Provider, err error) error {
	return &mail.Error{Kind: mail.KindReauth, Op: "oauth " + strings.ToLower(p.Name), Err: err}
}

// providerError describes a failed call to a token endpoint by its status
// and OAuth error code only: a provider's error body is not repeated.
func providerError(p *Provider, what string, err error) error {
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re) && re.ErrorCode != "":
		return fmt.Errorf("%s %s failed: %s", p.Name, what, re.ErrorCode)
	case errors.As(err, &re) && re.Response != nil:
		return fmt.Errorf("%s %s failed: HTTP %d", p.Name, what, re.Response.StatusCode)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) && ue.Timeout():
		return fmt.Errorf("%s %s failed: no answer within %s", p.Name, what, refreshTimeout)
	case errors.As(err, &ue):
		return fmt.Errorf("%s %s failed: its token endpoint could not be reached", p.Name, what)
	}
	return fmt.Errorf("%s %s failed: the provider's answer could not be used", p.Name, what)
}
