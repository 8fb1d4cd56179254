package mail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

func TestUTF7(t *testing.T) {
	tests := []struct{ in, want string }{
		// RFC 2152 examples
		{"Hi Mom -+Jjo--!", "Hi Mom -☺-!"},
		{"+ZeVnLIqe-", "日本語"},
		{"A+ImIDkQ.", "A≢Α."},
		{"Item 3 is +AKM-1.", "Item 3 is £1."},

		{"+-", "+"},
		{"1 +- 1 = 2", "1 + 1 = 2"},
		{"", ""},
		{"plain ASCII, no shifts\r\n", "plain ASCII, no shifts\r\n"},
		{"+AGEAYgBj", "abc"},                 // run unterminated at the end
		{"+AGE.", "a."},                      // run ended by a direct character, which is kept
		{"+AGE-+AGI-", "ab"},                 // adjacent runs
		{"+AGE--", "a-"},                     // only the first '-' is absorbed
		{"+2D3eAQ-", "😁"},                    // surrogate pair
		{"+2D0-x", "\uFFFDx"},                // lone high surrogate
		{"+2D0AYQ-", "\uFFFDa"},              // high surrogate followed by a BMP unit
		{"+3gE-", "\uFFFD"},                  // lone low surrogate
		{"+AGEA-x", "a\uFFFDx"},              // run cut inside a code unit
		{"+AGF-", "a"},                       // non-zero padding bits are ignored
		{"a+", "a+"},                         // '+' at the end
		{"a+ b", "a+ b"},                     // '+' followed by neither base64 nor '-'
		{"+!", "+!"},                         // invalid base64
		{"+AGE+-", "a\uFFFD"},                // '+' is a base64 digit inside a run
		{"caf\xe9 caf\xc3\xa9", "café café"}, // 8-bit bytes: Windows-1252, or UTF-8 when valid
	}
	for _, tt := range tests {
		if got := decodeUTF7([]byte(tt.in)); got != tt.want {
			t.Errorf("decodeUTF7(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUTF7Corpus(t *testing.T) {
	raw := mimeCorpusFile(t, "zbateson-mail-mime-parser/tests__data_emails_m0006.txt.eml")
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	if ct := h.Get("Content-Type"); !strings.Contains(ct, "utf-7") {
		t.Fatalf("Content-Type = %q", ct)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(br))
	if err != nil {
		t.Fatal(err)
	}
	text := decodeUTF7(body)
	for _, want := range []string{
		"Die Hasen und die Frösche",
		`Die Hasen klagten einst über ihre mißliche Lage; "wir leben", sprach ein Redner,`,
		"Unsere stete Angst ist ärger als der Tod selbst.",
		"ihr seht, einige Tiere, welche also wohl noch unglücklicher sein müssen als wir.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("decoded body lacks %q:\n%s", want, text)
		}
	}
	if strings.ContainsRune(text, utf8.RuneError) || strings.Contains(text, "+A") {
		t.Errorf("decoded body has undecoded parts:\n%s", text)
	}
}

// encodeUTF7 encodes s as RFC 2152 UTF-7, shifting everything but
// printable ASCII other than '+' and '\\', and closing every run with '-'.
func encodeUTF7(s string) string {
	var out strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		b := make([]byte, 0, 2*len(run))
		for _, u := range run {
			b = binary.BigEndian.AppendUint16(b, u)
		}
		out.WriteString("+" + base64.RawStdEncoding.EncodeToString(b) + "-")
		run = run[:0]
	}
	for _, r := range s {
		if r >= ' ' && r <= '~' && r != '+' && r != '\\' || r == '\r' || r == '\n' || r == '\t' {
			flush()
			out.WriteRune(r)
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return out.String()
}

func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"Hi Mom -+Jjo--!", "+ZeVnLIqe-", "A+ImIDkQ.", "+-", "+2D3eAQ-", "+AGEA", "caf\xe9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := decodeUTF7(b)
		if !utf8.ValidString(got) {
			t.Fatalf("decodeUTF7(%q) = %q, not valid UTF-8", b, got)
		}
		if !bytes.ContainsAny(b, "+") && utf8.Valid(b) && got != string(b) {
			t.Fatalf("decodeUTF7(%q) = %q, want the input unchanged", b, got)
		}
		// Whatever valid text the input is read as, encoding it and decoding
		// the result gives it back.
		if s := string(b); utf8.ValidString(s) {
			if back := decodeUTF7([]byte(encodeUTF7(s))); back != s {
				t.Fatalf("round trip of %q via %q = %q", s, encodeUTF7(s), back)
			}
		}
	})
}
