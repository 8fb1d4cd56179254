package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/store"
)

func keys(t *testing.T) *secret.Keys {
	t.Helper()
	k, err := secret.New(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCheckSealerAndReseal(t *testing.T) {
	dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		oldKey, newKey := keys(t), keys(t)
		if err := s.CheckSealer(ctx, oldKey); err != nil {
			t.Fatalf("first check: %v", err)
		}
		if err := s.CheckSealer(ctx, oldKey); err != nil {
			t.Fatalf("second check with the same key: %v", err)
		}
		if err := s.CheckSealer(ctx, newKey); !errors.Is(err, secret.ErrWrongKey) {
			t.Fatalf("check with another key: err = %v, want ErrWrongKey", err)
		}

		u, _ := s.EnsureLocalUser(ctx)
		a := newAccount(u.ID, "work")
		a.IMAPPasswordEnc = oldKey.Seal([]byte("imap-pw"), store.AccountSecretContext(u.ID, store.ColumnIMAPPassword))
		a.SMTPPasswordEnc = oldKey.Seal([]byte("smtp-pw"), store.AccountSecretContext(u.ID, store.ColumnSMTPPassword))
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		// A message waiting in the outbox, sealed in several parts.
		message := bytes.Repeat([]byte("a message of more than one part\r\n"), 40_000)
		it := &store.OutboxItem{ID: "00000000-0000-0000-0000-0000000000c1", UserID: u.ID, AccountID: a.ID, Kind: store.OutboxSend,
			MessageID: "m@example.test", Recipients: `["bob@example.test"]`, Bcc: "[]", IdemKey: "k", State: store.OutboxPendingApproval, SendAt: time.Now()}
		it.MIMEEnc = oldKey.Seal(message, store.OutboxSecretContext(*it))
		if err := s.AddOutbox(ctx, it); err != nil {
			t.Fatal(err)
		}
		opens := func(k *secret.Keys) bool {
			t.Helper()
			sealed, err := s.OutboxMessage(ctx, u.ID, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := k.Open(sealed, store.OutboxSecretContext(*it))
			return err == nil && bytes.Equal(pt, message)
		}

		// A wrong "from" key changes nothing.
		if _, err := s.ResealSecrets(ctx, newKey, oldKey); !errors.Is(err, secret.ErrWrongKey) {
			t.Fatalf("reseal from the wrong key: err = %v, want ErrWrongKey", err)
		}
		if err := s.CheckSealer(ctx, oldKey); err != nil {
			t.Fatalf("failed reseal changed the key check: %v", err)
		}
		if !opens(oldKey) {
			t.Fatal("a failed reseal changed the outbox message")
		}

		n, err := s.ResealSecrets(ctx, oldKey, newKey)
		if err != nil || n != 4 {
			t.Fatalf("ResealSecrets = %d, %v; want 4 values", n, err)
		}
		if !opens(newKey) || opens(oldKey) {
			t.Fatal("the outbox message was not re-sealed with the new key")
		}
		if err := s.CheckSealer(ctx, newKey); err != nil {
			t.Fatalf("check with the new key after rotation: %v", err)
		}
		if err := s.CheckSealer(ctx, oldKey); !errors.Is(err, secret.ErrWrongKey) {
			t.Fatalf("check with the old key after rotation: err = %v, want ErrWrongKey", err)
		}
		got, _ := s.GetAccount(ctx, u.ID, a.ID)
		for _, c := range []struct{ enc, column, want string }{{got.IMAPPasswordEnc, store.ColumnIMAPPassword, "imap-pw"},
			{got.SMTPPasswordEnc, store.ColumnSMTPPassword, "smtp-pw"}} {
			pt, err := newKey.Open(c.enc, store.AccountSecretContext(u.ID, c.column))
			if err != nil || string(pt) != c.want {
				t.Fatalf("after rotation Open = %q, %v; want %q", pt, err, c.want)
			}
			if _, err := newKey.Open(c.enc, store.AccountSecretContext("someone-else", c.column)); !errors.Is(err, secret.ErrWrongKey) {
				t.Fatalf("a password opened for another owner: %v", err)
			}
		}
	})
}
