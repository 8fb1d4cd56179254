package store

import (
	"context"
	"fmt"
	"time"
)

// AddRateCount adds n to the counter key of the window that starts at
// window and returns the counter's new total, whichever process counted
// the rest.
func (s *Store) AddRateCount(ctx context.Context, key string, window time.Time, n int) (int, error) {
	var total int
	err := s.db.GetContext(ctx, &total, s.q(`INSERT INTO rate_counters (key, window_start, count) VALUES (?, ?, ?)
		ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + excluded.count
		RETURNING count`), key, window.UTC(), n)
	if err != nil {
		return 0, fmt.Errorf("store: add rate count: %w", err)
	}
	return total, nil
}
