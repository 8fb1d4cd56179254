package mail

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/emersion/go-message"
)

// mimeCorpusDir returns the directory of the public MIME corpus,
// $IMAP_MCP_CORPUS or ../../shared/mime-corpus, and skips the test when
// it is absent.
func mimeCorpusDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("IMAP_MCP_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "mime-corpus")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("MIME corpus not found: %v", err)
	}
	return dir
}

// mimeCorpusFile reads a message of the MIME corpus.
func mimeCorpusFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mimeCorpusDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tnefPart returns the decoded body of the first winmail.dat part of raw.
func tnefPart(t *testing.T, raw []byte) []byte {
	t.Helper()
	m, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatal(err)
	}
	var part []byte
	err = m.Walk(func(_ []int, e *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		mt, _, _ := e.Header.ContentType()
		if part != nil || mt != "application/ms-tnef" && mt != "application/vnd.ms-tnef" {
			return nil
		}
		part, err = io.ReadAll(e.Body)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if part == nil {
		t.Fatal("no application/ms-tnef part")
	}
	return part
}

func TestTNEFCorpus(t *testing.T) {
	type want struct {
		name, contentType, prefix string
		size                      int
	}
	tests := []struct {
		file  string
		files []want
		err   error
	}{
		{
			// Besides the picture, a task and an appointment are attached as
			// embedded messages, which are skipped.
			file:  "mimekit/UnitTests_TestData_tnef_rich-text.eml",
			files: []want{{"kitten-playing-with-a-christmas-tree.jpg", "", "\xff\xd8\xff\xe0\x00\x10JFIF", 375081}},
		},
		{file: "mimekit/UnitTests_TestData_tnef_ukr.eml"}, // body only
		{
			file:  "roundcube/tests_MessageRendering_data_greenmail_test-message-rendering_localhost_INBOX_tnef1.eml",
			files: []want{{"AUTHORS", "application/octet-stream", "\n", 244}},
		},
		{file: "roundcube/tests_MessageRendering_data_greenmail_test-message-rendering_localhost_INBOX_tnef2.eml"}, // body only
		{
			file: "roundcube/tests_MessageRendering_data_greenmail_test-message-rendering_localhost_INBOX_tnef3.eml",
			files: []want{
				{"zappa_av1.jpg", "", "\xff\xd8\xff\xe0\x00\x10JFIF", 2937},
				{"bookmark.htm", "", "<!DOCTYPE", 85805},
			},
		},
		{
			// Labelled application/ms-tnef, but the part is a PNG image.
			file: "zbateson-mail-mime-parser/tests__data_emails_m4006.txt.eml",
			err:  errTNEFSignature,
		},
	}
	mimeCorpusDir(t)
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			data := tnefPart(t, mimeCorpusFile(t, tt.file))
			files, err := tnefFiles(data)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(files) != len(tt.files) {
				t.Fatalf("got %d files %v, want %d", len(files), tnefNames(files), len(tt.files))
			}
			total := 0
			for i, w := range tt.files {
				f := files[i]
				total += len(f.Data)
				if f.Name != w.name || f.ContentType != w.contentType {
					t.Errorf("file %d = %q (%q), want %q (%q)", i, f.Name, f.ContentType, w.name, w.contentType)
				}
				if len(f.Data) != w.size || !bytes.HasPrefix(f.Data, []byte(w.prefix)) {
					t.Errorf("file %d %q: %d bytes starting %q, want %d starting %q",
						i, f.Name, len(f.Data), f.Data[:min(len(f.Data), 12)], w.size, w.prefix)
				}
			}
			if total > len(data) {
				t.Errorf("%d bytes out of a %d-byte stream", total, len(data))
			}
		})
	}
}

func tnefNames(files []tnefFile) []string {
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	return names
}

// tnefStream builds a TNEF stream for tests.
type tnefStream struct{ bytes.Buffer }

func newTNEFStream() *tnefStream {
	s := &tnefStream{}
	s.Write(binary.LittleEndian.AppendUint32(nil, tnefSignature))
	s.Write([]byte{0x01, 0x00}) // legacy key
	return s
}

// attr appends an attribute; tag holds the attribute type in its high 16
// bits and the id in its low 16 bits.
func (s *tnefStream) attr(level byte, tag uint32, data []byte) *tnefStream {
	s.WriteByte(level)
	s.Write(binary.LittleEndian.AppendUint32(nil, tag))
	s.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(data))))
	s.Write(data)
	var sum uint16
	for _, c := range data {
		sum += uint16(c)
	}
	s.Write(binary.LittleEndian.AppendUint16(nil, sum))
	return s
}

// Full attribute tags (type << 16 | id).
const (
	tagAttachRendData = 0x00069002
	tagAttachTitle    = 0x00018010
	tagAttachData     = 0x0006800F
	tagAttachment     = 0x00069005
	tagOemCodepage    = 0x00069007
	tagMessageClass   = 0x00078008
)

