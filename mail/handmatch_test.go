package mail

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The hand-written matchers of the hot path agree with the patterns they
// stand for, on lines made of the pieces those patterns look at.
func TestHandMatchersAgreeWithPatterns(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pick := func(options ...string) string { return options[r.IntN(len(options))] }
	// mutate drops, doubles or replaces a byte now and then.
	mutate := func(s string) string {
		if s == "" || r.IntN(3) > 0 {
			return s
		}
		i := r.IntN(len(s))
		switch r.IntN(3) {
		case 0:
			return s[:i] + s[i+1:]
		case 1:
			return s[:i] + s[i:i+1] + s[i:]
		}
		return s[:i] + pick("]", "[", " ", "x", "~", "{", "<", "9") + s[i+1:]
	}
	literalLine := func() string {
		return mutate(pick("", "* 1 FETCH (", "* 1 FETCH (UID 4 ", "x") + pick("", " ", "(", "X") +
			pick("BODY", "body", "BINARY", "Binary", "RFC822", "rfc822", "BODYSTRUCTURE") +
			pick("", "[]", "[1.2]", "[HEADER.FIELDS (A B)]", "[[x]", "[]]") + pick("", "<0>", "<12>", "<>") +
			pick(" ", "", "  ") + pick("", "~") + "{" + pick("5", "", "123", "x") + pick("", "+") + "}" + pick("", "\r", "\r\r"))
	}
	for _, tc := range []struct {
		name    string
		pattern *regexp.Regexp
		hand    func(string) bool
		gen     func() string
		fixed   []string
	}{
		{
			name:    "body literal",
			pattern: regexp.MustCompile(`(?i)(?:^|[ (])(?:BODY\[[^\]]*\](?:<\d+>)?|BINARY\[[^\]]*\](?:<\d+>)?|RFC822) ~?\{\d+\+?\}\r?$`),
			hand:    func(s string) bool { return bodyLiteralAt([]byte(s)) },
			gen:     literalLine,
			fixed: []string{"* 1 FETCH (UID 5 BODY[] {120}", "* 1 FETCH (BODY[1.2]<0> ~{9}\r", "RFC822 {3+}", "* 2 FETCH (XBODY[] {1}",
				"* 2 FETCH (BODY[] {}", "BODY[[x] {1}", "BODY[]] {1}", "BODY[]<> {1}", "(binary[2] {4}", "BODY[] {12}\r\r"},
		},
		{
			name:    "media type",
			pattern: regexp.MustCompile("^[a-z0-9!#$%&'*+.^_`{|}~-]{1,40}/[a-z0-9!#$%&'*+.^_`{|}~-]{1,80}$"),
			hand:    validMediaType,
			gen: func() string {
				return mutate(pick("text", "", "X", "a~b", strings.Repeat("a", 40), strings.Repeat("a", 41)) + pick("/", "", "//") +
					pick("plain", "", "vnd.ms-excel", "é", "a b", strings.Repeat("b", 80), strings.Repeat("b", 81)))
			},
			fixed: []string{"text/plain", "/", "a/", "/b", strings.Repeat("a", 40) + "/b", strings.Repeat("a", 41) + "/b", "a/" + strings.Repeat("b", 81), "a/b/c"},
		},
		{
			name:    "encoded word",
			pattern: regexp.MustCompile(`^=\?([^?]*)\?([bBqQ])\?([^?]*)\?=$`),
			hand: func(s string) bool {
				n := encodedWordAt(s)
				return n > 0 && n == len(s)
			},
			gen: func() string {
				return mutate("=?" + pick("", "utf-8", "ISO-8859-1*de") + "?" + pick("b", "B", "q", "Q", "x", "", "bq") + "?" + pick("", "abc", "a=b", "=?") + "?=" + pick("", "", "x", "?="))
			},
			fixed: []string{"=?utf-8?q?abc?=", "=??b??=", "=?a?bq?c?=", "=?a??c?=", "=?a?b?c?d?="},
		},
	} {
		lines := tc.fixed
		for range 200000 {
			lines = append(lines, tc.gen())
		}
		matched := 0
		for _, line := range lines {
			want := tc.pattern.MatchString(line)
			if got := tc.hand(line); got != want {
				t.Fatalf("%s: %q: got %v, the pattern says %v", tc.name, line, got, want)
			}
			if want {
				matched++
			}
		}
		if matched < 100 {
			t.Fatalf("%s: only %d lines matched: the test shows little", tc.name, matched)
		}
	}
}

// A transfer encoding is read the same way for the text and for the
// rest: "baſe64" (a long s, which Unicode folds to "s") is not base64.
func TestTransferEncodingNamedAlike(t *testing.T) {
	for _, cte := range []string{"base64", " BASE64 ", "baſe64"} {
		msg := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\naGlkZGVuIHRleHQ=\r\n"
		want := "hidden text"
		if cte == "baſe64" {
			want = "aGlkZGVuIHRleHQ="
		}
		if got := parseMessage(strings.NewReader(msg)).Text; got != want {
			t.Errorf("%q: text %q, want %q", cte, got, want)
		}
	}
}
