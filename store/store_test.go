package store_test

import (
	"context"
	gosql "database/sql"
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/sql"
	"github.com/imap-mcp/imap-mcp/store"
)

// dialects runs fn once on a fresh SQLite database and once on a fresh
// PostgreSQL database, both migrated.
func dialects(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openMigrated(t, store.Options{SQLitePath: dbtest.SQLitePath(t)}))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openMigrated(t, store.Options{DatabaseURL: dbtest.PostgresURL(t)}))
	})
}

func open(t *testing.T, o store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openMigrated(t *testing.T, o store.Options) *store.Store {
	t.Helper()
	s := open(t, o)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMigrateIsIdempotentAndLocked(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) store.Options
	}{
		{"sqlite", func(t *testing.T) store.Options { return store.Options{SQLitePath: dbtest.SQLitePath(t)} }},
		{"postgres", func(t *testing.T) store.Options { return store.Options{DatabaseURL: dbtest.PostgresURL(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.opts(t)
			// Several processes' stores starting together migrate once.
			const n = 4
			var applied atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				s := open(t, o)
				wg.Add(1)
				go func() {
					defer wg.Done()
					k, err := s.Migrate(context.Background())
					applied.Add(int64(k))
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if got, want := applied.Load(), int64(migrationCount(t, o)); got != want {
				t.Fatalf("migrations applied across %d concurrent starts = %d, want %d", n, got, want)
			}
			again, err := open(t, o).Migrate(context.Background())
			if err != nil || again != 0 {
				t.Fatalf("second migrate applied %d, err %v; want 0, nil", again, err)
			}
		})
	}
}

func TestOpenReportsUnreachablePostgresWithoutPassword(t *testing.T) {
	_, err := store.Open(context.Background(), store.Options{DatabaseURL: "postgres://u:hunter2secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"})
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestUsers(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := s.EnsureLocalUser(ctx)
				if err != nil {
					t.Error(err)
				}
				ids[i] = u.ID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] || id == "" {
				t.Fatalf("EnsureLocalUser gave different users: %v", ids)
			}
		}
		local, err := s.GetUser(ctx, ids[0])
		if err != nil || !local.Local {
			t.Fatalf("GetUser(local) = %+v, %v", local, err)
		}

		a, err := s.UpsertClerkUser(ctx, "user_abc", "a@example.com")
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.UpsertClerkUser(ctx, "user_abc", "new@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || b.Email != "new@example.com" || *b.ClerkUserID != "user_abc" || b.Local {
			t.Fatalf("second sign-in: got %+v, first %+v", b, a)
		}
		if a.CreatedAt.IsZero() || time.Since(a.CreatedAt) > time.Minute {
			t.Fatalf("created_at = %v", a.CreatedAt)
		}
		if _, err := s.GetUser(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetUser(missing) err = %v, want ErrNotFound", err)
		}
	})
}

func migrationCount(t *testing.T, o store.Options) int {
	dialect := store.SQLite
	if o.DatabaseURL != "" {
		dialect = store.Postgres
	}
	fsys, err := sql.Migrations(dialect)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("migrations of %s: %v, %v", dialect, files, err)
	}
	return len(files)
}

func TestWebSessionsAndSettings(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.EnsureLocalUser(ctx)
		if err := s.CreateWebSession(ctx, "live", u.ID, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateWebSession(ctx, "old", u.ID, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.WebSessionUser(ctx, "live"); err != nil || got.ID != u.ID {
			t.Fatalf("live session = %+v, %v", got, err)
		}
		if _, err := s.WebSessionUser(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: err = %v, want ErrNotFound", err)
		}
		// Choosing a new password ends every session.
		if err := s.SetPasswordHash(ctx, u.ID, "hash"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WebSessionUser(ctx, "live"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session after password change: err = %v, want ErrNotFound", err)
		}
		if h, _ := s.PasswordHash(ctx, u.ID); h != "hash" {
			t.Fatalf("PasswordHash = %q", h)
		}

		if _, err := s.Setting(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing setting: %v", err)
		}
		s.PutSetting(ctx, "k", "v1")
		s.PutSetting(ctx, "k", "v2")
		if took, _ := s.TakeSetting(ctx, "k", "v1"); took {
			t.Fatal("took a setting with a stale value")
		}
		if took, err := s.TakeSetting(ctx, "k", "v2"); !took || err != nil {
			t.Fatalf("TakeSetting = %v, %v", took, err)
		}
		if took, _ := s.TakeSetting(ctx, "k", "v2"); took {
			t.Fatal("took a setting twice")
		}
	})
}

// TestPingAfterServerDroppedConnections: when PostgreSQL ends the pool's
// idle connections (a restart, an idle timeout, a failover), the next
// readiness check still reports the database as it is: up.
func TestPingAfterServerDroppedConnections(t *testing.T) {
	u := dbtest.PostgresURL(t)
	s := open(t, store.Options{DatabaseURL: u})
	ctx := context.Background()
	for range 3 {
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := gosql.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping after the server closed the pool's connections: %v", err)
	}
}

// TestSQLiteFilesArePrivate: the database holds sealed credentials and
// token hashes; its files are the owner's alone, whatever the umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	path := dbtest.SQLitePath(t)
	s := openMigrated(t, store.Options{SQLitePath: path})
	if _, err := s.UpsertClerkUser(context.Background(), "user_private", "p@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != path {
				continue
			}
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", p, st.Mode().Perm())
		}
	}
}

func TestRateCountsAreShared(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		for i, want := range []int{3, 5, 6} {
			got, err := s.AddRateCount(ctx, "calls:u1", w, []int{3, 2, 1}[i])
			if err != nil || got != want {
				t.Fatalf("add %d: %d, %v; want %d", i, got, err, want)
			}
		}
		if got, err := s.AddRateCount(ctx, "calls:u1", w.Add(time.Minute), 1); err != nil || got != 1 {
			t.Fatalf("next window: %d, %v", got, err)
		}
		if got, err := s.AddRateCount(ctx, "calls:u2", w, 1); err != nil || got != 1 {
			t.Fatalf("another key: %d, %v", got, err)
		}
	})
}