// mapiBlock encodes a MAPI property block from encoded properties.
func mapiBlock(props ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(props)))
	for _, p := range props {
		b = append(b, p...)
	}
	return b
}

func mapiTag(typ, id uint16) []byte {
	b := binary.LittleEndian.AppendUint16(nil, typ)
	return binary.LittleEndian.AppendUint16(b, id)
}

// mapiVar encodes a single-valued variable-size property.
func mapiVar(typ, id uint16, v []byte) []byte {
	b := mapiTag(typ, id)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, -len(v)&3)...)
}

func mapiLong(id uint16, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(mapiTag(ptLong, id), v)
}

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return append(b, 0, 0)
}

// sampleTNEF builds a stream with, in order: a PDF named by a Unicode long
// filename, a zip carried in PR_ATTACH_DATA_BIN and named by a Windows-1252
// long filename, an embedded message, an empty attachment and an OLE
// object; a few properties of other kinds sit between the wanted ones.
func sampleTNEF() []byte {
	named := append(mapiTag(0x0003, 0x8005), make([]byte, 16)...) // named property, MNID_STRING
	named = binary.LittleEndian.AppendUint32(named, 1)
	named = binary.LittleEndian.AppendUint32(named, 6)
	named = append(named, 'x', 0, 'y', 0, 'z', 0, 0, 0) // name padded to 8
	named = binary.LittleEndian.AppendUint32(named, 42)
	multi := mapiTag(ptMulti|ptUnicode, 0x6001)
	multi = binary.LittleEndian.AppendUint32(multi, 2)
	for _, v := range [][]byte{utf16LE("a"), utf16LE("bcd")} {
		multi = binary.LittleEndian.AppendUint32(multi, uint32(len(v)))
		multi = append(multi, v...)
		multi = append(multi, make([]byte, -len(v)&3)...)
	}
	i2 := append(mapiTag(0x0002, 0x0E21), 7, 0, 0, 0)
	clsid := append(mapiTag(0x0048, 0x3714), make([]byte, 16)...)

	s := newTNEFStream().
		attr(tnefLevelMessage, tagMessageClass, []byte("IPM.Note\x00")).
		// 1: classic attAttachData, long name and MIME tag in the MAPI block.
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("QUARTE~1.PDF\x00")).
		attr(tnefLevelAttachment, tagAttachData, []byte("%PDF-1.4 test")).
		attr(tnefLevelAttachment, tagAttachment, mapiBlock(
			i2, named, multi, clsid,
			mapiVar(ptUnicode, prAttachLongFilename, utf16LE("Quarterly report.pdf")),
			mapiVar(ptString8, prAttachMimeTag, []byte("application/pdf\x00")),
			mapiLong(prAttachMethod, 1),
		)).
		// 2: data in PR_ATTACH_DATA_BIN, 8-bit long name.
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachment, mapiBlock(
			mapiVar(ptBinary, prAttachDataObj, []byte("PK\x03\x04zip")),
			mapiVar(ptString8, prAttachLongFilename, []byte("caf\xe9.zip\x00")),
		)).
		// 3: embedded message, skipped.
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("Untitled Attachment\x00")).
		attr(tnefLevelAttachment, tagAttachData, []byte("This attachment is a MAPI 1.0 embedded message")).
		attr(tnefLevelAttachment, tagAttachment, mapiBlock(
			mapiVar(ptObject, prAttachDataObj, append(bytes.Clone(iidIMessage), 0x78, 0x9F, 0x3E, 0x22, 1, 0)),
			mapiLong(prAttachMethod, attachEmbeddedMsg),
		)).
		// 4: neither name nor data, skipped.
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		// 5: OLE object: the data follows the interface id.
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("OLE.BIN\x00")).
		attr(tnefLevelAttachment, tagAttachment, mapiBlock(
			mapiVar(ptObject, prAttachDataObj, append(make([]byte, 16), "\xd0\xcf\x11\xe0ole"...)),
			mapiLong(prAttachMethod, 6),
		))
	return s.Bytes()
}

func TestTNEFSample(t *testing.T) {
	data := sampleTNEF()
	data[len(data)-1] ^= 0xFF // a bad checksum is not rejected
	files, err := tnefFiles(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []tnefFile{
		{Name: "Quarterly report.pdf", Data: []byte("%PDF-1.4 test"), ContentType: "application/pdf"},
		{Name: "café.zip", Data: []byte("PK\x03\x04zip")},
		{Name: "OLE.BIN", Data: []byte("\xd0\xcf\x11\xe0ole")},
	}
	if len(files) != len(want) {
		t.Fatalf("got %v, want %d files", tnefNames(files), len(want))
	}
	for i, w := range want {
		if f := files[i]; f.Name != w.Name || f.ContentType != w.ContentType || !bytes.Equal(f.Data, w.Data) {
			t.Errorf("file %d = %q %q %q, want %q %q %q", i, f.Name, f.ContentType, f.Data, w.Name, w.ContentType, w.Data)
		}
	}
	// The data is a copy, not a view of the input.
	files[0].Data[0] = 'X'
	if !bytes.Contains(data, []byte("%PDF-1.4 test")) {
		t.Error("file data aliases the input")
	}
}

func TestTNEFCodepage(t *testing.T) {
	data := newTNEFStream().
		attr(tnefLevelMessage, tagOemCodepage, []byte{0xE3, 0x04, 0, 0, 0, 0, 0, 0}). // 1251
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("\xce\xf2\xf7\xe5\xf2.txt\x00")).
		attr(tnefLevelAttachment, tagAttachData, []byte("x")).
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("Отчет-utf8.txt\x00")).
		attr(tnefLevelAttachment, tagAttachData, []byte("y")).
		Bytes()
	files, err := tnefFiles(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := tnefNames(files); len(got) != 2 || got[0] != "Отчет.txt" || got[1] != "Отчет-utf8.txt" {
		t.Errorf("names = %q", got)
	}
}

