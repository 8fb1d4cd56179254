package mail

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// go-imap cannot send or parse Gmail's X-GM-* items, so the engine speaks
// them over a short-lived second connection (rawSession) and does
// everything else on the pooled one.

// rawSession is a minimal line-based IMAP session for a few commands.
type rawSession struct {
	conn net.Conn
	dc   *deadlineConn
	g    *responseGuard
	r    *bufio.Reader
	ctx  context.Context
	cfg  *Config
	addr string
	tag  int
	stop func() bool // stops aborting I/O on context cancellation
}

// dialRaw connects and logs in like dialIMAP, without go-imap.
func (d dialer) dialRaw(ctx context.Context, acct *Account) (*rawSession, error) {
	ep := acct.IMAP
	conn, dc, err := d.dialTCP(ctx, "imap", ep)
	if err != nil {
		return nil, err
	}
	g := &responseGuard{}
	stop := dc.abortOnCancel(ctx)
	if ep.TLS == TLSStartTLS {
		if conn, err = startTLS(ctx, conn, d.tlsConfig(ep.Host)); err != nil {
			stop()
			_ = dc.Close()
			return nil, greetingError("imap starttls", ep, err)
		}
	}
	s := &rawSession{conn: conn, dc: dc, g: g, r: bufio.NewReader(guardedConn{Conn: conn, g: g}), ctx: ctx, cfg: d.cfg, addr: ep.Addr(),
		stop: stop}
	if ep.TLS != TLSStartTLS {
		if _, err := s.readLine(); err != nil {
			s.close()
			return nil, greetingError("imap greeting", ep, err)
		}
	}
	if _, err := s.cmd(d.cfg.Login, "LOGIN "+quote(acct.Username)+" "+quote(acct.Password)); err != nil {
		s.close()
		return nil, loginError("imap login", s.addr, err)
	}
	return s, nil
}

// quote renders an IMAP quoted string.
func quote(s string) string { return `"` + imapQuoted.Replace(s) + `"` }

// mailboxName encodes name in the modified UTF-7 of IMAP mailbox names
// (RFC 3501 §5.1.3), as the IMAP library does in its own commands: a
// raw session enables no UTF8=ACCEPT.
func mailboxName(name string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		be := make([]byte, 0, 2*len(run))
		for _, u := range run {
			be = append(be, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mailboxBase64.EncodeToString(be))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r > 0x7e:
			run = utf16.AppendRune(run, r)
		case r == '&':
			flush()
			b.WriteString("&-")
		default:
			flush()
			b.WriteRune(r)
		}
	}
	flush()
	return b.String()
}

// mailboxBase64 is the base64 of modified UTF-7: ',' for '/', no padding.
var mailboxBase64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

var imapQuoted = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "")

var literalSuffix = regexp.MustCompile(`\{(\d+)\+?\}$`)

// readLine reads one response line, inlining any literals it announces.
func (s *rawSession) readLine() (string, error) {
	var b strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		b.WriteString(line)
		m := literalSuffix.FindStringSubmatch(line)
		if m == nil {
			return b.String(), nil
		}
		n, _ := strconv.Atoi(m[1])
		if n > 1<<20 {
			return "", fmt.Errorf("literal of %d bytes: %w", n, errRawTooBig)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(s.r, lit); err != nil {
			return "", err
		}
		b.Write(lit)
	}
}

var errRawTooBig = errors.New("response too large")

// cmd sends one command and returns its untagged responses; a NO or BAD
// completion becomes an *imap.Error.
func (s *rawSession) cmd(timeout time.Duration, command string) ([]string, error) {
	s.tag++
	tag := "G" + strconv.Itoa(s.tag)
	s.dc.setLimit(deadline(s.ctx, timeout))
	s.g.reset(false, 0)
	if _, err := io.WriteString(s.conn, tag+" "+command+"\r\n"); err != nil {
		return nil, err
	}
	var untagged []string
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		rest, ok := strings.CutPrefix(line, tag+" ")
		if !ok {
			untagged = append(untagged, line)
			continue
		}
		status, text, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(status) {
		case "OK":
			return untagged, nil
		case "NO":
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: text}
		default:
			return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: text}
		}
	}
}

func (s *rawSession) close() {
	s.stop()
	_ = s.conn.Close()
}

// run runs command and translates the error for op.
func (s *rawSession) run(op, command string) ([]string, error) {
	lines, err := s.cmd(s.cfg.Command, command)
	return lines, wrap(op, s.addr, err)
}

var (
	thridPattern  = regexp.MustCompile(`X-GM-THRID (\d+)`)
	searchPattern = regexp.MustCompile(`^\* SEARCH((?: \d+)*)`)
)

// searchUIDs parses "* SEARCH 1 2 3" lines into sorted UIDs.
func searchUIDs(lines []string) []imap.UID {
	var out []imap.UID
	for _, l := range lines {
		if m := searchPattern.FindStringSubmatch(l); m != nil {
			for _, f := range strings.Fields(m[1]) {
				n, err := strconv.ParseUint(f, 10, 32)
				if err == nil {
					out = append(out, imap.UID(n))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// rawExamine opens a raw session (for the X-GM commands go-imap cannot
// send) with folder selected read-only; the caller closes it.
func (c *Conn) rawExamine(folder string) (*rawSession, error) {
	s, err := c.dial.dialRaw(c.ctx, c.acct)
	if err != nil {
		return nil, err
	}
	if _, err := s.run("select "+folder, "EXAMINE "+quote(mailboxName(folder))); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// gmailSearch runs X-GM-RAW query in folder and returns ascending UIDs.
func (c *Conn) gmailSearch(folder, query string) ([]imap.UID, error) {
	s, err := c.rawExamine(folder)
	if err != nil {
		return nil, err
	}
	defer s.close()
	lines, err := s.run("gmail search", "UID SEARCH X-GM-RAW "+quote(query))
	if err != nil {
		return nil, err
	}
	return searchUIDs(lines), nil
}

// gmailThread finds the X-GM-THRID of uid in folder and returns every
// message of that thread from All Mail.
func (c *Conn) gmailThread(folder string, uid uint32, opt ThreadOptions) (*Thread, error) {
	allMail, err := c.roleFolder(RoleAll)
	if err != nil {
		return nil, err
	}
	if allMail == "" {
		return c.thread(folder, uid, opt, nil)
	}
	s, err := c.rawExamine(folder)
	if err != nil {
		return nil, err
	}
	defer s.close()
	lines, err := s.run("gmail thread id", fmt.Sprintf("UID FETCH %d (X-GM-THRID)", uid))
	if err != nil {
		return nil, err
	}
	var thrid string
	for _, l := range lines {
		if m := thridPattern.FindStringSubmatch(l); m != nil {
			thrid = m[1]
		}
	}
	if thrid == "" {
		return nil, notFound("get thread", "no message with UID %d in %q", uid, folder)
	}
	if _, err := s.run("select "+allMail, "EXAMINE "+quote(mailboxName(allMail))); err != nil {
		return nil, err
	}
	lines, err = s.run("gmail thread", "UID SEARCH X-GM-THRID "+thrid)
	if err != nil {
		return nil, err
	}
	if _, err := c.selectFolder(allMail); err != nil {
		return nil, err
	}
	metas, err := c.fetchMeta(allMail, searchUIDs(lines))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	metas = slices.DeleteFunc(metas, func(m ThreadMessage) bool {
		dup := m.MessageID != "" && seen[m.MessageID]
		seen[m.MessageID] = true
		return dup
	})
	return c.finishThread(&Thread{Method: "gmail"}, metas, opt)
}
