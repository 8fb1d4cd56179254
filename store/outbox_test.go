package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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
