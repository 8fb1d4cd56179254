package mail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
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

// gatedProxy forwards loopback connections to target. Before it forwards
// the n-th (from 1) it calls gate(n), which may block, and closes the
// connection instead when gate says no. accepted reports how many
// connections it has taken.
func gatedProxy(t *testing.T, target string, gate func(n int) bool) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var n atomic.Int32
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			k := int(n.Add(1))
			go func() {
				defer in.Close()
				if !gate(k) {
					return
				}
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return l.Addr().String(), func() int { return int(n.Load()) }
}

// holdingProxy is a gatedProxy that lets the first free connections pass
// at once and holds later ones until release is called.
func holdingProxy(t *testing.T, target string, free int) (addr string, accepted func() int, release func()) {
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	addr, accepted = gatedProxy(t, target, func(n int) bool {
		if n > free {
			<-gate
		}
		return true
	})
	return addr, accepted, release
}

// refusingProxy is a gatedProxy that closes every connection after the
// first free, as a server does that allows a user only so many.
func refusingProxy(t *testing.T, target string, free int) (addr string, accepted func() int) {
	return gatedProxy(t, target, func(n int) bool { return n <= free })
}

// holdConn borrows a connection of acct and keeps it until the returned
// function is called; it reports the connection it got.
func holdConn(t *testing.T, e *Engine, ctx context.Context, acct *Account) (*Conn, func()) {
	t.Helper()
	got, done := make(chan *Conn), make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		if err := e.Do(ctx, acct, func(c *Conn) error { got <- c; <-done; return nil }); err != nil {
			t.Error(err)
		}
	}()
	select {
	case c := <-got:
		return c, func() { close(done); <-finished }
	case <-finished:
		t.FailNow()
		return nil, nil
	}
}

// proxiedAccount is an engine with cfg and a rig account, id, reached
// through a holdingProxy that lets its first free connections pass.
func proxiedAccount(t *testing.T, cfg Config, id string, free int) (e *Engine, acct *Account, accepted func() int, release func()) {
	t.Helper()
	e, rig := testEngine(t, cfg)
	acct = rigAccount(t, rig, "alice")
	acct.ID = id
	addr, accepted, release := holdingProxy(t, rig.IMAPSAddr(), free)
	acct.IMAP = endpoint(t, addr, TLSImplicit)
	return e, acct, accepted, release
}

