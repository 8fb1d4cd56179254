package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"

	"github.com/imap-mcp/imap-mcp/netguard"
)

// Conn is one logged-in IMAP connection, lent by Pool.Do for the duration
// of a closure. It must not be kept or used after the closure returns, nor
// shared between goroutines. It owns the SELECTed state of its connection.
type Conn struct {
	client    *imapclient.Client
	dc        *deadlineConn
	guard     *responseGuard
	cfg       *Config
	dial      dialer
	acct      *Account // the borrower's account, only during a borrow
	addr      string
	fp        string
	caps      imap.CapSet
	ctx       context.Context
	selected  string           // folder selected by the last SELECT, "" if none
	selData   *imap.SelectData // response to that SELECT
	roles     map[Role]string  // special-use folders, found once per borrow
	lastUsed  time.Time
	broken    bool        // set when the connection must not be reused
	streaming bool        // the running command streams message bodies
	bodyLimit int64       // of the streamed bodies, in bytes; 0: any
	reused    bool        // lent from the idle list rather than dialled for this borrow
	redials   int         // connections redial made during this borrow
	unwatch   func() bool // stops aborting I/O when the borrow's context ends
	sumCache  *summaryCache
	memo      *pageMemo // the newest page listed, if kept
}

// Caps returns the capabilities the server announced after login.
func (c *Conn) Caps() imap.CapSet { return c.caps }

// Client returns the underlying go-imap client for commands the engine
// does not wrap. The same borrowing rules apply; a caller that changes
// the selected folder through it must call Conn.Forget afterwards.
func (c *Conn) Client() *imapclient.Client { return c.client }

// accountKey names the borrower's account and the settings this
// connection uses, for what the engine keeps about the account.
func (c *Conn) accountKey() string { return c.acct.ID + "\x00" + c.fp }

// Forget drops the engine's idea of the selected folder.
func (c *Conn) Forget() { c.selected, c.selData, c.memo = "", nil, nil }

// has reports whether the server announced capability cp.
func (c *Conn) has(cp imap.Cap) bool { return c.caps.Has(cp) }

// arm bounds the next command by the command timeout and the borrow's
// context deadline.
func (c *Conn) arm(d time.Duration) {
	c.dc.setLimit(deadline(c.ctx, d))
}

// do runs one IMAP command under the command timeout and translates its
// error. Errors other than a server's tagged NO/BAD mark the connection
// broken so the pool discards it.
func (c *Conn) do(op string, f func() error) error {
	if c.broken && !c.mayRisk() {
		return c.redialsSpent(op)
	}
	c.arm(c.cfg.Command)
	c.guard.reset(c.streaming, c.bodyLimit)
	err := f()
	if err == nil {
		return nil
	}
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		return wrap(op, c.addr, err)
	}
	c.broken = true
	err = withGuardError(c.guard, err)
	if ctxErr := c.ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	// go-imap flattens network errors into text, so a deadline that
	// passed is recognised here rather than by the error's type.
	if c.dc.expired() {
		return &Error{Kind: KindTimeout, Op: op, Addr: c.addr, Err: err}
	}
	return wrap(op, c.addr, err)
}

// stream is do for a FETCH whose message or part bodies the borrower
// streams: those may be of any size (see responseGuard), or of at most
// limit bytes in all when limit is not 0.
func (c *Conn) stream(op string, limit int64, f func() error) error {
	c.streaming, c.bodyLimit = true, limit
	defer func() {
		c.streaming, c.bodyLimit = false, 0
		c.guard.reset(false, 0) // what comes unasked until the next command gets no allowance
	}()
	return c.do(op, f)
}

// gone reports a connection the server has ended (BYE, a drop): it must
// not go back to the pool.
func (c *Conn) gone() bool {
	select {
	case <-c.client.Closed():
		return true
	default:
		return false
	}
}

// recoverable reports whether the last command lost the connection for a
// reason a fresh connection may not meet (an answer the client could not
// parse, a dropped connection) rather than because time ran out.
func (c *Conn) recoverable() bool {
	return c.broken && c.ctx.Err() == nil && !c.dc.expired()
}

// maxRedials bounds the logins one borrow makes to replace connections
// lost to answers the client cannot read (see fetchSummaries): enough
// for the few such messages a real page or thread holds, and far fewer
// than two for every message of a page from a server that describes
// none of them readably.
const maxRedials = 6

// mayRisk reports whether the borrow may still ask for an answer the
// client may fail to read (a BODYSTRUCTURE): losing the connection to one
// costs a login, and the last login of the budget is kept for that, so
// the borrow ends with a working connection, unless the server then also
// sends more of a message read whole than it said the message held.
func (c *Conn) mayRisk() bool { return c.redials < maxRedials }

