package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/store"
)

func TestActivityStore(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_act", "act@example.test")
		other, _ := s.UpsertClerkUser(ctx, "user_act_other", "other@example.test")
		if err := s.CreateClient(ctx, &store.OAuthClient{ID: "act-client", ClientName: "Claude", RedirectURIs: `["http://localhost/cb"]`, TokenEndpointAuthMethod: "none"}); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		batch := []store.Activity{
			{UserID: u.ID, ClientID: "act-client", Tool: "list_accounts", Summary: "listed the accounts", Outcome: store.ActivityOK, CreatedAt: now.Add(-2 * time.Minute)},
			{UserID: u.ID, ClientID: "act-client", Tool: "get_message", AccountID: "acct-1", AccountLabel: "Work", Summary: "read message 7 in INBOX",
				Outcome: store.ActivityRefused, DurationMS: 12, CreatedAt: now.Add(-time.Minute)},
			{UserID: u.ID, ClientID: "gone-client", Tool: "list_folders", AccountID: "acct-2", Summary: "listed the folders", Outcome: store.ActivityOK, CreatedAt: now},
			{UserID: other.ID, ClientID: "act-client", Tool: "list_accounts", Summary: "listed the accounts", Outcome: store.ActivityOK, CreatedAt: now},
			{UserID: u.ID, ClientID: "act-client", Tool: "list_accounts", Summary: "long ago", Outcome: store.ActivityOK, CreatedAt: now.Add(-100 * 24 * time.Hour)},
		}
		if err := s.AddActivity(ctx, batch); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListActivity(ctx, u.ID, store.ActivityFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 || all[0].Tool != "list_folders" || all[0].ClientName != "" || all[1].ClientName != "Claude" || all[1].DurationMS != 12 ||
			all[1].AccountLabel != "Work" || all[1].Outcome != store.ActivityRefused {
			t.Fatalf("activity: %+v", all)
		}
		if f, _ := s.ListActivity(ctx, u.ID, store.ActivityFilter{ClientID: "act-client", AccountID: "acct-1"}); len(f) != 1 || f[0].Tool != "get_message" {
			t.Fatalf("filtered: %+v", f)
		}
		last, err := s.LastActivityByClient(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(last) != 2 || last["act-client"].Tool != "get_message" || last["gone-client"].Tool != "list_folders" {
			t.Fatalf("last by client: %+v", last)
		}
		// Past the retention (90 days by default) a row goes at cleanup.
		if _, err := s.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if all, _ = s.ListActivity(ctx, u.ID, store.ActivityFilter{}); len(all) != 3 {
			t.Fatalf("after cleanup %d rows, want 3", len(all))
		}
		if err := s.AddActivity(ctx, []store.Activity{{UserID: u.ID, ClientID: "c", Tool: "x", Summary: "x", Outcome: "maybe", CreatedAt: now}}); err == nil {
			t.Fatal("an unknown outcome was stored")
		}
		// A batch longer than one INSERT statement keeps every row, in order.
		big := make([]store.Activity, 250)
		for i := range big {
			big[i] = store.Activity{UserID: other.ID, ClientID: "act-client", Tool: "get_message", Summary: fmt.Sprint("read ", i),
				Outcome: store.ActivityOK, DurationMS: int64(i), CreatedAt: now.Add(time.Duration(i+1) * time.Millisecond)}
		}
		if err := s.AddActivity(ctx, big); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListActivity(ctx, other.ID, store.ActivityFilter{})
		if err != nil || len(got) != 251 || got[0].Summary != "read 249" || got[0].DurationMS != 249 || got[249].Summary != "read 0" || big[0].ID == "" {
			t.Fatalf("big batch: %d rows, first %+v, err %v", len(got), got[0], err)
		}
	})
}

// BenchmarkAddActivity stores batches of 300 calls (about half a second
// of a busy server) on SQLite, into a table that grows as it would.
func BenchmarkAddActivity(b *testing.B) {
	s := dbtest.SQLiteStore(b)
	ctx := context.Background()
	u, _ := s.UpsertClerkUser(ctx, "user_bench", "bench@example.test")
	batch := make([]store.Activity, 300)
	for b.Loop() {
		for i := range batch {
			batch[i] = store.Activity{UserID: u.ID, ClientID: "c", Tool: "get_message", AccountID: "a", AccountLabel: "Work",
				Summary: "read message 9997 in INBOX", Outcome: store.ActivityOK, CreatedAt: time.Now()}
		}
		if err := s.AddActivity(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// TestActivityClusteredMigration moves a database with activity onto the
// table kept in (user, time, id) order and back, losing no row.
func TestActivityClusteredMigration(t *testing.T) {
	ctx := context.Background()
	s := open(t, store.Options{SQLitePath: dbtest.SQLitePath(t)})
	if err := s.MigrateToForTest(ctx, 9); err != nil {
		t.Fatal(err)
	}
	u, err := s.UpsertClerkUser(ctx, "user_mig", "mig@example.test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var batch []store.Activity
	for i := range 70 {
		batch = append(batch, store.Activity{UserID: u.ID, ClientID: "c", Tool: "get_message", Summary: fmt.Sprintf("read %d", i),
			Outcome: store.ActivityOK, DurationMS: int64(i), CreatedAt: now.Add(time.Duration(i) * time.Second)})
	}
	if err := s.AddActivity(ctx, batch); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		got, err := s.ListActivity(ctx, u.ID, store.ActivityFilter{})
		if err != nil || len(got) != 70 || got[0].Summary != "read 69" || got[69].Summary != "read 0" || got[0].ID != batch[69].ID || got[5].DurationMS != 64 {
			t.Fatalf("%s: %d rows, err %v", when, len(got), err)
		}
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the migration")
	// One B-tree: no rowid, no index of its own beside the key.
	if n, err := s.CountForTest(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'activity' AND type = 'index' AND name NOT LIKE 'sqlite_autoindex_activity_%'`); err != nil || n != 0 {
		t.Fatalf("activity indexes beside the key: %d, %v", n, err)
	}
	if n, err := s.CountForTest(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'activity' AND sql LIKE '%WITHOUT ROWID%'`); err != nil || n != 1 {
		t.Fatalf("activity is not kept in key order: %d, %v", n, err)
	}
	if err := s.MigrateToForTest(ctx, 9); err != nil {
		t.Fatal(err)
	}
	check("after going back")
}
