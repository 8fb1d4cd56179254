package mcp

import (
	"context"
	"sync"
	"time"
)

// rateLimiter allows max events per window per key: a sliding log of
// each key's events in the window, oldest first. Events are kept as
// offsets on the monotonic clock, so the collector has no pointers to
// scan however many there are; they are dropped as they leave the
// window, and a key with none left is forgotten.
type rateLimiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	epoch   time.Time
	events  map[string]*eventLog
	sweptAt time.Duration
}

// eventLog holds one key's events at at[head:].
type eventLog struct {
	at   []time.Duration
	head int
}

func newRateLimiter(max int, window time.Duration) *rateLimiter {
	return &rateLimiter{max: max, window: window, epoch: time.Now(), events: map[string]*eventLog{}}
}

// drop forgets the events that have left the window ending at now.
func (e *eventLog) drop(now, window time.Duration) {
	for e.head < len(e.at) && now-e.at[e.head] >= window {
		e.head++
	}
	if e.head > len(e.at)/2 {
		e.at = e.at[:copy(e.at, e.at[e.head:])]
		e.head = 0
	}
}

// log returns key's events in the window ending at now, or nil when it
// has none. Once a window it forgets every key whose events have all
// left it.
func (l *rateLimiter) log(key string, now time.Duration) *eventLog {
	if now-l.sweptAt >= l.window {
		l.sweptAt = now
		for k, e := range l.events {
			if now-e.at[len(e.at)-1] >= l.window {
				delete(l.events, k)
			}
		}
	}
	e := l.events[key]
	if e == nil {
		return nil
	}
	if e.drop(now, l.window); len(e.at) == 0 {
		delete(l.events, key)
		return nil
	}
	return e
}

// spent reports that key has no event left in the window, and how long
// until it has.
func (l *rateLimiter) spent(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max <= 0 {
		return l.window, true
	}
	now := time.Since(l.epoch)
	e := l.log(key, now)
	if e == nil || len(e.at)-e.head < l.max {
		return 0, false
	}
	return l.window - (now - e.at[e.head]), true
}

// allow records an event for key if within the limit; otherwise it
// reports how long until the next event is allowed.
func (l *rateLimiter) allow(key string) (time.Duration, bool) {
	if l.max <= 0 {
		return l.window, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Since(l.epoch)
	e := l.log(key, now)
	if e == nil {
		e = &eventLog{}
		l.events[key] = e
	}
	if len(e.at)-e.head >= l.max {
		return l.window - (now - e.at[e.head]), false
	}
	e.at = append(e.at, now)
	return 0, true
}

// limiter says whether key may have one more event now, or how long to
// wait; spent reports, without counting an event, that key has none left.
type limiter interface {
	allow(key string) (time.Duration, bool)
	spent(key string) (time.Duration, bool)
}

// RateStore keeps counters that every replica shares (PostgreSQL).
type RateStore interface {
	AddRateCount(ctx context.Context, key string, window time.Time, n int) (int, error)
}

// sharedLimiter allows max events per fixed window per key across every
// process that shares its store. Each process counts locally and adds its
// count to the store about once a second, and on every event once a key
// nears its limit, so that no request waits on a write but the limit
// holds across replicas within a few events. When the store cannot be
// reached it goes on counting locally.
type sharedLimiter struct {
	store  RateStore
	name   string
	max    int
	window time.Duration
	mu     sync.Mutex
	counts map[string]*sharedCount
}

type sharedCount struct {
	start    time.Time // of the window
	synced   int       // every process's count at the last sync
	pending  int       // this process's count since
	lastSync time.Time
}

// syncEvery is how often a busy key's count is shared.
const syncEvery = time.Second

func newSharedLimiter(store RateStore, name string, max int, window time.Duration) *sharedLimiter {
	return &sharedLimiter{store: store, name: name, max: max, window: window, counts: map[string]*sharedCount{}}
}

func (l *sharedLimiter) spent(key string) (time.Duration, bool) {
	now := time.Now()
	start := now.Truncate(l.window)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.counts[key]; c != nil && c.start.Equal(start) && c.synced+c.pending >= l.max {
		return start.Add(l.window).Sub(now), true
	}
	return 0, false
}

func (l *sharedLimiter) allow(key string) (time.Duration, bool) {
	now := time.Now()
	start := now.Truncate(l.window)
	l.mu.Lock()
	c := l.counts[key]
	if c == nil || !c.start.Equal(start) {
		if len(l.counts) > 10000 {
			clear(l.counts)
		}
		c = &sharedCount{start: start}
		l.counts[key] = c
	}
	if c.synced+c.pending >= l.max {
		l.mu.Unlock()
		return start.Add(l.window).Sub(now), false
	}
	c.pending++
	n := 0
	if now.Sub(c.lastSync) >= syncEvery || c.pending >= max(1, (l.max-c.synced)/8) {
		n, c.pending, c.lastSync = c.pending, 0, now
	}
	l.mu.Unlock()
	if n == 0 {
		return 0, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	total, err := l.store.AddRateCount(ctx, l.name+":"+key, start, n)
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		c.pending += n // shared at the next sync
	} else if total > c.synced {
		c.synced = total
	}
	return 0, true
}