// mustFinish waits for a call's outcome and fails the test when it is an
// error or does not come within 10 s (stuck says what that means).
func mustFinish(t *testing.T, done <-chan error, stuck string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(stuck)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A borrower that finds every connection busy takes the first one handed
// back rather than waiting for its own login.
func TestPoolHandsBackBeforeDialing(t *testing.T) {
	t.Parallel()
	e, acct, accepted, release := proxiedAccount(t, Config{MaxConns: 4, GrowAfter: time.Millisecond}, "pool-handback", 1)
	ctx := testCtx(t)

	first, letGo := holdConn(t, e, ctx, acct)
	second := make(chan *Conn, 1)
	go func() {
		if err := e.Do(ctx, acct, func(c *Conn) error { second <- c; return nil }); err != nil {
			t.Error(err)
			second <- nil
		}
	}()
	waitFor(t, "the second borrower's login to start", func() bool { return accepted() == 2 })
	letGo()
	select {
	case c := <-second:
		if c != first {
			t.Fatalf("second borrower got %p, not the connection handed back (%p)", c, first)
		}
	case <-time.After(5 * time.Second):
		release()
		t.Fatalf("second borrower waited for its own login rather than take the connection handed back (%v)", <-second == first)
	}
	// The login under way completes and joins the idle list.
	release()
	waitFor(t, "two idle connections", func() bool { return e.Stats()[acct.ID] == [2]int{2, 0} })
}

// A borrower waits GrowAfter for a connection in use before the pool logs
// in another; an account with no connection logs in at once, and so does
// one whose only connection broke.
func TestPoolWaitsBeforeGrowing(t *testing.T) {
	t.Parallel()
	e, acct, accepted, release := proxiedAccount(t, Config{MaxConns: 4, GrowAfter: time.Hour}, "pool-grow-after", 1)
	release()
	ctx := testCtx(t)

	first, letGo := holdConn(t, e, ctx, acct)
	second := make(chan *Conn, 1)
	go func() {
		_ = e.Do(ctx, acct, func(c *Conn) error { second <- c; return nil })
		close(second)
	}()
	waitFor(t, "the second borrower to wait", func() bool { return e.Stats()[acct.ID][1] == 2 })
	time.Sleep(200 * time.Millisecond) // time for a login to reach the proxy
	opened := accepted()
	letGo()
	if c := <-second; opened != 1 || c != first {
		t.Fatalf("%d connections opened, second borrower got %p (first %p); want it to wait for the first", opened, c, first)
	}

	// The only connection breaks while a borrower waits: it logs in.
	holding, breakIt := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- e.Do(ctx, acct, func(c *Conn) error { close(holding); <-breakIt; c.broken = true; return nil })
	}()
	<-holding
	third := make(chan error, 1)
	go func() { third <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	waitFor(t, "the third borrower to wait", func() bool { return e.Stats()[acct.ID][1] == 2 })
	close(breakIt)
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	mustFinish(t, third, "a borrower waited on a broken connection's account instead of logging in")
	if n := accepted(); n != 2 {
		t.Fatalf("%d connections opened; want 2", n)
	}
}

// Optional logins to one server are rationed across its accounts.
func TestPoolRationsGrowthPerServer(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 4, GrowAfter: time.Millisecond})
	addr, accepted, release := holdingProxy(t, rig.IMAPSAddr(), 3)
	ctx := testCtx(t)
	var accts []*Account
	var letGo []func()
	for i := range 3 {
		acct := rigAccount(t, rig, "alice")
		acct.ID = fmt.Sprintf("pool-ration-%d", i)
		acct.IMAP = endpoint(t, addr, TLSImplicit)
		_, done := holdConn(t, e, ctx, acct)
		accts, letGo = append(accts, acct), append(letGo, done)
	}
	var wg sync.WaitGroup
	for _, acct := range accts {
		wg.Go(func() {
			if err := e.Do(ctx, acct, func(*Conn) error { return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "two optional logins", func() bool { return accepted() >= 5 })
	time.Sleep(200 * time.Millisecond) // time for a third to reach the proxy
	opened := accepted()
	release()
	wg.Wait()
	for _, done := range letGo {
		done()
	}
	if opened != 5 {
		t.Fatalf("%d connections opened while three accounts waited; want 3 first logins and 2 optional ones", opened)
	}
	if n := accepted(); n != 6 {
		t.Fatalf("%d connections in all; want the third optional login once there was room", n)
	}
}

// However many borrowers wait, an account logs in once at a time.
func TestPoolDialsOneAtATime(t *testing.T) {
	t.Parallel()
	e, acct, accepted, release := proxiedAccount(t, Config{MaxConns: 4, GrowAfter: time.Millisecond}, "pool-one-dial", 1)
	ctx := testCtx(t)

	_, letGo := holdConn(t, e, ctx, acct)
	var wg sync.WaitGroup
	seen := sync.Map{}
	for range 6 {
		wg.Go(func() {
			if err := e.Do(ctx, acct, func(c *Conn) error {
				seen.Store(c, true)
				return c.do("noop", func() error { return c.client.Noop().Wait() })
			}); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "three borrowers waiting", func() bool { return e.Stats()[acct.ID][1] == 4 })
	waitFor(t, "a login to start", func() bool { return accepted() == 2 })
	time.Sleep(200 * time.Millisecond) // time for any further login to reach the proxy
	opened := accepted()
	release()
	letGo()
	wg.Wait()
	if opened != 2 {
		t.Fatalf("%d connections opened while three borrowers waited; want the held one and one login", opened)
	}
	n := 0
	seen.Range(func(any, any) bool { n++; return true })
	if st := e.Stats()[acct.ID]; st[1] != 0 || st[0] > 4 || n > 4 {
		t.Fatalf("stats %v, %d connections used; want at most 4, none busy", st, n)
	}
}

// A borrower that gives up while it waits leaves its place, and the login
// made for it serves the pool.
func TestPoolWaiterGivesUp(t *testing.T) {
	t.Parallel()
	e, acct, accepted, release := proxiedAccount(t, Config{MaxConns: 2, GrowAfter: time.Millisecond}, "pool-give-up", 1)
	ctx := testCtx(t)

	_, letGo := holdConn(t, e, ctx, acct)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- e.Do(cctx, acct, func(*Conn) error { return nil }) }()
	waitFor(t, "the login to start", func() bool { return accepted() == 2 })
	cancel()
	if err := <-errc; KindOf(err) != KindTimeout {
		t.Fatalf("cancelled waiter: %v, want a timeout", err)
	}
	release()
	waitFor(t, "the login to join the idle list", func() bool { return e.Stats()[acct.ID] == [2]int{1, 1} })
	letGo()
	if st := e.Stats()[acct.ID]; st != [2]int{2, 0} {
		t.Fatalf("stats %v, want 2 idle", st)
	}
}

// Every borrower waiting on a login that fails gets its error.
func TestPoolFailedDialFailsItsWaiters(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 4})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-failed-dial"
	acct.Password = "wrong"
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := e.Do(ctx, acct, func(*Conn) error { return nil }); KindOf(err) != KindAuth {
				t.Errorf("got %v, want an auth error", err)
			}
		})
	}
	wg.Wait()
	if st := e.Stats()[acct.ID]; st != [2]int{0, 0} {
		t.Fatalf("stats %v, want nothing left", st)
	}
}

