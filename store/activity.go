package store

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Activity is one MCP tool call as the person sees it on /activity.
type Activity struct {
	ID           string    `db:"id"`
	UserID       string    `db:"user_id"`
	ClientID     string    `db:"client_id"`
	Tool         string    `db:"tool"`
	AccountID    string    `db:"account_id"`
	AccountLabel string    `db:"account_label"`
	Summary      string    `db:"summary"`
	Outcome      string    `db:"outcome"` // ActivityOK, ActivityRefused or ActivityError
	DurationMS   int64     `db:"duration_ms"`
	CreatedAt    time.Time `db:"created_at"`
	// ClientName is the client's registered name, when it is still known
	// (filled by the queries).
	ClientName string `db:"client_name"`
}

// Outcomes of an activity.
const (
	ActivityOK      = "ok"
	ActivityRefused = "refused" // the tool answered with an error the model can act on
	ActivityError   = "error"
)

// DefaultActivityRetention is how long activity is kept unless
// configured (ACTIVITY_RETENTION_DAYS).
const DefaultActivityRetention = 90 * 24 * time.Hour

// activityRowsPerInsert bounds the rows of one INSERT statement (ten
// parameters each, well under SQLite's and PostgreSQL's limits).
const activityRowsPerInsert = 64

// activityInserts holds the INSERT of 1, 2, 4 … activityRowsPerInsert
// rows, indexed by log2 of the row count.
var activityInserts = func() []string {
	var qs []string
	for n := 1; n <= activityRowsPerInsert; n *= 2 {
		var q strings.Builder
		q.WriteString(`INSERT INTO activity (id, user_id, client_id, tool, account_id, account_label, summary,
			outcome, duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		for range n - 1 {
			q.WriteString(", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		}
		qs = append(qs, q.String())
	}
	return qs
}()

// AddActivity stores a batch of activity in one transaction, filling in
// the ids. Rows go in by multi-row INSERTs of a power of two rows each,
// so that on SQLite the few statements there are get prepared once and
// kept. The ids are time-ordered (UUIDv7).
func (s *Store) AddActivity(ctx context.Context, batch []Activity) error {
	if len(batch) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		args := make([]any, 0, 10*min(len(batch), activityRowsPerInsert))
		for rest := batch; len(rest) > 0; {
			k := bits.Len(uint(min(len(rest), activityRowsPerInsert))) - 1
			chunk := rest[:1<<k]
			rest = rest[len(chunk):]
			args = args[:0]
			for i := range chunk {
				a := &chunk[i]
				a.ID, a.CreatedAt = uuid.Must(uuid.NewV7()).String(), a.CreatedAt.UTC()
				args = append(args, a.ID, a.UserID, a.ClientID, a.Tool, a.AccountID, a.AccountLabel, a.Summary, a.Outcome, a.DurationMS, a.CreatedAt)
			}
			if err := s.txExec(ctx, tx, activityInserts[k], args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add activity: %w", err)
	}
	return nil
}

// ActivityFilter narrows ListActivity; empty fields match everything.
type ActivityFilter struct {
	ClientID, AccountID string
	Limit               int // default and at most 500
}

// ListActivity returns the user's activity, newest first.
func (s *Store) ListActivity(ctx context.Context, userID string, f ActivityFilter) ([]Activity, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 500
	}
	out := []Activity{}
	err := s.db.SelectContext(ctx, &out, s.q(`SELECT a.id, a.user_id, a.client_id, a.tool, a.account_id, a.account_label, a.summary,
		a.outcome, a.duration_ms, a.created_at, COALESCE(c.client_name, '') AS client_name
		FROM activity a LEFT JOIN oauth_clients c ON c.id = a.client_id
		WHERE a.user_id = ? AND (? = '' OR a.client_id = ?) AND (? = '' OR a.account_id = ?)
		ORDER BY a.created_at DESC, a.id LIMIT ?`), userID, f.ClientID, f.ClientID, f.AccountID, f.AccountID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: list activity: %w", err)
	}
	return out, nil
}

// LastActivityByClient returns the user's latest activity of each client.
func (s *Store) LastActivityByClient(ctx context.Context, userID string) (map[string]Activity, error) {
	var rows []Activity
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT a.id, a.user_id, a.client_id, a.tool, a.account_id, a.account_label, a.summary,
		a.outcome, a.duration_ms, a.created_at, '' AS client_name
		FROM activity a WHERE a.user_id = ? AND a.created_at = (
			SELECT MAX(b.created_at) FROM activity b WHERE b.user_id = a.user_id AND b.client_id = a.client_id)`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: last activity: %w", err)
	}
	out := make(map[string]Activity, len(rows))
	for _, r := range rows {
		out[r.ClientID] = r
	}
	return out, nil
}
