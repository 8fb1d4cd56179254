package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// PasswordHash returns the user's local-mode password hash; empty when no
// password was chosen yet.
func (s *Store) PasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := s.db.GetContext(ctx, &h, s.q(`SELECT password_hash FROM users WHERE id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: password hash of %s: %w", userID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: password hash of %s: %w", userID, err)
	}
	return h, nil
}

// SetPasswordHash stores the user's local-mode password hash and ends all
// of the user's web sessions.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ? WHERE id = ?`), hash, userID)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM web_sessions WHERE user_id = ?`), userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set password of %s: %w", userID, err)
	}
	return nil
}

// CreateWebSession stores a session by the SHA-256 hash of its token.
func (s *Store) CreateWebSession(ctx context.Context, tokenHash, userID string, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at)
		VALUES (?, ?, ?, ?)`), tokenHash, userID, s.now(), expires.UTC())
	if err != nil {
		return fmt.Errorf("store: create web session: %w", err)
	}
	return nil
}

// WebSessionUser returns the user of an unexpired session, or ErrNotFound.
func (s *Store) WebSessionUser(ctx context.Context, tokenHash string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, s.q(`SELECT u.id, u.clerk_user_id, u.local, u.email, u.created_at
		FROM web_sessions w JOIN users u ON u.id = w.user_id
		WHERE w.token_hash = ? AND w.expires_at > ?`), tokenHash, s.now())
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: web session: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: web session: %w", err)
	}
	return u, nil
}

// DeleteWebSession ends a session; an unknown session is not an error.
func (s *Store) DeleteWebSession(ctx context.Context, tokenHash string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM web_sessions WHERE token_hash = ? OR expires_at <= ?`), tokenHash, s.now()); err != nil {
		return fmt.Errorf("store: delete web session: %w", err)
	}
	return nil
}

// PutSetting stores a value under key, replacing any previous one.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO app_settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`), key, value)
	if err != nil {
		return fmt.Errorf("store: put setting %s: %w", key, err)
	}
	return nil
}

// Setting returns the value under key, or ErrNotFound.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, s.q(`SELECT value FROM app_settings WHERE key = ?`), key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: setting %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: setting %s: %w", key, err)
	}
	return v, nil
}

// TakeSetting deletes key if it holds value and reports whether it did:
// of concurrent callers exactly one takes it.
func (s *Store) TakeSetting(ctx context.Context, key, value string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM app_settings WHERE key = ? AND value = ?`), key, value)
	if err := affectedOne(res, err); errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: take setting %s: %w", key, err)
	}
	return true, nil
}
