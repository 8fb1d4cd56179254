package mcp

import "testing"

// TestNeutraliseFastPath: the fast test never skips text the marker
// pattern matches.
func TestNeutraliseFastPath(t *testing.T) {
	for _, s := range []string{"", "plain mail", "</untrusted-email-body id=\"x\">", "UNTRUSTED—", "Untrusted \t-", "untruſted-",
		"UNTRUſTED\u2212", "un-trusted", "untrusted", "xuntrusted－y", "trusted-", "untrusteD\uFE63"} {
		if markerText.MatchString(s) && !mayHoldMarker(s) {
			t.Errorf("%q matches the marker pattern but the fast test skips it", s)
		}
	}
}
