package mcp

import (
	"fmt"
	"testing"
	"time"
)

// TestRateLimiterSlidingWindow: max events per key in any window, a
// refusal says when the oldest leaves it, spent counts without spending,
// and keys are independent.
func TestRateLimiterSlidingWindow(t *testing.T) {
	l := newRateLimiter(3, time.Hour)
	for i := range 3 {
		if _, spent := l.spent("ann"); spent {
			t.Fatalf("spent after %d events of 3", i)
		}
		if _, ok := l.allow("ann"); !ok {
			t.Fatalf("event %d of 3 refused", i+1)
		}
	}
	wait, spent := l.spent("ann")
	if !spent || wait <= 59*time.Minute || wait > time.Hour {
		t.Fatalf("spent = %v, %v; want true and just under an hour", wait, spent)
	}
	if wait, ok := l.allow("ann"); ok || wait <= 59*time.Minute || wait > time.Hour {
		t.Fatalf("fourth event: allow = %v, %v; want refused for just under an hour", wait, ok)
	}
	if _, ok := l.allow("bob"); !ok {
		t.Fatal("another key was refused")
	}

	const window = 100 * time.Millisecond
	short := newRateLimiter(2, window)
	start := time.Now()
	short.allow("ann")
	short.allow("ann")
	if _, ok := short.allow("ann"); ok && time.Since(start) < window {
		t.Fatal("a third event within the window was allowed")
	}
	time.Sleep(window + 10*time.Millisecond)
	for i := range 2 {
		if _, ok := short.allow("ann"); !ok {
			t.Fatalf("event %d refused after the window passed", i+1)
		}
	}
	if _, ok := newRateLimiter(0, window).allow("ann"); ok {
		t.Fatal("a limit of 0 allowed an event")
	}
}

// TestRateLimiterForgetsIdleKeys: a key whose events have all left the
// window holds no memory once the next window's first event is counted,
// whichever key that is; before, every key ever seen kept its log.
func TestRateLimiterForgetsIdleKeys(t *testing.T) {
	l := newRateLimiter(5, 20*time.Millisecond)
	for i := range 100 {
		l.allow(fmt.Sprint("user", i))
	}
	time.Sleep(30 * time.Millisecond)
	l.allow("ann")
	if n := len(l.events); n != 1 {
		t.Fatalf("%d keys held after their window; want only the one just counted", n)
	}
}

// TestRateLimiterBoundedLog: a busy key's log holds about the events in
// its window, however long it runs; the clock is moved by hand.
func TestRateLimiterBoundedLog(t *testing.T) {
	const window = time.Hour
	l := newRateLimiter(1<<30, window)
	for range 100 {
		for range 1000 {
			l.allow("ann")
		}
		l.epoch = l.epoch.Add(-window / 10) // six minutes pass
	}
	e := l.events["ann"]
	if inWindow := len(e.at) - e.head; inWindow > 11000 || cap(e.at) > 4*11000 {
		t.Fatalf("the log holds room for %d events, %d of them in the window; want about 10,000", cap(e.at), inWindow)
	}
}

// BenchmarkRateLimiter: spent and allow of a key with 10,000 events in
// its window, as for a person at a high MCP_CALLS_PER_MINUTE.
func BenchmarkRateLimiter(b *testing.B) {
	l := newRateLimiter(1<<30, time.Hour)
	for range 10000 {
		l.allow("ann")
	}
	for b.Loop() {
		l.spent("ann")
		l.allow("ann")
	}
}