// errRedialsSpent is what a borrow's connection answers once it is lost
// and the borrow has made maxRedials.
var errRedialsSpent = errors.New("the server's answers could not be read, even on new connections; try again to read further")

// redial replaces a lost connection with a new one to the same account
// within the same borrow, and selects folder on it when not empty; at
// most maxRedials times per borrow.
func (c *Conn) redial(folder string) error {
	if !c.mayRisk() {
		return c.redialsSpent("redial")
	}
	c.redials++
	fresh, err := c.dial.dialIMAP(c.ctx, c.acct)
	if err != nil {
		return err
	}
	c.unwatch()
	_ = c.client.Close()
	c.client, c.dc, c.guard, c.caps, c.broken, c.reused = fresh.client, fresh.dc, fresh.guard, fresh.caps, false, false
	c.unwatch = c.dc.abortOnCancel(c.ctx)
	c.Forget()
	if folder == "" {
		return nil
	}
	_, err = c.selectFolder(folder)
	return err
}

func (c *Conn) redialsSpent(op string) error {
	return &Error{Kind: KindOther, Op: op, Addr: c.addr, Err: errRedialsSpent}
}

// openFolder makes folder the selected one, like selectFolder but
// without the NOOP when it already is: for commands by UID, which need
// no message count. The server may not show messages that arrived since
// the last command until a NOOP, so a UID not found on a connection
// that had the folder open must be looked for again after catchUp.
// stale reports that case.
func (c *Conn) openFolder(folder string) (stale bool, err error) {
	if folder == "" {
		folder = "INBOX"
	}
	if mbox := c.client.Mailbox(); c.selected == folder && mbox != nil && mbox.Name == folder {
		return true, nil
	}
	_, err = c.selectFolder(folder)
	return false, err
}

// catchUp asks the server for the selected folder's news (NOOP).
func (c *Conn) catchUp() error {
	return c.do("noop", func() error { return c.client.Noop().Wait() })
}

// selectFolder makes folder the selected one and returns its current
// state. SELECT is issued only when another folder (or none) is selected:
// on a large mailbox it costs far more than the NOOP that otherwise
// brings the message count up to date. A folder that does not exist
// yields KindNotFound.
func (c *Conn) selectFolder(folder string) (*imap.SelectData, error) {
	if folder == "" {
		folder = "INBOX"
	}
	if c.selected == folder {
		if mbox := c.client.Mailbox(); mbox != nil && mbox.Name == folder {
			if err := c.catchUp(); err != nil {
				return nil, err
			}
			if mbox = c.client.Mailbox(); mbox != nil && mbox.Name == folder {
				data := *c.selData
				data.NumMessages = mbox.NumMessages
				return &data, nil
			}
		}
	}
	c.Forget()
	var data *imap.SelectData
	err := c.do("select "+folder, func() (err error) {
		data, err = c.client.Select(folder, nil).Wait()
		return err
	})
	if err != nil {
		var imapErr *imap.Error
		if errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeNo && KindOf(err) == KindOther {
			return nil, &Error{Kind: KindNotFound, Op: "select", Addr: c.addr, Err: fmt.Errorf("folder %q: %w", folder, imapErr)}
		}
		return nil, err
	}
	c.selected, c.selData = folder, data
	return data, nil
}

// close ends the connection without waiting for the server.
func (c *Conn) close() {
	c.dc.setLimit(time.Now().Add(time.Second))
	_ = c.client.Close()
}

// deadline returns now+d, or the context's deadline when earlier.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// dialer connects to mail servers under the engine's rules: the SSRF
// guard on the resolved address, verified TLS with extra roots, TLSNone
// only for loopback, STARTTLS never skipped.
type dialer struct{ cfg *Config }

// dialTCP opens the TCP connection (and the TLS layer for TLSImplicit)
// to ep, capping every later deadline by the returned deadlineConn.
func (d dialer) dialTCP(ctx context.Context, proto string, ep Endpoint) (net.Conn, *deadlineConn, error) {
	op := proto + " connect"
	if ep.Host == "" || ep.Port <= 0 || ep.Port > 65535 {
		return nil, nil, invalid(op, "host and port are required (got %q, %d)", ep.Host, ep.Port)
	}
	switch ep.TLS {
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !isLoopbackHost(ep.Host) {
			return nil, nil, invalid(op, "TLS mode none is allowed only for loopback hosts, not %q", ep.Host)
		}
	default:
		return nil, nil, invalid(op, "unknown TLS mode %q (want tls, starttls or none)", ep.TLS)
	}
	dctx, cancel := context.WithTimeout(ctx, d.cfg.Dial)
	defer cancel()
	raw, err := netguard.Dialer(d.cfg.Dial, d.cfg.AllowPrivateHosts).DialContext(dctx, "tcp", ep.Addr())
	if err != nil {
		return nil, nil, wrap(op, ep.Addr(), err)
	}
	dc := &deadlineConn{Conn: raw}
	dc.setLimit(deadline(ctx, d.cfg.TLSHandshake))
	if ep.TLS != TLSImplicit {
		return dc, dc, nil
	}
	tc := tls.Client(dc, d.tlsConfig(ep.Host))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, nil, wrap(proto+" tls handshake", ep.Addr(), err)
	}
	return tc, dc, nil
}

