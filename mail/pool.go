package mail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned (wrapped) by Do after Close.
var ErrClosed = errors.New("mail: pool closed")

// Pool keeps up to Config.MaxConns logged-in IMAP connections per account
// and lends them to closures. Connections are reused, checked with NOOP
// when idle for HealthAfter, closed when idle for IdleTimeout, discarded
// after a connection-level error, and dropped when the account's settings
// (host, port, TLS mode, user, password) change.
//
// An account's pool grows one login at a time, and only when a borrower
// has waited Config.GrowAfter for a connection another borrower holds: a
// waiting borrower takes whichever comes first, a connection handed back
// or the login under way, so a burst of calls costs the server a login
// only while the burst outlasts the connections it has. Such optional
// logins are also rationed per server (maxGrowingPerServer at once), so a
// burst across many accounts of one provider does not become a storm of
// logins; an account's first login is never held back. A Pool is safe for
// concurrent use; Close releases everything.
type Pool struct {
	cfg      Config
	dial     dialer
	mu       sync.Mutex
	accounts map[string]*slot
	growing  map[string]int // optional logins under way, by server address
	closed   bool
	stop     chan struct{}
	done     chan struct{}
	// summaries is shared by every account's connections; its keys hold
	// the account.
	summaries *summaryCache
}

// slot holds one account's connections.
type slot struct {
	fp      string         // fingerprint of the settings the idle connections use
	idle    []*Conn        // most recently used last
	busy    chan struct{}  // one token per borrower, with or without its connection yet
	waiters []*waiter      // borrowers waiting for a connection, oldest first
	lent    map[string]int // connections lent out, by the fingerprint of their settings
	dialing bool           // a login for the waiters is under way
	// calm holds optional logins back after one failed (the server may
	// limit connections per user).
	calm time.Time
}

// waiter is a borrower that holds a token of its slot but no connection;
// it receives one connection or an error.
type waiter struct {
	acct  *Account
	fp    string // acct's settings; only a connection with these serves it
	ctx   context.Context
	since time.Time
	got   chan dialResult // buffered: the sender never blocks
	grow  *time.Timer     // checks growIfStarved once the waiter has waited GrowAfter
}

type dialResult struct {
	c   *Conn
	err error
}

// NewPool returns a pool with cfg (zero fields take defaults) and starts
// its janitor, which Close stops.
func NewPool(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, accounts: map[string]*slot{}, growing: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{}), summaries: newSummaryCache()}
	p.dial = dialer{cfg: &p.cfg}
	go p.janitor()
	return p
}

// Do borrows a connection to acct's IMAP server, waiting while MaxConns
// are busy, and runs fn with it. The connection is returned to the pool
// afterwards, or discarded if the connection failed, fn panicked or ctx
// ended. Errors from connecting are *Error values; fn's error is returned
// as is.
func (p *Pool) Do(ctx context.Context, acct *Account, fn func(c *Conn) error) error {
	_, err := p.do(ctx, acct, fn)
	return err
}

// Read is Do for operations that change nothing on the server: when the
// idle connection it was lent turns out to be gone (the server restarted
// or dropped it while it waited), the account's other idle connections,
// likely gone too, are closed and fn runs once more on a fresh one.
func (p *Pool) Read(ctx context.Context, acct *Account, fn func(c *Conn) error) error {
	stale, err := p.do(ctx, acct, fn)
	if stale {
		p.cfg.Logger.Info("mail: pooled connection was gone; retrying on a fresh one", "account", acct.ID, "err", err)
		p.dropIdle(acct.ID)
		_, err = p.do(ctx, acct, fn)
	}
	return err
}

// do is Do; stale reports that fn failed because a connection taken from
// the idle list was gone.
func (p *Pool) do(ctx context.Context, acct *Account, fn func(c *Conn) error) (stale bool, err error) {
	c, err := p.get(ctx, acct)
	if err != nil {
		return false, err
	}
	c.ctx, c.roles, c.acct, c.sumCache, c.redials = ctx, nil, acct, p.summaries, 0
	c.unwatch = c.dc.abortOnCancel(ctx)
	defer func() {
		v := recover()
		if !c.unwatch() || v != nil || ctx.Err() != nil { // a call cut short may have left the connection mid-command
			c.broken = true
		}
		stale = err != nil && c.reused && c.recoverable()
		p.put(acct.ID, c)
		if v != nil {
			panic(v)
		}
	}()
	return false, fn(c)
}