func TestTNEFMalformed(t *testing.T) {
	valid := sampleTNEF()
	hugeAttr := newTNEFStream().
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("A.TXT\x00")).
		Bytes()
	hugeAttr = append(hugeAttr, tnefLevelAttachment, 0x0F, 0x80, 0x06, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 'a', 'b')
	hugeProp := newTNEFStream().
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("B.TXT\x00")).
		attr(tnefLevelAttachment, tagAttachment, mapiBlock(
			mapiLong(prAttachMethod, 1),
			// a binary value claiming 4 GiB, then a value count of 2^32-1
			append(mapiTag(ptBinary, prAttachDataObj), 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF),
		)).
		attr(tnefLevelAttachment, tagAttachment, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x10, 0x07, 0x37, 0xFF, 0xFF, 0xFF, 0x7F}).
		Bytes()
	noChecksum := newTNEFStream().
		attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
		attr(tnefLevelAttachment, tagAttachTitle, []byte("C.TXT\x00")).
		attr(tnefLevelAttachment, tagAttachData, []byte("data")).
		Bytes()
	noChecksum = noChecksum[:len(noChecksum)-2]

	tests := []struct {
		name  string
		data  []byte
		names []string
		err   error
	}{
		{"empty", nil, nil, errTNEFSignature},
		{"bad signature", append([]byte{0x78, 0x9F, 0x3E, 0x23}, valid[4:]...), nil, errTNEFSignature},
		{"signature only", valid[:4], nil, errTNEFSignature},
		{"header only", valid[:6], nil, nil},
		{"cut in attribute header", valid[:6+4], nil, errTNEFTruncated},
		{"cut in second attachment", valid[:bytes.Index(valid, []byte("PK\x03\x04"))+2], []string{"Quarterly report.pdf"}, errTNEFTruncated},
		{"huge attribute length", hugeAttr, []string{"A.TXT"}, errTNEFTruncated},
		{"huge property length and count", hugeProp, []string{"B.TXT"}, nil},
		{"missing final checksum", noChecksum, []string{"C.TXT"}, errTNEFTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := tnefFiles(tt.data)
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if got := tnefNames(files); strings.Join(got, "|") != strings.Join(tt.names, "|") {
				t.Errorf("names = %q, want %q", got, tt.names)
			}
		})
	}

	// Every prefix of a valid stream decodes without panicking, to files
	// that fit in it, and fails unless it ends between attributes.
	for n := range len(valid) {
		files, err := tnefFiles(valid[:n])
		total := 0
		for _, f := range files {
			total += len(f.Data)
		}
		if total > n {
			t.Fatalf("prefix %d: %d bytes out", n, total)
		}
		if err != nil && !errors.Is(err, errTNEFTruncated) && !errors.Is(err, errTNEFSignature) {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
}

func TestTNEFMaxFiles(t *testing.T) {
	s := newTNEFStream()
	for range tnefMaxFiles + 10 {
		s.attr(tnefLevelAttachment, tagAttachRendData, make([]byte, 14)).
			attr(tnefLevelAttachment, tagAttachTitle, []byte("F.TXT\x00"))
	}
	files, err := tnefFiles(s.Bytes())
	if len(files) != tnefMaxFiles || !errors.Is(err, errTNEFTooMany) {
		t.Errorf("got %d files, %v; want %d, %v", len(files), err, tnefMaxFiles, errTNEFTooMany)
	}
}

func FuzzTNEF(f *testing.F) {
	valid := sampleTNEF()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(newTNEFStream().attr(tnefLevelAttachment, tagAttachment, mapiBlock(mapiLong(prAttachMethod, 1))).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := tnefFiles(data)
		total := 0
		for _, f := range files {
			total += len(f.Data)
			if f.Name == "" && len(f.Data) == 0 {
				t.Error("file with neither name nor data")
			}
		}
		if total > len(data) {
			t.Errorf("%d bytes out of %d in", total, len(data))
		}
		if len(files) > tnefMaxFiles {
			t.Errorf("%d files", len(files))
		}
		if errors.Is(err, errTNEFSignature) && len(files) > 0 {
			t.Error("files despite a bad signature")
		}
	})
}
