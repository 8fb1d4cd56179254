package mail

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The hand-written scanners on hot paths agree with the definitions they
// replace.

func TestHasHiddenControl(t *testing.T) {
	for _, s := range []string{"", "plain text\twith tab\nand line", "bell\a", "del\x7f", "nel\u0085", "zero\u200bwidth",
		"joiner\u200d ok", "soft\u00adhyphen", "caf\xe9 invalid", "ünïcödé", "\x1b[31m", "emoji 😀 ok"} {
		if got, want := hasHiddenControl(s), strings.ContainsFunc(s, isHiddenControl); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}

func TestMsgIDsAsPattern(t *testing.T) {
	pattern := regexp.MustCompile(`<([^<>\s]+)>`)
	for _, v := range []string{"", "<a@b>", " <a@b> <c@d>\t<e@f>", "<a@b><c@d>", "<<a@b>>", "<a b@c> <d@e>", "<>", "<a@b",
		"x<a@b>y", "<a\r\n@b> <ok@x>", "<a<b@c>", "<a>b@c>", "<é@ü>", strings.Repeat("<x@y>", 250)} {
		var want []string
		for _, m := range pattern.FindAllStringSubmatch(v, 200) {
			want = append(want, cleanLine(m[1]))
		}
		if got := msgIDs(v); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", v, got, want)
		}
	}
}

func TestLiteralAtAsPattern(t *testing.T) {
	pattern := regexp.MustCompile(`~?\{(\d+)\+?\}\r?$`)
	for _, line := range []string{"", "* 1 FETCH (BODY[] {123}", "{0}", "x {12+}\r", "~{5}", "{}", "{12a}", "12}", "{12}x",
		"{{3}", "a {99999999999999999999}", "* LIST () \"/\" {7}\r"} {
		var want []byte
		if m := pattern.FindSubmatch([]byte(line)); m != nil {
			want = m[1]
		}
		if got := literalAt([]byte(line)); string(got) != string(want) || (got == nil) != (want == nil) {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}