func (d dialer) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12}
}

// dialIMAP connects, secures and logs in to acct's IMAP server. Every
// byte the server sends passes a responseGuard, from the greeting on. An
// OAuth account whose token the server refuses tries once more with a
// renewed token, on a fresh connection (a failed SASL exchange leaves the
// old one in doubt).
func (d dialer) dialIMAP(ctx context.Context, acct *Account) (*Conn, error) {
	return withToken(ctx, acct, "imap", func(tok string) (*Conn, error) { return d.openIMAP(ctx, acct, tok) })
}

// openIMAP is one attempt of dialIMAP; tok is the bearer token of an
// OAuth account.
func (d dialer) openIMAP(ctx context.Context, acct *Account, tok string) (*Conn, error) {
	ep := acct.IMAP
	conn, dc, err := d.dialTCP(ctx, "imap", ep)
	if err != nil {
		return nil, err
	}
	opts := &imapclient.Options{
		TLSConfig:   d.tlsConfig(ep.Host),
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
	}
	defer dc.abortOnCancel(ctx)()
	g := &responseGuard{}
	if ep.TLS == TLSStartTLS {
		if conn, err = startTLS(ctx, conn, d.tlsConfig(ep.Host)); err != nil {
			_ = dc.Close()
			return nil, greetingError("imap starttls", ep, err)
		}
		// The server sends no greeting after STARTTLS; the client waits for one.
		conn = &greetedConn{Conn: conn, greeting: []byte("* OK TLS established\r\n")}
	}
	client := imapclient.New(guardedConn{Conn: conn, g: g}, opts)
	if err := client.WaitGreeting(); err != nil {
		_ = client.Close()
		return nil, greetingError("imap greeting", ep, withGuardError(g, err))
	}
	c := &Conn{client: client, dc: dc, guard: g, cfg: d.cfg, dial: d, addr: ep.Addr(), fp: acct.fingerprint(), ctx: ctx}
	c.arm(d.cfg.Login)
	if err := loginIMAP(client, acct, tok); err != nil {
		_ = client.Close()
		return nil, err
	}
	c.arm(d.cfg.Command)
	c.caps = client.Caps()
	dc.setLimit(time.Time{})
	c.lastUsed = time.Now()
	return c, nil
}

// loginIMAP signs in with the password, or the bearer token tok of an
// OAuth account.
func loginIMAP(client *imapclient.Client, acct *Account, tok string) error {
	if acct.OAuth == nil {
		return loginError("imap login", acct.IMAP.Addr(), client.Login(acct.Username, acct.Password).Wait())
	}
	return loginError("imap authenticate", acct.IMAP.Addr(), imapAuthenticate(client, acct, acct.IMAP, tok))
}

