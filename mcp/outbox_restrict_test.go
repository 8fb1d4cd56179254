package mcp_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/store"
)

// stopAfterClaim is the store of a worker whose process starts to stop
// just after it claimed messages.
type stopAfterClaim struct {
	*store.Store
	stop context.CancelFunc
}

func (s stopAfterClaim) ClaimOutbox(ctx context.Context, owner string, lease time.Time, limit int) ([]store.OutboxItem, error) {
	items, err := s.Store.ClaimOutbox(ctx, owner, lease, limit)
	if len(items) > 0 {
		s.stop()
	}
	return items, err
}

// TestOutboxFollowsTheAccount: a message waiting out its undo window is
// cancelled when the user stops letting AI clients send, held when the
// account now needs approval; a worker that stops after claiming hands
// its messages back instead of failing them.
func TestOutboxFollowsTheAccount(t *testing.T) {
	h, rig, keys := mailHarnessWith(t, mcp.Options{CallsPerMinute: 100000})
	tok, u := h.token(t, "restrict", "mail.read mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	bobAddr, _ := rig.User("bob")
	c := h.client(t, tok)
	ctx := context.Background()
	update := func(f func(*store.MailAccount)) {
		a, err := h.st.GetAccount(ctx, u.ID, alice)
		if err != nil {
			t.Fatal(err)
		}
		f(&a)
		if err := h.st.UpdateAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	send := func(subject string) string {
		return structured[mcp.SentResult](t, c, "send_message", map[string]any{"account_id": alice, "to": []string{bobAddr.Email},
			"subject": subject + " " + time.Now().Format("150405.000"), "body_text": "x"}).OutboxID
	}
	stateOf := func(id string) store.OutboxItem {
		it, err := h.st.GetOutbox(ctx, u.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	waitState := func(id string, want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); stateOf(id).State != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %s (%s), want %s", id, stateOf(id).State, stateOf(id).Outcome, want)
			}
		}
	}

	update(func(a *store.MailAccount) { a.SendDelayS = 1 })
	rogue := send("Rogue")
	update(func(a *store.MailAccount) { a.PermissionLevel = store.PermissionRead })
	waitState(rogue, store.OutboxCancelled)

	update(func(a *store.MailAccount) { a.PermissionLevel = store.PermissionFull })
	held := send("Held")
	update(func(a *store.MailAccount) { a.SendRequiresApproval = true })
	waitState(held, store.OutboxPendingApproval)
	update(func(a *store.MailAccount) { a.SendRequiresApproval = false })

	// A second server without its own worker running: its messages are
	// due once the window passes, and a worker that stops right after it
	// claims them hands them back.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rig.CAPEM)
	engine := mail.New(mail.Config{AllowPrivateHosts: true, RootCAs: pool})
	t.Cleanup(func() { engine.Close() })
	wctx, stop := context.WithCancel(ctx)
	w := mcp.New(mcp.Options{Store: stopAfterClaim{h.st, stop}, Mail: engine, Secrets: keys, Sealer: keys, Logger: slog.New(slog.DiscardHandler)})
	defer w.Close()
	update(func(a *store.MailAccount) { a.SendDelayS = 300 })
	later := send("Later")
	if _, err := h.st.MoveOutbox(ctx, u.ID, later, []string{store.OutboxScheduled}, store.OutboxScheduled, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	// The harness's own worker may claim it first; either way it is not
	// failed by a stopping worker.
	w.RunOutbox(wctx)
	if it := stateOf(later); it.State == store.OutboxFailed || it.State == store.OutboxCancelled {
		t.Fatalf("a stopping worker ended the message %s (%s)", it.State, it.Outcome)
	}
	waitState(later, store.OutboxSent)

	// Disconnecting the client cancels what it queued.
	update(func(a *store.MailAccount) { a.SendDelayS = 1 })
	orphan := send("Orphan")
	apps, err := h.st.ListConnectedApps(ctx, u.ID)
	if err != nil || len(apps) != 1 {
		t.Fatalf("apps: %v %v", apps, err)
	}
	if err := h.st.RevokeGrant(ctx, u.ID, apps[0].GrantID); err != nil {
		t.Fatal(err)
	}
	waitState(orphan, store.OutboxCancelled)
}
