package mail

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Limits on what an IMAP server may send, which the IMAP client would
// otherwise buffer without bound. A server that exceeds one loses its
// connection with an error that names the limit.
const (
	// MaxResponseLine bounds one response line, literals excluded.
	MaxResponseLine = 8 << 20
	// MaxLiteral bounds one literal the client holds in memory. Message
	// and part bodies that the engine streams are not bounded by it.
	MaxLiteral = 8 << 20
	// MaxResponseBytes bounds what one command receives outside streamed
	// bodies, and what arrives between commands.
	MaxResponseBytes = 8 << 20
	// MaxNesting bounds the depth of parenthesized lists in one response
	// (the IMAP library parses a BODYSTRUCTURE in time quadratic in its
	// depth; Dovecot nests MIME parts at most 100 deep).
	MaxNesting = 256
)

// ErrLimit is wrapped by the error of a connection whose server sent more
// than a limit allows.
var ErrLimit = errors.New("server response over a limit")

var errAnswerOver = fmt.Errorf("%w: more than %d MiB in one answer", ErrLimit, MaxResponseBytes>>20)

// responseGuard watches the bytes an IMAP server sends, as the protocol
// frames them (lines, and literals announced by {N} at a line's end),
// and fails the read that crosses a limit.
type responseGuard struct {
	mu        sync.Mutex
	line      int    // bytes of the current line outside literals
	tail      []byte // the end of the current line, to find a literal's size and owner
	literal   int64  // bytes left of the current literal
	streamed  bool   // the current literal is a body the engine streams
	received  int64  // bytes since reset, streamed bodies excluded
	streaming bool   // the running command streams message bodies
	bodyLimit int64  // bytes of streamed bodies the command may receive in all; 0: any
	bodies    int64  // bytes of streamed bodies announced since reset
	head      []byte // the first bytes of the current response
	kind      kind   // what the current response is, once its first line ends
	caps      bool   // it holds a capability list
	cut       bool   // the current line's start has left tail
	closeAt   int    // 1 + where in the current line its first ']' is; 0: none yet
	parenAt   int    // 1 + where in the current line its first '(' is; 0: none yet
	broken    bool   // a line break came inside a quoted string
	depth     int    // open parentheses of the current response
	quoted    bool   // inside a quoted string of the current response
	escaped   bool   // after a backslash in that string
	err       error
}

// bodyLiteralAt reports that line ends by announcing a message or part
// body: "BODY[…] {N}", "BODY[…]<0> {N}", "BINARY[…] {N}", "RFC822 {N}",
// in any case, the item's name starting a word (or line), "~" and "+"
// allowed as in a literal. (It is a body only as an item of the FETCH
// list itself, not inside a BODYSTRUCTURE: endLine checks that.)
func bodyLiteralAt(line []byte) bool {
	i := len(line)
	if i > 0 && line[i-1] == '\r' {
		i--
	}
	if i == 0 || line[i-1] != '}' {
		return false
	}
	i--
	if i > 0 && line[i-1] == '+' {
		i--
	}
	j := skipDigitsBack(line, i)
	if j == i || j == 0 || line[j-1] != '{' {
		return false
	}
	i = j - 1
	if i > 0 && line[i-1] == '~' {
		i--
	}
	if i == 0 || line[i-1] != ' ' {
		return false
	}
	i--
	if wordBefore(line, i, "RFC822") {
		return true
	}
	if i > 0 && line[i-1] == '>' { // a partial fetch's origin: <N>
		j := skipDigitsBack(line, i-1)
		if j == i-1 || j == 0 || line[j-1] != '<' {
			return false
		}
		i = j - 1
	}
	if i == 0 || line[i-1] != ']' {
		return false
	}
	// The section holds no "]"; any "[" before it may open it.
	for k := i - 2; k >= 0 && line[k] != ']'; k-- {
		if line[k] == '[' && (wordBefore(line, k, "BODY") || wordBefore(line, k, "BINARY")) {
			return true
		}
	}
	return false
}

