package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// OAuthClient is a registered (DCR) or metadata-document (CIMD) client.
type OAuthClient struct {
	ID                      string     `db:"id"`
	ClientSecretHash        string     `db:"client_secret_hash"` // empty for public clients
	ClientName              string     `db:"client_name"`
	RedirectURIs            string     `db:"redirect_uris"` // JSON array
	TokenEndpointAuthMethod string     `db:"token_endpoint_auth_method"`
	MetadataURL             string     `db:"metadata_url"` // CIMD document URL
	CreatedAt               time.Time  `db:"created_at"`
	LastUsedAt              *time.Time `db:"last_used_at"`
	ExpiresAt               *time.Time `db:"expires_at"` // nil: never
}

const clientColumns = `id, client_secret_hash, client_name, redirect_uris, token_endpoint_auth_method,
	metadata_url, created_at, last_used_at, expires_at`

// CreateClient stores c; c.ID is chosen by the caller. It returns
// ErrConflict when the id exists.
func (s *Store) CreateClient(ctx context.Context, c *OAuthClient) error {
	c.CreatedAt = s.now()
	_, err := s.db.NamedExecContext(ctx, `INSERT INTO oauth_clients (`+clientColumns+`) VALUES (
		:id, :client_secret_hash, :client_name, :redirect_uris, :token_endpoint_auth_method,
		:metadata_url, :created_at, :last_used_at, :expires_at)`, c)
	if isUnique(err) {
		return fmt.Errorf("store: create client %s: %w", c.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create client: %w", err)
	}
	return nil
}

// GetClient returns the client id unless it is unknown or expired (ErrNotFound).
func (s *Store) GetClient(ctx context.Context, id string) (OAuthClient, error) {
	var c OAuthClient
	err := s.db.GetContext(ctx, &c, s.q(`SELECT `+clientColumns+` FROM oauth_clients
		WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)`), id, s.now())
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthClient{}, fmt.Errorf("store: get client: %w", ErrNotFound)
	}
	if err != nil {
		return OAuthClient{}, fmt.Errorf("store: get client: %w", err)
	}
	return c, nil
}

// DeleteExpiredClients removes clients whose registration expired unused and
// that hold no grant. It returns how many were removed.
func (s *Store) DeleteExpiredClients(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM oauth_clients WHERE expires_at IS NOT NULL AND expires_at <= ?
		AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.id)`), s.now())
	if err != nil {
		return 0, fmt.Errorf("store: delete expired clients: %w", err)
	}
	return res.RowsAffected()
}

// Grant is one consent of a user to a client: one token family.
type Grant struct {
	ID        string     `db:"id"`
	UserID    string     `db:"user_id"`
	ClientID  string     `db:"client_id"`
	Scope     string     `db:"scope"`
	CreatedAt time.Time  `db:"created_at"`
	RevokedAt *time.Time `db:"revoked_at"`
}

// CreateGrant records a consent. A previous grant of the same user to the
// same client is revoked with its tokens: re-consent replaces it. The
// client stops expiring once a person has consented to it.
func (s *Store) CreateGrant(ctx context.Context, userID, clientID, scope string) (Grant, error) {
	defer s.hot.changed()
	g := Grant{ID: newID(), UserID: userID, ClientID: clientID, Scope: scope, CreatedAt: s.now()}
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if err := s.revokeGrants(ctx, tx, `user_id = ? AND client_id = ?`, userID, clientID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_clients SET expires_at = NULL WHERE id = ?`), clientID); err != nil {
			return err
		}
		_, err := tx.NamedExecContext(ctx, `INSERT INTO oauth_grants (id, user_id, client_id, scope, created_at)
			VALUES (:id, :user_id, :client_id, :scope, :created_at)`, &g)
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("store: create grant: %w", err)
	}
	return g, nil
}

// ConnectedApp is a live grant as the person sees it on /apps.
type ConnectedApp struct {
	GrantID      string     `db:"grant_id"`
	ClientID     string     `db:"client_id"`
	ClientName   string     `db:"client_name"`
	RedirectURIs string     `db:"redirect_uris"`
	Scope        string     `db:"scope"`
	CreatedAt    time.Time  `db:"created_at"`
	LastUsedAt   *time.Time `db:"last_used_at"`
}

