package mail

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
)

// MS-TNEF (winmail.dat, application/ms-tnef) as described by [MS-OXTNEF]:
// a signature, a legacy key, then attributes of the form
//
//	level(1) id(4: low 16 bits id, high 16 bits type) length(4) data checksum(2)
//
// all little-endian. Only what is needed to recover attached files is
// decoded; message bodies, recipients and calendar data are skipped.

const (
	tnefSignature = 0x223E9F78

	// tnefMaxBytes bounds the stream tnefFiles accepts.
	tnefMaxBytes = 64 << 20
	// tnefMaxFiles bounds the attachments tnefFiles returns.
	tnefMaxFiles = 500

	tnefLevelMessage    = 1
	tnefLevelAttachment = 2

	// Attribute ids (low 16 bits of the attribute tag).
	attAttachData     = 0x800F
	attAttachTitle    = 0x8010
	attAttachRendData = 0x9002
	attAttachment     = 0x9005
	attOemCodepage    = 0x9007

	// MAPI property ids and types.
	prAttachDataObj      = 0x3701 // PR_ATTACH_DATA_BIN / PR_ATTACH_DATA_OBJ
	prAttachMethod       = 0x3705
	prAttachLongFilename = 0x3707
	prAttachMimeTag      = 0x370E
	attachEmbeddedMsg    = 5 // PR_ATTACH_METHOD value ATTACH_EMBEDDED_MSG

	ptString8 = 0x001E
	ptUnicode = 0x001F
	ptBinary  = 0x0102
	ptObject  = 0x000D
	ptLong    = 0x0003
	ptMulti   = 0x1000
)

// iidIMessage is the interface id that prefixes a PT_OBJECT value holding
// an embedded message, {00020307-0000-0000-C000-000000000046}.
var iidIMessage = []byte{0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}

var (
	errTNEFSignature = errors.New("tnef: bad signature")
	errTNEFTruncated = errors.New("tnef: truncated stream")
	errTNEFTooLarge  = errors.New("tnef: stream too large")
	errTNEFTooMany   = errors.New("tnef: too many attachments")
)

// tnefFile is one file carried inside a TNEF stream.
type tnefFile struct {
	Name        string // long filename when present (MAPI PR_ATTACH_LONG_FILENAME 0x3707), else attAttachTitle
	Data        []byte
	ContentType string // from MAPI PR_ATTACH_MIME_TAG 0x370E when present, else ""
}

// tnefAttach collects the attributes of one attachment until the next
// attAttachRendData or the end of the stream.
type tnefAttach struct {
	title, longName, mimeTag string
	data                     []byte // attAttachData
	mapiData                 []byte // PR_ATTACH_DATA_BIN/OBJ, used when data is absent
	hasMapiData              bool
	embedded                 bool
}

// tnefFiles decodes a TNEF stream of at most tnefMaxBytes and returns its
// attached files in stream order. Each file's Data is a copy, so the total
// returned is bounded by len(data). Embedded messages and attachments with
// neither name nor data are skipped. It fails on a bad signature; on a
// truncated or otherwise unreadable stream, or past tnefMaxFiles files, it
// returns the files decoded so far together with an error.
func tnefFiles(data []byte) ([]tnefFile, error) {
	if len(data) > tnefMaxBytes {
		return nil, errTNEFTooLarge
	}
	if len(data) < 6 || binary.LittleEndian.Uint32(data) != tnefSignature {
		return nil, errTNEFSignature
	}
	b := data[6:] // signature, legacy key
	var (
		files    []tnefFile
		cur      *tnefAttach
		codepage uint32
	)
	flush := func() bool {
		if cur == nil {
			return true
		}
		f, ok := cur.file(codepage)
		cur = nil
		if !ok {
			return true
		}
		if len(files) == tnefMaxFiles {
			return false
		}
		files = append(files, f)
		return true
	}
	for len(b) > 0 {
		if len(b) < 9 {
			flush()
			return files, errTNEFTruncated
		}
		level := b[0]
		id := binary.LittleEndian.Uint32(b[1:]) & 0xFFFF
		n := binary.LittleEndian.Uint32(b[5:])
		b = b[9:]
		if uint64(n) > uint64(len(b)) {
			flush()
			return files, errTNEFTruncated
		}
		val := b[:n]
		b = b[n:]
		// The checksum (sum of the data bytes mod 65536) is not verified:
		// writers get it wrong and a mismatch says nothing a reader can use.
		truncated := len(b) < 2
		if !truncated {
			b = b[2:]
		}

		switch {
		case level == tnefLevelMessage && id == attOemCodepage && len(val) >= 4:
			codepage = binary.LittleEndian.Uint32(val)
		case level != tnefLevelAttachment:
			// message-level attribute: not needed for attachments
		case id == attAttachRendData:
			if !flush() {
				return files, errTNEFTooMany
			}
			cur = &tnefAttach{}
		default:
			if cur == nil { // attachment attributes without attAttachRendData
				cur = &tnefAttach{}
			}
			switch id {
			case attAttachTitle:
				cur.title = tnefString8(val, codepage)
			case attAttachData:
				cur.data = val
			case attAttachment:
				cur.readMAPI(val, codepage)
			}
		}
		if truncated {
			flush()
			return files, errTNEFTruncated
		}
	}
	if !flush() {
		return files, errTNEFTooMany
	}
	return files, nil
}

