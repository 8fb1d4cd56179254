package mail

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileServer is an IMAP server on loopback that answers like a normal
// one until answer returns true for a command, which then misbehaves on
// the connection as it likes. greeting, when set, replaces the normal one.
type hostileServer struct {
	greeting func(w *bufio.Writer) // nil: a normal greeting
	answer   func(tag, cmd string, w *bufio.Writer) bool
	lineHook func(string) // sees each command line first
	exists   int          // messages in INBOX; 0: 1
	caps     string       // capabilities besides IMAP4rev1
	// reply, when set, answers a command line whole (its tagged response
	// too) when it returns true; the connection goes on.
	reply func(tag, cmd, line string, w *bufio.Writer) bool
}

// serveLoopback runs serve on each connection to a loopback port until
// the test ends, and returns the port.
func serveLoopback(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(conn)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func startHostile(t *testing.T, s *hostileServer) *Account {
	ep := Endpoint{Host: "127.0.0.1", Port: serveLoopback(t, s.serve), TLS: TLSNone}
	return &Account{ID: "hostile-" + t.Name(), IMAP: ep, SMTP: ep, Username: "u", Password: "p", Email: "u@example.com"}
}

func (s *hostileServer) serve(conn net.Conn) {
	defer conn.Close()
	w := bufio.NewWriter(conn)
	if s.greeting != nil {
		s.greeting(w)
		return
	}
	w.WriteString("* OK [CAPABILITY " + strings.TrimSpace("IMAP4rev1 "+s.caps) + "] ready\r\n")
	w.Flush()
	s.commands(conn)
}

// commands answers commands on a connection that has had its greeting.
func (s *hostileServer) commands(conn net.Conn) {
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if s.lineHook != nil {
			s.lineHook(line)
		}
		tag, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		cmd := strings.ToUpper(strings.Fields(rest + " ")[0])
		if cmd == "UID" {
			cmd = "UID " + strings.ToUpper(strings.Fields(rest)[1])
		}
		if s.reply != nil && s.reply(tag, cmd, line, w) {
			if w.Flush() != nil {
				return
			}
			continue
		}
		if s.answer(tag, cmd, w) {
			return
		}
		switch cmd {
		case "CAPABILITY":
			w.WriteString("* CAPABILITY " + strings.TrimSpace("IMAP4rev1 "+s.caps) + "\r\n")
		case "SELECT", "EXAMINE":
			n := max(s.exists, 1)
			fmt.Fprintf(w, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT %d] ok\r\n", n, n+1)
		case "LOGOUT":
			w.WriteString("* BYE bye\r\n")
		}
		w.WriteString(tag + " OK done\r\n")
		if w.Flush() != nil {
			return
		}
	}
}

// endless writes chunk until the client goes away or a minute has passed.
func endless(w *bufio.Writer, chunk string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, err := w.WriteString(chunk); err != nil || w.Flush() != nil {
			return
		}
	}
}

// peakHeap samples the heap while f runs and returns the peak growth.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
					peak.Store(ms.HeapInuse - base)
				}
			}
		}
	}()
	f()
	close(done)
	return peak.Load()
}

