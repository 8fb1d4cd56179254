package store

import (
	"sync"
	"sync/atomic"
	"time"
)

// Every MCP request looks up its bearer token and its person's mail
// accounts. Once KeepHotReads is called, hotCache keeps both answers
// briefly, so that a busy client costs one query per second rather than
// two per request:
//
//   - A write of this Store that can change an answer (a revocation, a
//     token rotation, any account write) drops every kept answer before
//     it returns, so within one process the cache is never stale. Such
//     methods defer changed(), which runs after their commit.
//   - Another process (a replica, a command-line tool) writes unseen:
//     its change is seen within hotTTL.
//   - A token is never kept past its expiry, and unknown tokens are not
//     kept at all.
const (
	hotTTL     = time.Second
	hotEntries = 10000 // per kind; a full map is emptied
)

type hotEntry[V any] struct {
	v       V
	gen     uint64
	until   time.Time // on the monotonic clock
	expires time.Time // wall clock; zero: no expiry of its own
}

// hotMap is one kind of kept answer. Its map is started afresh after a
// write and every 2 × hotTTL, so it holds at most the answers of the
// last two seconds.
type hotMap[V any] struct {
	mu   sync.Mutex
	m    map[string]hotEntry[V]
	gen  uint64
	born time.Time
}

type hotCache struct {
	on       atomic.Bool
	gen      atomic.Uint64
	clock    func() time.Time // monotonic; nil: time.Now
	tokens   hotMap[AccessGrant]
	accounts hotMap[[]MailAccount]
}

// KeepHotReads turns on the cache of the bearer lookup and the account
// list (see hotCache). The server calls it; a process that reads the
// database beside a running server, such as a test, does not.
func (s *Store) KeepHotReads() { s.hot.on.Store(true) }

// changed drops every kept answer.
func (c *hotCache) changed() { c.gen.Add(1) }

// now reads the monotonic clock, which a step of the wall clock cannot
// move: kept answers never outlive hotTTL.
func (c *hotCache) now() time.Time {
	if c.clock != nil {
		return c.clock()
	}
	return time.Now()
}

// get returns the answer kept for key if no write has happened since it
// was read, it is younger than hotTTL and, at wall time wall, it has not
// expired.
func (m *hotMap[V]) get(c *hotCache, key string, wall time.Time) (V, bool) {
	var zero V
	if !c.on.Load() {
		return zero, false
	}
	m.mu.Lock()
	e, ok := m.m[key]
	m.mu.Unlock()
	if !ok || e.gen != c.gen.Load() || !c.now().Before(e.until) || (!e.expires.IsZero() && !wall.Before(e.expires)) {
		return zero, false
	}
	return e.v, true
}

// put keeps v for key for hotTTL, and not past expires when that is
// set, if no write has happened since gen (read before the query that
// produced v).
func (m *hotMap[V]) put(c *hotCache, key string, v V, gen uint64, expires time.Time) {
	if !c.on.Load() || gen != c.gen.Load() {
		return
	}
	now := c.now()
	m.mu.Lock()
	if m.m == nil || len(m.m) >= hotEntries || m.gen != gen || now.Sub(m.born) >= 2*hotTTL {
		m.m, m.gen, m.born = map[string]hotEntry[V]{}, gen, now
	}
	m.m[key] = hotEntry[V]{v: v, gen: gen, until: now.Add(hotTTL), expires: expires}
	m.mu.Unlock()
}
