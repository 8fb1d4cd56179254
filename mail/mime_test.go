package mail

import (
	"html"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

func TestParseMessageBestEffort(t *testing.T) {
	for name, tc := range map[string]struct {
		raw      string
		text     string
		attached []string
	}{
		"html only": {"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{}</style><script>x()</script></head><body><p>Hello <b>there</b></p><ul><li>one</li><li>two</li></ul><a href=\"https://ex.com/a\">link</a></body></html>",
			"Hello there\n\n- one\n- two\n\nlink (https://ex.com/a)", nil},
		"latin1 qp": {"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n", "Grüße", nil},
		"broken multipart": {"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64",
			"first part", []string{"2:x.pdf"}},
		"forwarded message": {"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n",
			"see below", []string{"2:"}},
		"unknown charset": {"Content-Type: text/plain; charset=x-unknown\r\n\r\nplain ascii", "plain ascii", nil},
		"no header end":   {"Subject: x", "", nil},
	} {
		p := parseMessage(strings.NewReader(tc.raw))
		if p.Text != tc.text {
			t.Errorf("%s: text %q, want %q", name, p.Text, tc.text)
		}
		var got []string
		for _, a := range p.Attachments {
			got = append(got, a.Part+":"+a.Filename)
		}
		if strings.Join(got, ",") != strings.Join(tc.attached, ",") {
			t.Errorf("%s: attachments %v, want %v", name, got, tc.attached)
		}
	}
}

func TestWindow(t *testing.T) {
	s := "héllo wörld"
	if w, n := window(s, 1, 4); w != "éllo" || n != 11 {
		t.Fatalf("%q %d", w, n)
	}
	if w, _ := window(s, 50, 4); w != "" {
		t.Fatalf("past end %q", w)
	}
}

// FuzzParseMessage checks the MIME-to-text path on any input: no panic,
// valid and trimmed UTF-8 text, well-formed part numbers; escaped text
// survives HTML-to-text unchanged except for collapsed whitespace; the
// sanitizer never emits more tags than it got; a snippet of any bytes is
// short valid UTF-8.
func FuzzParseMessage(f *testing.F) {
	f.Add("Content-Type: text/html\r\n\r\n<p>a<b>b</b></p>")
	f.Add("Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--")
	f.Add("Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n8NLJ18XU")
	f.Add("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n")
	f.Add("Content-TYpe:m&lt;0")
	f.Fuzz(func(t *testing.T, raw string) {
		p := parseMessage(strings.NewReader(raw))
		if !utf8.ValidString(p.Text) || p.Text != strings.TrimSpace(p.Text) {
			t.Fatalf("text %q", p.Text)
		}
		for _, a := range p.Attachments {
			if !partPattern.MatchString(a.Part) || a.Size < 0 {
				t.Fatalf("bad attachment %+v", a)
			}
		}
		for _, enc := range []string{"base64", "quoted-printable", "8bit"} {
			sp := &imap.BodyStructureSinglePart{Type: "text", Subtype: "html", Encoding: enc, Params: map[string]string{"charset": "iso-2022-jp"}}
			if sn := snippetText(sp, []byte(raw)); !utf8.ValidString(sn) || utf8.RuneCountInString(sn) > SnippetRunes+1 {
				t.Fatalf("snippet %q", sn)
			}
		}
		if out := sanitizeHTML(raw); strings.Count(out, "<") > strings.Count(raw, "<") {
			t.Fatalf("sanitizer added tags: %q", out)
		}
		if utf8.ValidString(raw) && !strings.ContainsRune(raw, 0) && !strings.ContainsRune(raw, '\r') {
			want := strings.Join(strings.FieldsFunc(raw, isSpace), " ")
			if got := htmlToText(html.EscapeString(raw)); got != want {
				t.Fatalf("escaped text changed:\n got %q\nwant %q", got, want)
			}
		}
	})
}
