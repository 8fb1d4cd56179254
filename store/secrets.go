package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Sealer seals and opens secrets at rest (package secret implements it).
type Sealer interface {
	Seal(plaintext []byte, context string) string
	Open(sealed, context string) ([]byte, error)
}

// Columns of mail_accounts that hold sealed passwords.
const (
	ColumnIMAPPassword = "imap_password_enc"
	ColumnSMTPPassword = "smtp_password_enc"
	ColumnRefreshToken = "oauth_refresh_token_enc"
)

// AccountSecretContext is the context a mail account's password is sealed
// for: its owner and column, so that a sealed value copied to another
// person's account, or to the other column, does not open.
func AccountSecretContext(userID, column string) string {
	return "mail_accounts/" + userID + "/" + column
}

// keyCheckContext is the context of the key check value.
const keyCheckContext = "app_settings/" + keyCheckSetting

// keyCheckSetting holds a sealed known value: a master key that cannot
// open it is the wrong key.
const keyCheckSetting = "master_key_check"

const keyCheckPlaintext = "imap-mcp master key check"

// sealedColumns lists every column that holds a sealed value; owner is
// the column its sealing context is made from.
var sealedColumns = []struct {
	table, key, owner, column, where string
	context                          func(owner, column string) string
}{
	{"mail_accounts", "id", "user_id", ColumnIMAPPassword, ColumnIMAPPassword + " <> ''", AccountSecretContext},
	{"mail_accounts", "id", "user_id", ColumnSMTPPassword, ColumnSMTPPassword + " <> ''", AccountSecretContext},
	{"mail_accounts", "id", "user_id", ColumnRefreshToken, ColumnRefreshToken + " <> ''", AccountSecretContext},
	{"mail_oauth_states", "state_hash", "user_id", "verifier_enc", "TRUE", MailOAuthStateContext},
	{"app_settings", "key", "key", "value", "key = '" + keyCheckSetting + "'", func(string, string) string { return keyCheckContext }},
}

// CheckSealer verifies that k opens the stored secrets. The first call on a
// new database records a sealed check value. A wrong key gives the error
// returned by k.Open (package secret: ErrWrongKey).
func (s *Store) CheckSealer(ctx context.Context, k Sealer) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO app_settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO NOTHING`), keyCheckSetting, k.Seal([]byte(keyCheckPlaintext), keyCheckContext))
	if err != nil {
		return fmt.Errorf("store: record key check: %w", err)
	}
	var sealed string
	if err := s.db.GetContext(ctx, &sealed, s.q(`SELECT value FROM app_settings WHERE key = ?`), keyCheckSetting); err != nil {
		return fmt.Errorf("store: read key check: %w", err)
	}
	pt, err := k.Open(sealed, keyCheckContext)
	if err != nil {
		return err
	}
	if string(pt) != keyCheckPlaintext {
		return errors.New("store: key check value is corrupt")
	}
	return nil
}

// ResealSecrets opens every stored secret (and every message kept in the
// outbox) with from and seals it again with to, bound to its place, in one
// transaction: either all secrets move to the new key or none.
// It returns the number of values re-sealed.
func (s *Store) ResealSecrets(ctx context.Context, from, to Sealer) (int, error) {
	defer s.hot.changed()
	n := 0
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		for _, c := range sealedColumns {
			var rows []struct {
				Key    string `db:"k"`
				Owner  string `db:"o"`
				Sealed string `db:"v"`
			}
			query := `SELECT ` + c.key + ` AS k, ` + c.owner + ` AS o, ` + c.column + ` AS v FROM ` + c.table + ` WHERE ` + c.where
			if err := tx.SelectContext(ctx, &rows, query); err != nil {
				return err
			}
			update := s.q(`UPDATE ` + c.table + ` SET ` + c.column + ` = ? WHERE ` + c.key + ` = ?`)
			for _, r := range rows {
				context := c.context(r.Owner, c.column)
				pt, err := from.Open(r.Sealed, context)
				if err != nil {
					return fmt.Errorf("%s.%s of %s: %w", c.table, c.column, r.Key, err)
				}
				if _, err := tx.ExecContext(ctx, update, to.Seal(pt, context), r.Key); err != nil {
					return err
				}
				n++
			}
		}
		m, err := s.resealOutbox(ctx, tx, from, to)
		n += m
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: reseal secrets: %w", err)
	}
	return n, nil
}

// resealOutbox re-seals every message kept in the outbox, one at a time,
// in tx, and returns how many it re-sealed.
func (s *Store) resealOutbox(ctx context.Context, tx *sqlx.Tx, from, to Sealer) (int, error) {
	var items []struct {
		OutboxItem
		Size int `db:"size"`
	}
	if err := tx.SelectContext(ctx, &items, `SELECT id, user_id, account_id, recipients, bcc,
		(SELECT SUM(OCTET_LENGTH(data)) FROM outbox_parts WHERE outbox_id = o.id) AS size
		FROM outbox o WHERE EXISTS (SELECT 1 FROM outbox_parts WHERE outbox_id = o.id)`); err != nil {
		return 0, err
	}
	for _, it := range items {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT data FROM outbox_parts WHERE outbox_id = ? ORDER BY seq`), it.ID)
		if err != nil {
			return 0, err
		}
		sealed, err := joinParts(rows, it.Size)
		if err != nil {
			return 0, err
		}
		context := OutboxSecretContext(it.OutboxItem)
		pt, err := from.Open(sealed, context)
		if err != nil { // from opened the key check and every secret before this one
			return 0, fmt.Errorf("outbox message %s does not open with the key that opens every other secret: it was altered or damaged", it.ID)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM outbox_parts WHERE outbox_id = ?`), it.ID); err != nil {
			return 0, err
		}
		if err := s.putParts(ctx, tx, it.ID, to.Seal(pt, context)); err != nil {
			return 0, err
		}
	}
	return len(items), nil
}
