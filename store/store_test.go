package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
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
			if got := applied.Load(); got != 1 {
				t.Fatalf("migrations applied across %d concurrent starts = %d, want 1", n, got)
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
