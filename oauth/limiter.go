package oauth

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// limiter allows max events per window per key (fixed windows, in memory).
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	counts map[string]*windowCount
}

type windowCount struct {
	start time.Time
	n     int
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, counts: map[string]*windowCount{}}
}

// allow counts one event for key and reports whether it is within the limit.
func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.counts) > 10000 { // forget old windows so the map stays small
		for k, c := range l.counts {
			if now.Sub(c.start) > l.window {
				delete(l.counts, k)
			}
		}
	}
	c, ok := l.counts[key]
	if !ok || now.Sub(c.start) > l.window {
		c = &windowCount{start: now}
		l.counts[key] = c
	}
	c.n++
	return c.n <= l.max
}

// clientAddr is the request's client IP: the last X-Forwarded-For entry,
// which the trusted proxy appended (earlier entries can be forged); the
// server strips the header unless TRUST_PROXY_HEADERS.
func clientAddr(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndex(last, ","); i >= 0 {
			last = last[i+1:]
		}
		return strings.TrimSpace(last)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