// file turns the collected attributes into a tnefFile; ok is false for an
// embedded message or an attachment with neither name nor data.
func (a *tnefAttach) file(codepage uint32) (f tnefFile, ok bool) {
	if a.embedded {
		return f, false
	}
	f.Name = a.longName
	if f.Name == "" {
		f.Name = a.title
	}
	data := a.data
	if len(data) == 0 && a.hasMapiData {
		data = a.mapiData
	}
	if f.Name == "" && len(data) == 0 {
		return f, false
	}
	f.Data = bytes.Clone(data)
	if f.Data == nil {
		f.Data = []byte{}
	}
	f.ContentType = a.mimeTag
	return f, true
}

// readMAPI reads an attAttachment MAPI property block, keeping the
// properties that describe the attached file. A malformed block is read
// up to the first property that cannot be located.
func (a *tnefAttach) readMAPI(b []byte, codepage uint32) {
	r := tnefProps{b: b}
	count, ok := r.u32()
	if !ok {
		return
	}
	for i := uint32(0); i < count && len(r.b) > 0; i++ {
		typ, ok1 := r.u16()
		id, ok2 := r.u16()
		if !ok1 || !ok2 {
			return
		}
		if id >= 0x8000 && !r.skipName() {
			return
		}
		values, ok := r.values(typ)
		if !ok {
			return
		}
		if typ&ptMulti != 0 || len(values) == 0 {
			continue // none of the properties wanted here is multi-valued
		}
		v := values[0]
		switch id {
		case prAttachLongFilename:
			if s := tnefPropString(typ, v, codepage); s != "" {
				a.longName = s
			}
		case prAttachMimeTag:
			a.mimeTag = tnefPropString(typ, v, codepage)
		case prAttachMethod:
			if typ == ptLong && len(v) >= 4 && binary.LittleEndian.Uint32(v) == attachEmbeddedMsg {
				a.embedded = true
			}
		case prAttachDataObj:
			switch typ {
			case ptBinary:
				a.mapiData, a.hasMapiData = v, true
			case ptObject:
				// A PT_OBJECT value starts with the interface id of the object.
				if len(v) >= 16 && bytes.Equal(v[:16], iidIMessage) {
					a.embedded = true
				} else if len(v) >= 16 {
					a.mapiData, a.hasMapiData = v[16:], true
				}
			}
		}
	}
}

// tnefProps reads the little-endian fields of a MAPI property block.
type tnefProps struct{ b []byte }

func (r *tnefProps) u16() (uint16, bool) {
	if len(r.b) < 2 {
		return 0, false
	}
	v := binary.LittleEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v, true
}

