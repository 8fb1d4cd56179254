package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Watermark is where a grant's client last looked in one folder of an
// account (see mail.Mark).
type Watermark struct {
	Folder      string `db:"folder"`
	UIDValidity int64  `db:"uidvalidity"`
	UIDNext     int64  `db:"uidnext"`
	ModSeq      int64  `db:"modseq"`
}

// MaxWatermarksPerGrant bounds the folders remembered for one client;
// the least recently looked at go first.
const MaxWatermarksPerGrant = 200

// Watermarks returns the marks of grantID in accountID by folder. A
// grant or account of another user has none.
func (s *Store) Watermarks(ctx context.Context, userID, grantID, accountID string) (map[string]Watermark, error) {
	var rows []Watermark
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT folder, uidvalidity, uidnext, modseq FROM watermarks
		WHERE user_id = ? AND grant_id = ? AND account_id = ?`), userID, grantID, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: watermarks: %w", err)
	}
	out := make(map[string]Watermark, len(rows))
	for _, w := range rows {
		out[w.Folder] = w
	}
	return out, nil
}

// SaveWatermarks records marks of grantID in accountID, replacing the
// folders' previous marks, and forgets the grant's oldest marks beyond
// MaxWatermarksPerGrant. The grant and the account must be userID's:
// otherwise nothing is saved and ErrNotFound is returned.
func (s *Store) SaveWatermarks(ctx context.Context, userID, grantID, accountID string, marks []Watermark) error {
	if len(marks) == 0 {
		return nil
	}
	now := s.now()
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		var n int
		err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM oauth_grants g JOIN mail_accounts a ON a.user_id = g.user_id
			WHERE g.id = ? AND a.id = ? AND g.user_id = ?`), grantID, accountID, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		for _, w := range marks {
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO watermarks (grant_id, account_id, user_id, folder, uidvalidity, uidnext, modseq, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (grant_id, account_id, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
					uidnext = excluded.uidnext, modseq = excluded.modseq, updated_at = excluded.updated_at`),
				grantID, accountID, userID, w.Folder, w.UIDValidity, w.UIDNext, w.ModSeq, now)
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM watermarks WHERE grant_id = ? AND (account_id, folder) NOT IN (
			SELECT account_id, folder FROM watermarks WHERE grant_id = ? ORDER BY updated_at DESC, folder LIMIT ?)`),
			grantID, grantID, MaxWatermarksPerGrant)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save watermarks: %w", err)
	}
	return nil
}
