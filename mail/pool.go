package mail

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned (wrapped) by Do after Close.
var ErrClosed = errors.New("mail: pool closed")

// Pool keeps up to Config.MaxConns logged-in IMAP connections per account
// and lends them to closures. Connections are reused, checked with NOOP
// when idle for HealthAfter, closed when idle for IdleTimeout, discarded
// after a connection-level error, and dropped when the account's settings
// (host, port, TLS mode, user, password) change. A Pool is safe for
// concurrent use; Close releases everything.
type Pool struct {
	cfg      Config
	dial     dialer
	mu       sync.Mutex
	accounts map[string]*slot
	closed   bool
	stop     chan struct{}
	done     chan struct{}
	// summaries is shared by every account's connections; its keys hold
	// the account.
	summaries *summaryCache
}

// slot holds one account's connections.
type slot struct {
	fp   string        // fingerprint of the settings the idle connections use
	idle []*Conn       // most recently used last
	busy chan struct{} // one token per borrowed connection
}

// NewPool returns a pool with cfg (zero fields take defaults) and starts
// its janitor, which Close stops.
func NewPool(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, accounts: map[string]*slot{}, stop: make(chan struct{}), done: make(chan struct{}), summaries: newSummaryCache()}
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
	c.ctx, c.roles, c.acct, c.sumCache = ctx, nil, acct, p.summaries
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
		return nil, &Error{Kind: KindOther, Op: "pool", Err: ErrClosed}
	}
	s := p.accounts[acct.ID]
	if s == nil {
		s = &slot{fp: fp, busy: make(chan struct{}, p.cfg.MaxConns)}
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
		return nil, &Error{Kind: KindTimeout, Op: "pool wait", Err: ctx.Err()}
	}
	for {
		c := p.takeIdle(s, fp)
		if c == nil {
			break
		}
		if time.Since(c.lastUsed) < p.cfg.HealthAfter || p.healthy(ctx, c) {
			c.reused = true
			return c, nil
		}
		c.close()
	}
	c, err := p.dial.dialIMAP(ctx, acct)
	if err != nil {
		<-s.busy
		return nil, err
	}
	return c, nil
}

func (p *Pool) takeIdle(s *slot, fp string) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(s.idle); n > 0 && s.fp == fp {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return c
	}
	return nil
}

// healthy sends NOOP on c.
func (p *Pool) healthy(ctx context.Context, c *Conn) bool {
	c.ctx = ctx
	err := c.do("noop", func() error { return c.client.Noop().Wait() })
	c.dc.setLimit(time.Time{})
	return err == nil
}

// put returns c to its account's idle list or closes it.
func (p *Pool) put(id string, c *Conn) {
	c.acct = nil
	c.dc.setLimit(time.Time{})
	c.lastUsed = time.Now()
	p.mu.Lock()
	s := p.accounts[id]
	keep := !p.closed && !c.broken && s.fp == c.fp && !c.gone()
	if keep {
		s.idle = append(s.idle, c)
	}
	p.mu.Unlock()
	if !keep {
		c.close()
	}
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
