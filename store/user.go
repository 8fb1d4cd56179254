package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// User is a person who signs in to the web UI.
type User struct {
	ID          string    `db:"id"`
	ClerkUserID *string   `db:"clerk_user_id"`
	Local       bool      `db:"local"`
	Email       string    `db:"email"`
	CreatedAt   time.Time `db:"created_at"`
}

const userColumns = `id, clerk_user_id, local, email, created_at`

// GetUser returns the user with id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, s.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: get user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: get user %s: %w", id, err)
	}
	return u, nil
}

// EnsureLocalUser returns the single local-mode user, creating it on first use.
func (s *Store) EnsureLocalUser(ctx context.Context) (User, error) {
	var u User
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO users (id, local, created_at) VALUES (?, TRUE, ?)
			ON CONFLICT (local) WHERE local DO NOTHING`), newID(), s.now())
		if err != nil {
			return err
		}
		return tx.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE local`)
	})
	if err != nil {
		return User{}, fmt.Errorf("store: ensure local user: %w", err)
	}
	return u, nil
}

// UpsertClerkUser returns the user mapped to a Clerk user id, creating it on
// first sign-in and refreshing its email otherwise.
func (s *Store) UpsertClerkUser(ctx context.Context, clerkUserID, email string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, s.q(`INSERT INTO users (id, clerk_user_id, email, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (clerk_user_id) DO UPDATE SET email = excluded.email
		RETURNING `+userColumns), newID(), clerkUserID, email, s.now())
	if err != nil {
		return User{}, fmt.Errorf("store: upsert clerk user: %w", err)
	}
	return u, nil
}
