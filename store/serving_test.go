package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/store"
)

// TestServingLockSurvivesALostSession: when the PostgreSQL session that
// holds a server's serving lock ends (a restart, a failover), the server
// takes the lock again, and a maintenance command is refused again.
func TestServingLockSurvivesALostSession(t *testing.T) {
	defer store.SetServingCheckEvery(50 * time.Millisecond)()
	url := dbtest.PostgresURL(t)
	s := openMigrated(t, store.Options{DatabaseURL: url})
	ctx := context.Background()
	release, err := s.Serve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	other := open(t, store.Options{DatabaseURL: url})
	if _, err := other.Exclusive(ctx); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("exclusive while serving: %v", err)
	}
	admin := open(t, store.Options{DatabaseURL: url})
	const holder = `SELECT COALESCE(MAX(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
	first, err := admin.CountForTest(ctx, holder)
	if err != nil || first == 0 {
		t.Fatalf("no session holds the serving lock: %d %v", first, err)
	}
	if err := admin.ExecForTest(ctx, fmt.Sprintf(`SELECT pg_terminate_backend(%d)`, first)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pid, err := admin.CountForTest(ctx, holder)
		if err != nil {
			t.Fatal(err)
		}
		if pid != 0 && pid != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not take its serving lock again")
		}
	}
	if rel, err := other.Exclusive(ctx); !errors.Is(err, store.ErrInUse) {
		if rel != nil {
			rel()
		}
		t.Fatalf("exclusive after the lock was taken again: %v", err)
	}
	release()
	rel, err := other.Exclusive(ctx)
	if err != nil {
		t.Fatalf("exclusive after release: %v", err)
	}
	rel()
}
