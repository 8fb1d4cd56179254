package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/imap-mcp/imap-mcp/store"
)

// Local-mode names and lifetimes.
const (
	// SessionCookie holds a local-mode session token (stored hashed).
	SessionCookie = "imapmcp_session"
	// SessionTTL is how long a local-mode session lasts.
	SessionTTL = 14 * 24 * time.Hour
	// MinPasswordLength is the shortest password accepted at setup.
	MinPasswordLength = 8
	setupSetting      = "local_setup_token_hash"
)

// Errors of local sign-in.
var (
	ErrWrongPassword = errors.New("auth: wrong password")
	ErrNoPassword    = errors.New("auth: no password set yet")
	ErrBadSetupLink  = errors.New("auth: setup token unknown or used")
	ErrWeakPassword  = errors.New("auth: password too short")
)

// LocalStore is what local mode needs from the store.
type LocalStore interface {
	EnsureLocalUser(ctx context.Context) (store.User, error)
	PasswordHash(ctx context.Context, userID string) (string, error)
	SetPasswordHash(ctx context.Context, userID, hash string) error
	CreateWebSession(ctx context.Context, tokenHash, userID string, expires time.Time) error
	WebSessionUser(ctx context.Context, tokenHash string) (store.User, error)
	DeleteWebSession(ctx context.Context, tokenHash string) error
	PutSetting(ctx context.Context, key, value string) error
	Setting(ctx context.Context, key string) (string, error)
	TakeSetting(ctx context.Context, key, value string) (bool, error)
}

// Local is single-user mode: one local user, a password (LOCAL_ADMIN_PASSWORD
// or one chosen through a one-time setup link) and server-side sessions.
type Local struct {
	st       LocalStore
	fixed    []byte // SHA-256 of LOCAL_ADMIN_PASSWORD; nil when unset
	hashCost int
}

// NewLocal returns local mode. adminPassword is LOCAL_ADMIN_PASSWORD (may be
// empty); hashCost is the bcrypt cost for chosen passwords (0: default).
func NewLocal(st LocalStore, adminPassword string, hashCost int) *Local {
	l := &Local{st: st, hashCost: hashCost}
	if adminPassword != "" {
		h := sha256.Sum256([]byte(adminPassword))
		l.fixed = h[:]
	}
	if l.hashCost == 0 {
		l.hashCost = 12
	}
	return l
}

// Mode implements Authenticator.
func (l *Local) Mode() string { return "local" }

// Resolve implements Authenticator.
func (l *Local) Resolve(ctx context.Context, c Cookies) (store.User, State, error) {
	tok := c[SessionCookie]
	if tok == "" {
		return store.User{}, SignedOut, nil
	}
	u, err := l.st.WebSessionUser(ctx, HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, SignedOut, nil
	}
	if err != nil {
		return store.User{}, SignedOut, err
	}
	return u, SignedIn, nil
}

// PrepareSetup returns a new one-time setup token when no password exists
// yet (it replaces any earlier one), or "" when setup is done or not needed.
func (l *Local) PrepareSetup(ctx context.Context) (string, error) {
	needed, err := l.NeedsSetup(ctx)
	if err != nil || !needed {
		return "", err
	}
	tok := NewToken()
	if err := l.st.PutSetting(ctx, setupSetting, HashToken(tok)); err != nil {
		return "", err
	}
	return tok, nil
}

// NeedsSetup reports whether a password still has to be chosen.
func (l *Local) NeedsSetup(ctx context.Context) (bool, error) {
	if l.fixed != nil {
		return false, nil
	}
	u, err := l.st.EnsureLocalUser(ctx)
	if err != nil {
		return false, err
	}
	h, err := l.st.PasswordHash(ctx, u.ID)
	return h == "", err
}

// SetupTokenValid reports whether token is the current setup token.
func (l *Local) SetupTokenValid(ctx context.Context, token string) bool {
	v, err := l.st.Setting(ctx, setupSetting)
	return err == nil && token != "" && subtle.ConstantTimeCompare([]byte(v), []byte(HashToken(token))) == 1
}

// CompleteSetup uses the setup token once to set the password and returns
// a session token for the newly signed-in user.
func (l *Local) CompleteSetup(ctx context.Context, token, password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", ErrWeakPassword
	}
	if token == "" {
		return "", ErrBadSetupLink
	}
	took, err := l.st.TakeSetting(ctx, setupSetting, HashToken(token))
	if err != nil {
		return "", err
	}
	if !took {
		return "", ErrBadSetupLink
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), l.hashCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	u, err := l.st.EnsureLocalUser(ctx)
	if err != nil {
		return "", err
	}
	if err := l.st.SetPasswordHash(ctx, u.ID, string(hash)); err != nil {
		return "", err
	}
	return l.newSession(ctx, u.ID)
}

// SignIn checks the password and returns a new session token.
func (l *Local) SignIn(ctx context.Context, password string) (string, error) {
	u, err := l.st.EnsureLocalUser(ctx)
	if err != nil {
		return "", err
	}
	if l.fixed != nil {
		got := sha256.Sum256([]byte(password))
		if subtle.ConstantTimeCompare(got[:], l.fixed) != 1 {
			return "", ErrWrongPassword
		}
		return l.newSession(ctx, u.ID)
	}
	hash, err := l.st.PasswordHash(ctx, u.ID)
	if err != nil {
		return "", err
	}
	if hash == "" {
		return "", ErrNoPassword
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		return "", ErrWrongPassword
	}
	return l.newSession(ctx, u.ID)
}

// SignOut ends the session of token.
func (l *Local) SignOut(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return l.st.DeleteWebSession(ctx, HashToken(token))
}

func (l *Local) newSession(ctx context.Context, userID string) (string, error) {
	tok := NewToken()
	if err := l.st.CreateWebSession(ctx, HashToken(tok), userID, time.Now().Add(SessionTTL)); err != nil {
		return "", err
	}
	return tok, nil
}
