package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"
)

// Each case is a defect class seen in real mail (the public corpus'
// files are named where one is its model); every one lost content or a
// whole message before the parser became lenient.
func TestParseRealWorldDefects(t *testing.T) {
	type att struct{ part, name, ctype, data string }
	for name, tc := range map[string]struct {
		raw      string
		subject  string
		from     string
		text     string // substring of the text, "" for no check
		noText   string // must not appear in the text
		dateOK   bool
		attached []att
	}{
		"leading line of spaces (flanker iphone.eml)": {
			raw:     "      \r\nFrom: Ann <ann@example.com>\r\nSubject: Hi\r\nDate: Tue, 1 Jul 2014 10:00:00 +0000\r\n\r\nHello",
			subject: "Hi", from: "Ann <ann@example.com>", text: "Hello", dateOK: true},
		"header folded without indent (mimekit issue358)": {
			raw: "From: ann@example.com\r\nx-ms-diag: 1;AM4PR01\r\nP8FxVksOO2tmFWl+LxT0Acgv7RaCFBKFmzA31fwJ\r\nSubject: Kept\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n\r\nbody",
			subject: "Kept", from: "ann@example.com", text: "body"},
		"no empty line after a part's header (cpython msg_47)": {
			raw:  "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=foo\r\n\r\n--foo\r\nContent-Type: text/plain\r\nbar\r\n\r\n--foo--\r\n",
			from: "a@example.com", text: "bar"},
		"duplicate Subject: the first counts": {
			raw: "Subject: first\r\nSubject: second\r\n\r\nx", subject: "first", text: "x"},
		"raw UTF-8 header": {
			raw: "Subject: Grüße aus Köln\r\nFrom: Jürgen <j@example.com>\r\n\r\nx", subject: "Grüße aus Köln", from: "Jürgen <j@example.com>"},
		"raw 8-bit header in the declared charset": {
			raw:     "Subject: Gr\xfc\xdfe\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nSch\xf6n",
			subject: "Grüße", text: "Schön"},
		"raw 8-bit header without a charset: Windows-1252": {
			raw: "Subject: caf\xe9 \x93quoted\x94\r\n\r\nx", subject: "café “quoted”"},
		"raw 8-bit bytes inside an encoded word are in the word's charset (stalwart legacy_009)": {
			raw:     "Subject: =?iso-8859-1?Q?Die_Fr\xf6sche?= und \xe9t\xe9\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nx",
			subject: "Die Frösche und été"},
		"multibyte character split across encoded words": {
			raw: "Subject: =?UTF-8?B?5pel5pys?= =?UTF-8?B?6Kqe?=\r\n\r\nx", subject: "日本語"},
		"encoded words in legacy charsets": {
			raw:     "Subject: =?ks_c_5601-1987?B?vsiz58fPvLy/5A==?= =?x-mac-cyrillic?Q?=8F=F0=E8=E2=E5=F2?=\r\n\r\nx",
			subject: "안녕하세요Привет"},
		"CR/LF and bidi overrides in encoded words are removed": {
			raw:     "Subject: =?UTF-8?Q?a=0D=0Ab=E2=80=AEc?=\r\nFrom: =?UTF-8?Q?Eve=0D=0AX-Evil:_1?= <eve@example.com>\r\n\r\nx",
			subject: "a bc", from: `"Eve X-Evil: 1" <eve@example.com>`},
		"encoded word holding a comma stays one address": {
			raw:  "From: =?UTF-8?q?O'Brien,_Siobh=C3=A1n?= <siobhan@example.com>\r\n\r\nx",
			from: `"O'Brien, Siobhán" <siobhan@example.com>`},
		"unreadable Date: the received date stands in": {
			raw: "Date: someday soon\r\n\r\nx", text: "x"},
		"Date shapes net/mail refuses": {
			raw: "Date: 01 Jan 2001 00:01+0000\r\n\r\nx", dateOK: true},
		"UTF-7 body": {
			raw: "Content-Type: text/plain; charset=utf-7\r\n\r\nHi Mom -+Jjo--!", text: "Hi Mom -☺-!"},
		"body in a charset only the WHATWG index names": {
			raw: "Content-Type: text/plain; charset=x-mac-cyrillic\r\n\r\n\x8f\xf0\xe8\xe2\xe5\xf2", text: "Привет"},
		"text labelled base64 that is not": {
			raw:  "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\nploozdect nispplul swunkglap\r\n",
			text: "ploozdect nispplul swunkglap"},
		"inline HTML after plain text in mixed is kept": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n" +
				"--b\r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n--b--\r\n",
			text: "first\n\nsecond"},
		"hidden HTML text is left out": {
			raw: "Content-Type: text/html\r\n\r\n<p>shown</p><div style=\"display:none\">secret</div><p hidden>x1</p>" +
				"<span style=\"font-size: 0\">x2</span><b aria-hidden=\"true\">x3</b><i style=\"visibility: hidden\">x4</i><p>end</p>",
			text: "shown\n\nend", noText: "secret"},
		"hidden HTML text stays hidden against the tricks browsers ignore": {
			raw: "Content-Type: text/html\r\n\r\n<p>shown</p><font><div style=\"display:none\"></font>x1</div>" +
				"<div style=\"display:none\"/>x2</div><template>x3</template><i style=\"opacity:.0 !important\">x4</i>" +
				"<div style=\"overflow:hidden;max-height:0\">x5</div><p>e&#x202E;nd&#xE0041;</p>",
			text: "shown\n\nend", noText: "x1"},
		"media types that are not media types": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/" + strings.Repeat("x", 5000) +
				"\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\ndata\r\n--b--\r\n",
			attached: []att{{"1", "a.bin", "text/plain", "data"}}},
		"RFC 2231 boundary in a charset net/mime refuses (cpython msg_33)": {
			raw: "Content-Type: multipart/mixed;\r\n\tboundary*=\"ansi-x3.4-1968''XyZ\"\r\n\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\npart 1\r\n" +
				"--XyZ\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--XyZ--\r\n",
			text: "part 1", attached: []att{{"2", "", "application/pgp-signature", "sig"}}},
		"close delimiter followed by junk (enmime epilogue-sample)": {
			raw: "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
				"--B\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--B-->\r\nmalicious epilogue\r\n",
			text: "hi", attached: []att{{"2", "a.bin", "application/octet-stream", "\x00\x01\x02"}}},
		"multipart reusing its parent's boundary (cpython msg_15)": {
			raw: "Content-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: multipart/alternative; boundary=M\r\n\r\n" +
				"--M\r\nContent-Type: text/plain\r\n\r\nplain\r\n--M\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--M--\r\n\r\n" +
				"--M\r\nContent-Type: image/gif; name=xx.gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n--M--\r\n",
			text: "plain", attached: []att{{"2", "xx.gif", "image/gif", "GIF89a"}}},
		"multipart without a boundary reads as text": {
			raw: "Content-Type: multipart/alternative\r\n\r\njust text", text: "just text"},
		"type without a subtype is text (cpython msg_14)": {
			raw: "Content-Type: text; charset=us-ascii\r\n\r\nplain words", text: "plain words"},
		"lenient base64 and quoted-printable in attachments": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=x\r\n" +
				"Content-Transfer-Encoding: base64\r\n\r\nYWJj ZGVm\r\nZw\r\n--b\r\nContent-Type: text/csv; name=y.csv\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=ZZ =\r\nc\r\n--b--\r\n",
			attached: []att{{"1", "x", "application/octet-stream", "abcdefg"}, {"2", "y.csv", "text/csv", "a=b=ZZ c"}}},
		"x-uuencode is decoded and named from its begin line": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n" +
				"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" +
				"begin 644 cat.txt\r\n#0V%T\r\n`\r\nend\r\n--b--\r\n",
			text: "see file", attached: []att{{"2", "cat.txt", "text/plain", "Cat"}}},
		"message/global is an attachment": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHello\r\n" +
				"--b\r\nContent-Type: message/global; name=\"thanks.eml\"\r\n\r\nSubject: Danke\r\n\r\nInner\r\n--b--\r\n",
			text: "Hello", attached: []att{{"2", "thanks.eml", "message/global", "Subject: Danke\r\n\r\nInner"}}},
		"named text part: shown and offered as a file": {
			raw:  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nmy notes\r\n--b--\r\n",
			text: "my notes", attached: []att{{"1", "notes.txt", "text/plain", "my notes"}}},
		"named text labelled base64 that is not: listed and downloaded alike": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8; name=a.txt\r\n" +
				"Content-Transfer-Encoding: base64\r\n\r\nnot base64 at all\r\n--b--\r\n",
			text: "not base64 at all", attached: []att{{"1", "a.txt", "text/plain", "not base64 at all"}}},
		"TNEF is expanded into its files": {
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
				"--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				base64.StdEncoding.EncodeToString(sampleTNEF()) + "\r\n--b--\r\n",
			text: "see attached", attached: []att{{"2.1", "Quarterly report.pdf", "application/pdf", "%PDF"}}},
	} {
		t.Run(name, func(t *testing.T) {
			p := parseMessage(strings.NewReader(tc.raw))
			if tc.subject != "" && p.Header.Subject != tc.subject {
				t.Errorf("subject %q, want %q", p.Header.Subject, tc.subject)
			}
			if tc.from != "" && p.Header.From != tc.from {
				t.Errorf("from %q, want %q", p.Header.From, tc.from)
			}
			if !strings.Contains(p.Text, tc.text) || tc.noText != "" && strings.Contains(p.Text, tc.noText) {
				t.Errorf("text %q, want it to hold %q and not %q", p.Text, tc.text, tc.noText)
			}
			if strings.HasPrefix(name, "hidden") {
				for _, x := range []string{"x1", "x2", "x3", "x4", "x5", "\u202e", "\U000e0041"} {
					if strings.Contains(p.Text, x) {
						t.Errorf("hidden %s shown: %q", x, p.Text)
					}
				}
			}
			if p.Header.DateOK != tc.dateOK {
				t.Errorf("DateOK %v, want %v (%v)", p.Header.DateOK, tc.dateOK, p.Header.Date)
			}
			for _, want := range tc.attached {
				i := indexPart(p.Attachments, want.part)
				if i < 0 {
					t.Fatalf("no part %s in %+v", want.part, p.Attachments)
				}
				a := p.Attachments[i]
				if a.Filename != want.name || a.ContentType != want.ctype {
					t.Errorf("part %s: %q %s, want %q %s", a.Part, a.Filename, a.ContentType, want.name, want.ctype)
				}
				var buf bytes.Buffer
				found, err := streamPart(strings.NewReader(tc.raw), a.Part, func(got Attachment, r io.Reader) error {
					if got.Filename != a.Filename {
						t.Errorf("streamed %q, listed %q", got.Filename, a.Filename)
					}
					_, err := io.Copy(&buf, r)
					return err
				})
				if !found || err != nil || !strings.HasPrefix(buf.String(), want.data) || int64(buf.Len()) != a.Size {
					t.Errorf("part %s: found %v, err %v, %d bytes %q (listed %d), want prefix %q", a.Part, found, err, buf.Len(), buf.String(), a.Size, want.data)
				}
			}
			if len(tc.attached) == 0 && len(p.Attachments) > 0 && !strings.Contains(name, "lenient") {
				t.Errorf("unexpected attachments %+v", p.Attachments)
			}
		})
	}
}

