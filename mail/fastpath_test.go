package mail

import (
	netmail "net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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
	pattern := regexp.MustCompile(`~?\{(\d+)\+?\} ?\r?$`)
	for _, line := range []string{"", "* 1 FETCH (BODY[] {123}", "{0}", "x {12+}\r", "~{5}", "{}", "{12a}", "12}", "{12}x",
		"{{3}", "a {99999999999999999999}", "* LIST () \"/\" {7}\r", "x {5} \r"} {
		var want []byte
		if m := pattern.FindSubmatch([]byte(line)); m != nil {
			want = m[1]
		}
		if got, _ := literalAt([]byte(line)); string(got) != string(want) || (got == nil) != (want == nil) {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}

func TestParseDateFastPathAsNetMail(t *testing.T) {
	for _, v := range []string{"Tue, 1 Jul 2014 10:00:00 +0200", "Wed, 02 Dec 2026 03:13:21 -0000", "Sun, 31 Dec 2023 23:59:59 +1345",
		"Mon, 3 Mar 2003 10:00:00 -0330", "Fri, 29 Feb 2008 12:00:00 +0000"} {
		want, err := netmail.ParseDate(v)
		if err != nil {
			t.Fatalf("net/mail cannot read %q: %v", v, err)
		}
		if got, ok := parseDate(v); !ok || !got.Equal(want) || got.Format(time.RFC3339) != want.Format(time.RFC3339) {
			t.Errorf("parseDate(%q) = %v %v, want %v", v, got, ok, want)
		}
	}
}

// TestTextPartsOwnTheirText: text parts are read through reused buffers;
// a message's text stays intact after later messages are parsed.
func TestTextPartsOwnTheirText(t *testing.T) {
	msg := func(word string) string {
		return "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			strings.Repeat(word+" ", 500) + "\r\n--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>" + strings.Repeat(word+"\xe9 ", 500) + "</p>\r\n--b--\r\n"
	}
	first := parseMessage(strings.NewReader(msg("alpha")))
	text, html := first.Text, first.HTML
	for _, w := range []string{"bravo", "charlie", "delta"} {
		parseMessage(strings.NewReader(msg(w)))
	}
	if text != strings.TrimSpace(strings.Repeat("alpha ", 500)) || strings.Count(html, "alphaé") != 500 || strings.Contains(text+html, "bravo") {
		t.Fatalf("first message changed: text %.40q…, html %.40q…", text, html)
	}
	if first.Text != text || first.HTML != html {
		t.Fatal("first message's fields changed")
	}
}
