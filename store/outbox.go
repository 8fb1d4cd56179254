package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// OutboxItem is one message on its way out (see the outbox table).
type OutboxItem struct {
	ID         string `db:"id"`
	UserID     string `db:"user_id"`
	AccountID  string `db:"account_id"`
	ClientID   string `db:"client_id"`
	Kind       string `db:"kind"` // OutboxSend, OutboxReply or OutboxDraft
	MessageID  string `db:"message_id"`
	Recipients string `db:"recipients"` // JSON list of envelope addresses
	Bcc        string `db:"bcc"`        // JSON list, for the Sent copy
	Subject    string `db:"subject"`
	// MIMEEnc is the message sealed under OutboxSecretContext, given to
	// AddOutbox; reads leave it out (OutboxMessage has it).
	MIMEEnc     string     `db:"-"`
	ReplyFolder string     `db:"reply_folder"`
	ReplyUID    int64      `db:"reply_uid"`
	DraftUID    int64      `db:"draft_uid"`
	InReplyTo   string     `db:"in_reply_to"` // of a draft: the Message-ID it answers
	IdemKey     string     `db:"idem_key"`
	State       string     `db:"state"`
	SendAt      time.Time  `db:"send_at"`
	Attempts    int        `db:"attempts"`
	SMTPStarted *time.Time `db:"smtp_started_at"`
	SMTPDone    *time.Time `db:"smtp_done_at"`
	SentFolder  string     `db:"sent_folder"`
	SentCopy    string     `db:"sent_copy"`
	Outcome     string     `db:"outcome"`
	ClaimedBy   string     `db:"claimed_by"`
	LeaseUntil  *time.Time `db:"lease_until"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

// Kinds and states of outbox items.
const (
	OutboxSend  = "send"
	OutboxReply = "reply"
	OutboxDraft = "draft"

	OutboxPendingApproval = "pending_approval"
	OutboxScheduled       = "scheduled"
	OutboxSending         = "sending"
	OutboxSent            = "sent"
	OutboxSentCopyFailed  = "sent_copy_failed"
	OutboxFailed          = "failed"
	OutboxCancelled       = "cancelled"
)

// DefaultOutboxRetention is how long a sent message's sealed bytes are
// kept unless configured (OUTBOX_RETENTION_DAYS).
const DefaultOutboxRetention = 7 * 24 * time.Hour

// OutcomeApproved is the outcome of an item the person approved.
const OutcomeApproved = "approved by the user"

// OutboxSecretContext binds a sealed message to its row: its id, owner,
// account and envelope, so that a sealed message moved to another row,
// or a row whose recipients were changed, does not open.
func OutboxSecretContext(it OutboxItem) string {
	sum := sha256.Sum256([]byte(it.Recipients + "\x00" + it.Bcc))
	// "mime_enc" names the column the first messages were kept in: it is
	// part of what they were sealed for.
	return "outbox:" + it.ID + ":" + it.UserID + ":" + it.AccountID + ":" + hex.EncodeToString(sum[:]) + ":mime_enc"
}

const outboxColumns = `id, user_id, account_id, client_id, kind, message_id, recipients, bcc, subject, reply_folder, reply_uid,
	draft_uid, in_reply_to, idem_key, state, send_at, attempts, smtp_started_at, smtp_done_at, sent_folder, sent_copy, outcome, claimed_by, lease_until,
	created_at, updated_at`

// outboxPartSize bounds a part of a sealed message in outbox_parts: a
// message of tens of megabytes goes in and out of the database a part at
// a time, and the database never holds it whole (SQLite would copy a
// value bound whole, then build a record of it: twice its size in memory
// outside Go's heap).
const outboxPartSize = 512 << 10

// AddOutbox stores a new item and its sealed message, in one
// transaction; its ID must be set (the sealed message is bound to it).
func (s *Store) AddOutbox(ctx context.Context, it *OutboxItem) error {
	it.CreatedAt = s.now()
	it.UpdatedAt = it.CreatedAt
	it.SendAt = it.SendAt.UTC()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.NamedExecContext(ctx, `INSERT INTO outbox (`+outboxColumns+`) VALUES (:id, :user_id, :account_id, :client_id, :kind,
			:message_id, :recipients, :bcc, :subject, :reply_folder, :reply_uid, :draft_uid, :in_reply_to, :idem_key, :state, :send_at, :attempts,
			:smtp_started_at, :smtp_done_at, :sent_folder, :sent_copy, :outcome, :claimed_by, :lease_until, :created_at, :updated_at)`, it)
		if err != nil {
			return err
		}
		return s.putParts(ctx, tx, it.ID, it.MIMEEnc)
	})
	if err != nil {
		return fmt.Errorf("store: add outbox item: %w", err)
	}
	return nil
}

// GetOutbox returns the user's item id without its sealed message
// (OutboxMessage has it), or ErrNotFound.
func (s *Store) GetOutbox(ctx context.Context, userID, id string) (OutboxItem, error) {
	var it OutboxItem
	err := s.db.GetContext(ctx, &it, s.q(`SELECT `+outboxColumns+` FROM outbox WHERE id = ? AND user_id = ?`), id, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return it, fmt.Errorf("store: outbox item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return it, fmt.Errorf("store: outbox item %s: %w", id, err)
	}
	return it, nil
}

// OutboxMessage returns the sealed message of the user's item id ("" once
// purged), or ErrNotFound.
func (s *Store) OutboxMessage(ctx context.Context, userID, id string) (string, error) {
	var size int
	err := s.db.GetContext(ctx, &size, s.q(`SELECT COALESCE((SELECT SUM(OCTET_LENGTH(data)) FROM outbox_parts WHERE outbox_id = o.id), 0)
		FROM outbox o WHERE o.id = ? AND o.user_id = ?`), id, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: outbox message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: outbox message %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.data FROM outbox_parts p JOIN outbox o ON o.id = p.outbox_id
		WHERE o.id = ? AND o.user_id = ? ORDER BY p.seq`), id, userID)
	if err != nil {
		return "", fmt.Errorf("store: outbox message %s: %w", id, err)
	}
	sealed, err := joinParts(rows, size)
	if err != nil {
		return "", fmt.Errorf("store: outbox message %s: %w", id, err)
	}
	return sealed, nil
}