// TestHostileServers: a server cannot make the engine hold more than a
// bounded amount of memory, nor keep a command running past its timeout.
func TestHostileServers(t *testing.T) {
	const maxHeap = 100 << 20
	for _, tc := range []struct {
		name string
		s    *hostileServer
		call func(t *testing.T, e *Engine, a *Account) error
		kind Kind
	}{
		{"greeting with no line end", &hostileServer{greeting: func(w *bufio.Writer) {
			w.WriteString("* OK ")
			endless(w, strings.Repeat("A", 64<<10))
		}, answer: func(string, string, *bufio.Writer) bool { return false }}, listFolders, KindOther},
		{"a parenthesis in a capability list", &hostileServer{greeting: func(w *bufio.Writer) {
			w.WriteString("* OK [CAPABILITY (] hi\r\n") // the IMAP library would spin on it forever
			w.Flush()
		}, answer: func(string, string, *bufio.Writer) bool { return false }}, listFolders, KindOther},
		{"literal of 1.5 GB in LIST", &hostileServer{answer: func(tag, cmd string, w *bufio.Writer) bool {
			if cmd != "LIST" {
				return false
			}
			w.WriteString("* LIST () \"/\" {1610612736}\r\n")
			endless(w, strings.Repeat("x", 64<<10))
			return true
		}}, listFolders, KindOther},
		{"endless response", &hostileServer{answer: func(tag, cmd string, w *bufio.Writer) bool {
			if cmd != "LIST" {
				return false
			}
			endless(w, strings.Repeat("* LIST () \"/\" INBOX\r\n", 2000))
			return true
		}}, listFolders, KindOther},
		{"BODYSTRUCTURE nested 150,000 deep", &hostileServer{answer: func(tag, cmd string, w *bufio.Writer) bool {
			if cmd != "FETCH" && cmd != "UID FETCH" {
				return false
			}
			w.WriteString("* 1 FETCH (UID 1 BODYSTRUCTURE " + strings.Repeat("(", 150_000) + "\r\n")
			return false
		}}, func(t *testing.T, e *Engine, a *Account) error {
			_, err := e.ListMessages(testCtx(t), a, "INBOX", ListOptions{})
			return err
		}, KindOther},
		{"body dripped a byte at a time", &hostileServer{answer: func(tag, cmd string, w *bufio.Writer) bool {
			if cmd != "UID FETCH" {
				return false
			}
			w.WriteString("* 1 FETCH (UID 1 BODY[] {100000}\r\nSubject: drip\r\n\r\n")
			w.Flush()
			for range 1000 {
				time.Sleep(20 * time.Millisecond)
				if w.WriteByte('.') != nil || w.Flush() != nil {
					return true
				}
			}
			return true
		}}, func(t *testing.T, e *Engine, a *Account) error {
			_, err := e.GetMessage(testCtx(t), a, "INBOX", 1, GetOptions{})
			return err
		}, KindTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := startHostile(t, tc.s)
			timeout := time.Second
			if tc.kind != KindTimeout {
				timeout = time.Minute // the limit, not the timeout, ends these
			}
			e := New(Config{AllowPrivateHosts: true, Timeouts: Timeouts{Command: timeout, TLSHandshake: timeout}})
			defer e.Close()
			var err error
			start := time.Now()
			peak := peakHeap(func() { err = tc.call(t, e, acct) })
			t.Logf("%s: %v after %v, heap peak +%d MiB", tc.name, err, time.Since(start).Round(time.Millisecond), peak>>20)
			if err == nil || KindOf(err) != tc.kind {
				t.Fatalf("err %v (kind %v), want kind %v", err, KindOf(err), tc.kind)
			}
			if tc.kind != KindTimeout && !errors.Is(err, ErrLimit) && !strings.Contains(err.Error(), ErrLimit.Error()) {
				t.Fatalf("err %v does not name the limit", err)
			}
			if peak > maxHeap {
				t.Fatalf("heap grew by %d MiB", peak>>20)
			}
		})
	}
}