// ListConnectedApps returns the user's unrevoked grants, newest first.
func (s *Store) ListConnectedApps(ctx context.Context, userID string) ([]ConnectedApp, error) {
	apps := []ConnectedApp{}
	err := s.db.SelectContext(ctx, &apps, s.q(`SELECT g.id AS grant_id, c.id AS client_id, c.client_name,
		c.redirect_uris, g.scope, g.created_at, g.last_used_at
		FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id
		WHERE g.user_id = ? AND g.revoked_at IS NULL ORDER BY g.created_at DESC, g.id`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: list connected apps: %w", err)
	}
	return apps, nil
}

// RevokeGrant revokes the user's grant and all its tokens at once, or
// returns ErrNotFound.
func (s *Store) RevokeGrant(ctx context.Context, userID, grantID string) error {
	defer s.hot.changed()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM oauth_grants WHERE id = ? AND user_id = ? AND revoked_at IS NULL`), grantID, userID); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return s.revokeGrants(ctx, tx, `id = ? AND user_id = ?`, grantID, userID)
	})
	if err != nil {
		return fmt.Errorf("store: revoke grant %s: %w", grantID, err)
	}
	return nil
}

// revokeGrants revokes the live grants matching where, and their tokens.
func (s *Store) revokeGrants(ctx context.Context, tx *sqlx.Tx, where string, args ...any) error {
	now := s.now()
	_, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_tokens SET revoked_at = ? WHERE revoked_at IS NULL
		AND grant_id IN (SELECT id FROM oauth_grants WHERE revoked_at IS NULL AND `+where+`)`), append([]any{now}, args...)...)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE oauth_grants SET revoked_at = ? WHERE revoked_at IS NULL AND `+where), append([]any{now}, args...)...)
	return err
}

// AuthCode is an authorization code awaiting redemption; only its SHA-256
// hash is stored.
type AuthCode struct {
	CodeHash      string     `db:"code_hash"`
	ClientID      string     `db:"client_id"`
	UserID        string     `db:"user_id"`
	GrantID       string     `db:"grant_id"`
	RedirectURI   string     `db:"redirect_uri"`
	CodeChallenge string     `db:"code_challenge"`
	Scope         string     `db:"scope"`
	Resource      string     `db:"resource"`
	ExpiresAt     time.Time  `db:"expires_at"`
	ConsumedAt    *time.Time `db:"consumed_at"`
}

const codeColumns = `code_hash, client_id, user_id, grant_id, redirect_uri, code_challenge, scope, resource, expires_at, consumed_at`

// CreateAuthCode stores a new authorization code.
func (s *Store) CreateAuthCode(ctx context.Context, c AuthCode) error {
	_, err := s.db.NamedExecContext(ctx, `INSERT INTO oauth_auth_codes (`+codeColumns+`) VALUES (
		:code_hash, :client_id, :user_id, :grant_id, :redirect_uri, :code_challenge, :scope, :resource, :expires_at, :consumed_at)`, c)
	if err != nil {
		return fmt.Errorf("store: create auth code: %w", err)
	}
	return nil
}

// ConsumeAuthCode redeems a code exactly once, atomically: of concurrent
// callers one gets the code and the others ErrNotFound, as do callers with
// an unknown, expired or already used code.
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string) (AuthCode, error) {
	var c AuthCode
	now := s.now()
	err := s.db.GetContext(ctx, &c, s.q(`UPDATE oauth_auth_codes SET consumed_at = ?
		WHERE code_hash = ? AND consumed_at IS NULL AND expires_at > ?
		RETURNING `+codeColumns), now, codeHash, now)
	if errors.Is(err, sql.ErrNoRows) {
		return AuthCode{}, fmt.Errorf("store: consume auth code: %w", ErrNotFound)
	}
	if err != nil {
		return AuthCode{}, fmt.Errorf("store: consume auth code: %w", err)
	}
	return c, nil
}

// Token is one access/refresh token pair of a grant; only hashes are stored.
type Token struct {
	ID               string     `db:"id"`
	GrantID          string     `db:"grant_id"`
	AccessTokenHash  string     `db:"access_token_hash"`
	RefreshTokenHash string     `db:"refresh_token_hash"`
	Scope            string     `db:"scope"`
	Resource         string     `db:"resource"`
	AccessExpiresAt  time.Time  `db:"access_expires_at"`
	RefreshExpiresAt time.Time  `db:"refresh_expires_at"`
	CreatedAt        time.Time  `db:"created_at"`
	LastUsedAt       *time.Time `db:"last_used_at"`
	RotatedAt        *time.Time `db:"rotated_at"`
	RevokedAt        *time.Time `db:"revoked_at"`
}

const tokenColumns = `id, grant_id, access_token_hash, refresh_token_hash, scope, resource,
	access_expires_at, refresh_expires_at, created_at, last_used_at, rotated_at, revoked_at`

// CreateToken stores t and fills in its ID and creation time. It returns
// ErrNotFound when t's grant is revoked (a code redeemed after its
// grant ended must not yield tokens).
func (s *Store) CreateToken(ctx context.Context, t *Token) error {
	t.ID = newID()
	t.CreatedAt = s.now()
	res, err := s.db.NamedExecContext(ctx, `INSERT INTO oauth_tokens (`+tokenColumns+`) SELECT
		:id, :grant_id, :access_token_hash, :refresh_token_hash, :scope, :resource,
		:access_expires_at, :refresh_expires_at, :created_at, :last_used_at, :rotated_at, :revoked_at
		WHERE EXISTS (SELECT 1 FROM oauth_grants WHERE id = :grant_id AND revoked_at IS NULL)`, t)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: create token: %w", err)
	}
	return nil
}

// AccessGrant is what a valid access token authorizes.
type AccessGrant struct {
	TokenID   string    `db:"token_id"`
	GrantID   string    `db:"grant_id"`
	UserID    string    `db:"user_id"`
	ClientID  string    `db:"client_id"`
	Scope     string    `db:"scope"`
	Resource  string    `db:"resource"`
	ExpiresAt time.Time `db:"access_expires_at"`
}

// LookupAccessToken returns what the access token with this hash
// authorizes, or ErrNotFound when it is unknown, expired or revoked (itself
// or its grant).
func (s *Store) LookupAccessToken(ctx context.Context, accessHash string) (AccessGrant, error) {
	now := s.now()
	if a, ok := s.hot.tokens.get(&s.hot, accessHash, now); ok {
		return a, nil
	}
	gen := s.hot.gen.Load()
	var a AccessGrant
	err := s.hotGet(ctx, &a, `SELECT t.id AS token_id, g.id AS grant_id, g.user_id, g.client_id,
		t.scope, t.resource, t.access_expires_at
		FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
		WHERE t.access_token_hash = ? AND t.revoked_at IS NULL AND g.revoked_at IS NULL
		AND t.access_expires_at > ?`, accessHash, now)
	if errors.Is(err, sql.ErrNoRows) {
		return AccessGrant{}, fmt.Errorf("store: lookup access token: %w", ErrNotFound)
	}
	if err != nil {
		return AccessGrant{}, fmt.Errorf("store: lookup access token: %w", err)
	}
	s.hot.tokens.put(&s.hot, accessHash, a, gen, a.ExpiresAt)
	return a, nil
}

// RefreshGrant is a token row found by its refresh token, with its grant.
type RefreshGrant struct {
	Token
	UserID         string     `db:"user_id"`
	ClientID       string     `db:"client_id"`
	GrantScope     string     `db:"grant_scope"`
	GrantRevokedAt *time.Time `db:"grant_revoked_at"`
}

// LookupRefreshToken returns the token whose refresh token has this hash,
// revoked, rotated or expired alike (the caller judges reuse), or ErrNotFound.
func (s *Store) LookupRefreshToken(ctx context.Context, refreshHash string) (RefreshGrant, error) {
	var r RefreshGrant
	err := s.db.GetContext(ctx, &r, s.q(`SELECT t.id, t.grant_id, t.access_token_hash, t.refresh_token_hash, t.scope,
		t.resource, t.access_expires_at, t.refresh_expires_at, t.created_at, t.last_used_at, t.rotated_at, t.revoked_at,
		g.user_id, g.client_id, g.scope AS grant_scope, g.revoked_at AS grant_revoked_at
		FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.refresh_token_hash = ?`), refreshHash)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshGrant{}, fmt.Errorf("store: lookup refresh token: %w", ErrNotFound)
	}
	if err != nil {
		return RefreshGrant{}, fmt.Errorf("store: lookup refresh token: %w", err)
	}
	return r, nil
}

// RotateToken marks token oldID rotated (first rotation only: a rotated
// token keeps its first rotation time, which starts the grace window) and
// stores next, in one transaction. It returns ErrNotFound when oldID is
// revoked or its grant is.
func (s *Store) RotateToken(ctx context.Context, oldID string, next *Token) error {
	defer s.hot.changed()
	next.ID = newID()
	next.CreatedAt = s.now()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_tokens SET rotated_at = COALESCE(rotated_at, ?), last_used_at = ?
			WHERE id = ? AND revoked_at IS NULL
			AND grant_id IN (SELECT id FROM oauth_grants WHERE revoked_at IS NULL)`), next.CreatedAt, next.CreatedAt, oldID)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		_, err = tx.NamedExecContext(ctx, `INSERT INTO oauth_tokens (`+tokenColumns+`) VALUES (
			:id, :grant_id, :access_token_hash, :refresh_token_hash, :scope, :resource,
			:access_expires_at, :refresh_expires_at, :created_at, :last_used_at, :rotated_at, :revoked_at)`, next)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: rotate token: %w", err)
	}
	return nil
}