// skipDigitsBack returns where the ASCII digits that end line[:i] start.
func skipDigitsBack(line []byte, i int) int {
	for i > 0 && '0' <= line[i-1] && line[i-1] <= '9' {
		i--
	}
	return i
}

// wordBefore reports that line[:i] ends with word, in any case, at the
// line's start or after a space or "(".
func wordBefore(line []byte, i int, word string) bool {
	j := i - len(word)
	return j >= 0 && bytes.EqualFold(line[j:i], []byte(word)) && (j == 0 || line[j-1] == ' ' || line[j-1] == '(')
}

// headLen bytes of a response are kept to read its kind from.
const headLen = 64

// kind is what a response is, read from the start of its first line as
// the IMAP library reads it.
type kind uint8

const (
	kindUnread     kind = iota // the first line has not ended
	kindOther                  // data: its quotes and literals count
	kindFetch                  // a FETCH response, the only one whose literals may be bodies
	kindStatus                 // a status response or a continuation request: free text to the line's end
	kindCode                   // a status response whose text starts with a response code
	kindUnreadable             // a start no server sends, too long to read the kind from
)

// kindOf reads the kind of the response that starts with head (at most
// headLen bytes of it), and whether it holds a capability list (a
// CAPABILITY or ENABLED response, or a CAPABILITY response code). As
// the IMAP library does: "+" starts a continuation request; every tagged
// response is read as a status one (or ends the connection); an untagged
// one is "*", an optional number and its type, which is compared without
// regard to case (a response code's name with regard to it).
func kindOf(head []byte) (k kind, caps bool) {
	if len(head) > 0 && head[0] == '+' {
		return kindStatus, false
	}
	rest, untagged := bytes.CutPrefix(head, []byte("* "))
	numbered := false
	if untagged {
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n > 10 {
			return kindUnreadable, false // more than a 32-bit number, or one padded to push its type out of sight
		}
		if n > 0 {
			if rest, numbered = bytes.CutPrefix(rest[n:], []byte(" ")); !numbered {
				return kindOther, false
			}
		}
	} else {
		i := bytes.IndexByte(head, ' ')
		if i < 0 {
			return kindUnreadable, false
		}
		rest = head[i+1:]
	}
	atom, after := atomAt(rest)
	if len(after) < 2 && len(head) == headLen {
		return kindUnreadable, false // what follows the type is out of sight
	}
	// Upper-cased as the library does it, which makes "ı" an "I" and "ſ" an "S".
	typ := strings.ToUpper(string(atom))
	switch {
	case !untagged || typ == "OK" || typ == "NO" || typ == "BAD" || typ == "BYE" || typ == "PREAUTH":
		code, ok := bytes.CutPrefix(after, []byte(" ["))
		if !ok {
			return kindStatus, false
		}
		if name, after := atomAt(code); len(after) > 0 {
			return kindCode, string(name) == "CAPABILITY"
		}
		return kindUnreadable, false // the code's name is out of sight
	case numbered && typ == "FETCH" && bytes.HasPrefix(after, []byte(" (")):
		return kindFetch, false
	}
	return kindOther, untagged && (typ == "CAPABILITY" || typ == "ENABLED")
}

// atomAt splits p after the atom it starts with.
func atomAt(p []byte) (atom, rest []byte) {
	n := 0
	for n < len(p) && isAtomChar(p[n]) {
		n++
	}
	return p[:n], p[n:]
}

// isAtomChar reports whether the IMAP library reads c as part of an atom.
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c >= 0x20 && c != 0x7f && (c < 0x80 || c > 0x9f) // not a control character
}