// Close fails the borrowers waiting for a connection at once, and those
// still waiting for their turn when they get it.
func TestPoolCloseReleasesWaiters(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 2, GrowAfter: time.Hour})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-close-waiters"
	ctx := testCtx(t)
	_, letGo := holdConn(t, e, ctx, acct)
	queued, turn := make(chan error, 1), make(chan error, 1)
	go func() { queued <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	waitFor(t, "a waiter", func() bool { return e.Stats()[acct.ID][1] == 2 })
	go func() {
		defer func() {
			if v := recover(); v != nil {
				turn <- fmt.Errorf("panic: %v", v)
			}
		}()
		turn <- e.Do(ctx, acct, func(*Conn) error { return nil })
	}()
	time.Sleep(50 * time.Millisecond) // the third borrower waits for a token
	_ = e.Close()
	select {
	case err := <-queued:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("queued borrower after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a queued borrower still waited after Close")
	}
	letGo()
	if err := <-turn; !errors.Is(err, ErrClosed) {
		t.Fatalf("borrower that got its turn after Close: %v", err)
	}
}

// A borrower is served only by a connection with its own settings, even
// while calls with the old settings still arrive, and a settings change
// while borrowers wait costs one login, not one per turn.
func TestPoolSettingsChangeWhileWaiting(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 4, GrowAfter: time.Hour})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-change-waiting"
	ctx := testCtx(t)
	addr, accepted, release := holdingProxy(t, rig.IMAPSAddr(), 0) // the new settings' login waits until released
	changed := *acct
	changed.IMAP = endpoint(t, addr, TLSImplicit)

	_, letGo := holdConn(t, e, ctx, acct)
	got := make(chan *Conn, 1)
	go func() {
		if err := e.Do(ctx, &changed, func(c *Conn) error { got <- c; return nil }); err != nil {
			t.Error(err)
			got <- nil
		}
	}()
	waitFor(t, "the new settings' borrower", func() bool { return e.Stats()[acct.ID][1] == 2 })
	old := make(chan error, 1)
	go func() { old <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	waitFor(t, "the old settings' borrower", func() bool { return e.Stats()[acct.ID][1] == 3 })
	release()
	letGo()
	if c := <-got; c == nil || c.fp != changed.fingerprint() {
		t.Fatalf("the borrower with new settings got a connection with other settings")
	}
	if err := <-old; err != nil {
		t.Fatal(err)
	}
	if n := accepted(); n != 1 {
		t.Fatalf("%d logins with the new settings; want 1", n)
	}
}

