package mcp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestExtractFiles(t *testing.T) {
	data := make([]byte, 100_000)
	_, _ = rand.Read(data)
	padded := base64.StdEncoding.EncodeToString(data[:99_998]) // ends in "="
	raw := base64.RawStdEncoding.EncodeToString(data[:99_998])
	escaped, _ := json.Marshal(map[string]string{"v": base64.StdEncoding.EncodeToString(data)})
	slashed := strings.ReplaceAll(string(escaped[6:len(escaped)-2]), "/", `\/`)
	long := strings.Repeat("AAAA", 1200) // 4,800 characters, 3,600 zero bytes
	wrapped := ""
	for s := base64.StdEncoding.EncodeToString(data); len(s) > 0; s = s[min(76, len(s)):] {
		wrapped += s[:min(76, len(s))] + `\r\n`
	}
	for _, tc := range []struct {
		name, value string
		want        []byte
		err         error
	}{
		{"padded", padded, data[:99_998], nil},
		{"unpadded", raw, data[:99_998], nil},
		{"escaped slashes", slashed, data, nil},
		{"line breaks", wrapped, data, nil},
		{"unicode escapes", long + `\u0041\u0041\u003d\u003d`, make([]byte, 3601), nil},
		{"escaped line breaks", long + `\n\u000aAA==\u000d`, make([]byte, 3601), nil},
		{"not base64", long + "hello, world", nil, errNotBase64},
		{"padding inside", "AA==AA==" + long, nil, errNotBase64},
		{"non-ASCII escape", long + `AAAA\u00e9`, nil, errNotBase64},
		{"escaped quote", long + `\"`, nil, errNotBase64},
	} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message","arguments":{"subject":"content_base64",` +
			`"attachments":[{"filename":"a.bin","content_base64" : "` + tc.value + `"}],"note":"\"content_base64\":\"keep\""}}}`
		out, files, err := extractFiles(strings.NewReader(body), 64<<10+99_999)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var msg struct {
			Params struct {
				Arguments struct {
					Subject     string          `json:"subject"`
					Attachments []attachmentArg `json:"attachments"`
					Note        string          `json:"note"`
				} `json:"arguments"`
			} `json:"params"`
		}
		if err := json.Unmarshal(out, &msg); err != nil {
			t.Fatalf("%s: rewritten body %q: %v", tc.name, out, err)
		}
		a := msg.Params.Arguments
		f, ok := files.take(a.Attachments[0].ContentBase64)
		if !ok || !errors.Is(f.err, tc.err) || !bytes.Equal(f.data, tc.want) || (tc.err == nil && f.size != int64(len(tc.want))) {
			t.Errorf("%s: resolved %v, %d bytes (size %d), err %v", tc.name, ok, len(f.data), f.size, f.err)
		}
		if a.Subject != "content_base64" || a.Note != `"content_base64":"keep"` || len(out) > 400 || len(files.files) != 1 {
			t.Errorf("%s: other members changed: %s", tc.name, out)
		}
		// Handed over, the file is no longer held, and its reference is spent.
		if _, again := files.take(a.Attachments[0].ContentBase64); again || files.files[0].data != nil {
			t.Errorf("%s: taken twice (%v), or still held (%d bytes)", tc.name, again, len(files.files[0].data))
		}
	}

	// A file over the bound is counted, not kept.
	_, files, err := extractFiles(strings.NewReader(`{"content_base64":"`+padded+`"}`), 1000)
	if f := files.files[0]; err != nil || f.data != nil || f.size != 99_998 {
		t.Errorf("over the bound: %d bytes kept, size %d, %v", len(f.data), f.size, err)
	}
	// A reference from another request, or made up, resolves to nothing.
	other := &fileTable{nonce: "x"}
	if _, ok := other.take(fileRefPrefix + files.nonce + ":0"); ok {
		t.Error("another request's reference resolved")
	}
	if _, ok := files.take(fileRefPrefix + files.nonce + ":1"); ok {
		t.Error("a reference past the table resolved")
	}
	if _, ok := (*fileTable)(nil).take(fileRefPrefix + "x:0"); ok {
		t.Error("a reference without a table resolved")
	}
	// Short values stay as written; at most maxAttachments are taken out;
	// the rewritten body is never larger than the request.
	var many strings.Builder
	many.WriteString(`{"content_base64":"", "content_base64":"QQ==",`)
	for range maxAttachments + 2 {
		many.WriteString(`"content_base64":"` + long + `",`)
	}
	many.WriteString(`"content\u005fbase64":"` + long + `"}`)
	out, files, err := extractFiles(strings.NewReader(many.String()), 1<<20)
	if err != nil || len(files.files) != maxAttachments || !strings.HasPrefix(string(out), `{"content_base64":"", "content_base64":"QQ==",`) ||
		len(out) >= many.Len() || strings.Count(string(out), long) != 3 {
		t.Errorf("many values: %d files, %d of %d bytes, %v", len(files.files), len(out), many.Len(), err)
	}
	// An escaped member name is still the member.
	out, files, _ = extractFiles(strings.NewReader(`{"content\u005fbase64":"`+long+`"}`), 1<<20)
	if len(files.files) != 1 || strings.Contains(string(out), long) {
		t.Errorf("escaped name: %s", out)
	}

	// A string that is not JSON is refused.
	for _, body := range []string{`{"content_base64":"AAAA`, `{"a":"b`, `{"content_base64":"AA\`, `{"content_base64":"` + long + "\n" + `"}`,
		`{"content_base64":"` + long + `\u00"}`, `{"content_base64":"` + long + `\x"}`, "{\"a\nb\":1}"} {
		if _, _, err := extractFiles(strings.NewReader(body), 1000); !errors.Is(err, errBodyJSON) {
			t.Errorf("%q: %v", body, err)
		}
	}
}
