package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// readIn reads r with reads of n bytes at most.
func readIn(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	var out bytes.Buffer
	p := make([]byte, n)
	for {
		k, err := r.Read(p)
		out.Write(p[:k])
		if err == io.EOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The transfer decoders give the same bytes whatever the size of the
// reads, and the same as the standard library's for input it reads; a
// quoted-printable line longer than the read buffer, cut inside an
// escape, is decoded whole.
func TestTransferDecodersAnyReadSize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	raw := make([]byte, 20000)
	for i := range raw {
		raw[i] = byte(r.IntN(256))
	}
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Binary = true // line breaks of raw are bytes, not lines
	w.Write(raw)
	w.Close()
	long := strings.Repeat("=C3=A9", 1500) // one 9000-byte line: escapes cut at the 4 KiB buffer's end
	b64 := base64.StdEncoding.EncodeToString(raw)
	var wrapped strings.Builder
	for i := 0; i < len(b64); i += 76 {
		wrapped.WriteString(b64[i:min(i+76, len(b64))] + "\r\n")
	}
	for _, tc := range []struct {
		enc, in string
		want    []byte
	}{
		{"quoted-printable", qp.String(), raw},
		{"quoted-printable", long + "\r\n", []byte(strings.Repeat("é", 1500) + "\r\n")},
		{"base64", wrapped.String(), raw},
	} {
		for _, n := range []int{1, 3, 76, 4096, 65536} {
			if got := readIn(t, decodeTransfer(tc.enc, strings.NewReader(tc.in)), n); !bytes.Equal(got, tc.want) {
				t.Fatalf("%s in reads of %d: %d bytes, want %d (equal prefix %d)", tc.enc, n, len(got), len(tc.want), commonPrefix(got, tc.want))
			}
		}
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// Decoding costs allocations per message, not per line: a drained
// buffer is reused for the next line.
func TestTransferDecodersReuseTheirBuffers(t *testing.T) {
	body := strings.Repeat("Dear reader, caf=C3=A9 at noon =E2=80=94 see you there.  =\r\nmore text\r\n", 200)
	b64 := strings.Repeat(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 57)))+"\r\n", 400)
	for _, tc := range []struct{ enc, in string }{{"quoted-printable", body}, {"base64", b64}} {
		in := strings.NewReader(tc.in)
		p := make([]byte, 32<<10)
		allocs := testing.AllocsPerRun(20, func() {
			in.Reset(tc.in)
			d := decodeTransfer(tc.enc, in)
			for {
				if _, err := d.Read(p); err != nil {
					break
				}
			}
		})
		if allocs > 20 {
			t.Errorf("%s: %.0f allocations for %d lines, want a few", tc.enc, allocs, strings.Count(tc.in, "\n"))
		}
	}
}