func (r *tnefProps) u32() (uint32, bool) {
	if len(r.b) < 4 {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, true
}

// take returns the next n bytes and skips the padding to a multiple of
// four (a missing final padding is tolerated).
func (r *tnefProps) take(n uint32) ([]byte, bool) {
	if uint64(n) > uint64(len(r.b)) {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	pad := int(-n & 3)
	r.b = r.b[min(pad, len(r.b)):]
	return v, true
}

// skipName skips the name of a named property: a GUID, a kind, then a
// numeric id (kind 0) or a length-prefixed UTF-16 name (kind 1).
func (r *tnefProps) skipName() bool {
	if len(r.b) < 20 {
		return false
	}
	kind := binary.LittleEndian.Uint32(r.b[16:])
	r.b = r.b[20:]
	n, ok := r.u32()
	switch {
	case !ok:
		return false
	case kind == 0:
		return true
	case kind == 1:
		_, ok = r.take(n)
		return ok
	}
	return false
}

// tnefFixedWidth is the encoded size of a value of a fixed-size MAPI type
// (16-bit values are padded to four bytes), -1 for a variable-size type
// and -2 for a type whose size is unknown.
func tnefFixedWidth(typ uint16) int {
	switch typ &^ ptMulti {
	case 0x0001: // PT_NULL
		return 0
	case 0x0002, 0x0003, 0x0004, 0x000A, 0x000B: // I2, LONG, R4, ERROR, BOOLEAN
		return 4
	case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // DOUBLE, CURRENCY, APPTIME, I8, SYSTIME
		return 8
	case 0x0048: // CLSID
		return 16
	case ptString8, ptUnicode, ptBinary, ptObject:
		return -1
	}
	return -2
}

// values reads the value(s) of a property of type typ: one fixed-size
// value, or a count followed by that many fixed-size or length-prefixed
// values. It fails when the values cannot be located, which makes the
// rest of the block unreadable.
func (r *tnefProps) values(typ uint16) ([][]byte, bool) {
	w := tnefFixedWidth(typ)
	if w == -2 {
		return nil, false
	}
	count := uint32(1)
	if typ&ptMulti != 0 || w == -1 {
		var ok bool
		if count, ok = r.u32(); !ok {
			return nil, false
		}
		// Every value takes at least four bytes (a zero-width PT_NULL is
		// counted as four, too), which bounds a hostile count.
		if uint64(count)*4 > uint64(len(r.b)) {
			return nil, false
		}
	}
	if w == 0 {
		return nil, true
	}
	vals := make([][]byte, 0, min(count, 16))
	for range count {
		n := uint32(w)
		if w == -1 {
			var ok bool
			if n, ok = r.u32(); !ok {
				return nil, false
			}
		}
		v, ok := r.take(n)
		if !ok {
			return nil, false
		}
		vals = append(vals, v)
	}
	return vals, true
}

// tnefPropString decodes a PT_STRING8 or PT_UNICODE value.
func tnefPropString(typ uint16, v []byte, codepage uint32) string {
	switch typ {
	case ptString8:
		return tnefString8(v, codepage)
	case ptUnicode:
		u := make([]uint16, 0, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			c := binary.LittleEndian.Uint16(v[i:])
			if c == 0 {
				break
			}
			u = append(u, c)
		}
		return string(utf16.Decode(u))
	}
	return ""
}

// tnefString8 decodes a NUL-terminated 8-bit string: as UTF-8 when it is
// valid UTF-8, else in the stream's OEM code page when that is known, else
// as Windows-1252.
func tnefString8(v []byte, codepage uint32) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	if utf8.Valid(v) {
		return string(v)
	}
	if e := tnefCodepage(codepage); e != nil {
		if s, err := e.NewDecoder().Bytes(v); err == nil && utf8.Valid(s) {
			return string(s)
		}
	}
	s, _ := charmap.Windows1252.NewDecoder().Bytes(v)
	return string(s)
}

// tnefCodepages names the multi-byte and other code pages an OEM code
// page attribute may carry.
var tnefCodepages = map[uint32]string{
	866: "ibm866", 932: "shift_jis", 936: "gbk", 949: "euc-kr", 950: "big5",
	20866: "koi8-r", 21866: "koi8-u", 50220: "iso-2022-jp", 51932: "euc-jp", 54936: "gb18030",
}

// tnefCodepage maps a Windows code page number to its encoding, or nil.
func tnefCodepage(cp uint32) encoding.Encoding {
	var label string
	switch {
	case cp == 874 || cp >= 1250 && cp <= 1258:
		label = "windows-" + strconv.Itoa(int(cp))
	case cp >= 28592 && cp <= 28606:
		label = "iso-8859-" + strconv.Itoa(int(cp-28590))
	default:
		label = tnefCodepages[cp]
	}
	if label == "" {
		return nil
	}
	e, err := htmlindex.Get(label)
	if err != nil {
		return nil
	}
	return e
}