// RevokeGrantByID revokes a grant and all its tokens, whoever owns it: for
// refresh-token reuse, which proves the family leaked.
func (s *Store) RevokeGrantByID(ctx context.Context, grantID string) error {
	defer s.hot.changed()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		return s.revokeGrants(ctx, tx, `id = ?`, grantID)
	})
	if err != nil {
		return fmt.Errorf("store: revoke grant %s: %w", grantID, err)
	}
	return nil
}

// RevokeToken revokes the grant of the token whose access or refresh
// token has this hash, if the grant is clientID's: every token of the
// grant, earlier ones in their grace window included (RFC 7009: unknown
// tokens are no error).
func (s *Store) RevokeToken(ctx context.Context, clientID, tokenHash string) error {
	defer s.hot.changed()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		return s.revokeGrants(ctx, tx, `client_id = ? AND id IN (SELECT grant_id FROM oauth_tokens
			WHERE access_token_hash = ? OR refresh_token_hash = ?)`, clientID, tokenHash, tokenHash)
	})
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	return nil
}

// RevokeGrantOfUsedCode revokes the grant whose tokens were issued for an
// authorization code that has already been redeemed: a second redemption
// means the code leaked (RFC 6749 §4.1.2). It reports whether there was
// such a code.
func (s *Store) RevokeGrantOfUsedCode(ctx context.Context, codeHash string) (bool, error) {
	defer s.hot.changed()
	var grantID string
	err := s.db.GetContext(ctx, &grantID, s.q(`SELECT grant_id FROM oauth_auth_codes WHERE code_hash = ? AND consumed_at IS NOT NULL`), codeHash)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err == nil {
		err = s.RevokeGrantByID(ctx, grantID)
	}
	if err != nil {
		return false, fmt.Errorf("store: revoke grant of used code: %w", err)
	}
	return true, nil
}

