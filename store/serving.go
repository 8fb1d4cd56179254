package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrInUse is returned by Exclusive while a server uses the database.
var ErrInUse = errors.New("a server is using this database: stop every imap-mcp server on it first")

// servingLockKey is the PostgreSQL advisory lock servers hold shared and
// maintenance commands take exclusively ("imapmcp" in ASCII).
const servingLockKey = 0x696d61706d6370

// servingCheckEvery is how often a server checks that the session holding
// its PostgreSQL serving lock is alive (a database restart or failover
// ends it, and the lock with it).
var servingCheckEvery = 15 * time.Second

// Serve marks the database as used by a server until release is called:
// Exclusive then refuses. Several servers may hold it at once. On
// PostgreSQL a lost lock session is noticed and the lock taken again.
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
	l := &pgLock{s: s, shared: shared, stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	if !shared {
		close(l.done)
		return l.release, nil
	}
	go l.watch()
	return l.release, nil
}

// pgLock is an advisory lock held on a session set aside from the pool.
type pgLock struct {
	s          *Store
	shared     bool
	mu         sync.Mutex
	conn       *sql.Conn // nil while lost
	stop, done chan struct{}
	once       sync.Once
}

// acquire takes the lock on a new session, or returns ErrInUse.
func (l *pgLock) acquire(ctx context.Context) error {
	conn, err := l.s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: serving lock: %w", redact(err))
	}
	fn := "pg_try_advisory_lock"
	if l.shared {
		fn = "pg_try_advisory_lock_shared"
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT "+fn+"($1)", int64(servingLockKey)).Scan(&ok); err != nil {
		discard(conn)
		return fmt.Errorf("store: serving lock: %w", redact(err))
	}
	if !ok {
		discard(conn)
		return ErrInUse
	}
	l.mu.Lock()
	l.conn = conn
	l.mu.Unlock()
	return nil
}

// watch checks the session now and then and takes the lock again when it
// was lost; while a maintenance command holds it, it says so in the log.
func (l *pgLock) watch() {
	defer close(l.done)
	t := time.NewTicker(servingCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l.mu.Lock()
		conn := l.conn
		l.mu.Unlock()
		lost := conn == nil
		if !lost && conn.PingContext(ctx) != nil {
			discard(conn)
			l.mu.Lock()
			l.conn = nil
			l.mu.Unlock()
			l.s.log.Warn("the database session holding the serving lock ended; taking the lock again")
			lost = true
		}
		if lost {
			if err := l.acquire(ctx); err != nil {
				l.s.log.Error("serving lock not held: rotate-key could run while this server uses the database", "err", err)
			}
		}
		cancel()
	}
}

// release unlocks explicitly (a closed session's locks go only when the
// server notices the disconnect, a moment later), then discards the
// session, never returning it to the pool.
func (l *pgLock) release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		conn := l.conn
		l.conn = nil
		l.mu.Unlock()
		if conn == nil {
			return
		}
		unlock := "pg_advisory_unlock"
		if l.shared {
			unlock = "pg_advisory_unlock_shared"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(ctx, "SELECT "+unlock+"($1)", int64(servingLockKey))
		discard(conn)
	})
}

// discard closes conn's session instead of returning it to the pool, so
// that no pooled session keeps a lock.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