// putParts stores sealed as the parts of item id, in tx.
func (s *Store) putParts(ctx context.Context, tx *sqlx.Tx, id, sealed string) error {
	for seq := 0; sealed != ""; seq++ {
		part := sealed[:min(len(sealed), outboxPartSize)]
		sealed = sealed[len(part):]
		if err := s.txExec(ctx, tx, `INSERT INTO outbox_parts (outbox_id, seq, data) VALUES (?, ?, ?)`, id, seq, part); err != nil {
			return err
		}
	}
	return nil
}

// joinParts reads the parts rows holds, in order, into one string; size
// is their total length, so that the string is made once. It closes rows.
func joinParts(rows *sql.Rows, size int) (string, error) {
	defer rows.Close()
	var b strings.Builder
	b.Grow(size)
	var part sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&part); err != nil {
			return "", err
		}
		b.Write(part)
	}
	return b.String(), rows.Err()
}

// OutcomeInterrupted begins the outcome of a send that was interrupted
// after its SMTP session began and before it was seen to end: it may or
// may not have gone out.
const OutcomeInterrupted = "interrupted while the message was being handed to the mail server"

// RecentOutbox returns the newest item of the user's account with key
// created after since that a repeat of the call must not send again:
// every one but those cancelled or failed for sure (a failure after an
// interruption is not sure), or ErrNotFound.
func (s *Store) RecentOutbox(ctx context.Context, userID, accountID, key string, since time.Time) (OutboxItem, error) {
	var it OutboxItem
	err := s.db.GetContext(ctx, &it, s.q(`SELECT `+outboxColumns+` FROM outbox WHERE user_id = ? AND account_id = ? AND idem_key = ?
		AND created_at > ? AND state <> 'cancelled' AND NOT (state = 'failed' AND outcome NOT LIKE ?)
		ORDER BY created_at DESC LIMIT 1`), userID, accountID, key, since.UTC(), OutcomeInterrupted+"%")
	if errors.Is(err, sql.ErrNoRows) {
		return it, ErrNotFound
	}
	if err != nil {
		return it, fmt.Errorf("store: recent outbox item: %w", err)
	}
	return it, nil
}

// ListOutbox returns the user's items, newest first, without their
// sealed messages.
func (s *Store) ListOutbox(ctx context.Context, userID string, limit int) ([]OutboxItem, error) {
	out := []OutboxItem{}
	err := s.db.SelectContext(ctx, &out, s.q(`SELECT `+outboxColumns+` FROM outbox WHERE user_id = ? ORDER BY created_at DESC, id LIMIT ?`), userID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list outbox: %w", err)
	}
	return out, nil
}

