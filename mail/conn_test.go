package mail

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/netguard"
)

func TestConnectionTestModesAndFailures(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{Timeouts: Timeouts{TLSHandshake: 700 * time.Millisecond}})
	good := rigAccount(t, rig, "alice")
	withEP := func(imapAddr string, imapMode TLSMode, smtpAddr string, smtpMode TLSMode) *Account {
		a := *good
		a.IMAP, a.SMTP = endpoint(t, imapAddr, imapMode), endpoint(t, smtpAddr, smtpMode)
		return &a
	}
	wrongSMTP := *good
	wrongSMTP.SMTPUsername, wrongSMTP.SMTPPassword = good.Username, "wrong-smtp"
	wrongPass := *good
	wrongPass.Password = "wrong-" + good.Password
	wrongPass.Provider = "gmail"

	for _, tc := range []struct {
		name               string
		acct               *Account
		imapKind, smtpKind Kind // KindOther means success
	}{
		{"implicit TLS", withEP(rig.IMAPSAddr(), TLSImplicit, rig.SMTPSAddr(), TLSImplicit), KindOther, KindOther},
		{"STARTTLS", withEP(rig.IMAPAddr(), TLSStartTLS, rig.SubmissionAddr(), TLSStartTLS), KindOther, KindOther},
		{"plain on loopback", withEP(rig.IMAPAddr(), TLSNone, rig.SubmissionAddr(), TLSStartTLS), KindOther, KindOther},
		{"TLS to plaintext port", withEP(rig.IMAPAddr(), TLSImplicit, rig.SubmissionAddr(), TLSImplicit), KindTLSMismatch, KindTLSMismatch},
		{"plaintext to TLS port", withEP(rig.IMAPSAddr(), TLSStartTLS, rig.SMTPSAddr(), TLSStartTLS), KindTLSMismatch, KindTLSMismatch},
		{"wrong password", &wrongPass, KindAuth, KindAuth},
		{"separate SMTP credentials", &wrongSMTP, KindOther, KindAuth},
		{"ports swapped, TLS", withEP(rig.SMTPSAddr(), TLSImplicit, rig.IMAPSAddr(), TLSImplicit), KindWrongProtocol, KindWrongProtocol},
		{"ports swapped, STARTTLS", withEP(rig.SubmissionAddr(), TLSStartTLS, rig.IMAPAddr(), TLSStartTLS), KindWrongProtocol, KindWrongProtocol},
		{"SMTP port without login", withEP(rig.IMAPSAddr(), TLSImplicit, rig.SubmissionAddr(), TLSNone), KindOther, KindUnsupported},
	} {
		res := e.TestConnection(testCtx(t), tc.acct)
		for _, half := range []struct {
			proto string
			got   CheckResult
			want  Kind
		}{{"imap", res.IMAP, tc.imapKind}, {"smtp", res.SMTP, tc.smtpKind}} {
			if half.want == KindOther {
				if !half.got.OK || half.got.Err != nil {
					t.Errorf("%s %s: %v", tc.name, half.proto, half.got.Err)
				}
				continue
			}
			if half.got.OK || KindOf(half.got.Err) != half.want || half.got.Hint == "" {
				t.Errorf("%s %s: kind %v (%v), hint %q; want %v", tc.name, half.proto, KindOf(half.got.Err), half.got.Err, half.got.Hint, half.want)
			}
			if strings.Contains(half.got.Err.Error(), good.Password) {
				t.Errorf("%s: password in error text", tc.name)
			}
		}
	}
	res := e.TestConnection(testCtx(t), &wrongPass)
	if !strings.Contains(res.IMAP.Hint, "app password") {
		t.Errorf("gmail auth hint: %q", res.IMAP.Hint)
	}
	res = e.TestConnection(testCtx(t), withEP(rig.SMTPSAddr(), TLSImplicit, rig.IMAPSAddr(), TLSImplicit))
	if !strings.Contains(res.IMAP.Hint, "swapped") || !strings.Contains(res.SMTP.Hint, "swapped") {
		t.Errorf("swapped ports hints: %q / %q", res.IMAP.Hint, res.SMTP.Hint)
	}
	res = e.TestConnection(testCtx(t), withEP(rig.IMAPSAddr(), TLSImplicit, rig.SubmissionAddr(), TLSNone))
	if !strings.Contains(res.SMTP.Hint, "accepts no login") {
		t.Errorf("no-AUTH hint: %q", res.SMTP.Hint)
	}
	if s := e.Stats(); len(s) != 0 {
		t.Errorf("connection test used the pool: %v", s)
	}
}

