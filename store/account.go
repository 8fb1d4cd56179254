package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// MailAccount is one IMAP/SMTP account of a user. Passwords are sealed
// values (see package secret); the store never sees them in the clear.
type MailAccount struct {
	ID              string     `db:"id"`
	UserID          string     `db:"user_id"`
	Label           string     `db:"label"`
	Email           string     `db:"email"`
	DisplayName     string     `db:"display_name"`
	IMAPHost        string     `db:"imap_host"`
	IMAPPort        int        `db:"imap_port"`
	IMAPTLSMode     string     `db:"imap_tls_mode"`
	IMAPUser        string     `db:"imap_user"`
	IMAPPasswordEnc string     `db:"imap_password_enc"`
	SMTPHost        string     `db:"smtp_host"`
	SMTPPort        int        `db:"smtp_port"`
	SMTPTLSMode     string     `db:"smtp_tls_mode"`
	SMTPUser        string     `db:"smtp_user"`
	SMTPPasswordEnc string     `db:"smtp_password_enc"`
	SignatureHTML   string     `db:"signature_html"`
	IsDefault       bool       `db:"is_default"`
	LastTestAt      *time.Time `db:"last_test_at"`
	LastTestIMAPOK  *bool      `db:"last_test_imap_ok"`
	LastTestSMTPOK  *bool      `db:"last_test_smtp_ok"`
	LastTestError   string     `db:"last_test_error"`
	// AuthKind is AuthPassword or an OAuth provider's kind; OAuth
	// accounts keep a sealed refresh token and no passwords.
	AuthKind             string `db:"auth_kind"`
	OAuthRefreshTokenEnc string `db:"oauth_refresh_token_enc"`
	// OAuthSubject is the provider's id of the person who signed in.
	OAuthSubject string `db:"oauth_subject"`
	// NeedsReauth is set when the provider refused the refresh token:
	// the person must sign in again.
	NeedsReauth bool `db:"needs_reauth"`
	// PermissionLevel is what AI clients may do with the account, on top
	// of their tokens' scopes: PermissionRead, PermissionOrganize or
	// PermissionFull.
	PermissionLevel string `db:"permission_level"`
	// SendDelayS holds mail from AI clients this many seconds (0-300)
	// before it goes, so that the owner can undo it.
	SendDelayS int `db:"send_delay_s"`
	// SendRequiresApproval makes mail from AI clients wait in the outbox
	// until the owner sends or discards it.
	SendRequiresApproval bool      `db:"send_requires_approval"`
	CreatedAt            time.Time `db:"created_at"`
	UpdatedAt            time.Time `db:"updated_at"`
}

// Permission levels of a mail account.
const (
	PermissionRead     = "read"
	PermissionOrganize = "organize"
	PermissionFull     = "full"
)

// Sign-in kinds of a mail account.
const (
	AuthPassword       = "password"
	AuthOAuthGoogle    = "oauth_google"
	AuthOAuthMicrosoft = "oauth_microsoft"
)

// OAuthProvider returns the provider key ("google", "microsoft") of an
// OAuth account, or "" for a password account.
func (a MailAccount) OAuthProvider() string {
	if key, ok := strings.CutPrefix(a.AuthKind, oauthKindPrefix); ok {
		return key
	}
	return ""
}

// OAuthAuthKind is the AuthKind of provider key p.
func OAuthAuthKind(p string) string { return oauthKindPrefix + p }

const oauthKindPrefix = "oauth_"

// TestStatus is "untested", "ok" (IMAP and SMTP passed) or "failing".
func (a MailAccount) TestStatus() string {
	switch {
	case a.LastTestAt == nil:
		return "untested"
	case a.LastTestIMAPOK != nil && *a.LastTestIMAPOK && a.LastTestSMTPOK != nil && *a.LastTestSMTPOK:
		return "ok"
	}
	return "failing"
}

const accountColumns = `id, user_id, label, email, display_name,
	imap_host, imap_port, imap_tls_mode, imap_user, imap_password_enc,
	smtp_host, smtp_port, smtp_tls_mode, smtp_user, smtp_password_enc,
	signature_html, is_default, last_test_at, last_test_imap_ok, last_test_smtp_ok, last_test_error,
	auth_kind, oauth_refresh_token_enc, oauth_subject, needs_reauth, permission_level, send_delay_s, send_requires_approval,
	created_at, updated_at`