// TestHostileStatusHidesNoBody: a response the IMAP library reads as
// status text whose code runs past its line cannot hide from the guard
// the literal that text covers. Before, a number before "OK" or a tagged
// response of another type made the guard take the next line for a
// streamed body, and the library held a 200 MiB envelope in memory.
func TestHostileStatusHidesNoBody(t *testing.T) {
	const big = 200 << 20
	// With "BODY[]" the library skips to the "]" of "BODY[]" and reads the
	// body as responses; with "RFC822" it skips into the body, to its
	// first "]", and reads the rest of that line as text.
	envelope := fmt.Sprintf("* 1 FETCH (UID 1 ENVELOPE (NIL {%d}\r\n", big) + strings.Repeat("s", big) + " NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
	text := "] " + strings.Repeat("s", big) + "\r\n"
	for _, tc := range []struct{ opener, item, inner string }{
		{"* 5 OK [X x\r\n", "BODY[]", envelope},
		{"* " + strings.Repeat("0", 60) + "5 OK [X x\r\n", "BODY[]", envelope},
		{"T3 NOPE [X x\r\n", "RFC822", text},
	} {
		body := fmt.Sprintf("* 1 FETCH (UID 1 %s {%d}\r\n", tc.item, len(tc.inner)) + tc.inner
		var mu sync.Mutex
		var last string
		s := &hostileServer{lineHook: func(l string) { mu.Lock(); last = l; mu.Unlock() }}
		s.answer = func(tag, cmd string, w *bufio.Writer) bool {
			mu.Lock()
			l := last
			mu.Unlock()
			switch {
			case cmd != "UID FETCH", strings.Contains(l, "BODYSTRUCTURE"): // no structure: the message is read whole
			case strings.Contains(l, "<0.262144>"): // its first bytes: a large message
				fmt.Fprintf(w, "* 1 FETCH (UID 1 RFC822.SIZE 999999999 BODY[]<0> {%d}\r\n%s)\r\n", sectionedOver, strings.Repeat("a", sectionedOver))
			default: // read whole, streamed
				w.WriteString(strings.Replace(tc.opener, "T3", tag, 1))
				w.WriteString(body)
			}
			return false
		}
		acct := startHostile(t, s)
		e := New(Config{AllowPrivateHosts: true, Timeouts: Timeouts{Command: time.Minute, TLSHandshake: time.Minute}})
		var err error
		peak := peakHeap(func() { _, err = e.GetMessage(testCtx(t), acct, "INBOX", 1, GetOptions{}) })
		e.Close()
		if !strings.Contains(fmt.Sprint(err), ErrLimit.Error()) {
			t.Errorf("%q: err %v does not name the limit", tc.opener, err)
		}
		if peak > 100<<20 {
			t.Errorf("%q: heap grew by %d MiB", tc.opener, peak>>20)
		}
	}
}

// listFolders lists with two minutes to spare: parsing 8 MiB of LIST
// lines under the race detector takes 15-30 s on these machines, and the
// limit, not the deadline, must end the call.
func listFolders(t *testing.T, e *Engine, a *Account) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := e.ListFolders(ctx, a)
	return err
}