func errPoolClosed() error { return &Error{Kind: KindOther, Op: "pool", Err: ErrClosed} }

// errWaitEnded is the error of a borrower whose context ended (err) before
// it had a connection.
func errWaitEnded(err error) error { return &Error{Kind: KindTimeout, Op: "pool wait", Err: err} }

// dropIdle closes the idle connections of one account.
func (p *Pool) dropIdle(id string) {
	p.mu.Lock()
	var idle []*Conn
	if s := p.accounts[id]; s != nil {
		idle, s.idle = s.idle, nil
	}
	p.mu.Unlock()
	closeAll(idle)
}

// get takes a healthy idle connection or dials a new one. An OAuth
// account's token is checked (and renewed when due) even when an idle
// connection is reused, so a withdrawn sign-in stops the account within
// one token lifetime although its connections stay logged in.
func (p *Pool) get(ctx context.Context, acct *Account) (*Conn, error) {
	if acct.OAuth != nil {
		if _, err := bearerToken(ctx, acct, "imap oauth token", ""); err != nil {
			return nil, err
		}
	}
	fp := acct.fingerprint()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolClosed()
	}
	s := p.accounts[acct.ID]
	if s == nil {
		s = &slot{fp: fp, busy: make(chan struct{}, p.cfg.MaxConns), lent: map[string]int{}}
		p.accounts[acct.ID] = s
	}
	var stale []*Conn
	if s.fp != fp {
		stale, s.idle, s.fp = s.idle, nil, fp
	}
	p.mu.Unlock()
	closeAll(stale)

	select {
	case s.busy <- struct{}{}:
	case <-ctx.Done():
		return nil, errWaitEnded(ctx.Err())
	}
	for {
		c, w, err := p.takeOrWait(s, acct, fp, ctx)
		if err == nil && w != nil {
			c, err = p.await(s, w)
		}
		if err != nil {
			<-s.busy
			return nil, err
		}
		if w != nil || time.Since(c.lastUsed) < p.cfg.HealthAfter || p.healthy(ctx, c) {
			return c, nil
		}
		p.mu.Lock()
		s.returned(c)
		p.growIfStarved(s)
		p.mu.Unlock()
		c.close()
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(dl) {
			// The borrower's time ran out during the check (the
			// connection's deadline may fire before ctx's): no login for it.
			<-s.busy
			return nil, errWaitEnded(cmp.Or(ctx.Err(), context.DeadlineExceeded))
		}
	}
}

// lend records c as lent out of s, and returned its return; the pool's
// lock must be held.
func (s *slot) lend(c *Conn) { s.lent[c.fp]++ }

func (s *slot) returned(c *Conn) {
	if s.lent[c.fp]--; s.lent[c.fp] <= 0 {
		delete(s.lent, c.fp)
	}
}

// takeOrWait pops an idle connection of s, or else queues a waiter for
// one and makes sure it will be served.
func (p *Pool) takeOrWait(s *slot, acct *Account, fp string, ctx context.Context) (*Conn, *waiter, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, errPoolClosed()
	}
	if n := len(s.idle); n > 0 && s.fp == fp {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		c.reused = true
		s.lend(c)
		return c, nil, nil
	}
	w := &waiter{acct: acct, fp: fp, ctx: ctx, since: time.Now(), got: make(chan dialResult, 1)}
	s.waiters = append(s.waiters, w)
	p.growIfStarved(s)
	// Checked again when w has waited long enough, whatever happened
	// meanwhile: every later event that may let the pool grow checks too.
	w.grow = time.AfterFunc(p.cfg.GrowAfter, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.growIfStarved(s)
	})
	return nil, w, nil
}

