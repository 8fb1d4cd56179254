package store

import (
	"context"
	"fmt"
	"time"
)

// codeRetention keeps used and expired codes a while for the record.
const codeRetention = 24 * time.Hour

// rateRetention keeps rate counters past the longest window (an hour).
const rateRetention = 2 * time.Hour

// Cleanup deletes rows that can no longer be used: registrations that
// expired unused, codes a day after they expired, tokens whose refresh
// token expired or that were revoked more than a day ago, and expired web
// sessions, abandoned mail sign-ins, old rate counters and activity past
// its retention, and the sealed bytes of messages that left the outbox
// longer ago than its retention (the rows stay). It returns how many rows
// went or changed.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	defer s.hot.changed()
	now := s.now()
	dayAgo := now.Add(-codeRetention)
	var total int64
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`DELETE FROM oauth_auth_codes WHERE expires_at <= ?`, []any{dayAgo}},
		{`DELETE FROM oauth_tokens WHERE refresh_expires_at <= ? OR revoked_at <= ?`, []any{now, dayAgo}},
		{`DELETE FROM web_sessions WHERE expires_at <= ?`, []any{now}},
		{`DELETE FROM mail_oauth_states WHERE expires_at <= ?`, []any{now}},
		{`DELETE FROM rate_counters WHERE window_start <= ?`, []any{now.Add(-rateRetention)}},
		{`DELETE FROM activity WHERE created_at <= ?`, []any{now.Add(-s.activityRetention)}},
		// Cancelled first, so that no approval comes between: then its bytes go.
		{`UPDATE outbox SET state = 'cancelled', outcome = ?, updated_at = ? WHERE state = 'pending_approval' AND created_at <= ?`,
			[]any{outcomeExpired, now, now.Add(-s.outboxRetention)}},
		{`DELETE FROM outbox_parts WHERE outbox_id IN (SELECT id FROM outbox WHERE state = 'cancelled' AND outcome = ?)`, []any{outcomeExpired}},
		{`DELETE FROM outbox_parts WHERE outbox_id IN (SELECT id FROM outbox WHERE state IN ('sent', 'sent_copy_failed', 'failed', 'cancelled')
			AND updated_at <= ?)`, []any{now.Add(-s.outboxRetention)}},
	} {
		res, err := s.db.ExecContext(ctx, s.q(q.query), q.args...)
		if err != nil {
			return total, fmt.Errorf("store: cleanup: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	n, err := s.DeleteExpiredClients(ctx)
	return total + n, err
}

// outcomeExpired ends a message that waited for approval past the
// retention.
const outcomeExpired = "expired: it waited for approval longer than the outbox keeps messages"

// CleanupEvery runs Cleanup now and then every interval until ctx ends.
func (s *Store) CleanupEvery(ctx context.Context, interval time.Duration) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("cleanup panicked", "panic", v)
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Cleanup(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cleanup failed", "err", err)
		} else if n > 0 {
			s.log.Info("cleanup removed stale rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