// TestReadsNoMoreThanAskedFor: when a message's structure cannot be
// read, a list reads it whole to find its attachments, if the server says
// it is at most 16 MiB; and get_message reads the start of a message. A
// server that then sends far more, in whatever shape (one body, a second
// body in the same answer, a body of another message), is not read on:
// before, each of these read all the server sent (here up to a minute of
// it, gigabytes) at full speed.
func TestReadsNoMoreThanAskedFor(t *testing.T) {
	huge := func(w *bufio.Writer, sent *atomic.Int64, chunk string) {
		if chunk == "" {
			chunk = strings.Repeat("x", 64<<10)
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); sent.Add(int64(len(chunk))) {
			if _, err := w.WriteString(chunk); err != nil || w.Flush() != nil {
				return
			}
		}
	}
	const announced = "{2000000000}\r\n"
	twelve := strings.Repeat("x", 12_000_000)
	for _, tc := range []struct {
		name  string
		whole string // the start of the answer to the whole-message read
		more  string // written again and again after it; "" for bytes of a body
		get   bool   // get_message instead of a list
	}{
		{"one body", "* 1 FETCH (UID 1 BODY[] " + announced, "", false},
		{"a second body", "* 1 FETCH (UID 1 BODY[] {18}\r\nSubject: big\r\n\r\nxx BODY[1] " + announced, "", false},
		{"bodies each under the limit", "* 1 FETCH (UID 1 BODY[] {12000000}\r\n" + twelve, " BODY[1] {12000000}\r\n" + twelve, false},
		{"another message's body first", "* 2 FETCH (UID 2 BODY[] " + announced, "", false},
		{"more than the start asked for", "* 1 FETCH (UID 1 BODY[]<0> " + announced, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var line string
			var sent atomic.Int64
			acct := startHostile(t, &hostileServer{lineHook: func(l string) { mu.Lock(); line = l; mu.Unlock() }, answer: func(tag, cmd string, w *bufio.Writer) bool {
				mu.Lock()
				l := line
				mu.Unlock()
				switch {
				case cmd == "FETCH": // the page's flags
					w.WriteString("* 1 FETCH (UID 1 FLAGS ())\r\n")
				case cmd == "UID FETCH" && strings.Contains(l, "BODYSTRUCTURE"): // one the client cannot parse
					w.WriteString("* 1 FETCH (UID 1 BODYSTRUCTURE (\"text\" \"plain\" X))\r\n")
				case cmd == "UID FETCH" && strings.Contains(l, "BODY.PEEK[]"):
					w.WriteString(tc.whole)
					huge(w, &sent, tc.more)
					return true
				case cmd == "UID FETCH": // the summary without a structure: a small message
					w.WriteString("* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 1000 INTERNALDATE \"01-Jan-2026 10:00:00 +0000\" " +
						"BODY[HEADER.FIELDS (DATE FROM SENDER TO CC SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES CONTENT-TYPE)] {16}\r\nSubject: big\r\n\r\n)\r\n")
				}
				return false
			}})
			e := New(Config{AllowPrivateHosts: true})
			defer e.Close()
			if tc.get {
				_, err := e.GetMessage(testCtx(t), acct, "INBOX", 1, GetOptions{})
				t.Logf("err %v; the server sent %d MiB", err, sent.Load()>>20)
				if err == nil || !strings.Contains(err.Error(), ErrLimit.Error()) {
					t.Fatalf("err %v, want one naming the limit", err)
				}
			} else {
				page, err := e.ListMessages(testCtx(t), acct, "INBOX", ListOptions{})
				t.Logf("page %+v, err %v; the server sent %d MiB", page, err, sent.Load()>>20)
				if err != nil || len(page.Messages) != 1 || page.Messages[0].Note != structureUnknown {
					t.Fatalf("page %+v, %v; want the message listed with the note %q", page, err, structureUnknown)
				}
			}
			// What the server wrote past its announcements, while the client
			// went on reading; a few MiB fill the sockets' buffers.
			if n := sent.Load(); n > maxParseForStructure {
				t.Fatalf("%d MiB read past what was asked for", n>>20)
			}
		})
	}
}

// TestOverlongBodiesKeepTheLoginBudget: a page whose structures cannot be
// read and whose bodies run past the size the server gave costs at most
// 1 + maxRedials logins, and lists every message, with a note.
func TestOverlongBodiesKeepTheLoginBudget(t *testing.T) {
	const n = 5
	var mu sync.Mutex
	var line string
	var logins atomic.Int64
	acct := startHostile(t, &hostileServer{exists: n, lineHook: func(l string) {
		mu.Lock()
		line = l
		mu.Unlock()
		if strings.Contains(strings.ToUpper(l), " LOGIN ") {
			logins.Add(1)
		}
	}, answer: func(tag, cmd string, w *bufio.Writer) bool {
		mu.Lock()
		l := line
		mu.Unlock()
		switch {
		case cmd == "FETCH":
			for i := 1; i <= n; i++ {
				fmt.Fprintf(w, "* %d FETCH (UID %d FLAGS ())\r\n", i, i)
			}
		case cmd == "UID FETCH" && strings.Contains(l, "BODYSTRUCTURE"):
			w.WriteString("* 1 FETCH (UID 1 BODYSTRUCTURE (\"text\" \"plain\" X))\r\n")
		case cmd == "UID FETCH" && strings.Contains(l, "BODY.PEEK[]"):
			w.WriteString("* 1 FETCH (UID 1 BODY[] {20000000}\r\n")
			endless(w, strings.Repeat("x", 64<<10))
			return true
		case cmd == "UID FETCH":
			for i := 1; i <= n; i++ {
				fmt.Fprintf(w, "* %d FETCH (UID %d FLAGS () RFC822.SIZE 1000 INTERNALDATE \"01-Jan-2026 10:00:00 +0000\" "+
					"BODY[HEADER.FIELDS (DATE FROM SENDER TO CC SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES CONTENT-TYPE)] {16}\r\nSubject: big\r\n\r\n)\r\n", i, i)
			}
		}
		return false
	}})
	e := New(Config{AllowPrivateHosts: true})
	defer e.Close()
	page, err := e.ListMessages(testCtx(t), acct, "INBOX", ListOptions{})
	if err != nil || len(page.Messages) != n {
		t.Fatalf("page %+v, %v", page, err)
	}
	for _, m := range page.Messages {
		if m.Note == "" {
			t.Errorf("message %d listed without a note: %+v", m.UID, m)
		}
	}
	if got := logins.Load(); got > 1+maxRedials {
		t.Fatalf("%d logins, want at most %d", got, 1+maxRedials)
	}
}

