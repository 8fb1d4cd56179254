package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MailOAuthState is a mail-provider sign-in in progress. It is stored
// under the hash of its state parameter, taken exactly once, and valid
// only for the person and browser session that started it.
type MailOAuthState struct {
	StateHash   string `db:"state_hash"`
	UserID      string `db:"user_id"`
	SessionHash string `db:"session_hash"`
	Provider    string `db:"provider"`
	// AccountID is the account being re-authorised, "" for a new one.
	AccountID string `db:"account_id"`
	// VerifierEnc is the sealed PKCE code verifier.
	VerifierEnc string    `db:"verifier_enc"`
	CreatedAt   time.Time `db:"created_at"`
	ExpiresAt   time.Time `db:"expires_at"`
}

// MailOAuthStateContext is the sealing context of a sign-in's verifier.
func MailOAuthStateContext(userID, column string) string {
	return "mail_oauth_states/" + userID + "/" + column
}

const mailOAuthStateColumns = `state_hash, user_id, session_hash, provider, account_id, verifier_enc, created_at, expires_at`

// CreateMailOAuthState stores st, which expires after ttl.
func (s *Store) CreateMailOAuthState(ctx context.Context, st *MailOAuthState, ttl time.Duration) error {
	st.CreatedAt = s.now()
	st.ExpiresAt = st.CreatedAt.Add(ttl)
	_, err := s.db.NamedExecContext(ctx, `INSERT INTO mail_oauth_states (`+mailOAuthStateColumns+`) VALUES (
		:state_hash, :user_id, :session_hash, :provider, :account_id, :verifier_enc, :created_at, :expires_at)`, st)
	if err != nil {
		return fmt.Errorf("store: create mail sign-in state: %w", err)
	}
	return nil
}

// TakeMailOAuthState removes and returns the sign-in stored under
// stateHash. Of concurrent callers one gets it; an unknown, used or
// expired state gives ErrNotFound.
func (s *Store) TakeMailOAuthState(ctx context.Context, stateHash string) (MailOAuthState, error) {
	var st MailOAuthState
	err := s.db.GetContext(ctx, &st, s.q(`DELETE FROM mail_oauth_states WHERE state_hash = ?
		RETURNING `+mailOAuthStateColumns), stateHash)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !st.ExpiresAt.After(s.now()) {
		return MailOAuthState{}, fmt.Errorf("store: take mail sign-in state: %w", ErrNotFound)
	}
	if err != nil {
		return MailOAuthState{}, fmt.Errorf("store: take mail sign-in state: %w", err)
	}
	return st, nil
}
