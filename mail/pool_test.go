package mail

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoolReusesAndBounds(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 2})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-bounds"
	ctx := testCtx(t)

	var mu sync.Mutex
	seen := map[*Conn]bool{}
	var busy, peak atomic.Int32
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			err := e.Do(ctx, acct, func(c *Conn) error {
				n := busy.Add(1)
				defer busy.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				mu.Lock()
				seen[c] = true
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				return c.do("noop", func() error { return c.client.Noop().Wait() })
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 2 || len(seen) > 2 {
		t.Fatalf("peak %d concurrent, %d connections; want at most 2", peak.Load(), len(seen))
	}
	if st := e.Stats()[acct.ID]; st != [2]int{len(seen), 0} {
		t.Fatalf("stats %v, want %d idle", st, len(seen))
	}
}

func TestPoolDropsOnSettingsChangeAndError(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-change"
	ctx := testCtx(t)
	conn := func(a *Account) (got *Conn) {
		t.Helper()
		if err := e.Do(ctx, a, func(c *Conn) error { got = c; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := conn(acct)
	if conn(acct) != first {
		t.Fatal("connection not reused")
	}
	changed := *acct
	changed.IMAP = endpoint(t, rig.IMAPAddr(), TLSStartTLS)
	second := conn(&changed)
	if second == first || e.Stats()[acct.ID][0] != 1 {
		t.Fatalf("settings change kept the old connection: %v", e.Stats())
	}

	// A cancelled borrow discards its connection, whether or not the
	// command it was in failed before the abort landed.
	cctx, cancel := context.WithCancel(ctx)
	err := e.Do(cctx, &changed, func(c *Conn) error {
		cancel()
		return c.do("noop", func() error { return c.client.Noop().Wait() })
	})
	if e.Stats()[acct.ID][0] != 0 {
		t.Fatalf("cancelled borrow: err %v, stats %v", err, e.Stats())
	}

	// A panic discards the connection and reaches the caller.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		_ = e.Do(ctx, &changed, func(*Conn) error { panic("boom") })
	}()
	if st := e.Stats()[acct.ID]; st != [2]int{0, 0} {
		t.Fatalf("after panic: %v", st)
	}
	// A wrong password fails without leaving anything behind.
	bad := changed
	bad.Password = "nope"
	if err := e.Do(ctx, &bad, func(*Conn) error { return nil }); KindOf(err) != KindAuth {
		t.Fatalf("bad password: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Do(ctx, acct, func(*Conn) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestPoolIdleTimeoutAndHealthCheck(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{IdleTimeout: 300 * time.Millisecond, HealthAfter: time.Millisecond})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-idle"
	ctx := testCtx(t)
	var first *Conn
	if err := e.Do(ctx, acct, func(c *Conn) error { first = c; return nil }); err != nil {
		t.Fatal(err)
	}
	// Kill the idle connection under the pool: the NOOP health check must
	// notice and dial a fresh one.
	_ = first.dc.Conn.Close()
	time.Sleep(5 * time.Millisecond)
	var second *Conn
	if err := e.Do(ctx, acct, func(c *Conn) error {
		second = c
		return c.do("noop", func() error { return c.client.Noop().Wait() })
	}); err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("dead connection reused")
	}
	deadline := time.Now().Add(3 * time.Second)
	for e.Stats()[acct.ID][0] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle connection never closed: %v", e.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-second.client.Closed():
	case <-time.After(time.Second):
		t.Fatal("expired connection left open")
	}
}
