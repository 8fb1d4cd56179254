package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/imap-mcp/imap-mcp/auth"
)

// A large send_message or reply_message request carries its files as
// base64 strings inside the JSON-RPC body. Read by the MCP library, such
// a body is held several times over (the body, the arguments decoded to
// a map, their raw copy, the handler's arguments) before a file is even
// decoded: 14 MB of request cost 165 MB. So a large request's body is
// rewritten as it arrives: the value of every "content_base64" member is
// decoded from the stream into the request's file table and replaced by
// a reference only that request can resolve (it holds a random nonce).
// The MCP library then reads a small body, and each file is held once,
// decoded.

// fileRefPrefix starts a reference to a decoded file.
const fileRefPrefix = "imcp-file:"

// inlineFile is one decoded content_base64 value.
type inlineFile struct {
	data  []byte
	size  int64 // decoded bytes, counted past maxAttachmentBytes
	err   error // errNotBase64, or nil
	taken bool  // handed over by take
}

var errNotBase64 = errors.New("not base64")

// fileTable holds the files taken out of one request.
type fileTable struct {
	nonce string
	files []inlineFile
}

type fileTableKey struct{}

// filesFrom returns the file table of the request ctx belongs to, if any.
func filesFrom(ctx context.Context) *fileTable {
	t, _ := ctx.Value(fileTableKey{}).(*fileTable)
	return t
}

// take hands over the file a content_base64 value refers to, when it is
// a reference of this table, and lets go of it: a file is held only as
// long as the call that uses it needs it, and a reference is good once.
func (t *fileTable) take(v string) (inlineFile, bool) {
	if t == nil {
		return inlineFile{}, false
	}
	rest, ok := strings.CutPrefix(v, fileRefPrefix+t.nonce+":")
	if !ok {
		return inlineFile{}, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(t.files) || t.files[i].taken {
		return inlineFile{}, false
	}
	f := t.files[i]
	t.files[i] = inlineFile{taken: true}
	return f, true
}

// errBodyJSON reports a body that is not JSON inside a string.
var errBodyJSON = errors.New("request body is not valid JSON")

// bodyErr is the error of a read that stopped inside a string.
func bodyErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errBodyJSON
	}
	return err
}

// minExtract is the shortest content_base64 value taken out: a shorter
// one stays in the body, so the rewritten body is never larger than the
// request (a reference is about 60 bytes).
const minExtract = 4 << 10

// extractFiles copies the JSON read from r, replacing the string value
// of each "content_base64" member of at least minExtract bytes (at most
// maxAttachments of them) by a reference into the returned table, with
// the value decoded (up to maxFile bytes; larger files are only
// counted). Everything else is copied as it is; a string that is not
// JSON (a raw control character, a bad escape, no end) is refused.
func extractFiles(r io.Reader, maxFile int) ([]byte, *fileTable, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	t := &fileTable{nonce: auth.NewToken()}
	var out bytes.Buffer
	var key string // the last string read, when short: a member name
	armed := false // a "content_base64" member name and its colon were read
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return out.Bytes(), t, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case c == '"' && armed && len(t.files) < maxAttachments:
			f, raw, err := decodeStringBase64(br, maxFile)
			switch {
			case err != nil:
				return nil, nil, err
			case raw != nil: // short: kept as written
				out.WriteByte('"')
				out.Write(raw)
				out.WriteByte('"')
			default:
				fmt.Fprintf(&out, `"%s%s:%d"`, fileRefPrefix, t.nonce, len(t.files))
				t.files = append(t.files, f)
			}
			armed, key = false, ""
		case c == '"':
			out.WriteByte(c)
			if key, err = copyString(br, &out); err != nil {
				return nil, nil, err
			}
			armed = false
		case c == ':' && key == "content_base64":
			out.WriteByte(c)
			armed, key = true, ""
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			out.WriteByte(c)
		default:
			out.WriteByte(c)
			armed, key = false, ""
		}
	}
}