// An optional login the server refuses fails nobody: the connection in
// use serves the queue when it comes back.
func TestPoolRefusedExtraLoginFailsNobody(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 4, GrowAfter: time.Millisecond})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-refused-extra"
	addr, accepted := refusingProxy(t, rig.IMAPSAddr(), 1)
	acct.IMAP = endpoint(t, addr, TLSImplicit)
	ctx := testCtx(t)
	_, letGo := holdConn(t, e, ctx, acct)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	}
	waitFor(t, "a refused login", func() bool { return accepted() >= 2 })
	time.Sleep(100 * time.Millisecond) // time for the refusal to reach the waiters
	letGo()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("a waiter failed on a refused extra login although a connection came back: %v", err)
		}
	}
	if n := accepted(); n != 2 {
		t.Fatalf("%d connections tried; want one refused extra login, then calm", n)
	}
}

// A server that ends every session right after the login costs the call
// one login and an error, not a loop of logins.
func TestPoolLoginThenByeIsTriedOnce(t *testing.T) {
	t.Parallel()
	e, _ := testEngine(t, Config{})
	var logins atomic.Int32
	acct := startHostile(t, &hostileServer{answer: func(tag, cmd string, w *bufio.Writer) bool {
		if cmd != "LOGIN" {
			return false
		}
		logins.Add(1)
		_, _ = w.WriteString(tag + " OK logged in\r\n* BYE going away\r\n")
		_ = w.Flush()
		return true
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.Do(ctx, acct, func(c *Conn) error { return c.do("noop", func() error { return c.client.Noop().Wait() }) })
	if err == nil || KindOf(err) == KindTimeout {
		t.Fatalf("got %v, want the connection's error", err)
	}
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins for one call", n)
	}
}

// An optional login refused after the only connection in use came back
// broken: the waiter gets a login of its own.
func TestPoolRefusedExtraLoginAfterBreak(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 4, GrowAfter: time.Millisecond})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-refused-after-break"
	refuse := make(chan struct{})
	addr, accepted := gatedProxy(t, rig.IMAPSAddr(), func(n int) bool {
		if n == 2 {
			<-refuse
			return false
		}
		return true
	})
	acct.IMAP = endpoint(t, addr, TLSImplicit)
	ctx := testCtx(t)

	held, letGo := holdConn(t, e, ctx, acct)
	done := make(chan error, 1)
	go func() { done <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	waitFor(t, "the optional login", func() bool { return accepted() == 2 })
	held.broken = true
	letGo()
	close(refuse)
	mustFinish(t, done, "the waiter got no login after the optional one was refused and nothing was lent")
}

// A waiter with new settings that queued during the account's first login
// gets its own login, even while calls with the old settings keep the old
// connection busy.
func TestPoolNewSettingsWaiterBehindFirstLogin(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 2, GrowAfter: time.Millisecond})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-new-behind-first"
	addr, _, release := holdingProxy(t, rig.IMAPSAddr(), 0)
	acct.IMAP = endpoint(t, addr, TLSImplicit)
	changed := *acct
	changed.IMAP = endpoint(t, rig.IMAPSAddr(), TLSImplicit)
	ctx := testCtx(t)

	gotA, releaseA, aDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { aDone <- e.Do(ctx, acct, func(*Conn) error { close(gotA); <-releaseA; return nil }) }()
	waitFor(t, "the first login", func() bool { return e.Stats()[acct.ID][1] == 1 })
	xDone := make(chan error, 1)
	go func() { xDone <- e.Do(ctx, &changed, func(*Conn) error { return nil }) }()
	waitFor(t, "the new settings' borrower", func() bool { return e.Stats()[acct.ID][1] == 2 })
	time.Sleep(50 * time.Millisecond) // its GrowAfter passes while the first login runs
	release()
	<-gotA
	a2Done := make(chan error, 1)
	go func() { a2Done <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	time.Sleep(50 * time.Millisecond) // the old settings' second call waits for a token
	close(releaseA)
	for _, c := range []chan error{aDone, a2Done} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	mustFinish(t, xDone, "the new settings' borrower was never served")
}

