package mail

import (
	"bufio"
	"bytes"
	"io"
)

// maxPreamble bounds the preamble kept for a multipart entity that turns
// out to have no delimiter at all (it is then read as text).
const maxPreamble = 1 << 20

// splitter reads the body parts of a multipart entity one after another
// as a stream, as leniently as mail readers do: a delimiter is a line
// that starts with "--" and the boundary followed only by white space,
// or by "--" and anything for the last one, a missing close delimiter ends the last part
// at EOF, and the line break before a delimiter belongs to it.
type splitter struct {
	br       *bufio.Reader
	boundary string
	dash     []byte // "--" + boundary
	state    int
	midLine  bool   // the next read continues a line cut by the buffer
	pending  []byte // line ending held back until the next line is known
	buf      []byte // bytes of the current part not yet returned
	preamble bytes.Buffer
	eof      bool // the input has ended
}

const (
	inPreamble = iota
	inPart
	atDelimiter // a delimiter ended the part; another part follows
	finished    // close delimiter or EOF
)

func newSplitter(r io.Reader, boundary string) *splitter {
	return &splitter{br: bufio.NewReaderSize(r, 4<<10), boundary: boundary, dash: []byte("--" + boundary)}
}

// resume goes on after a close delimiter that ended a nested entity with
// the same boundary: what follows up to the next delimiter is skipped.
func (s *splitter) resume() {
	if s.state == finished && !s.eof {
		s.state, s.pending, s.midLine, s.buf = inPreamble, nil, false, nil
		s.preamble.Reset()
	}
}

// next moves to the next part, skipping what is left of the current one
// (or the preamble), and reports whether there is one.
func (s *splitter) next() bool {
	for s.state == inPreamble || s.state == inPart {
		w := io.Discard
		if s.state == inPreamble {
			w = &limitedBuffer{b: &s.preamble, left: maxPreamble}
		}
		_, _ = io.Copy(w, readerOnly{s})
		if s.state == inPreamble {
			s.state = finished
		}
	}
	if s.state != atDelimiter {
		return false
	}
	s.state, s.pending, s.midLine, s.buf = inPart, nil, false, nil
	return true
}

// Read reads the current part (or the preamble before the first next).
func (s *splitter) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.state != inPart && s.state != inPreamble {
			return 0, io.EOF
		}
		chunk, err := s.br.ReadSlice('\n')
		partial := err == bufio.ErrBufferFull
		if !s.midLine {
			if end, ok := s.delimiter(chunk); ok {
				s.pending = nil
				s.state = atDelimiter
				if end {
					s.state = finished
				}
				return 0, io.EOF
			}
		}
		s.buf = append(append(s.buf[:0], s.pending...), chunk...)
		s.pending = nil
		if !partial {
			if n := eolLen(s.buf); n > 0 {
				s.pending = append(s.pending, s.buf[len(s.buf)-n:]...)
				s.buf = s.buf[:len(s.buf)-n]
			}
		}
		s.midLine = partial
		if err != nil && !partial {
			s.buf = append(s.buf, s.pending...)
			s.pending = nil
			s.state, s.eof = finished, true
			if len(s.buf) == 0 {
				return 0, io.EOF
			}
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// delimiter reports whether line is a delimiter line, and whether it is
// the close delimiter.
func (s *splitter) delimiter(line []byte) (end, ok bool) {
	if !bytes.HasPrefix(line, s.dash) {
		return false, false
	}
	rest := line[len(s.dash):]
	if bytes.HasPrefix(rest, []byte("--")) {
		return true, true // whatever follows a close delimiter is epilogue
	}
	if len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return false, false
	}
	return end, true
}

func eolLen(b []byte) int {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(b, []byte("\n")):
		return 1
	}
	return 0
}

// readerOnly hides WriteTo and other methods so io.Copy uses Read.
type readerOnly struct{ io.Reader }

// limitedBuffer keeps the first left bytes written and drops the rest.
type limitedBuffer struct {
	b    *bytes.Buffer
	left int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.left > 0 {
		n := min(len(p), l.left)
		l.b.Write(p[:n])
		l.left -= n
	}
	return len(p), nil
}

// ReadFrom reads r to its end in small chunks, so that io.Copy of a
// preamble needs no 32 KB buffer.
func (l *limitedBuffer) ReadFrom(r io.Reader) (int64, error) {
	chunk := make([]byte, 512)
	var n int64
	for {
		k, err := r.Read(chunk)
		n += int64(k)
		_, _ = l.Write(chunk[:k])
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