// copyString copies the rest of a JSON string (after its opening quote)
// to out and returns its value when it is at most 32 bytes as written.
func copyString(br *bufio.Reader, out *bytes.Buffer) (string, error) {
	var raw []byte
	n := 0
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", bodyErr(err)
		}
		out.WriteByte(c)
		switch {
		case c == '"':
			if n > 32 {
				return "", nil
			}
			if bytes.IndexByte(raw, '\\') < 0 {
				return string(raw), nil
			}
			var v string // a member name written with escapes
			if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &v); err != nil {
				return "", errBodyJSON
			}
			return v, nil
		case c < 0x20:
			return "", errBodyJSON
		case c == '\\':
			e, err := br.ReadByte()
			if err != nil {
				return "", bodyErr(err)
			}
			out.WriteByte(e)
			if n += 2; n <= 32 {
				raw = append(raw, c, e)
			}
			continue
		}
		if n++; n <= 32 {
			raw = append(raw, c)
		}
	}
}

// decodeStringBase64 decodes the rest of a JSON string (after its opening
// quote) as base64, padded or not, with line breaks (escaped) ignored. A
// string of less than minExtract bytes as written is returned as raw, to
// be kept. A string that is not base64 yields a file with errNotBase64;
// one that is not JSON, errBodyJSON.
func decodeStringBase64(br *bufio.Reader, maxFile int) (inlineFile, []byte, error) {
	var f inlineFile
	var chunks [][]byte // decoded, joined at the end: no regrowth of a large file
	var quantum []byte  // base64 characters not yet decoded
	raw := []byte{}     // the string as written, while it is short
	var buf [4 << 10]byte
	// flush decodes the whole quanta held, or at the end everything,
	// unpadded when it is not whole quanta.
	flush := func(final bool) {
		n := len(quantum) &^ 3
		if final {
			n = len(quantum)
		}
		if n > 0 && f.err == nil {
			enc := base64.StdEncoding
			if n%4 != 0 {
				enc = base64.RawStdEncoding
			}
			m, err := enc.Decode(buf[:], quantum[:n])
			switch f.size += int64(m); {
			case err != nil:
				f.err, chunks = errNotBase64, nil
			case f.size <= int64(maxFile):
				chunks = append(chunks, slices.Clone(buf[:m]))
			default:
				chunks = nil // only counted from here on
			}
		}
		quantum = append(quantum[:0], quantum[n:]...)
	}
	read := func() (byte, error) {
		c, err := br.ReadByte()
		if err != nil {
			return 0, bodyErr(err)
		}
		if raw != nil {
			if raw = append(raw, c); len(raw) >= minExtract {
				raw = nil
			}
		}
		return c, nil
	}
	for {
		c, err := read()
		if err != nil {
			return f, nil, err
		}
		switch {
		case c == '"':
			if raw != nil {
				return inlineFile{}, raw[:len(raw)-1], nil
			}
			flush(true)
			if f.err == nil && f.size <= int64(maxFile) && f.size > 0 {
				f.data = bytes.Join(chunks, nil)
			}
			return f, nil, nil
		case c < 0x20:
			return f, nil, errBodyJSON
		case c == '\\':
			e, err := read()
			if err != nil {
				return f, nil, err
			}
			switch e {
			case '/':
				c = '/'
			case 'n', 'r':
				continue
			case 'u':
				var hex [4]byte
				for i := range hex {
					if hex[i], err = read(); err != nil {
						return f, nil, err
					}
				}
				v, err := strconv.ParseUint(string(hex[:]), 16, 16)
				switch {
				case err != nil:
					return f, nil, errBodyJSON
				case v == '\n' || v == '\r':
					continue
				case v >= 0x80:
					f.err = errNotBase64
					continue
				}
				c = byte(v)
			case '"', '\\', 'b', 'f', 't':
				f.err = errNotBase64
				continue
			default:
				return f, nil, errBodyJSON
			}
		}
		if quantum = append(quantum, c); len(quantum) >= 4000 {
			flush(false)
		}
	}
}
