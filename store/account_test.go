package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/imap-mcp/imap-mcp/store"
)

func newAccount(userID, label string) *store.MailAccount {
	return &store.MailAccount{
		UserID: userID, Label: label, Email: label + "@example.test", DisplayName: "Alice",
		IMAPHost: "imap.example.test", IMAPPort: 993, IMAPTLSMode: "tls", IMAPUser: label, IMAPPasswordEnc: "sealed-imap",
		SMTPHost: "smtp.example.test", SMTPPort: 465, SMTPTLSMode: "tls", SMTPUser: label, SMTPPasswordEnc: "sealed-smtp",
	}
}

func TestAccounts(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice, err := s.UpsertClerkUser(ctx, "user_alice", "alice@example.test")
		if err != nil {
			t.Fatal(err)
		}
		mallory, err := s.UpsertClerkUser(ctx, "user_mallory", "mallory@example.test")
		if err != nil {
			t.Fatal(err)
		}

		work := newAccount(alice.ID, "work")
		if err := s.CreateAccount(ctx, work); err != nil {
			t.Fatal(err)
		}
		if !work.IsDefault || work.ID == "" {
			t.Fatalf("first account: default=%v id=%q, want default and an id", work.IsDefault, work.ID)
		}
		home := newAccount(alice.ID, "home")
		if err := s.CreateAccount(ctx, home); err != nil {
			t.Fatal(err)
		}
		if home.IsDefault {
			t.Fatal("second account became default without asking")
		}

		got, err := s.GetAccount(ctx, alice.ID, work.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.IMAPPort != 993 || got.IMAPTLSMode != "tls" || got.IMAPPasswordEnc != "sealed-imap" || !got.IsDefault || got.LastTestAt != nil {
			t.Fatalf("GetAccount = %+v", got)
		}

		// Another user reaches nothing of alice's.
		if _, err := s.GetAccount(ctx, mallory.ID, work.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetAccount by another user: err = %v, want ErrNotFound", err)
		}
		stolen := newAccount(mallory.ID, "stolen")
		stolen.ID = work.ID
		if err := s.UpdateAccount(ctx, stolen); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateAccount by another user: err = %v, want ErrNotFound", err)
		}
		if err := s.DeleteAccount(ctx, mallory.ID, work.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteAccount by another user: err = %v, want ErrNotFound", err)
		}
		if err := s.SetDefaultAccount(ctx, mallory.ID, work.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetDefaultAccount by another user: err = %v, want ErrNotFound", err)
		}
		if err := s.RecordAccountTest(ctx, mallory.ID, work.ID, store.TestResult{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("RecordAccountTest by another user: err = %v, want ErrNotFound", err)
		}
		if list, _ := s.ListAccounts(ctx, mallory.ID); len(list) != 0 {
			t.Fatalf("mallory lists %d accounts", len(list))
		}
		if got, _ := s.GetAccount(ctx, alice.ID, work.ID); got.Label != "work" || !got.IsDefault {
			t.Fatalf("alice's account changed after another user's writes: %+v", got)
		}

		if err := s.RecordAccountTest(ctx, alice.ID, work.ID, store.TestResult{IMAPOK: true, Error: "SMTP: authentication failed"}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetAccount(ctx, alice.ID, work.ID)
		if got.LastTestAt == nil || !*got.LastTestIMAPOK || *got.LastTestSMTPOK || got.LastTestError != "SMTP: authentication failed" {
			t.Fatalf("after RecordAccountTest: %+v", got)
		}
		got.IMAPPort = 143
		got.IMAPTLSMode = "starttls"
		if err := s.UpdateAccount(ctx, &got); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetAccount(ctx, alice.ID, work.ID)
		if got.IMAPPort != 143 || got.IMAPTLSMode != "starttls" || got.LastTestAt != nil || got.LastTestIMAPOK != nil {
			t.Fatalf("after UpdateAccount: port %d mode %s test %v", got.IMAPPort, got.IMAPTLSMode, got.LastTestAt)
		}
		// The permission level: full by default, kept as set, and only one
		// of the three levels.
		if got.PermissionLevel != store.PermissionFull {
			t.Fatalf("default permission level %q", got.PermissionLevel)
		}
		got.PermissionLevel = store.PermissionOrganize
		if err := s.UpdateAccount(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.GetAccount(ctx, alice.ID, work.ID); got.PermissionLevel != store.PermissionOrganize {
			t.Fatalf("permission level %q after update", got.PermissionLevel)
		}
		got.PermissionLevel = "admin"
		if err := s.UpdateAccount(ctx, &got); err == nil {
			t.Fatal("an unknown permission level was stored")
		}
		got, _ = s.GetAccount(ctx, alice.ID, work.ID)

		if err := s.SetDefaultAccount(ctx, alice.ID, home.ID); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListAccounts(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != home.ID || !list[0].IsDefault || list[1].IsDefault {
			t.Fatalf("after SetDefaultAccount(home): %v", labels(list))
		}

		// Deleting the default promotes the remaining account.
		if err := s.DeleteAccount(ctx, alice.ID, home.ID); err != nil {
			t.Fatal(err)
		}
		list, _ = s.ListAccounts(ctx, alice.ID)
		if len(list) != 1 || list[0].ID != work.ID || !list[0].IsDefault {
			t.Fatalf("after deleting the default: %v", labels(list))
		}
		if err := s.DeleteAccount(ctx, alice.ID, home.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: err = %v, want ErrNotFound", err)
		}

		bad := newAccount(alice.ID, "bad")
		bad.IMAPTLSMode = "ssl"
		if err := s.CreateAccount(ctx, bad); err == nil {
			t.Fatal("CreateAccount accepted tls mode \"ssl\"")
		}
	})
}

func labels(list []store.MailAccount) []string {
	var out []string
	for _, a := range list {
		l := a.Label
		if a.IsDefault {
			l += "*"
		}
		out = append(out, l)
	}
	return out
}

// TestStaleTestResultIsDropped: a connection test that finishes after
// the settings changed does not record its result on the new settings.
func TestStaleTestResultIsDropped(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.UpsertClerkUser(ctx, "user_stale", "stale@example.test")
		a := newAccount(u.ID, "stale")
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		tested := a.UpdatedAt
		a.IMAPPasswordEnc = "sealed-new-password"
		if err := s.UpdateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAccountTest(ctx, u.ID, a.ID, store.TestResult{IMAPOK: true, SMTPOK: true, Settings: tested}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetAccount(ctx, u.ID, a.ID); got.TestStatus() != "untested" {
			t.Fatalf("a test of the old settings was recorded: %q", got.TestStatus())
		}
		got, _ := s.GetAccount(ctx, u.ID, a.ID)
		if err := s.RecordAccountTest(ctx, u.ID, a.ID, store.TestResult{IMAPOK: true, SMTPOK: true, Settings: got.UpdatedAt}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetAccount(ctx, u.ID, a.ID); got.TestStatus() != "ok" {
			t.Fatalf("a test of the current settings was not recorded: %q", got.TestStatus())
		}
		if err := s.RecordAccountTest(ctx, "00000000-0000-0000-0000-000000000000", a.ID, store.TestResult{Settings: got.UpdatedAt}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user's record: %v", err)
		}
	})
}