// TouchToken records that a token was just used, on the token, its grant
// and its client, at most once a minute each. A token this process
// recorded less than a minute ago costs no database access at all: the
// read path of every MCP request must not take a write lock.
func (s *Store) TouchToken(ctx context.Context, tokenID, grantID, clientID string) error {
	now := s.now()
	if !s.touched.due(tokenID, now) {
		return nil
	}
	cutoff := now.Add(-time.Minute)
	var err error
	for _, u := range []struct{ table, id string }{{"oauth_tokens", tokenID}, {"oauth_grants", grantID}, {"oauth_clients", clientID}} {
		if err == nil {
			_, err = s.db.ExecContext(ctx, s.q(`UPDATE `+u.table+` SET last_used_at = ?
				WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`), now, u.id, cutoff)
		}
	}
	if err != nil {
		s.touched.forget(tokenID)
		return fmt.Errorf("store: touch token: %w", err)
	}
	return nil
}

// touchInterval is how often a token's use is written down; maxTouchLog
// bounds the tokens remembered.
const (
	touchInterval = time.Minute
	maxTouchLog   = 10000
)

// touchLog remembers when this process last recorded each token's use.
type touchLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether id's use should be recorded at now, and notes it.
func (l *touchLog) due(id string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[id]; ok && now.Sub(t) < touchInterval {
		return false
	}
	if l.last == nil || len(l.last) >= maxTouchLog {
		l.last = l.prune(now)
	}
	if len(l.last) < maxTouchLog { // full of recent entries: write, remember nothing
		l.last[id] = now
	}
	return true
}

// prune keeps the entries that still suppress a write.
func (l *touchLog) prune(now time.Time) map[string]time.Time {
	kept := map[string]time.Time{}
	for id, t := range l.last {
		if now.Sub(t) < touchInterval {
			kept[id] = t
		}
	}
	return kept
}

func (l *touchLog) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.last, id)
}

// UpsertMetadataClient stores or refreshes a client described by a Client
// ID Metadata Document (its id is the document URL). It expires at
// c.ExpiresAt unless a person consented to it, which ends its expiry.
func (s *Store) UpsertMetadataClient(ctx context.Context, c *OAuthClient) error {
	c.CreatedAt = s.now()
	_, err := s.db.NamedExecContext(ctx, `INSERT INTO oauth_clients (`+clientColumns+`) VALUES (
		:id, :client_secret_hash, :client_name, :redirect_uris, :token_endpoint_auth_method,
		:metadata_url, :created_at, :last_used_at, :expires_at)
		ON CONFLICT (id) DO UPDATE SET client_name = excluded.client_name, redirect_uris = excluded.redirect_uris,
		token_endpoint_auth_method = excluded.token_endpoint_auth_method, metadata_url = excluded.metadata_url,
		expires_at = CASE WHEN oauth_clients.expires_at IS NULL THEN NULL ELSE excluded.expires_at END`, c)
	if err != nil {
		return fmt.Errorf("store: upsert metadata client: %w", err)
	}
	return nil
}
