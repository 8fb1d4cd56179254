// Package auth signs people in to the web UI: Clerk in production, or one
// local user with a password when no Clerk keys are set. It resolves a
// request's cookies to a user and knows nothing of the web framework.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/imap-mcp/imap-mcp/store"
)

// State is what a request's cookies say about who is signed in.
type State int

const (
	// SignedOut: nobody is signed in.
	SignedOut State = iota
	// SignedIn: the user is known.
	SignedIn
	// Refresh: a Clerk session exists but its short-lived token expired;
	// loading ClerkJS once refreshes it.
	Refresh
)

// Cookies gives the request's cookies by name.
type Cookies map[string]string

// Authenticator resolves a request to its user.
type Authenticator interface {
	// Mode is "local" or "clerk".
	Mode() string
	// Resolve returns the signed-in user, or the state that explains why
	// there is none. Errors are failures of our own (database, Clerk's API).
	Resolve(ctx context.Context, c Cookies) (store.User, State, error)
}

type userKey struct{}

// WithUser returns a context carrying the signed-in user.
func WithUser(ctx context.Context, u store.User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the signed-in user set by WithUser.
func UserFrom(ctx context.Context) (store.User, bool) {
	u, ok := ctx.Value(userKey{}).(store.User)
	return u, ok
}

// SafeRedirect returns target if it is a path on this site, else "/".
// It stops open redirects through ?redirect_url=.
func SafeRedirect(target string) string {
	u, err := url.Parse(target)
	if err != nil || target == "" || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") ||
		strings.HasPrefix(target, "/\\") || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return target
}

// NewToken returns 32 random bytes, base64url: a secret for a link, a
// session or a sign-in state.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how such tokens are stored and looked up: SHA-256, hex.
func HashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}
