package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"

	"github.com/emersion/go-imap/v2"

	"github.com/imap-mcp/imap-mcp/netguard"
)

// Kind classifies an engine error so callers can choose the words a person
// or a model sees.
type Kind int

// Error kinds.
const (
	KindOther         Kind = iota // anything not listed below
	KindAuth                      // the server refused the credentials
	KindTLSMismatch               // TLS spoken to a plaintext port or the reverse, or STARTTLS missing
	KindCertificate               // the server certificate did not verify
	KindDNS                       // the host name did not resolve
	KindRefused                   // TCP connection refused or reset
	KindTimeout                   // a phase ran out of time
	KindForbidden                 // the host resolves to a private address (SSRF guard)
	KindNotFound                  // folder, message or part does not exist
	KindTemporary                 // the server asked to try again later
	KindInvalid                   // the request itself is not acceptable
	KindUnsupported               // the server lacks a capability the operation needs
	KindReauth                    // the provider withdrew the OAuth sign-in; the person must sign in again
	KindWrongProtocol             // the port speaks the other protocol (IMAP and SMTP ports swapped)
)

var kindNames = [...]string{"error", "authentication failed", "TLS mismatch", "certificate",
	"DNS", "connection refused", "timeout", "address not allowed", "not found", "temporary failure",
	"invalid request", "unsupported", "sign-in expired", "wrong protocol"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is the error type every exported engine function returns. It
// wraps the cause, which errors.Is/As reach through Unwrap. Its text never
// holds a password.
type Error struct {
	Kind Kind
	Op   string // what the engine was doing, e.g. "imap login"
	Addr string // host:port, when a server was involved
	Err  error
}

func (e *Error) Error() string {
	s := "mail: " + e.Op
	if e.Addr != "" {
		s += " " + e.Addr
	}
	s += ": " + e.Kind.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err, or KindOther if err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// invalid returns a KindInvalid error for op.
func invalid(op, format string, args ...any) error {
	return &Error{Kind: KindInvalid, Op: op, Err: fmt.Errorf(format, args...)}
}

// notFound returns a KindNotFound error for op.
func notFound(op, format string, args ...any) error {
	return &Error{Kind: KindNotFound, Op: op, Err: fmt.Errorf(format, args...)}
}

// wrap classifies err and wraps it as an *Error for op at addr. An
// *Error passes through unchanged; nil stays nil.
func wrap(op, addr string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: classify(err), Op: op, Addr: addr, Err: err}
}

// classify maps network, TLS, IMAP and SMTP errors to a Kind.
func classify(err error) Kind {
	var (
		dnsErr   *net.DNSError
		recErr   tls.RecordHeaderError
		certErr  *tls.CertificateVerificationError
		uaErr    x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invErr   x509.CertificateInvalidError
		imapErr  *imap.Error
		smtpErr  *textproto.Error
		netErr   net.Error
		alertErr tls.AlertError
	)
	switch {
	case errors.Is(err, netguard.ErrForbiddenAddress):
		return KindForbidden
	case errors.As(err, &dnsErr):
		return KindDNS
	case errors.As(err, &recErr):
		return KindTLSMismatch
	case errors.As(err, &certErr), errors.As(err, &uaErr), errors.As(err, &hostErr), errors.As(err, &invErr):
		return KindCertificate
	case errors.As(err, &alertErr):
		return KindTLSMismatch
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return KindRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case errors.As(err, &imapErr):
		return imapKind(imapErr)
	case errors.As(err, &smtpErr):
		return smtpKind(smtpErr.Code)
	}
	return KindOther
}

func imapKind(e *imap.Error) Kind {
	switch e.Code {
	case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired,
		imap.ResponseCodePrivacyRequired:
		return KindAuth
	case imap.ResponseCodeNonExistent, imap.ResponseCodeTryCreate:
		return KindNotFound
	case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse, imap.ResponseCodeLimit, imap.ResponseCodeServerBug:
		return KindTemporary
	case imap.ResponseCodeAlreadyExists, imap.ResponseCodeCannot, imap.ResponseCodeNoPerm:
		return KindInvalid
	}
	return KindOther
}

func smtpKind(code int) Kind {
	switch {
	case code == 535 || code == 534 || code == 530:
		return KindAuth
	case code >= 400 && code < 500:
		return KindTemporary
	case code >= 500:
		return KindInvalid
	}
	return KindOther
}

// isEOF reports a connection closed by the peer.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