func indexPart(atts []Attachment, part string) int {
	for i, a := range atts {
		if a.Part == part {
			return i
		}
	}
	return -1
}

func TestParseDateShapes(t *testing.T) {
	for v, want := range map[string]string{
		"Tue, 1 Jul 2014 10:00:00 +0200":     "2014-07-01T08:00:00Z",
		"01 Jan 2001 00:01+0000":             "2001-01-01T00:01:00Z",
		"18 Feb 01 12:29:13 AM":              "2001-02-18T00:29:13Z",
		"Tue, 12 Oct 2010 16:21:05 H0500":    "2010-10-12T16:21:05Z",
		"Mon, 3 Mar 2003 10:00:00 GMT+01:00": "2003-03-03T09:00:00Z",
		"Thu, 13 Feb 1969 23:32:54 -0330":    "1969-02-14T03:02:54Z",
	} {
		got, ok := parseDate(v)
		if !ok || got.UTC().Format(time.RFC3339) != want {
			t.Errorf("parseDate(%q) = %v %v, want %s", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "soon", "Mon, 30 Jun 3609 15:33:50 +0600", "1 Jan 0001 00:00:00 +0000"} {
		if _, ok := parseDate(v); ok {
			t.Errorf("parseDate(%q) accepted", v)
		}
	}
}

// TestParseHostileShapes: shapes built to make a parser slow or large
// still yield bounded results.
func TestParseHostileShapes(t *testing.T) {
	words := "To: " + strings.Repeat("=?utf-8?q?a, ", 20000) + "\r\nSubject: " + strings.Repeat("=?x?b?", 30000) + "\r\n\r\nbody"
	p := parseMessage(strings.NewReader(words))
	if p.Text != "body" || len(p.Header.To) == 0 {
		t.Fatalf("hostile words: %q, %d addresses", p.Text, len(p.Header.To))
	}
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range 3 * maxParts {
		many.WriteString("--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n")
	}
	if p := parseMessage(strings.NewReader(many.String())); len(p.Attachments) != maxParts {
		t.Fatalf("%d attachments, want the first %d", len(p.Attachments), maxParts)
	}
	tags := "Content-Type: text/html\r\n\r\n" + strings.Repeat("<b>", 100000) + strings.Repeat("</x>", 100000) + "end"
	if p := parseMessage(strings.NewReader(tags)); p.Text != "end" {
		t.Fatalf("unmatched tags: %q", p.Text)
	}
	flood := "To: " + strings.Repeat("=?", 300000) + "\r\nCc: " + strings.Repeat("=?a?b?", 100000) + "\r\n\r\nx"
	if p := parseMessage(strings.NewReader(flood)); p.Text != "x" {
		t.Fatalf("encoded-word flood: %q", p.Text)
	}
	deep := strings.Repeat("Content-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\n", 200) + "Content-Type: text/plain\r\n\r\ndeep"
	for _, a := range parseMessage(strings.NewReader(deep)).Attachments {
		if !partPattern.MatchString(a.Part) {
			t.Fatalf("nesting past maxDepth gave part %q, which get_attachment refuses", a.Part)
		}
	}
}
