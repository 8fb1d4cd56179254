package mail

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Timeouts bound every network phase. A zero field takes its default.
type Timeouts struct {
	// Dial bounds DNS resolution and the TCP connect. Default 10 s.
	Dial time.Duration
	// TLSHandshake bounds the greeting, STARTTLS and the TLS handshake.
	// Default 10 s.
	TLSHandshake time.Duration
	// Login bounds IMAP LOGIN and SMTP EHLO + AUTH. Default 20 s.
	Login time.Duration
	// Command bounds each IMAP command, and each read while an
	// attachment streams. Default 60 s.
	Command time.Duration
	// Submission bounds one SMTP transaction (MAIL FROM to the end of
	// DATA). Default 60 s.
	Submission time.Duration
}

// Default timeouts; see Timeouts.
const (
	DefaultDialTimeout       = 10 * time.Second
	DefaultTLSTimeout        = 10 * time.Second
	DefaultLoginTimeout      = 20 * time.Second
	DefaultCommandTimeout    = 60 * time.Second
	DefaultSubmissionTimeout = 60 * time.Second
)

// Pool defaults; see Config.
const (
	DefaultMaxConns    = 4
	DefaultIdleTimeout = 5 * time.Minute
	DefaultHealthAfter = 30 * time.Second
	DefaultGrowAfter   = 100 * time.Millisecond
)

// Config holds the engine settings. The zero value is valid and safe:
// private hosts refused, system roots only, default timeouts.
type Config struct {
	// AllowPrivateHosts lets hosts that resolve to loopback, private or
	// link-local addresses be dialled (MAIL_ALLOW_PRIVATE_HOSTS).
	AllowPrivateHosts bool
	// RootCAs verifies server certificates; nil means the system roots.
	// See LoadRootCAs for MAIL_CA_FILE.
	RootCAs *x509.CertPool
	Timeouts
	// MaxConns bounds the IMAP connections per account. Default 4.
	MaxConns int
	// IdleTimeout closes a pooled connection unused for this long.
	// Default 5 min.
	IdleTimeout time.Duration
	// HealthAfter makes the pool send NOOP before reusing a connection
	// idle for this long. Default 30 s.
	HealthAfter time.Duration
	// GrowAfter is how long a borrower waits for a connection another
	// borrower is using before the pool logs in a new one: a login costs
	// the server far more than most commands. Default 100 ms; an account
	// with no connection logs in at once.
	GrowAfter time.Duration
	// Logger receives pool events; nil discards them.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Dial, DefaultDialTimeout)
	def(&c.TLSHandshake, DefaultTLSTimeout)
	def(&c.Login, DefaultLoginTimeout)
	def(&c.Command, DefaultCommandTimeout)
	def(&c.Submission, DefaultSubmissionTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.HealthAfter, DefaultHealthAfter)
	def(&c.GrowAfter, DefaultGrowAfter)
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// LoadRootCAs returns the system roots plus the PEM certificates in file
// (MAIL_CA_FILE). It fails if file holds no certificate.
func LoadRootCAs(file string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("mail: read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("mail: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