// CreateAccount stores a new account for a.UserID and fills in its ID and
// timestamps. The user's first account becomes the default; a new account
// marked default takes that role from the previous one.
func (s *Store) CreateAccount(ctx context.Context, a *MailAccount) error {
	defer s.hot.changed()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM mail_accounts WHERE user_id = ?`), a.UserID); err != nil {
			return err
		}
		if n == 0 {
			a.IsDefault = true
		} else if a.IsDefault {
			if err := s.clearDefault(ctx, tx, a.UserID); err != nil {
				return err
			}
		}
		a.ID = newID()
		if a.AuthKind == "" {
			a.AuthKind = AuthPassword
		}
		if a.PermissionLevel == "" {
			a.PermissionLevel = PermissionFull
		}
		a.CreatedAt = s.now()
		a.UpdatedAt = a.CreatedAt
		_, err := tx.NamedExecContext(ctx, `INSERT INTO mail_accounts (`+accountColumns+`) VALUES (
			:id, :user_id, :label, :email, :display_name,
			:imap_host, :imap_port, :imap_tls_mode, :imap_user, :imap_password_enc,
			:smtp_host, :smtp_port, :smtp_tls_mode, :smtp_user, :smtp_password_enc,
			:signature_html, :is_default, :last_test_at, :last_test_imap_ok, :last_test_smtp_ok, :last_test_error,
			:auth_kind, :oauth_refresh_token_enc, :oauth_subject, :needs_reauth, :permission_level, :send_delay_s, :send_requires_approval,
			:created_at, :updated_at)`, a)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create account: %w", err)
	}
	return nil
}

// ListAccounts returns the user's accounts, the default first, then by label.
func (s *Store) ListAccounts(ctx context.Context, userID string) ([]MailAccount, error) {
	now := s.now()
	if list, ok := s.hot.accounts.get(&s.hot, userID, now); ok {
		return slices.Clone(list), nil
	}
	gen := s.hot.gen.Load()
	accounts := []MailAccount{}
	err := s.hotSelect(ctx, &accounts, `SELECT `+accountColumns+` FROM mail_accounts
		WHERE user_id = ? ORDER BY is_default DESC, label, created_at`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	s.hot.accounts.put(&s.hot, userID, slices.Clone(accounts), gen, time.Time{})
	return accounts, nil
}

// GetAccount returns the user's account id, or ErrNotFound.
func (s *Store) GetAccount(ctx context.Context, userID, id string) (MailAccount, error) {
	list, err := s.ListAccounts(ctx, userID)
	if err != nil {
		return MailAccount{}, fmt.Errorf("store: get account %s: %w", id, err)
	}
	for _, a := range list {
		if a.ID == id {
			return a, nil
		}
	}
	return MailAccount{}, fmt.Errorf("store: get account %s: %w", id, ErrNotFound)
}

// connectionUnchanged is true in an UPDATE of mail_accounts (where column
// names are the old values) when nothing that a connection test checks
// changes: the last test result still applies.
const connectionUnchanged = `(imap_host = :imap_host AND imap_port = :imap_port AND imap_tls_mode = :imap_tls_mode
	AND imap_user = :imap_user AND imap_password_enc = :imap_password_enc AND smtp_host = :smtp_host
	AND smtp_port = :smtp_port AND smtp_tls_mode = :smtp_tls_mode AND smtp_user = :smtp_user
	AND smtp_password_enc = :smtp_password_enc)`

// UpdateAccount saves the editable fields of a (settings, sealed
// passwords, signature). The last test result is cleared when a setting
// it checked changed, not for a label or signature edit. An OAuth
// account's sign-in changes only through SetAccountSignIn and
// SetAccountRefreshToken.
// It returns ErrNotFound when a.ID is not an account of a.UserID.
func (s *Store) UpdateAccount(ctx context.Context, a *MailAccount) error {
	defer s.hot.changed()
	a.UpdatedAt = s.now()
	res, err := s.db.NamedExecContext(ctx, `UPDATE mail_accounts SET
		label = :label, email = :email, display_name = :display_name,
		imap_host = :imap_host, imap_port = :imap_port, imap_tls_mode = :imap_tls_mode,
		imap_user = :imap_user, imap_password_enc = :imap_password_enc,
		smtp_host = :smtp_host, smtp_port = :smtp_port, smtp_tls_mode = :smtp_tls_mode,
		smtp_user = :smtp_user, smtp_password_enc = :smtp_password_enc,
		signature_html = :signature_html, permission_level = :permission_level, send_delay_s = :send_delay_s,
		send_requires_approval = :send_requires_approval, updated_at = :updated_at,
		last_test_at = CASE WHEN `+connectionUnchanged+` THEN last_test_at END,
		last_test_imap_ok = CASE WHEN `+connectionUnchanged+` THEN last_test_imap_ok END,
		last_test_smtp_ok = CASE WHEN `+connectionUnchanged+` THEN last_test_smtp_ok END,
		last_test_error = CASE WHEN `+connectionUnchanged+` THEN last_test_error ELSE '' END
		WHERE id = :id AND user_id = :user_id`, a)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: update account %s: %w", a.ID, err)
	}
	got, err := s.GetAccount(ctx, a.UserID, a.ID)
	if err != nil {
		return err
	}
	a.LastTestAt, a.LastTestIMAPOK, a.LastTestSMTPOK, a.LastTestError = got.LastTestAt, got.LastTestIMAPOK, got.LastTestSMTPOK, got.LastTestError
	return nil
}

// SetDefaultAccount makes id the user's default account, or returns ErrNotFound.
func (s *Store) SetDefaultAccount(ctx context.Context, userID, id string) error {
	defer s.hot.changed()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if err := s.clearDefault(ctx, tx, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE mail_accounts SET is_default = TRUE WHERE id = ? AND user_id = ?`), id, userID)
		return affectedOne(res, err)
	})
	if err != nil {
		return fmt.Errorf("store: set default account %s: %w", id, err)
	}
	return nil
}