// TestHostileStartTLSCarriesNoFraming: a literal announced in plaintext
// before STARTTLS's OK, which the STARTTLS reader skips as lines, does
// not leave the guard of the TLS session inside it. Before, the server
// could end that literal where it liked, so that the guard took the
// library's status text for a streamed body: the library held a 32 MiB
// text and no limit fired.
func TestHostileStartTLSCarriesNoFraming(t *testing.T) {
	const literal, text = 1 << 20, 32 << 20
	cert, roots := selfSignedCert(t)
	const s0 = "S0 OK begin TLS\r\n"
	port := serveLoopback(t, func(raw net.Conn) {
		defer raw.Close()
		io.WriteString(raw, "* OK hi\r\n")
		if l, err := bufio.NewReader(raw).ReadString('\n'); err != nil || !strings.HasPrefix(l, "S0 STARTTLS") {
			return
		}
		fmt.Fprintf(raw, "* X {%d}\r\n%s", literal, s0) // one write: nothing follows the OK
		tc := &countingConn{Conn: tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}})}
		before := len(s0) + len("* OK TLS established\r\n") // and the greeting the engine puts first
		var last string                                     // commands runs one command at a time
		s := &hostileServer{lineHook: func(l string) { last = l }}
		s.answer = func(tag, cmd string, w *bufio.Writer) bool {
			switch {
			case cmd != "UID FETCH", strings.Contains(last, "BODYSTRUCTURE"): // no structure: the message is read whole
				return false
			case strings.Contains(last, "<0.262144>"): // its first bytes: a large message
				fmt.Fprintf(w, "* 1 FETCH (UID 1 RFC822.SIZE 999999999 BODY[]<0> {%d}\r\n%s)\r\n", sectionedOver, strings.Repeat("a", sectionedOver))
				return false
			}
			// Read whole, streamed: end the plaintext literal just
			// after the "{" of a body the library reads, so that a
			// guard still inside it would take that body for a 1 GB
			// one, and the tagged text after it for that body's bytes.
			w.Flush()
			inner := "* 1 FETCH (UID 1 BODY[] {1000000000}\r\n"
			prefix := "* 1 FETCH (UID 1 BODY[] {"
			left := literal - before - int(tc.written.Load())
			w.WriteString("* OK " + strings.Repeat("a", left-len(prefix)-7) + "\r\n" + prefix)
			fmt.Fprintf(w, "%d}\r\n%s)\r\n", len(inner), inner)
			w.WriteString(tag + " NO " + strings.Repeat("b", text) + "\r\n")
			w.Flush()
			return true
		}
		s.commands(tc)
	})
	ep := Endpoint{Host: "127.0.0.1", Port: port, TLS: TLSStartTLS}
	acct := &Account{ID: "starttls", IMAP: ep, SMTP: ep, Username: "u", Password: "p", Email: "u@example.com"}
	e := New(Config{AllowPrivateHosts: true, RootCAs: roots, Timeouts: Timeouts{Command: time.Minute, TLSHandshake: time.Minute}})
	defer e.Close()
	_, err := e.GetMessage(testCtx(t), acct, "INBOX", 1, GetOptions{})
	if msg := fmt.Sprint(err); !strings.Contains(msg, ErrLimit.Error()) || len(msg) > 1<<20 {
		t.Fatalf("err (%d bytes) %.300s: want one naming the limit", len(msg), msg)
	}
}

// countingConn counts the bytes written to it.
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// selfSignedCert makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots
}
