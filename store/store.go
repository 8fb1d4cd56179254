// Package store is the data access layer on PostgreSQL or embedded SQLite.
// Every method takes a context; every query on user data filters by user_id.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imap-mcp/imap-mcp/sql"
)

// Dialects.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// ErrNotFound is returned, wrapped, when a row does not exist or belongs to
// another user.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned, wrapped, when a write breaks a uniqueness rule.
var ErrConflict = errors.New("already exists")

func init() {
	// sqlx does not know modernc's driver name.
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// Options selects the database.
type Options struct {
	// DatabaseURL selects PostgreSQL when set (postgres://…).
	DatabaseURL string
	// SQLitePath is the embedded database file, used when DatabaseURL is empty.
	SQLitePath string
	// MaxConns bounds the PostgreSQL connections of this process
	// (DATABASE_MAX_CONNS); 0 means DefaultMaxConns.
	MaxConns int
	// ActivityRetention is how long activity rows are kept; 0 means
	// DefaultActivityRetention.
	ActivityRetention time.Duration
	// OutboxRetention is how long a sent message's sealed bytes are
	// kept; 0 means DefaultOutboxRetention.
	OutboxRetention time.Duration
	Logger          *slog.Logger
}

// Connection pool bounds. SQLite in WAL mode has one writer at a time and
// concurrent readers: a few connections serve any load, and callers wait
// in the pool rather than piling up on the file lock.
const (
	DefaultMaxConns = 20
	sqliteMaxConns  = 8
)

// Store is the data access layer. It is safe for concurrent use.
type Store struct {
	db      *sqlx.DB
	dialect string
	sqlite  string // database file path, for the migration lock
	log     *slog.Logger
	now     func() time.Time
	touched touchLog
	stmts   sync.Map // query → *sqlx.Stmt; see prepared
	hot     hotCache
	// activityRetention and outboxRetention: see Options.
	activityRetention, outboxRetention time.Duration
}

// Open connects to the database and checks that it answers. It does not
// migrate: call Migrate.
func Open(ctx context.Context, o Options) (*Store, error) {
	s := &Store{log: o.Logger, now: func() time.Time { return time.Now().UTC() }, activityRetention: o.ActivityRetention}
	if s.activityRetention <= 0 {
		s.activityRetention = DefaultActivityRetention
	}
	if s.outboxRetention = o.OutboxRetention; s.outboxRetention <= 0 {
		s.outboxRetention = DefaultOutboxRetention
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if o.DatabaseURL != "" {
		s.dialect = Postgres
		s.db, err = sqlx.Open("postgres", o.DatabaseURL)
		if err == nil {
			n := o.MaxConns
			if n <= 0 {
				n = DefaultMaxConns
			}
			s.db.SetMaxOpenConns(n)
			s.db.SetMaxIdleConns(min(n, 5))
			s.db.SetConnMaxIdleTime(5 * time.Minute)
		}
	} else {
		s.dialect = SQLite
		s.sqlite = o.SQLitePath
		if err := os.MkdirAll(filepath.Dir(o.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		if err := privateFile(o.SQLitePath); err != nil {
			return nil, err
		}
		s.db, err = sqlx.Open("sqlite", sqliteDSN(o.SQLitePath))
		if err == nil {
			s.db.SetMaxOpenConns(sqliteMaxConns)
			s.db.SetMaxIdleConns(sqliteMaxConns)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", s.dialect, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.db.PingContext(pingCtx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", s.dialect, redact(err))
	}
	return s, nil
}

// privateFile creates the database file readable by its owner only, or
// makes an existing one so (and its WAL files, which SQLite creates with
// the database file's mode): it holds sealed credentials and token hashes.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: open database file: %w", err)
	}
	_ = f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: make %s private: %w", p, err)
		}
	}
	return nil
}

// sqliteDSN sets WAL, a busy timeout, foreign keys, statement journals
// in memory, write-locking transactions (BEGIN IMMEDIATE) and a time
// format that scans back.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_txlock=immediate&_time_format=sqlite"
}

