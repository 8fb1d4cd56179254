package store

import (
	"context"
	"time"
)

// SetServingCheckEvery changes how often the serving lock is checked, for a test.
func SetServingCheckEvery(d time.Duration) (restore func()) {
	old := servingCheckEvery
	servingCheckEvery = d
	return func() { servingCheckEvery = old }
}

// ExecForTest runs a statement, for a test.
func (s *Store) ExecForTest(ctx context.Context, query string) error {
	_, err := s.db.ExecContext(ctx, query)
	return err
}

// CountForTest runs a query that returns one number, for a test.
func (s *Store) CountForTest(ctx context.Context, query string) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, query)
	return n, err
}

// SetNowForTest replaces the store's clock, for a test.
func (s *Store) SetNowForTest(now func() time.Time) { s.now = now }

// SetHotClockForTest replaces the monotonic clock of the kept answers,
// for a test.
func (s *Store) SetHotClockForTest(now func() time.Time) { s.hot.clock = now }

// MigrateToForTest moves the schema up or down to version, without the
// migration lock, for a test of one migration.
func (s *Store) MigrateToForTest(ctx context.Context, version int64) error {
	p, err := s.migrations()
	if err != nil {
		return err
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return err
	}
	if cur > version {
		_, err = p.DownTo(ctx, version)
	} else {
		_, err = p.UpTo(ctx, version)
	}
	return err
}
