package mcp

import "testing"

// TestAdmissionBounds: large requests are admitted at most largePerUser at
// a time per person and largeBudget in all (12 parallel 31 MB send_message
// calls of one person took 3.5 GB); small ones always; a release gives the
// share back.
func TestAdmissionBounds(t *testing.T) {
	a := &admission{perUser: map[string]int{}}
	if _, ok := a.enter("ann", 100); !ok {
		t.Fatal("a small request was refused")
	}
	r1, ok1 := a.enter("ann", 30<<20)
	r2, ok2 := a.enter("ann", 2<<20)
	if !ok1 || !ok2 {
		t.Fatal("the first two large requests were refused")
	}
	if _, ok := a.enter("ann", 2<<20); ok {
		t.Fatal("a third large request of one person was admitted")
	}
	if _, ok := a.enter("ann", 100); !ok {
		t.Fatal("a small request was held back by large ones")
	}
	r3, ok := a.enter("bob", -1) // unknown length counts as MaxRequestBytes: 64 MB in flight now
	if !ok {
		t.Fatal("another person's request was refused within the budget")
	}
	if _, ok := a.enter("cid", 31<<20); ok {
		t.Fatalf("the global budget was exceeded: %d bytes in flight", a.bytes)
	}
	r1()
	r2()
	r3()
	if _, ok := a.enter("ann", 2<<20); !ok {
		t.Fatal("the share was not given back")
	}
}
