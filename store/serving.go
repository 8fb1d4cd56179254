package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// ErrInUse is returned by Exclusive while a server uses the database.
var ErrInUse = errors.New("a server is using this database: stop every imap-mcp server on it first")

// servingLockKey is the PostgreSQL advisory lock servers hold shared and
// maintenance commands take exclusively ("imapmcp" in ASCII).
const servingLockKey = 0x696d61706d6370

// Serve marks the database as used by a server until release is called:
// Exclusive then refuses. Several servers may hold it at once.
func (s *Store) Serve(ctx context.Context) (release func(), err error) {
	return s.holdServing(ctx, true)
}

// Exclusive holds the database for a maintenance command such as
// rotate-key, or returns ErrInUse while any server holds it.
func (s *Store) Exclusive(ctx context.Context) (release func(), err error) {
	return s.holdServing(ctx, false)
}

func (s *Store) holdServing(ctx context.Context, shared bool) (func(), error) {
	if s.dialect != Postgres {
		unlock, err := tryLockFile(s.sqlite+".serve-lock", shared)
		if errors.Is(err, errLocked) {
			return nil, ErrInUse
		}
		if err != nil {
			return nil, fmt.Errorf("store: serving lock: %w", err)
		}
		return unlock, nil
	}
	// A session lock lives with its connection: keep one aside.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: serving lock: %w", redact(err))
	}
	fn := "pg_try_advisory_lock"
	if shared {
		fn = "pg_try_advisory_lock_shared"
	}
	// Ending the session releases the lock: the connection is discarded,
	// never returned to the pool, on every path, so no pooled session can
	// keep a lock a failed or cancelled query took after all.
	discard := func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT "+fn+"($1)", int64(servingLockKey)).Scan(&ok); err != nil {
		discard()
		return nil, fmt.Errorf("store: serving lock: %w", redact(err))
	}
	if !ok {
		discard()
		return nil, ErrInUse
	}
	unlock := "pg_advisory_unlock"
	if shared {
		unlock = "pg_advisory_unlock_shared"
	}
	return func() {
		// Unlocked explicitly: a closed session's locks go only when the
		// server has noticed the disconnect, a moment later.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(ctx, "SELECT "+unlock+"($1)", int64(servingLockKey))
		discard()
	}, nil
}