// DeleteAccount removes the user's account id, or returns ErrNotFound. When
// it was the default, the oldest remaining account becomes the default.
func (s *Store) DeleteAccount(ctx context.Context, userID, id string) error {
	defer s.hot.changed()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM mail_accounts WHERE id = ? AND user_id = ?`), id, userID)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE mail_accounts SET is_default = TRUE
			WHERE id = (SELECT id FROM mail_accounts WHERE user_id = ? ORDER BY created_at, id LIMIT 1)
			AND NOT EXISTS (SELECT 1 FROM mail_accounts WHERE user_id = ? AND is_default)`), userID, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete account %s: %w", id, err)
	}
	return nil
}

// TestResult is the outcome of a connection test.
type TestResult struct {
	IMAPOK, SMTPOK bool
	// Error is a safe, human-readable summary; empty when both passed.
	Error string
	// Settings is the updated_at of the account as tested; zero records
	// the result whatever changed since.
	Settings time.Time
}

// RecordAccountTest stores the result of a connection test of the user's
// account id, or returns ErrNotFound. A result for settings that changed
// while the test ran (r.Settings older than the account's updated_at)
// is dropped: it says nothing about the new ones.
func (s *Store) RecordAccountTest(ctx context.Context, userID, id string, r TestResult) error {
	defer s.hot.changed()
	query := `UPDATE mail_accounts SET last_test_at = ?, last_test_imap_ok = ?, last_test_smtp_ok = ?, last_test_error = ?
		WHERE id = ? AND user_id = ?`
	args := []any{s.now(), r.IMAPOK, r.SMTPOK, r.Error, id, userID}
	if !r.Settings.IsZero() {
		query += ` AND updated_at = ?`
		args = append(args, r.Settings)
	}
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	err = affectedOne(res, err)
	if errors.Is(err, ErrNotFound) && !r.Settings.IsZero() {
		if _, err = s.GetAccount(ctx, userID, id); err == nil {
			return nil // changed meanwhile: the result is stale
		}
	}
	if err != nil {
		return fmt.Errorf("store: record account test %s: %w", id, err)
	}
	return nil
}

// SetAccountSignIn stores the outcome of a new sign-in to the user's
// OAuth account id: its sealed refresh token and subject. It clears
// needs_reauth and the last test result, and changes updated_at, which
// drops connections opened under the old sign-in.
func (s *Store) SetAccountSignIn(ctx context.Context, userID, id, sealed, subject string) error {
	defer s.hot.changed()
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE mail_accounts SET oauth_refresh_token_enc = ?, oauth_subject = ?,
		needs_reauth = FALSE, updated_at = ?, last_test_at = NULL, last_test_imap_ok = NULL, last_test_smtp_ok = NULL,
		last_test_error = '' WHERE id = ? AND user_id = ? AND auth_kind <> 'password'`), sealed, subject, s.now(), id, userID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: set sign-in of %s: %w", id, err)
	}
	return nil
}

// SetAccountRefreshToken replaces the sealed refresh token prev of the
// user's account id with the one the provider rotated to. It reports
// false, changing nothing, when prev is no longer the stored token (a new
// sign-in or another replica came first).
func (s *Store) SetAccountRefreshToken(ctx context.Context, userID, id, prev, sealed string) (bool, error) {
	defer s.hot.changed()
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE mail_accounts SET oauth_refresh_token_enc = ?
		WHERE id = ? AND user_id = ? AND auth_kind <> 'password' AND oauth_refresh_token_enc = ?`), sealed, id, userID, prev)
	if err := affectedOne(res, err); errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: set refresh token of %s: %w", id, err)
	}
	return true, nil
}

// MarkAccountNeedsReauth records that the provider refused the refresh
// token sealed as sealed. It reports false, marking nothing, when another
// token was stored since (a rotation or a new sign-in).
func (s *Store) MarkAccountNeedsReauth(ctx context.Context, userID, id, sealed string) (bool, error) {
	defer s.hot.changed()
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE mail_accounts SET needs_reauth = TRUE
		WHERE id = ? AND user_id = ? AND oauth_refresh_token_enc = ?`), id, userID, sealed)
	if err := affectedOne(res, err); errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: mark %s as needing sign-in: %w", id, err)
	}
	return true, nil
}

func (s *Store) clearDefault(ctx context.Context, tx *sqlx.Tx, userID string) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE mail_accounts SET is_default = FALSE WHERE user_id = ? AND is_default`), userID)
	return err
}

// affectedOne turns an exec result that touched no row into ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