// await waits for w's connection. A borrower that gives up leaves the
// queue, or passes on the connection it was sent meanwhile.
func (p *Pool) await(s *slot, w *waiter) (*Conn, error) {
	defer w.grow.Stop()
	select {
	case r := <-w.got:
		return r.c, r.err
	case <-w.ctx.Done():
	}
	p.mu.Lock()
	if i := slices.Index(s.waiters, w); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
		p.growIfStarved(s)
		p.mu.Unlock()
	} else {
		p.mu.Unlock()
		if r := <-w.got; r.c != nil {
			p.handBack(s, r.c, true)
		}
	}
	return nil, errWaitEnded(w.ctx.Err())
}

// maxGrowingPerServer bounds the optional logins (see Pool) under way to
// one IMAP server.
const maxGrowingPerServer = 2

// calmAfterFailure is how long a slot makes no optional login after one
// failed.
const calmAfterFailure = 5 * time.Second

// growIfStarved starts a login when none is under way for s: a required
// one for the oldest waiter whose settings no lent connection has, or
// else an optional one for the oldest waiter once it has waited
// GrowAfter, when the slot is not calming down after a failure and the
// server has room. Every change of a slot's waiters, lent connections or
// logins calls it. The login outlives the borrower it is made for
// (it is bounded by the dial and login timeouts): if that borrower has
// left, its connection serves the next in line. p.mu must be held.
func (p *Pool) growIfStarved(s *slot) {
	if s.dialing || len(s.waiters) == 0 || p.closed {
		return
	}
	w := s.waiters[0]
	if i := slices.IndexFunc(s.waiters, func(o *waiter) bool { return s.lent[o.fp] == 0 }); i >= 0 {
		w = s.waiters[i]
	}
	server := ""
	if s.lent[w.fp] > 0 {
		server = serverKey(w.acct.IMAP)
		if time.Since(w.since) < p.cfg.GrowAfter || time.Now().Before(s.calm) || p.growing[server] >= maxGrowingPerServer {
			return
		}
		p.growing[server]++
	}
	// Idle connections, if any, have settings no waiter has (one would have
	// taken them): the oldest make room for the login.
	lent := 0
	for _, n := range s.lent {
		lent += n
	}
	for len(s.idle) > 0 && len(s.idle)+lent+1 > p.cfg.MaxConns {
		old := s.idle[0]
		s.idle = slices.Delete(s.idle, 0, 1)
		go old.close()
	}
	s.dialing = true
	go func() {
		c, err := p.login(w)
		p.mu.Lock()
		s.dialing = false
		if server != "" {
			p.growing[server]--
			if p.growing[server] == 0 {
				delete(p.growing, server)
			}
			for _, other := range p.accounts {
				if other != s {
					p.growIfStarved(other)
				}
			}
		}
		switch {
		case err == nil && !slices.Contains(s.waiters, w):
			p.mu.Unlock()
			p.handBack(s, c, false)
			return
		case err == nil:
			// The connection goes to the borrower it was made for as it
			// is, even one the server closed at once: that borrower's
			// call then fails rather than the pool logging in again.
			s.waiters = slices.DeleteFunc(s.waiters, func(o *waiter) bool { return o == w })
			s.lend(c)
			w.got <- dialResult{c: c}
		case server != "":
			// Borrowers still hold connections that will serve the queue.
			s.calm = time.Now().Add(calmAfterFailure)
			time.AfterFunc(calmAfterFailure, func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				p.growIfStarved(s)
			})
			p.cfg.Logger.Info("mail: extra IMAP login failed; the account keeps the connections it has", "account", w.acct.ID, "err", err)
		default:
			s.waiters = slices.DeleteFunc(s.waiters, func(o *waiter) bool {
				if o.fp == w.fp {
					o.got <- dialResult{err: err}
				}
				return o.fp == w.fp
			})
		}
		p.growIfStarved(s)
		p.mu.Unlock()
	}()
}

