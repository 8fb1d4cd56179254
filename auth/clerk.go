package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/clerk/clerk-sdk-go/v2/user"
	josejwt "github.com/go-jose/go-jose/v3/jwt"

	"github.com/imap-mcp/imap-mcp/store"
)

// Clerk timings.
const (
	// ClerkLeeway tolerates clock skew on exp and nbf.
	ClerkLeeway = 5 * time.Second
	// ClerkAPITimeout bounds each call to Clerk's Backend API.
	ClerkAPITimeout = 5 * time.Second
	// jwksRefetchEvery rate-limits refetching keys for an unknown kid.
	jwksRefetchEvery = 30 * time.Second
	// userCacheTTL is how long a Clerk user's mapping and email are reused.
	userCacheTTL = 10 * time.Minute
)

// ClerkStore is what Clerk mode needs from the store.
type ClerkStore interface {
	UpsertClerkUser(ctx context.Context, clerkUserID, email string) (store.User, error)
}

// ClerkOptions configure Clerk mode.
type ClerkOptions struct {
	SecretKey string
	// AppOrigin is APP_URL; a session token's azp must equal it.
	AppOrigin string
	// BackendURL overrides Clerk's API base URL (tests); empty for Clerk's.
	BackendURL string
}

// Clerk verifies ClerkJS session cookies (__session, a 60-second RS256 JWT)
// with keys fetched once and cached by kid, and maps Clerk users to ours.
type Clerk struct {
	jwks   *jwks.Client
	users  *user.Client
	st     ClerkStore
	origin string

	keysMu    sync.Mutex
	keys      map[string]*clerk.JSONWebKey
	fetchedAt time.Time

	usersMu sync.Mutex
	cache   map[string]cachedUser
}

type cachedUser struct {
	user    store.User
	expires time.Time
}

// NewClerk returns Clerk mode.
func NewClerk(st ClerkStore, o ClerkOptions) *Clerk {
	cfg := &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{
		Key:        clerk.String(o.SecretKey),
		HTTPClient: &http.Client{Timeout: ClerkAPITimeout},
	}}
	if o.BackendURL != "" {
		cfg.URL = clerk.String(o.BackendURL)
	}
	return &Clerk{
		jwks: jwks.NewClient(cfg), users: user.NewClient(cfg), st: st,
		origin: strings.TrimSuffix(o.AppOrigin, "/"),
		keys:   map[string]*clerk.JSONWebKey{}, cache: map[string]cachedUser{},
	}
}

// Mode implements Authenticator.
func (k *Clerk) Mode() string { return "clerk" }

// Resolve implements Authenticator. A missing or expired session token
// while __client_uat says the browser is signed in gives Refresh.
func (k *Clerk) Resolve(ctx context.Context, c Cookies) (store.User, State, error) {
	signedInClient := false
	if uat := cookieOrSuffixed(c, "__client_uat"); uat != "" && uat != "0" {
		signedInClient = true
	}
	tok := cookieOrSuffixed(c, "__session")
	if tok == "" {
		if signedInClient {
			return store.User{}, Refresh, nil
		}
		return store.User{}, SignedOut, nil
	}
	claims, err := k.verify(ctx, tok)
	if err != nil {
		if signedInClient && (errors.Is(err, josejwt.ErrExpired) || errors.Is(err, josejwt.ErrNotValidYet)) {
			return store.User{}, Refresh, nil
		}
		return store.User{}, SignedOut, nil
	}
	u, err := k.user(ctx, claims.Subject)
	if err != nil {
		return store.User{}, SignedOut, err
	}
	return u, SignedIn, nil
}

// cookieOrSuffixed returns cookie name, or else a suffixed variant
// (name_<suffix>) that ClerkJS writes for multi-app domains.
func cookieOrSuffixed(c Cookies, name string) string {
	if v := c[name]; v != "" {
		return v
	}
	for n, v := range c {
		if strings.HasPrefix(n, name+"_") && v != "" {
			return v
		}
	}
	return ""
}

func (k *Clerk) verify(ctx context.Context, tok string) (*clerk.SessionClaims, error) {
	head, err := jwt.Decode(ctx, &jwt.DecodeParams{Token: tok})
	if err != nil {
		return nil, err
	}
	key, err := k.key(ctx, head.KeyID)
	if err != nil {
		return nil, err
	}
	return jwt.Verify(ctx, &jwt.VerifyParams{
		Token: tok, JWK: key, Leeway: ClerkLeeway,
		AuthorizedPartyHandler: func(azp string) bool { return azp == k.origin },
	})
}

// key returns the JWKS key kid, fetching the key set on first use and again
// for an unknown kid at most every jwksRefetchEvery.
func (k *Clerk) key(ctx context.Context, kid string) (*clerk.JSONWebKey, error) {
	k.keysMu.Lock()
	defer k.keysMu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if !k.fetchedAt.IsZero() && time.Since(k.fetchedAt) < jwksRefetchEvery {
		return nil, fmt.Errorf("auth: unknown Clerk key %q", kid)
	}
	ctx, cancel := context.WithTimeout(ctx, ClerkAPITimeout)
	defer cancel()
	k.fetchedAt = time.Now()
	set, err := k.jwks.Get(ctx, &jwks.GetParams{})
	if err != nil {
		return nil, fmt.Errorf("auth: fetch Clerk keys: %w", err)
	}
	k.keys = map[string]*clerk.JSONWebKey{}
	for _, key := range set.Keys {
		if key != nil {
			k.keys[key.KeyID] = key
		}
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("auth: unknown Clerk key %q", kid)
}

// user maps a Clerk user id to our user, creating it on first sign-in with
// the primary email from Clerk's API; the result is cached.
func (k *Clerk) user(ctx context.Context, clerkID string) (store.User, error) {
	k.usersMu.Lock()
	c, ok := k.cache[clerkID]
	k.usersMu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.user, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ClerkAPITimeout)
	defer cancel()
	cu, err := k.users.Get(ctx, clerkID)
	if err != nil {
		return store.User{}, fmt.Errorf("auth: get Clerk user: %w", err)
	}
	u, err := k.st.UpsertClerkUser(ctx, clerkID, primaryEmail(cu))
	if err != nil {
		return store.User{}, err
	}
	k.usersMu.Lock()
	k.cache[clerkID] = cachedUser{user: u, expires: time.Now().Add(userCacheTTL)}
	k.usersMu.Unlock()
	return u, nil
}

func primaryEmail(u *clerk.User) string {
	for _, e := range u.EmailAddresses {
		if e != nil && u.PrimaryEmailAddressID != nil && e.ID == *u.PrimaryEmailAddressID {
			return e.EmailAddress
		}
	}
	if len(u.EmailAddresses) > 0 && u.EmailAddresses[0] != nil {
		return u.EmailAddresses[0].EmailAddress
	}
	return ""
}
