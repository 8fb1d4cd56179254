package store_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/store"
)

func TestOutboxStore(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_outbox", "o@example.test")
		other, _ := s.UpsertClerkUser(ctx, "user_outbox_other", "p@example.test")
		acct := newAccount(u.ID, "work")
		if err := s.CreateAccount(ctx, acct); err != nil {
			t.Fatal(err)
		}
		item := func(i int, state string, at time.Time) *store.OutboxItem {
			return &store.OutboxItem{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), UserID: u.ID, AccountID: acct.ID, Kind: store.OutboxSend,
				MessageID: fmt.Sprintf("m%d@example.test", i), Recipients: `["bob@example.test"]`, Bcc: "[]", Subject: "s", MIMEEnc: "sealed",
				IdemKey: fmt.Sprintf("key%d", i%3), State: state, SendAt: at}
		}
		now := time.Now()
		// 40 due, 1 in the future, 1 waiting for approval.
		for i := range 40 {
			if err := s.AddOutbox(ctx, item(i, store.OutboxScheduled, now.Add(-time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddOutbox(ctx, item(40, store.OutboxScheduled, now.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if err := s.AddOutbox(ctx, item(41, store.OutboxPendingApproval, now)); err != nil {
			t.Fatal(err)
		}

		// Two claimers racing take every due row once.
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		for _, owner := range []string{"a", "b"} {
			wg.Go(func() {
				for {
					got, err := s.ClaimOutbox(ctx, owner, time.Now().Add(time.Minute), 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, it := range got {
						if it.MIMEEnc != "" {
							t.Errorf("claimed %s with its sealed message", it.ID)
						}
						if prev, dup := seen[it.ID]; dup {
							t.Errorf("%s claimed by %s and %s", it.ID, prev, owner)
						}
						seen[it.ID] = owner
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != 40 {
			t.Fatalf("%d rows claimed, want 40", len(seen))
		}

		// Steps are recorded for the owner only; the end releases the claim.
		id := item(0, "", now).ID
		owner := seen[id]
		if err := s.OutboxStep(ctx, id, "intruder", "smtp_started_at"); err == nil {
			t.Fatal("another owner recorded a step")
		}
		if err := s.OutboxStep(ctx, id, owner, "smtp_started_at"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishOutbox(ctx, id, owner, store.OutboxSent, "", "Sent", "appended", now); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetOutbox(ctx, u.ID, id)
		if err != nil || got.State != store.OutboxSent || got.SMTPStarted == nil || got.ClaimedBy != "" || got.SentFolder != "Sent" {
			t.Fatalf("finished item: %+v %v", got, err)
		}
		if _, err := s.GetOutbox(ctx, other.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user's item: %v", err)
		}
		// Only OutboxMessage reads the sealed message, and only the owner's.
		if got.MIMEEnc != "" {
			t.Fatal("GetOutbox carries the sealed message")
		}
		if sealed, err := s.OutboxMessage(ctx, u.ID, id); err != nil || sealed != "sealed" {
			t.Fatalf("the sealed message: %q %v", sealed, err)
		}
		if _, err := s.OutboxMessage(ctx, other.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user's sealed message: %v", err)
		}

		// A claim whose lease ran out is taken up again; one still held
		// is not, unless the leases are expired for a new process.
		if err := s.RenewOutboxLease(ctx, item(1, "", now).ID, seen[item(1, "", now).ID], time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		again, _ := s.ClaimOutbox(ctx, "c", time.Now().Add(time.Minute), 10)
		if len(again) != 1 || again[0].ID != item(1, "", now).ID || again[0].Attempts != 2 {
			t.Fatalf("after a lease ran out: %+v", again)
		}
		if err := s.ExpireOutboxLeases(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.ClaimOutbox(ctx, "c", time.Now().Add(time.Minute), 100); len(n) != 38 {
			t.Fatalf("after expiring other owners' leases %d rows claimed, want 38", len(n))
		}

		// Approval and cancelling move only from the states they name.
		pending := item(41, "", now).ID
		if it, err := s.MoveOutbox(ctx, u.ID, pending, []string{store.OutboxPendingApproval}, store.OutboxScheduled, now, ""); err != nil || it.MIMEEnc != "" {
			t.Fatalf("approving: %v, sealed message %q", err, it.MIMEEnc)
		}
		if it, err := s.MoveOutbox(ctx, u.ID, id, []string{store.OutboxScheduled}, store.OutboxCancelled, now, ""); !errors.Is(err, store.ErrConflict) || it.State != store.OutboxSent {
			t.Fatalf("cancelling a sent item: %v %+v", err, it)
		}
		if _, err := s.MoveOutbox(ctx, other.ID, pending, []string{store.OutboxScheduled}, store.OutboxCancelled, now, ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user cancelled: %v", err)
		}

		// Past the retention, a message that left keeps its row, not its bytes.
		if err := s.ExecForTest(ctx, "UPDATE outbox SET updated_at = '2000-01-01 00:00:00+00:00' WHERE id = '"+id+"'"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if sealed, _ := s.OutboxMessage(ctx, u.ID, id); sealed != "" {
			t.Fatalf("after the retention: %q", sealed)
		}
		if got, _ := s.GetOutbox(ctx, u.ID, id); got.State != store.OutboxSent {
			t.Fatalf("after the retention: %s", got.State)
		}
		if sealed, _ := s.OutboxMessage(ctx, u.ID, pending); sealed == "" {
			t.Fatal("a message still waiting lost its bytes")
		}

		// One waiting for approval longer than the retention expires.
		if err := s.ExecForTest(ctx, "UPDATE outbox SET state = 'pending_approval', created_at = '2000-01-01 00:00:00+00:00' WHERE id = '"+pending+"'"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetOutbox(ctx, u.ID, pending); got.State != store.OutboxCancelled || !strings.Contains(got.Outcome, "expired") {
			t.Fatalf("a message waiting since 2000: %s %q", got.State, got.Outcome)
		}
		// Lists carry no sealed messages; the sealing context names the
		// envelope, so changed recipients do not open.
		if list, _ := s.ListOutbox(ctx, u.ID, 5); len(list) == 0 || list[0].MIMEEnc != "" {
			t.Fatal("a list carries sealed messages")
		}
		a, b := *item(1, "", now), *item(1, "", now)
		b.Recipients = `["mallory@example.test"]`
		if store.OutboxSecretContext(a) == store.OutboxSecretContext(b) {
			t.Fatal("the sealing context ignores the recipients")
		}

		// A repeated call finds the first item, but not a cancelled one.
		if it, err := s.RecentOutbox(ctx, u.ID, acct.ID, "key0", now.Add(-time.Minute)); err != nil || it.IdemKey != "key0" || it.MIMEEnc != "" {
			t.Fatalf("recent: %+v %v", it, err)
		}
		if _, err := s.RecentOutbox(ctx, u.ID, acct.ID, "nokey", now.Add(-time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("recent without a match: %v", err)
		}
	})
}

// TestOutboxMessageInParts: a sealed message goes into the database in
// parts of at most 512 KiB and comes back whole, to its owner only; an
// add that fails leaves what was there; deleting the account takes the
// parts with the item.
func TestOutboxMessageInParts(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_parts", "parts@example.test")
		other, _ := s.UpsertClerkUser(ctx, "user_parts_other", "other@example.test")
		acct := newAccount(u.ID, "work")
		if err := s.CreateAccount(ctx, acct); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 1200_000)
		_, _ = rand.Read(raw)
		sealed := base64.StdEncoding.EncodeToString(raw) // 1.6 MB: three whole parts and one short
		it := &store.OutboxItem{ID: "00000000-0000-0000-0000-0000000000a1", UserID: u.ID, AccountID: acct.ID, Kind: store.OutboxSend,
			MessageID: "parts@example.test", Recipients: `["bob@example.test"]`, Bcc: "[]", IdemKey: "parts", State: store.OutboxScheduled,
			SendAt: time.Now(), MIMEEnc: sealed}
		if err := s.AddOutbox(ctx, it); err != nil {
			t.Fatal(err)
		}
		parts := func() (n, over int) {
			t.Helper()
			n, err := s.CountForTest(ctx, `SELECT COUNT(*) FROM outbox_parts WHERE outbox_id = '`+it.ID+`'`)
			if err != nil {
				t.Fatal(err)
			}
			over, _ = s.CountForTest(ctx, `SELECT COUNT(*) FROM outbox_parts WHERE LENGTH(data) > 524288`)
			return n, over
		}
		if n, over := parts(); n != 4 || over != 0 {
			t.Fatalf("%d parts, %d over 512 KiB; want 4 and 0", n, over)
		}
		if got, err := s.OutboxMessage(ctx, u.ID, it.ID); err != nil || got != sealed {
			t.Fatalf("read back %d bytes of %d (%v)", len(got), len(sealed), err)
		}
		if _, err := s.OutboxMessage(ctx, other.ID, it.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user read the message: %v", err)
		}

		again := *it
		again.MIMEEnc = "replaced"
		if err := s.AddOutbox(ctx, &again); err == nil {
			t.Fatal("an item was added twice")
		}
		if got, _ := s.OutboxMessage(ctx, u.ID, it.ID); got != sealed {
			t.Fatal("a failed add changed the stored message")
		}

		if err := s.DeleteAccount(ctx, u.ID, acct.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := parts(); n != 0 {
			t.Fatalf("%d parts outlived their item", n)
		}
	})
}

// TestOutboxPartsMigration: messages sealed before the migration are
// read as before after it, and going back restores each message whole
// in its column.
func TestOutboxPartsMigration(t *testing.T) {
	for name, o := range map[string]func(t *testing.T) store.Options{
		"sqlite":   func(t *testing.T) store.Options { return store.Options{SQLitePath: dbtest.SQLitePath(t)} },
		"postgres": func(t *testing.T) store.Options { return store.Options{DatabaseURL: dbtest.PostgresURL(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t, o(t))
			if err := s.MigrateToForTest(ctx, 10); err != nil {
				t.Fatal(err)
			}
			u, _ := s.UpsertClerkUser(ctx, "user_mig_outbox", "mig@example.test")
			acct := newAccount(u.ID, "work")
			if err := s.CreateAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			const oldID, bigID, purgedID, newID = "00000000-0000-0000-0000-0000000000b1", "00000000-0000-0000-0000-0000000000b3",
				"00000000-0000-0000-0000-0000000000b4", "00000000-0000-0000-0000-0000000000b2"
			big := strings.Repeat("ABCDEFGHIJKLMNOP", 65_536+1) // over 1 MiB
			for id, sealed := range map[string]string{oldID: "sealed-before", bigID: big, purgedID: ""} {
				if err := s.ExecForTest(ctx, `INSERT INTO outbox (id, user_id, account_id, kind, message_id, recipients, mime_enc, idem_key, state,
					send_at, created_at, updated_at) VALUES ('`+id+`', '`+u.ID+`', '`+acct.ID+`', 'send', '`+id+`@example.test', '[]', '`+sealed+`',
					'`+id+`', 'scheduled', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]string{oldID: "sealed-before", bigID: big, purgedID: ""} {
				if got, err := s.OutboxMessage(ctx, u.ID, id); err != nil || got != want {
					t.Fatalf("after the migration, %s reads %d bytes of %d (%v)", id, len(got), len(want), err)
				}
			}
			if n, err := s.CountForTest(ctx, `SELECT COUNT(*) FROM outbox_parts WHERE outbox_id = '`+bigID+`'`); err != nil || n != 1 {
				t.Fatalf("a large message moved over in %d parts, want it whole in 1 (%v)", n, err)
			}
			long := strings.Repeat("0123456789abcdef", 70_000) // three parts
			if err := s.AddOutbox(ctx, &store.OutboxItem{ID: newID, UserID: u.ID, AccountID: acct.ID, Kind: store.OutboxSend, MessageID: "new@example.test",
				Recipients: "[]", Bcc: "[]", IdemKey: "new", State: store.OutboxScheduled, SendAt: time.Now(), MIMEEnc: long}); err != nil {
				t.Fatal(err)
			}
			if err := s.MigrateToForTest(ctx, 10); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]string{oldID: "sealed-before", bigID: big, purgedID: "", newID: long} {
				if n, err := s.CountForTest(ctx, `SELECT COUNT(*) FROM outbox WHERE id = '`+id+`' AND mime_enc = '`+want+`'`); err != nil || n != 1 {
					t.Errorf("after going back, %s does not hold its message whole: %d, %v", id, n, err)
				}
			}
		})
	}
}