// literalAt returns the digits of the literal size announced at the end
// of line ("{N}", "{N+}", "~{N}", then an optional space and CR), or nil;
// framed is false when the digits run to the start of line, which may be
// only the end of a longer one.
func literalAt(line []byte) (digits []byte, framed bool) {
	// go-imap takes "} \r\n" for the end of a literal too.
	l, ok := bytes.CutSuffix(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\r")), []byte(" ")), []byte("}"))
	if !ok {
		return nil, true
	}
	l = bytes.TrimSuffix(l, []byte("+"))
	i := len(l)
	for i > 0 && l[i-1] >= '0' && l[i-1] <= '9' {
		i--
	}
	if i == 0 {
		return nil, false
	}
	if i == len(l) || l[i-1] != '{' {
		return nil, true
	}
	return l[i:], true
}

// bodyLiteralTail bounds the end of a line bodyLiteralAt looks
// at: a section spec the engine asks for is far shorter, and a
// longer one only loses the streaming allowance.
const bodyLiteralTail = 512

// reset starts a new command's budget; streaming allows the bodies of
// its FETCH answer to be of any size, or of bodyLimit bytes in all when
// that is not 0: however many bodies, and whichever messages, the server
// sends.
func (g *responseGuard) reset(streaming bool, bodyLimit int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.literal > 0 && g.streamed && g.err == nil {
		// A command's answer is whole before the next begins: this body
		// came unasked, and had only the last command's allowance.
		g.err = fmt.Errorf("%w: a message body sent after its command ended", ErrLimit)
	}
	g.received, g.streaming, g.bodyLimit, g.bodies = 0, streaming, bodyLimit, 0
}

