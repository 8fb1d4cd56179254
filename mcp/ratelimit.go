package mcp

import (
	"context"
	"sync"
	"time"
)

// rateLimiter allows max events per window per key (sliding log).
type rateLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	events map[string][]time.Time
}

func newRateLimiter(max int, window time.Duration) *rateLimiter {
	return &rateLimiter{max: max, window: window, events: map[string][]time.Time{}}
}

// spent reports that key has no event left in the window, and how long
// until it has.
func (l *rateLimiter) spent(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	n := 0
	var oldest time.Time
	for _, t := range l.events[key] {
		if now.Sub(t) < l.window {
			if n == 0 {
				oldest = t
			}
			n++
		}
	}
	if n < l.max {
		return 0, false
	}
	return l.window - now.Sub(oldest), true
}

// allow records an event for key if within the limit; otherwise it
// reports how long until the next event is allowed.
func (l *rateLimiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	ev := l.events[key]
	i := 0
	for i < len(ev) && now.Sub(ev[i]) >= l.window {
		i++
	}
	ev = ev[i:]
	if len(ev) >= l.max {
		l.events[key] = ev
		return l.window - now.Sub(ev[0]), false
	}
	l.events[key] = append(ev, now)
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
