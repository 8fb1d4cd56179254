package handlers

import "testing"

// TestExcerpt: a preview is cut at the byte budget, never inside a
// character.
func TestExcerpt(t *testing.T) {
	if s, cut := excerpt("short", 10); s != "short" || cut {
		t.Fatalf("short: %q %v", s, cut)
	}
	if s, cut := excerpt("ééé", 3); s != "é" || !cut { // 2 bytes each: the cut falls inside the second
		t.Fatalf("cut: %q %v", s, cut)
	}
}