// Dialect is Postgres or SQLite.
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var err error
	// Connections the server closed (a restart, a failover, an idle
	// timeout) fail one ping each and are dropped; only a database that
	// fails fresh ones is down.
	for range 3 {
		if err = s.db.PingContext(ctx); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("store: ping: %w", redact(err))
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool {
		_ = v.(*sqlx.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// Migrate applies pending migrations under a lock, so that processes
// starting together migrate once. It returns the number applied.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	var opts []goose.ProviderOption
	if s.dialect == Postgres {
		// pg_try_advisory_lock polled every second for up to two minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
		if err != nil {
			return 0, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else {
		unlock, err := lockFile(ctx, s.sqlite+".migrate-lock")
		if err != nil {
			return 0, fmt.Errorf("store: migration lock: %w", err)
		}
		defer unlock()
	}
	p, err := s.migrations(opts...)
	if err != nil {
		return 0, err
	}
	if err := checkNotNewer(ctx, p); err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: migrate: %w", redact(err))
	}
	for _, r := range results {
		s.log.Info("migration applied", "version", r.Source.Version, "file", filepath.Base(r.Source.Path), "duration", r.Duration)
	}
	return len(results), nil
}

// migrations returns the goose provider of the dialect's embedded
// migrations.
func (s *Store) migrations(opts ...goose.ProviderOption) (*goose.Provider, error) {
	fsys, err := sql.Migrations(s.dialect)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, s.db.DB, fsys, append(opts, goose.WithDisableGlobalRegistry(true))...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// BackupTo writes a consistent copy of the embedded database to path
// (mode 0600), while other connections go on reading and writing. It
// refuses to overwrite an existing file.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if s.dialect == Postgres {
		return errors.New("store: backup: use pg_dump for PostgreSQL")
	}
	// Created here, private and new, so that nobody else can have the
	// name or read the copy; VACUUM INTO fills an empty file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	f.Close()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

// ErrSchemaNewer: the database was migrated by a newer imap-mcp.
var ErrSchemaNewer = errors.New("store: the database schema is newer than this imap-mcp")

// checkNotNewer refuses a database migrated past this binary's last
// migration: an older binary would misread or corrupt it.
func checkNotNewer(ctx context.Context, p *goose.Provider) error {
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: schema version: %w", redact(err))
	}
	srcs := p.ListSources()
	if latest := srcs[len(srcs)-1].Version; cur > latest {
		return fmt.Errorf("%w (database at migration %d, this binary knows up to %d): run the newer version, or restore the backup taken before upgrading", ErrSchemaNewer, cur, latest)
	}
	return nil
}

// tx runs fn in a transaction that commits when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// q rebinds ? placeholders for the dialect.
func (s *Store) q(query string) string { return s.db.Rebind(query) }

// On SQLite, preparing a statement costs more than running a small one,
// so the queries of every MCP request (the bearer lookup, the person's
// accounts) are prepared once per connection and kept. PostgreSQL keeps
// plain queries, which also work behind poolers that drop prepared
// statements.

// prepared returns the kept statement for query (already rebound).
func (s *Store) prepared(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if v, ok := s.stmts.Load(query); ok {
		return v.(*sqlx.Stmt), nil
	}
	st, err := s.db.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return v.(*sqlx.Stmt), nil
	}
	return st, nil
}

// hotGet is GetContext through a kept statement on SQLite.
func (s *Store) hotGet(ctx context.Context, dest any, query string, args ...any) error {
	if s.dialect != SQLite {
		return s.db.GetContext(ctx, dest, s.q(query), args...)
	}
	st, err := s.prepared(ctx, s.q(query))
	if err != nil {
		return err
	}
	return st.GetContext(ctx, dest, args...)
}

// hotSelect is SelectContext through a kept statement on SQLite.
func (s *Store) hotSelect(ctx context.Context, dest any, query string, args ...any) error {
	if s.dialect != SQLite {
		return s.db.SelectContext(ctx, dest, s.q(query), args...)
	}
	st, err := s.prepared(ctx, s.q(query))
	if err != nil {
		return err
	}
	return st.SelectContext(ctx, dest, args...)
}

// txExec runs query in tx, through a kept statement on SQLite.
func (s *Store) txExec(ctx context.Context, tx *sqlx.Tx, query string, args ...any) error {
	if s.dialect != SQLite {
		_, err := tx.ExecContext(ctx, s.q(query), args...)
		return err
	}
	st, err := s.prepared(ctx, s.q(query))
	if err != nil {
		return err
	}
	_, err = tx.StmtxContext(ctx, st).ExecContext(ctx, args...)
	return err
}

func newID() string { return uuid.NewString() }

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// redact removes a connection URL's password from a driver error.
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j >= 0 {
			return errors.New(msg[:i+3] + "…" + msg[i+j:])
		}
	}
	return err
}