// startTLS reads the plaintext greeting, negotiates STARTTLS and returns
// the TLS connection. Plaintext sent after the server's OK is refused,
// not carried into the TLS session: it could only be injected by someone
// on the path. The plaintext has a guard of its own, so that nothing of
// its framing (a literal it announced, which this reader skips as lines)
// carries into the guard of the TLS session.
func startTLS(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	g := &responseGuard{}
	br := bufio.NewReaderSize(guardedConn{Conn: conn, g: g}, 4<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if !hasPrefixFold(line, "* OK") && !hasPrefixFold(line, "* PREAUTH") {
		return nil, fmt.Errorf("unexpected greeting %q", truncateBytes(line, 80))
	}
	if _, err := io.WriteString(conn, "S0 STARTTLS\r\n"); err != nil {
		return nil, err
	}
	for {
		if line, err = br.ReadSlice('\n'); err != nil {
			return nil, err
		}
		if rest, ok := bytes.CutPrefix(line, []byte("S0 ")); ok {
			if !hasPrefixFold(rest, "OK") {
				return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: string(bytes.TrimSpace(truncateBytes(rest, 200)))}
			}
			break
		}
	}
	// What the guard failed after the OK it has read, and not handed over.
	if br.Buffered() > 0 || g.failed() != nil {
		return nil, errors.New("server sent plaintext after accepting STARTTLS")
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

func truncateBytes(b []byte, n int) []byte { return b[:min(len(b), n)] }

// hasPrefixFold reports whether line starts with prefix in any case, as
// the IMAP library compares a response's type.
func hasPrefixFold(line []byte, prefix string) bool {
	return len(line) >= len(prefix) && bytes.EqualFold(line[:len(prefix)], []byte(prefix))
}

// greetedConn reads greeting before what the connection sends.
type greetedConn struct {
	net.Conn
	greeting []byte
}

func (c *greetedConn) Read(p []byte) (int, error) {
	if len(c.greeting) > 0 {
		n := copy(p, c.greeting)
		c.greeting = c.greeting[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// greetingError explains a failure before login: a timeout or a
// non-TLS answer at this stage nearly always means the TLS mode does not
// match the port.
func greetingError(op string, ep Endpoint, err error) error {
	kind := classify(err)
	var imapErr *imap.Error
	text := err.Error()
	switch {
	case strings.HasPrefix(op, "imap") && (strings.Contains(text, `"220`) || strings.Contains(text, "ESMTP")),
		strings.HasPrefix(op, "smtp") && (strings.Contains(text, `"* OK`) || strings.Contains(text, `"* PREAUTH`)):
		kind = KindWrongProtocol
	case kind == KindTimeout && ep.TLS != TLSImplicit:
		err = fmt.Errorf("no plaintext greeting (is port %d implicit TLS?): %w", ep.Port, err)
		kind = KindTLSMismatch
	case ep.TLS == TLSStartTLS && errors.As(err, &imapErr):
		err = fmt.Errorf("server refused STARTTLS; not continuing without TLS: %w", err)
		kind = KindTLSMismatch
	case kind == KindOther && isEOF(err):
		kind = KindTLSMismatch
	}
	return &Error{Kind: kind, Op: op, Addr: ep.Addr(), Err: err}
}

// loginError makes any NO to LOGIN an authentication failure unless the
// server said it is temporary.
func loginError(op, addr string, err error) error {
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapKind(imapErr) != KindTemporary {
		return &Error{Kind: KindAuth, Op: op, Addr: addr, Err: err}
	}
	return wrap(op, addr, err)
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// deadlineConn lets the engine bound the protocol client's I/O. While
// the engine's limit is set (a dial, a login, a command), it alone bounds
// reads, so that a stall ends the step when the step's timeout says;
// writes keep the earlier of the client's deadline and the limit (TLS
// bounds its close_notify to 5 s that way). Without a limit the client's
// own deadlines apply (go-imap's 30 s for a response that has begun, none
// while idle). Setting the limit to the past aborts blocked I/O. go-imap
// sets a read deadline twice per response it reads, so a deadline that
// would not change is not set again: a FETCH of fifty messages would
// otherwise rearm the connection's timer a hundred times.
type deadlineConn struct {
	net.Conn
	mu                 sync.Mutex
	limit, read, write time.Time
	// setRead and setWrite are the deadlines last set on Conn.
	setRead, setWrite time.Time
}

func (d *deadlineConn) applyRead() error {
	t := d.read
	if !d.limit.IsZero() {
		t = d.limit
	}
	return apply(t, &d.setRead, d.Conn.SetReadDeadline)
}

func (d *deadlineConn) applyWrite() error {
	return apply(earliest(d.write, d.limit), &d.setWrite, d.Conn.SetWriteDeadline)
}

// apply sets deadline t with set unless *last already is t.
func apply(t time.Time, last *time.Time, set func(time.Time) error) error {
	if t.Equal(*last) {
		return nil
	}
	*last = t
	return set(t)
}

// earliest is the earlier of two deadlines, the zero time being none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (d *deadlineConn) SetDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read, d.write = t, t
	return errors.Join(d.applyRead(), d.applyWrite())
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read = t
	return d.applyRead()
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.write = t
	return d.applyWrite()
}

// abortOnCancel makes blocked I/O fail as soon as ctx ends; call the
// returned function to stop watching.
func (d *deadlineConn) abortOnCancel(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { d.setLimit(time.Unix(1, 0)) })
}

// expired reports whether the engine's cap has passed.
func (d *deadlineConn) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.limit.IsZero() && !time.Now().Before(d.limit)
}

// setLimit changes the engine's cap; the zero time removes it.
func (d *deadlineConn) setLimit(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limit = t
	_ = d.applyRead()
	_ = d.applyWrite()
}

// capGmail is Gmail's extension capability (X-GM-THRID, X-GM-RAW, labels).
const capGmail imap.Cap = "X-GM-EXT-1"