// login dials w's account. A panic there (a bug in a library, say) is
// the login's error rather than the process's end.
func (p *Pool) login(w *waiter) (c *Conn, err error) {
	defer func() {
		if v := recover(); v != nil {
			p.cfg.Logger.Error("mail: IMAP login panicked", "account", w.acct.ID, "panic", fmt.Sprint(v))
			c, err = nil, &Error{Kind: KindOther, Op: "imap login", Err: fmt.Errorf("internal error: %v", v)}
		}
	}()
	return p.dial.dialIMAP(context.WithoutCancel(w.ctx), w.acct)
}

// serverKey names an IMAP server for the ration of optional logins.
func serverKey(ep Endpoint) string {
	return strings.ToLower(strings.TrimSuffix(ep.Host, ".")) + ":" + strconv.Itoa(ep.Port)
}

// handBack gives c to the oldest waiter of s whose settings it has, or
// else to the idle list, or closes it when it must not be reused; a closed
// connection's waiters may get a new login. wasLent tells a connection a
// borrower gives back from a new one.
func (p *Pool) handBack(s *slot, c *Conn, wasLent bool) {
	c.acct = nil
	c.dc.setLimit(time.Time{})
	c.lastUsed = time.Now()
	p.mu.Lock()
	if wasLent {
		s.returned(c)
	}
	keep := !p.closed && !c.broken && !c.gone()
	i := -1
	if keep {
		i = slices.IndexFunc(s.waiters, func(w *waiter) bool { return w.fp == c.fp })
	}
	switch {
	case i >= 0:
		w := s.waiters[i]
		s.waiters = slices.Delete(s.waiters, i, i+1)
		c.reused = true
		s.lend(c)
		w.got <- dialResult{c: c}
	case keep && c.fp == s.fp:
		s.idle = append(s.idle, c)
	default:
		keep = false
	}
	p.growIfStarved(s)
	p.mu.Unlock()
	if !keep {
		c.close()
	}
}

// healthy sends NOOP on c.
func (p *Pool) healthy(ctx context.Context, c *Conn) bool {
	c.ctx = ctx
	err := c.do("noop", func() error { return c.client.Noop().Wait() })
	c.dc.setLimit(time.Time{})
	return err == nil
}

// put returns a borrowed connection: to a waiter, the idle list, or
// closed (see handBack); then the borrower's token.
func (p *Pool) put(id string, c *Conn) {
	p.mu.Lock()
	s := p.accounts[id]
	p.mu.Unlock()
	p.handBack(s, c, true)
	<-s.busy
}

// Close closes every idle connection and stops the janitor; connections
// still borrowed are closed when their closure returns. Later Do calls
// fail with ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var all []*Conn
	for _, s := range p.accounts {
		all = append(all, s.idle...)
		s.idle = nil
		for _, w := range s.waiters {
			w.got <- dialResult{err: errPoolClosed()}
		}
		s.waiters = nil
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	closeAll(all)
	return nil
}

// janitor closes connections idle longer than IdleTimeout until Close.
func (p *Pool) janitor() {
	defer close(p.done)
	every := min(p.cfg.IdleTimeout/2, 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.sweep()
		}
	}
}

// sweep closes expired idle connections; a panic is logged, not fatal.
func (p *Pool) sweep() {
	defer func() {
		if v := recover(); v != nil {
			p.cfg.Logger.Error("mail: pool janitor panic", "panic", fmt.Sprint(v))
		}
	}()
	cutoff := time.Now().Add(-p.cfg.IdleTimeout)
	var expired []*Conn
	p.mu.Lock()
	for _, s := range p.accounts {
		kept := s.idle[:0]
		for _, c := range s.idle {
			if c.lastUsed.Before(cutoff) {
				expired = append(expired, c)
			} else {
				kept = append(kept, c)
			}
		}
		clear(s.idle[len(kept):])
		s.idle = kept
	}
	p.mu.Unlock()
	closeAll(expired)
}

// Stats reports, per account id, how many connections are idle and busy.
func (p *Pool) Stats() map[string][2]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][2]int, len(p.accounts))
	for id, s := range p.accounts {
		out[id] = [2]int{len(s.idle), len(s.busy)}
	}
	return out
}

func closeAll(cs []*Conn) {
	for _, c := range cs {
		c.close()
	}
}