// ClaimOutbox claims, for owner until lease, up to limit items that are
// due: scheduled ones whose time has come, and ones left sending by an
// owner whose lease ran out. Each is claimed by one caller only, on
// PostgreSQL across replicas (FOR UPDATE SKIP LOCKED). The items come
// without their sealed messages: OutboxMessage reads each when it goes.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, lease time.Time, limit int) ([]OutboxItem, error) {
	now := s.now()
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	out := []OutboxItem{}
	err := s.db.SelectContext(ctx, &out, s.q(`UPDATE outbox SET state = 'sending', claimed_by = ?, lease_until = ?, attempts = attempts + 1,
		updated_at = ? WHERE id IN (SELECT id FROM outbox WHERE (state = 'scheduled' AND send_at <= ?) OR (state = 'sending' AND lease_until < ?)
		ORDER BY send_at LIMIT ?`+lock+`) RETURNING `+outboxColumns), owner, lease.UTC(), now, now, now, limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	return out, nil
}

// RenewOutboxLease extends owner's claim on id.
func (s *Store) RenewOutboxLease(ctx context.Context, id, owner string, lease time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET lease_until = ? WHERE id = ? AND claimed_by = ? AND state = 'sending'`), lease.UTC(), id, owner)
	return err
}

// ExpireOutboxLeases ends every claim but owner's: for a process that is
// the only one serving its database (SQLite), at start, so that what a
// killed process was sending is taken up at once.
func (s *Store) ExpireOutboxLeases(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET lease_until = ? WHERE state = 'sending' AND claimed_by <> ?`), s.now().Add(-time.Second), owner)
	return err
}

// OutboxStep records a step of owner's send of id: the SMTP session
// begun or done (field smtp_started_at or smtp_done_at).
func (s *Store) OutboxStep(ctx context.Context, id, owner, field string) error {
	if field != "smtp_started_at" && field != "smtp_done_at" {
		return fmt.Errorf("store: outbox step %q", field)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET `+field+` = ?, updated_at = ? WHERE id = ? AND claimed_by = ? AND state = 'sending'`),
		s.now(), s.now(), id, owner)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: outbox step %s of %s: %w", field, id, err)
	}
	return nil
}

// FinishOutbox ends owner's send of id in state (sent, sent_copy_failed,
// failed, or scheduled again at sendAt for another attempt).
func (s *Store) FinishOutbox(ctx context.Context, id, owner, state, outcome, sentFolder, sentCopy string, sendAt time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET state = ?, outcome = ?, sent_folder = ?, sent_copy = ?, send_at = ?, claimed_by = '',
		lease_until = NULL, updated_at = ? WHERE id = ? AND claimed_by = ? AND state = 'sending'`),
		state, outcome, sentFolder, sentCopy, sendAt.UTC(), s.now(), id, owner)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: finish outbox item %s: %w", id, err)
	}
	return nil
}

// MoveOutbox changes the user's item id from state from to state to,
// due at sendAt: approving (pending_approval → scheduled), cancelling
// (pending_approval or scheduled → cancelled). ErrConflict, wrapped,
// means the item has moved on; ErrNotFound that it is not the user's.
func (s *Store) MoveOutbox(ctx context.Context, userID, id string, from []string, to string, sendAt time.Time, outcome string) (OutboxItem, error) {
	it, err := s.GetOutbox(ctx, userID, id)
	if err != nil {
		return it, err
	}
	for _, f := range from {
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET state = ?, send_at = ?, outcome = ?, updated_at = ?
			WHERE id = ? AND user_id = ? AND state = ?`), to, sendAt.UTC(), outcome, s.now(), id, userID, f)
		if err != nil {
			return it, fmt.Errorf("store: move outbox item %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.GetOutbox(ctx, userID, id)
		}
	}
	if it, err = s.GetOutbox(ctx, userID, id); err != nil {
		return it, err
	}
	return it, fmt.Errorf("store: outbox item %s is %s: %w", id, it.State, ErrConflict)
}

// CountOutbox counts the user's items in state.
func (s *Store) CountOutbox(ctx context.Context, userID, state string) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM outbox WHERE user_id = ? AND state = ?`), userID, state)
	if err != nil {
		return 0, fmt.Errorf("store: count outbox: %w", err)
	}
	return n, nil
}

// ClientConnected reports whether the user's client still holds a live
// grant (an item queued by a client that was since revoked is not sent).
func (s *Store) ClientConnected(ctx context.Context, userID, clientID string) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM oauth_grants WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL`), userID, clientID)
	if err != nil {
		return false, fmt.Errorf("store: client connected: %w", err)
	}
	return n > 0, nil
}