// scan accounts for p, read from the server, and returns the error of the
// first limit it crosses (and every later call's), with the bytes of p
// before the line that crossed it.
func (g *responseGuard) scan(p []byte) (ok int, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(p) > 0 && g.err == nil {
		if g.literal > 0 {
			n := int64(len(p))
			if n > g.literal {
				n = g.literal
			}
			if !g.streamed {
				g.received += n
			}
			g.literal -= n
			p, ok = p[n:], ok+int(n)
			continue
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		if len(g.head) < headLen {
			g.head = append(g.head, chunk[:min(len(chunk), headLen-len(g.head))]...)
		}
		g.nest(chunk)
		if i := bytes.IndexByte(chunk, ']'); g.closeAt == 0 && i >= 0 {
			g.closeAt = g.line + i + 1
		}
		if i := bytes.IndexByte(chunk, '('); g.parenAt == 0 && i >= 0 {
			g.parenAt = g.line + i + 1
		}
		g.line += len(chunk)
		g.received += int64(len(chunk))
		g.tail = append(g.tail, chunk...)
		if len(g.tail) > 1024 {
			g.tail, g.cut = append(g.tail[:0], g.tail[len(g.tail)-512:]...), true
		}
		switch {
		case g.line > MaxResponseLine:
			g.err = fmt.Errorf("%w: a response line longer than %d MiB", ErrLimit, MaxResponseLine>>20)
		case g.received > MaxResponseBytes:
			g.err = errAnswerOver
		case i >= 0:
			g.endLine()
		}
		if g.err == nil {
			ok += len(chunk)
		}
	}
	return ok, g.err
}

// nest follows the parenthesized lists of a response outside literals
// and quoted strings, and fails one nested deeper than MaxNesting.
func (g *responseGuard) nest(chunk []byte) {
	// On locals: this runs over every byte a server sends outside literals.
	depth, quoted, escaped, broken := g.depth, g.quoted, g.escaped, g.broken
	for _, b := range chunk {
		switch {
		case quoted && (b == '\n' || b == '\r'):
			broken = true // endLine decides: an error unless the line is free text
		case escaped:
			escaped = false
		case quoted:
			escaped, quoted = b == '\\', b != '"'
		case b == '"':
			quoted = true
		case b == '(':
			if depth++; depth > MaxNesting {
				g.err = fmt.Errorf("%w: lists nested more than %d deep", ErrLimit, MaxNesting)
				return
			}
		case b == ')':
			depth = max(0, depth-1)
		}
	}
	g.depth, g.quoted, g.escaped, g.broken = depth, quoted, escaped, broken
}

// endLine starts the literal a finished line announces, if any; a line
// that announces none ends the response.
func (g *responseGuard) endLine() {
	line := bytes.TrimSuffix(g.tail, []byte("\n"))
	cut, closeAt, parenAt, broken := g.cut, g.closeAt, g.parenAt, g.broken
	g.line, g.tail, g.cut, g.closeAt, g.parenAt, g.broken = 0, g.tail[:0], false, 0, 0, false
	// A status response (and a continuation request) is free text to the
	// end of its line for the IMAP library: quotes and a final "{N}" mean
	// nothing there, but a response code it skips to its "]" must close.
	if g.kind == kindUnread {
		g.kind, g.caps = kindOf(g.head)
	}
	status := g.kind == kindStatus || g.kind == kindCode
	switch {
	case g.kind == kindUnreadable:
		g.err = fmt.Errorf("%w: a response of unreadable kind", ErrLimit)
		return
	case g.kind == kindCode && closeAt == 0:
		g.err = fmt.Errorf("%w: a response code left open at the end of its line", ErrLimit)
		return
	case g.caps && parenAt > 0 && (g.kind != kindCode || parenAt < closeAt):
		// The IMAP library would spin on it forever, reading nothing.
		g.err = fmt.Errorf("%w: a parenthesis in a capability list", ErrLimit)
		return
	case !status && (broken || g.quoted):
		// Never in a quoted string (RFC 9051 §4.3); the IMAP library
		// would read on where this guard starts a new response.
		g.err = fmt.Errorf("%w: a line break inside a quoted string", ErrLimit)
		return
	}
	digits, framed := literalAt(line)
	if !framed && cut {
		g.err = fmt.Errorf("%w: a literal of unreadable size", ErrLimit)
		return
	}
	if digits == nil || status {
		g.depth, g.quoted, g.escaped, g.head, g.kind = 0, false, false, g.head[:0], kindUnread
		return
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		g.err = fmt.Errorf("%w: a literal of unreadable size", ErrLimit)
		return
	}
	// An item of the FETCH list is one list deep ("* 1 FETCH (… BODY[] {N}").
	g.streamed = g.streaming && g.depth == 1 && g.kind == kindFetch &&
		bodyLiteralAt(line[max(0, len(line)-bodyLiteralTail):])
	if g.streamed {
		if g.bodies += n; g.bodyLimit > 0 && g.bodies > g.bodyLimit {
			g.err = fmt.Errorf("%w: %d bytes of message bodies where at most %d were asked for", ErrLimit, g.bodies, g.bodyLimit)
			return
		}
	}
	switch {
	case !g.streamed && n > MaxLiteral:
		g.err = fmt.Errorf("%w: a %d-byte literal (at most %d MiB outside message bodies)", ErrLimit, n, MaxLiteral>>20)
		return
	case !g.streamed && g.received+n > MaxResponseBytes:
		g.err = errAnswerOver
		return
	}
	g.literal = n
}

// failed returns the error of the limit crossed, if any.
func (g *responseGuard) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// withGuardError names g's limit in err, the IMAP library's error of a
// read g failed: at a response's start, the library reports only that
// the connection closed.
func withGuardError(g *responseGuard, err error) error {
	if gerr := g.failed(); gerr != nil && !errors.Is(err, ErrLimit) && !strings.Contains(err.Error(), gerr.Error()) {
		return fmt.Errorf("%w (%w)", gerr, err)
	}
	return err
}

// guardedConn runs every read through a responseGuard.
type guardedConn struct {
	net.Conn
	g *responseGuard
}

// Read hands over what came before a line over a limit, and fails the
// read after: a body being read then ends whole, so the IMAP library,
// which lets its reader go on once a body it handed out fails, never has
// two goroutines reading at once.
func (c guardedConn) Read(p []byte) (int, error) {
	if err := c.g.failed(); err != nil { // without waiting for more from the server
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if ok, gerr := c.g.scan(p[:n]); gerr != nil {
		if ok > 0 {
			return ok, nil // gerr comes with the next read
		}
		return 0, gerr
	}
	return n, err
}
