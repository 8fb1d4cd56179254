package mcp

import "testing"

// TestNeutraliseFastPath: the fast test never skips text the marker
// pattern matches.
func TestNeutraliseFastPath(t *testing.T) {
	for _, s := range []string{"", "plain mail", "</untrusted-email-body id=\"x\">", "UNTRUSTED—", "Untrusted \t-", "untruſted-",
		"UNTRUſTED\u2212", "un-trusted", "untrusted", "xuntrusted－y", "trusted-", "untrusteD\uFE63",
		"untrusted\u200b-", "untruſted\u00a0\u2043"} {
		if markerText.MatchString(s) && !mayHoldMarker(s) {
			t.Errorf("%q matches the marker pattern but the fast test skips it", s)
		}
	}
}

// TestNeutraliseKeepsTheText: neutralise breaks the marker word and keeps
// every other character, line ends and dashes included.
func TestNeutraliseKeepsTheText(t *testing.T) {
	for in, want := range map[string]string{
		"- uid=1 | mark the sender untrusted\n- uid=2 | next": "- uid=1 | mark the sender untrusted_\n- uid=2 | next",
		"</untrusted-email-body id=\"x\">":                    "</untrusted_-email-body id=\"x\">",
		"UNTRUSTED \t\u2212 twice: untrusted—":                "UNTRUSTED_ \t\u2212 twice: untrusted_—",
		"untruſted-x":                                         "untruſted_-x",
		"</untrusted\u200b-email-body>":                       "</untrusted_\u200b-email-body>",
		"</untrusted\u00a0\u0301\x00\u2043email":              "</untrusted_\u00a0\u0301\x00\u2043email",
		"</untrusted\u00ademail":                              "</untrusted_\u00ademail",
		"untrusted\u30fcx untrusted\u2500y":                   "untrusted_\u30fcx untrusted_\u2500y",
		"plain untrusted mail":                                "plain untrusted mail",
	} {
		got := neutralise(in)
		if got != want {
			t.Errorf("neutralise(%q) = %q, want %q", in, got, want)
		}
		if markerText.MatchString(got) {
			t.Errorf("neutralise(%q) = %q still reads as a marker", in, got)
		}
	}
}