func TestConnectErrorsAreClassified(t *testing.T) {
	t.Parallel()
	rig := testRig(t)
	roots, err := LoadRootCAs(rig.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	acct := rigAccount(t, rig, "alice")
	for _, tc := range []struct {
		name string
		cfg  Config
		ep   Endpoint
		want Kind
	}{
		{"private address refused by default", Config{RootCAs: roots}, acct.IMAP, KindForbidden},
		{"certificate not trusted", Config{AllowPrivateHosts: true}, acct.IMAP, KindCertificate},
		{"connection refused", Config{AllowPrivateHosts: true, RootCAs: roots}, Endpoint{"127.0.0.1", closed, TLSImplicit}, KindRefused},
		{"dns", Config{AllowPrivateHosts: true}, Endpoint{"no-such-host.invalid", 993, TLSImplicit}, KindDNS},
		{"none off loopback", Config{}, Endpoint{"mail.example.com", 143, TLSNone}, KindInvalid},
		{"unknown mode", Config{}, Endpoint{"mail.example.com", 143, "ssl"}, KindInvalid},
	} {
		e := New(tc.cfg)
		a := *acct
		a.IMAP = tc.ep
		err := e.Do(testCtx(t), &a, func(*Conn) error { return nil })
		if KindOf(err) != tc.want {
			t.Errorf("%s: kind %v (%v), want %v", tc.name, KindOf(err), err, tc.want)
		}
		if tc.want == KindForbidden && (!errors.Is(err, netguard.ErrForbiddenAddress) || !strings.Contains(Hint(err, &a), "MAIL_ALLOW_PRIVATE_HOSTS")) {
			t.Errorf("forbidden: %v / %q", err, Hint(err, &a))
		}
		_ = e.Close()
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// plainServer accepts one connection at a time on loopback, writes
// greeting and answers every line with reply(line).
func plainServer(t *testing.T, greeting string, reply func(line string) string) Endpoint {
	t.Helper()
	port := serveLoopback(t, func(conn net.Conn) {
		defer conn.Close()
		_, _ = conn.Write([]byte(greeting))
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte(reply(strings.TrimRight(line, "\r\n"))))
		}
	})
	return Endpoint{Host: "127.0.0.1", Port: port, TLS: TLSStartTLS}
}

func TestStartTLSIsNeverSkipped(t *testing.T) {
	t.Parallel()
	imapEP := plainServer(t, "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n", func(line string) string {
		tag, _, _ := strings.Cut(line, " ")
		return tag + " BAD STARTTLS not supported\r\n"
	})
	smtpEP := plainServer(t, "220 mx.example.test ESMTP\r\n", func(line string) string {
		if strings.HasPrefix(strings.ToUpper(line), "EHLO") {
			return "250-mx.example.test\r\n250 AUTH PLAIN LOGIN\r\n"
		}
		return "250 ok\r\n"
	})
	e := New(Config{AllowPrivateHosts: true})
	t.Cleanup(func() { _ = e.Close() })
	res := e.TestConnection(testCtx(t), &Account{ID: "plain", IMAP: imapEP, SMTP: smtpEP, Username: "u", Password: "p"})
	for name, r := range map[string]CheckResult{"imap": res.IMAP, "smtp": res.SMTP} {
		if r.OK || KindOf(r.Err) != KindTLSMismatch || !strings.Contains(r.Err.Error(), "STARTTLS") {
			t.Errorf("%s: %v", name, r.Err)
		}
	}
}

// TestStartTLSRefusesPlaintextAfterOK: plaintext after STARTTLS's OK is
// refused even when the guard of the plaintext failed it and kept it
// back; before, that went on to the handshake.
func TestStartTLSRefusesPlaintextAfterOK(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	hello := make(chan byte, 1)
	go func() {
		srv.Write([]byte("* OK hi\r\n"))
		r := bufio.NewReader(srv)
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "S0 STARTTLS") {
			return
		}
		srv.Write([]byte("S0 OK go\r\n* OK [x\r\nA1 OK [CAPABILITY IMAP4rev1] injected\r\n")) // one write
		if b, err := r.ReadByte(); err == nil {
			hello <- b
		}
		srv.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := startTLS(ctx, cli, &tls.Config{ServerName: "x"})
	if err == nil || !strings.Contains(err.Error(), "plaintext after") {
		t.Errorf("err %v, want the refusal of plaintext after the OK", err)
	}
	select {
	case b := <-hello:
		t.Errorf("the client began the TLS handshake (%#x)", b)
	default:
	}
}

// TestStartTLSReadsTypesInAnyCase: a greeting and an OK in lower case
// are what the IMAP library accepts; before, STARTTLS refused them.
func TestStartTLSReadsTypesInAnyCase(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	go func() {
		srv.Write([]byte("* ok IMAP ready\r\n"))
		bufio.NewReader(srv).ReadString('\n')
		srv.Write([]byte("S0 ok begin TLS\r\n"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := startTLS(ctx, cli, &tls.Config{ServerName: "x"})
	if err == nil || !strings.Contains(err.Error(), "tls handshake") { // the pipe's other end speaks no TLS
		t.Errorf("err %v, want the handshake reached", err)
	}
}
