package store

import (
	"testing"
	"time"
)

// TestHotMapHoldsOnlyRecentAnswers: a write, or two seconds, start the
// map afresh, so answers nobody asks for again are not held.
func TestHotMapHoldsOnlyRecentAnswers(t *testing.T) {
	mono := time.Now()
	c := &hotCache{clock: func() time.Time { return mono }}
	c.on.Store(true)
	m := &c.accounts
	for _, k := range []string{"a", "b", "c"} {
		m.put(c, k, []MailAccount{{Label: k}}, c.gen.Load(), time.Time{})
	}
	if len(m.m) != 3 {
		t.Fatalf("%d kept, want 3", len(m.m))
	}
	c.changed()
	m.put(c, "d", nil, c.gen.Load(), time.Time{})
	if len(m.m) != 1 {
		t.Fatalf("after a write %d kept, want only the new one", len(m.m))
	}
	m.put(c, "e", nil, c.gen.Load(), time.Time{})
	mono = mono.Add(2 * hotTTL)
	m.put(c, "f", nil, c.gen.Load(), time.Time{})
	if _, ok := m.m["d"]; ok || len(m.m) != 1 {
		t.Fatalf("two seconds on, %d kept (d kept: %v), want only the new one", len(m.m), ok)
	}
	if _, ok := m.get(c, "f", time.Now()); !ok {
		t.Fatal("the new answer is not served")
	}
}
