package mcp

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	mcplib "github.com/mark3labs/mcp-go/mcp"
)

// stdJSON is v as encoding/json writes it with HTML escaping off.
func stdJSON(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// edgeBytes are the bytes JSON strings treat specially, with plain ones.
var edgeBytes = []byte("aZ09 ~<>&\"\\/\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f\x80\xbf\xc0\xc3\xa9\xe2\x80\xa8\xa9\xed\xa0\xf0\x9f\x98\x80\xf4\xff")

func edgeString(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return ""
	case 1: // long plain runs, so that the eight-byte path runs, broken here and there
		var b strings.Builder
		for range r.IntN(200) {
			if r.IntN(12) == 0 {
				b.WriteByte(edgeBytes[r.IntN(len(edgeBytes))])
			} else {
				b.WriteByte(byte(' ' + r.IntN(95)))
			}
		}
		return b.String()
	case 2:
		return strings.Repeat("\u2028x\u2029é—日本", r.IntN(4))
	}
	b := make([]byte, r.IntN(40))
	for i := range b {
		b[i] = edgeBytes[r.IntN(len(edgeBytes))]
	}
	return string(b)
}

// fill sets every field of v (a pointer) at random, with the edge values
// of each kind: empty, zero and nil as often as not.
func fill(r *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(edgeString(r))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt([]int64{0, 0, 1, -7, 1 << 40, r.Int64()}[r.IntN(6)])
	case reflect.Uint32:
		v.SetUint([]uint64{0, 1, 4294967295, uint64(r.Uint32())}[r.IntN(4)])
	case reflect.Slice:
		switch n := r.IntN(5); n {
		case 0: // nil
		default:
			s := reflect.MakeSlice(v.Type(), n-1, n-1)
			for i := range n - 1 {
				fill(r, s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i))
		}
	default:
		panic("fill: no values for " + v.Type().String())
	}
}

// The hand encoders write what encoding/json writes, for every field of
// each type, whatever it holds; a field added to a type and not to its
// encoder fails here.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []reflect.Type{reflect.TypeFor[MessagePage](), reflect.TypeFor[MessageDetail](),
		reflect.TypeFor[MessageSummary](), reflect.TypeFor[AttachmentSummary]()} {
		for range 3000 {
			v := reflect.New(typ).Elem()
			fill(r, v)
			want := stdJSON(t, v.Interface())
			if got := string(v.Interface().(jsonAppender).appendJSON(nil)); got != want {
				t.Fatalf("%s:\n got %s\nwant %s", typ, got, want)
			}
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []string{"", "plain", "12345678", "1234567\"", "\"1234567", "abcdefgh\x00", "é", "\xff", "\xe2\x80", "\u2028\u2029",
		strings.Repeat("abcdefgh", 100) + "\n", "\xed\xa0\x80", "\xf4\x90\x80\x80"}
	for range 20000 {
		cases = append(cases, edgeString(r))
	}
	for _, s := range cases {
		if got, want := string(appendJSONString(nil, s)), stdJSON(t, s); got != want {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c\x00\x1f\x7f", "\xff\u2028", "0123456789abcdefg\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendJSONString(nil, s)), stdJSON(t, s); got != want {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// Text content is written by hand only when it is plain text; anything
// else the library's types encode.
func TestAppendTextContent(t *testing.T) {
	plain := []mcplib.Content{mcplib.NewTextContent("one \"<b>\"\n"), mcplib.NewTextContent("two\u2028")}
	got, ok := appendTextContent(nil, plain)
	if want := stdJSON(t, plain); !ok || string(got) != want {
		t.Fatalf("plain text: %s (%v), want %s", got, ok, want)
	}
	annotated := mcplib.NewTextContent("x")
	annotated.Annotations = &mcplib.Annotations{Priority: new(1.0)}
	for _, content := range [][]mcplib.Content{
		{mcplib.NewTextContent("a"), annotated},
		{mcplib.NewImageContent("AAAA", "image/png")},
		{&mcplib.TextContent{Type: "text", Text: "pointer"}},
	} {
		if got, ok := appendTextContent([]byte("kept"), content); ok || string(got) != "kept" {
			t.Fatalf("%#v: %q (%v), want it left to the library", content, got, ok)
		}
	}
}

// A result type that embeds a self-encoding one is encoded by
// encoding/json, whole, not by the appendJSON it inherits.
func TestWriteResultEncodesEmbeddingTypesWhole(t *testing.T) {
	entry := ThreadEntry{Folder: "INBOX", MessageSummary: MessageSummary{UID: 7, Subject: "s"}, Body: "the body"}
	var b bytes.Buffer
	if err := writeResult(&b, mcplib.NewToolResultStructured(entry, "t")); err != nil {
		t.Fatal(err)
	}
	if want := `,"structuredContent":` + stdJSON(t, entry); !strings.HasSuffix(b.String(), want) {
		t.Fatalf("got %s\nwant it to end with %s", b.String(), want)
	}
}
