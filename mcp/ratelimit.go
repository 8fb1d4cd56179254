package mcp

import (
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