// A burst on an account with no connection grows once its first login is
// done, although the borrowers' GrowAfter passed while it ran.
func TestPoolBurstGrowsAfterSlowFirstLogin(t *testing.T) {
	t.Parallel()
	e, acct, accepted, release := proxiedAccount(t, Config{MaxConns: 4, GrowAfter: time.Millisecond}, "pool-burst-slow-first", 0)
	ctx := testCtx(t)
	hold := make(chan struct{})
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- e.Do(ctx, acct, func(*Conn) error { <-hold; return nil }) }()
	}
	waitFor(t, "three borrowers", func() bool { return e.Stats()[acct.ID][1] == 3 })
	time.Sleep(50 * time.Millisecond) // their GrowAfter passes while the first login is held
	release()
	waitFor(t, "the pool to grow", func() bool { return accepted() >= 2 })
	close(hold)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// While calls with two versions of an account's settings are in flight
// (one loaded before an edit, one after), the account still has at most
// MaxConns connections: an idle one with settings no waiter has makes
// room for the login.
func TestPoolTwoSettingsStayWithinMaxConns(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 2, GrowAfter: time.Millisecond})
	y := rigAccount(t, rig, "alice")
	y.ID = "pool-two-settings"
	addr, _ := gatedProxy(t, rig.IMAPSAddr(), func(int) bool { return true })
	x := *y
	x.IMAP = endpoint(t, addr, TLSImplicit)
	ctx := testCtx(t)

	_, letA := holdConn(t, e, ctx, y)
	c2, letB := holdConn(t, e, ctx, &x)
	defer letB()
	third, finish := make(chan *Conn, 1), make(chan struct{})
	defer close(finish)
	go func() { _ = e.Do(ctx, &x, func(c *Conn) error { third <- c; <-finish; return nil }) }()
	time.Sleep(100 * time.Millisecond) // the third call waits for a token
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := e.Do(cctx, y, func(*Conn) error { return nil }); err == nil { // switches the slot back, gives up
		t.Fatal("a call got a connection beyond MaxConns")
	}
	letA()
	var c3 *Conn
	select {
	case c3 = <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("the third call was never served")
	}
	e.mu.Lock()
	idle := slices.Clone(e.accounts[y.ID].idle)
	e.mu.Unlock()
	time.Sleep(100 * time.Millisecond) // a connection made room for closes in the background
	live := 0
	for _, c := range append(idle, c2, c3) {
		if !c.gone() {
			live++
		}
	}
	if live > 2 {
		t.Fatalf("%d live connections for one account with MaxConns 2", live)
	}
}

// A panic during a login fails the call, not the process, and leaves the
// account able to log in again.
func TestPoolLoginPanicIsAnError(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "alice")
	acct.ID = "pool-login-panic"
	var calls atomic.Int32
	acct.OAuth = &OAuth{Grant: "g", Token: func(context.Context, string) (string, error) {
		if calls.Add(1) == 2 { // the first call checks the token; the second is the login's
			panic("token source bug")
		}
		return "not-a-token", nil
	}}
	ctx := testCtx(t)
	if err := e.Do(ctx, acct, func(*Conn) error { return nil }); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("got %v, want the login's internal error", err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Do(ctx, acct, func(*Conn) error { return nil }) }()
	select {
	case err := <-done:
		if KindOf(err) != KindAuth {
			t.Fatalf("after the panic: %v, want the server's refusal of the token", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the account could not log in again after a panic")
	}
}

// A borrower that gives up while its idle connection's health check runs
// makes no login.
func TestPoolCancelledHealthCheckMakesNoLogin(t *testing.T) {
	t.Parallel()
	e, _ := testEngine(t, Config{HealthAfter: time.Millisecond})
	var logins, noops atomic.Int32
	acct := startHostile(t, &hostileServer{answer: func(tag, cmd string, w *bufio.Writer) bool {
		switch cmd {
		case "LOGIN":
			logins.Add(1)
		case "NOOP":
			if noops.Add(1) == 1 {
				time.Sleep(2 * time.Second) // answers long after the borrower left
			}
		}
		return false
	}})
	ctx := testCtx(t)
	if err := e.Do(ctx, acct, func(*Conn) error { return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := e.Do(cctx, acct, func(*Conn) error { return nil }); KindOf(err) != KindTimeout {
		t.Fatalf("got %v, want a timeout", err)
	}
	time.Sleep(300 * time.Millisecond) // time for a login to reach the server
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins; want only the first", n)
	}
}
