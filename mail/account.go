// Package mail is the mail engine: pooled IMAP connections per account and
// every IMAP and SMTP operation the tools and the web UI need. It knows
// nothing of HTTP, MCP, SQL or HTML templates: callers pass plain account
// settings and get plain Go values back.
package mail

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// TLSMode says how a connection to an endpoint is secured.
type TLSMode string

// TLS modes. TLSNone is accepted only for loopback hosts.
const (
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (993, 465)
	TLSStartTLS TLSMode = "starttls" // plain greeting, then STARTTLS, required (143, 587)
	TLSNone     TLSMode = "none"     // no TLS at all; loopback only
)

// Endpoint is one server address and how to secure it.
type Endpoint struct {
	Host string
	Port int
	TLS  TLSMode
}

// Addr returns "host:port".
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// Account is everything the engine needs to reach one mailbox. The
// password is used only while an operation runs: the engine keeps no copy
// of it after the call returns (the pool keys connections by a keyed hash).
type Account struct {
	// ID identifies the account to the pool; with the settings'
	// fingerprint it selects reusable connections.
	ID   string
	IMAP Endpoint
	SMTP Endpoint
	// Username and Password log in to IMAP, and to SMTP unless
	// SMTPUsername is set.
	Username string
	Password string
	// SMTPUsername and SMTPPassword log in to SMTP when the provider
	// wants other credentials there; empty means Username and Password.
	SMTPUsername string
	SMTPPassword string
	// Email is the sender address; Name its display name.
	Email string
	Name  string
	// Aliases are further own addresses, left out of reply-all.
	Aliases []string
	// Provider is a preset key (see Presets) or empty; it selects
	// provider behaviour such as "the server keeps its own Sent copy".
	Provider string
	// SignatureHTML is appended (sanitized) to sent messages on request.
	SignatureHTML string
	// OAuth, when set, signs in with access tokens; the passwords are
	// then unused.
	OAuth *OAuth
}

// String describes the account without its password.
func (a Account) String() string {
	return fmt.Sprintf("account %s (%s@%s)", a.ID, a.Username, a.IMAP.Addr())
}

// LogValue keeps the password out of structured logs.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.ID), slog.String("user", a.Username),
		slog.String("imap", a.IMAP.Addr()), slog.String("smtp", a.SMTP.Addr()))
}

// smtpLogin returns the SMTP user name and password.
func (a Account) smtpLogin() (user, password string) {
	if a.SMTPUsername != "" {
		return a.SMTPUsername, a.SMTPPassword
	}
	return a.Username, a.Password
}

// ownAddresses returns the lower-cased own addresses.
func (a Account) ownAddresses() map[string]bool {
	own := map[string]bool{}
	for _, s := range append([]string{a.Email, a.Username, a.SMTPUsername}, a.Aliases...) {
		if s = strings.ToLower(strings.TrimSpace(s)); strings.Contains(s, "@") {
			own[s] = true
		}
	}
	return own
}

// fingerprintKey is a per-process random HMAC key, so a fingerprint never
// lets anyone test password guesses offline.
var fingerprintKey = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("mail: no randomness: " + err.Error())
	}
	return b
}()

// fingerprint changes whenever anything that affects an IMAP login
// changes, so the pool drops connections opened with old settings.
func (a Account) fingerprint() string {
	kind, secret := "password", a.Password
	if a.OAuth != nil {
		kind, secret = "oauth", a.OAuth.Grant
	}
	var buf [256]byte
	b := append(buf[:0], a.IMAP.Host...)
	b = strconv.AppendInt(append(b, 0), int64(a.IMAP.Port), 10)
	for _, s := range []string{string(a.IMAP.TLS), a.Username, kind, secret} {
		b = append(append(b, 0), s...)
	}
	m := hmac.New(sha256.New, fingerprintKey)
	m.Write(b)
	clear(b)
	clear(buf[:]) // when b outgrew buf, buf still holds its start
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}
