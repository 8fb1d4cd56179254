// Package config reads and validates the process configuration from the
// environment. Every name is documented in README.md and .env.example.
package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MasterKeySize is the length in bytes of MCP_MASTER_KEY once decoded.
const MasterKeySize = 32

// Config is the validated configuration of one process.
type Config struct {
	Port    int
	Host    string
	AppURL  string // origin without trailing slash; issuer and resource derive from it
	DataDir string

	// DatabaseURL is empty for the embedded SQLite database.
	DatabaseURL string
	// DatabaseMaxConns bounds this process's PostgreSQL connections.
	DatabaseMaxConns int
	// MasterKey is nil when MCP_MASTER_KEY is unset.
	MasterKey []byte

	ClerkPublishableKey string
	ClerkSecretKey      string
	// ClerkFrontendAPI is the instance's Frontend API host, decoded from
	// the publishable key; ClerkJS is loaded from it.
	ClerkFrontendAPI   string
	LocalAdminPassword string

	MailAllowPrivateHosts bool
	MailCAFile            string
	TrustProxyHeaders     bool

	// OAuth holds the mail providers' client credentials, by provider
	// key ("google", "microsoft"); a provider without an id is off.
	OAuth           map[string]OAuthClient
	MicrosoftTenant string
	// OAuthTestEndpoints replaces providers' endpoints and servers
	// (MAIL_OAUTH_TEST_ENDPOINTS); for tests only.
	OAuthTestEndpoints map[string]OAuthEndpoints

	// CallsPerMinute and SendsPerHour bound one person's MCP tool calls
	// and sent messages, across every replica.
	CallsPerMinute int
	SendsPerHour   int
	// ActivityRetention is how long the activity log keeps a tool call
	// (ACTIVITY_RETENTION_DAYS, default 90); OutboxRetention how long a
	// sent message's bytes stay in the outbox (OUTBOX_RETENTION_DAYS,
	// default 7).
	ActivityRetention, OutboxRetention time.Duration

	LogLevel  slog.Level
	LogFormat string // "text" or "json"
}

// OAuthClient is an app registration with a mail provider.
type OAuthClient struct{ ID, Secret string }

// OAuthEndpoints stands in for a mail provider in tests: where its
// authorization and token endpoints are, which issuer its ID tokens name,
// and its IMAP and SMTP servers as host:port with a TLS mode.
type OAuthEndpoints struct {
	AuthURL  string `json:"auth_url"`
	TokenURL string `json:"token_url"`
	Issuer   string `json:"issuer"`
	IMAP     string `json:"imap"`
	IMAPTLS  string `json:"imap_tls"`
	SMTP     string `json:"smtp"`
	SMTPTLS  string `json:"smtp_tls"`
}

// Error names the variable that is wrong and says what is wrong with it.
type Error struct {
	Name   string
	Reason string
}

func (e *Error) Error() string { return "config: " + e.Name + ": " + e.Reason }

// FromEnv builds a Config from getenv (os.Getenv in production) and
// validates it. The returned error is an *Error naming the first bad variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Host:      "127.0.0.1",
		DataDir:   "./data",
		LogFormat: "text",
	}
	var err error
	if c.Port, err = port(getenv("PORT")); err != nil {
		return Config{}, err
	}
	if v := getenv("HOST"); v != "" {
		if ip := net.ParseIP(v); ip == nil && !validHostname(v) {
			return Config{}, &Error{"HOST", fmt.Sprintf("%q is not an IP address or host name", v)}
		}
		c.Host = v
	}
	if c.AppURL, err = appURL(getenv("APP_URL"), c.Port); err != nil {
		return Config{}, err
	}
	if v := getenv("DATA_DIR"); v != "" {
		c.DataDir = v
	}
	c.DataDir = filepath.Clean(c.DataDir)
	if c.DatabaseURL, err = databaseURL(getenv("DATABASE_URL")); err != nil {
		return Config{}, err
	}
	if c.DatabaseMaxConns, err = limit("DATABASE_MAX_CONNS", getenv("DATABASE_MAX_CONNS"), 20); err != nil {
		return Config{}, err
	}
	if c.DatabaseMaxConns < 2 {
		return Config{}, &Error{"DATABASE_MAX_CONNS", "must be at least 2: each server keeps one connection for its serving lock"}
	}
	if c.MasterKey, err = ParseMasterKey("MCP_MASTER_KEY", getenv("MCP_MASTER_KEY")); err != nil {
		return Config{}, err
	}
	if c.DatabaseURL != "" && c.MasterKey == nil {
		return Config{}, &Error{"MCP_MASTER_KEY", "is required with PostgreSQL (generate one with: openssl rand -base64 32, and keep it safe)"}
	}
	c.ClerkPublishableKey = getenv("CLERK_PUBLISHABLE_KEY")
	c.ClerkSecretKey = getenv("CLERK_SECRET_KEY")
	if (c.ClerkPublishableKey == "") != (c.ClerkSecretKey == "") {
		name := "CLERK_SECRET_KEY"
		if c.ClerkPublishableKey == "" {
			name = "CLERK_PUBLISHABLE_KEY"
		}
		return Config{}, &Error{name, "is unset; set both Clerk keys for Clerk sign-in or neither for local single-user mode"}
	}
	if c.ClerkPublishableKey != "" {
		if c.ClerkFrontendAPI, err = frontendAPI(c.ClerkPublishableKey); err != nil {
			return Config{}, err
		}
	}
	if c.ClerkSecretKey != "" && !strings.HasPrefix(c.ClerkSecretKey, "sk_") {
		return Config{}, &Error{"CLERK_SECRET_KEY", "must start with sk_ (copy it from the Clerk dashboard, API keys)"}
	}
	c.LocalAdminPassword = getenv("LOCAL_ADMIN_PASSWORD")
	if c.LocalAdminPassword != "" && len(c.LocalAdminPassword) < 8 {
		return Config{}, &Error{"LOCAL_ADMIN_PASSWORD", "is shorter than 8 characters"}
	}
	if c.MailAllowPrivateHosts, err = boolean("MAIL_ALLOW_PRIVATE_HOSTS", getenv("MAIL_ALLOW_PRIVATE_HOSTS")); err != nil {
		return Config{}, err
	}
	if c.MailCAFile, err = caFile(getenv("MAIL_CA_FILE")); err != nil {
		return Config{}, err
	}
	if c.TrustProxyHeaders, err = boolean("TRUST_PROXY_HEADERS", getenv("TRUST_PROXY_HEADERS")); err != nil {
		return Config{}, err
	}
	if c.OAuth, c.MicrosoftTenant, err = oauthClients(getenv); err != nil {
		return Config{}, err
	}
	if c.OAuthTestEndpoints, err = oauthTestEndpoints(getenv("MAIL_OAUTH_TEST_ENDPOINTS")); err != nil {
		return Config{}, err
	}
	if c.CallsPerMinute, err = limit("MCP_CALLS_PER_MINUTE", getenv("MCP_CALLS_PER_MINUTE"), 120); err != nil {
		return Config{}, err
	}
	if c.SendsPerHour, err = limit("MCP_SENDS_PER_HOUR", getenv("MCP_SENDS_PER_HOUR"), 60); err != nil {
		return Config{}, err
	}
	days, err := limit("ACTIVITY_RETENTION_DAYS", getenv("ACTIVITY_RETENTION_DAYS"), 90)
	if err != nil || days > 3650 {
		return Config{}, &Error{"ACTIVITY_RETENTION_DAYS", fmt.Sprintf("%q is not a number of days from 1 to 3650", getenv("ACTIVITY_RETENTION_DAYS"))}
	}
	c.ActivityRetention = time.Duration(days) * 24 * time.Hour
	days, err = limit("OUTBOX_RETENTION_DAYS", getenv("OUTBOX_RETENTION_DAYS"), 7)
	if err != nil || days > 3650 {
		return Config{}, &Error{"OUTBOX_RETENTION_DAYS", fmt.Sprintf("%q is not a number of days from 1 to 3650", getenv("OUTBOX_RETENTION_DAYS"))}
	}
	c.OutboxRetention = time.Duration(days) * 24 * time.Hour
	if err := c.LogLevel.UnmarshalText([]byte(orDefault(getenv("LOG_LEVEL"), "info"))); err != nil {
		return Config{}, &Error{"LOG_LEVEL", fmt.Sprintf("%q is not one of debug, info, warn, error", getenv("LOG_LEVEL"))}
	}
	switch v := orDefault(getenv("LOG_FORMAT"), "text"); v {
	case "text", "json":
		c.LogFormat = v
	default:
		return Config{}, &Error{"LOG_FORMAT", fmt.Sprintf("%q is not text or json", v)}
	}
	return c, nil
}

// oauthClients reads the Google and Microsoft app registrations: an id
// needs its secret and the reverse.
func oauthClients(getenv func(string) string) (map[string]OAuthClient, string, error) {
	clients := map[string]OAuthClient{}
	for _, p := range []struct{ key, prefix string }{{"google", "GOOGLE"}, {"microsoft", "MICROSOFT"}} {
		id, secret := strings.TrimSpace(getenv(p.prefix+"_OAUTH_CLIENT_ID")), strings.TrimSpace(getenv(p.prefix+"_OAUTH_CLIENT_SECRET"))
		switch {
		case id == "" && secret == "":
			continue
		case id == "":
			return nil, "", &Error{p.prefix + "_OAUTH_CLIENT_ID", "is unset but its client secret is set; set both or neither"}
		case secret == "":
			return nil, "", &Error{p.prefix + "_OAUTH_CLIENT_SECRET", "is unset; copy the client secret from the app registration (see the README)"}
		case strings.ContainsAny(id+secret, " \t\r\n"):
			return nil, "", &Error{p.prefix + "_OAUTH_CLIENT_ID", "and its secret must not contain spaces"}
		}
		clients[p.key] = OAuthClient{ID: id, Secret: secret}
	}
	tenant := orDefault(strings.TrimSpace(getenv("MICROSOFT_OAUTH_TENANT")), "common")
	if !validTenant(tenant) {
		return nil, "", &Error{"MICROSOFT_OAUTH_TENANT", fmt.Sprintf("%q is not common, organizations, consumers, a tenant id or a domain", tenant)}
	}
	return clients, tenant, nil
}

func validTenant(t string) bool {
	if len(t) > 100 {
		return false
	}
	for _, r := range t {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return t != ""
}

// oauthTestEndpoints reads MAIL_OAUTH_TEST_ENDPOINTS: a JSON object from
// provider key to OAuthEndpoints.
func oauthTestEndpoints(v string) (map[string]OAuthEndpoints, error) {
	if v == "" {
		return nil, nil
	}
	const name = "MAIL_OAUTH_TEST_ENDPOINTS"
	var m map[string]OAuthEndpoints
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, &Error{name, "is not a JSON object of provider endpoints (it is for tests only: leave it unset)"}
	}
	for key, e := range m {
		if key != "google" && key != "microsoft" {
			return nil, &Error{name, fmt.Sprintf("names unknown provider %q (google or microsoft)", key)}
		}
		// Stand-ins run on this machine: nothing else may receive tokens.
		for _, u := range []string{e.AuthURL, e.TokenURL} {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || !loopback(pu.Hostname()) {
				return nil, &Error{name, fmt.Sprintf("%s: %q is not an http(s) URL on a loopback address", key, u)}
			}
		}
		for _, hp := range []string{e.IMAP, e.SMTP} {
			if host, _, err := net.SplitHostPort(hp); err != nil || !loopback(host) {
				return nil, &Error{name, fmt.Sprintf("%s: %q is not host:port on a loopback address", key, hp)}
			}
		}
	}
	return m, nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// limit reads a positive rate limit, def when unset.
func limit(name, v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, &Error{name, fmt.Sprintf("%q is not a whole number from 1 to 1000000", v)}
	}
	return n, nil
}

// Embedded reports whether the process uses the embedded SQLite database.
func (c Config) Embedded() bool { return c.DatabaseURL == "" }

// ClerkEnabled reports whether humans sign in with Clerk.
func (c Config) ClerkEnabled() bool { return c.ClerkSecretKey != "" }

// SQLitePath is the embedded database file.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "imap-mcp.db") }

// MasterKeyPath is where embedded mode keeps its generated master key.
func (c Config) MasterKeyPath() string { return filepath.Join(c.DataDir, "master.key") }

// Issuer is the OAuth issuer identifier: APP_URL without trailing slash.
func (c Config) Issuer() string { return c.AppURL }

// Resource is the canonical MCP resource URL and token audience.
func (c Config) Resource() string { return c.AppURL + "/api/mcp" }

// Addr is the listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// ParseMasterKey decodes a base64 (standard or URL alphabet, padded or not)
// master key of MasterKeySize bytes. An empty value gives a nil key.
func ParseMasterKey(name, v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(v); err == nil {
			if len(k) != MasterKeySize {
				return nil, &Error{name, fmt.Sprintf("decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(k), MasterKeySize)}
			}
			return k, nil
		}
	}
	return nil, &Error{name, "is not base64 (generate one with: openssl rand -base64 32)"}
}

// frontendAPI decodes pk_(test|live)_base64("<host>$") into the host.
func frontendAPI(pk string) (string, error) {
	bad := &Error{"CLERK_PUBLISHABLE_KEY", "is not a Clerk publishable key (pk_test_… or pk_live_…, from the Clerk dashboard, API keys)"}
	enc, ok := strings.CutPrefix(pk, "pk_test_")
	if !ok {
		if enc, ok = strings.CutPrefix(pk, "pk_live_"); !ok {
			return "", bad
		}
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	host, ok := strings.CutSuffix(string(raw), "$")
	if err != nil || !ok || !validHostname(strings.Split(host, ":")[0]) {
		return "", bad
	}
	return host, nil
}

func port(v string) (int, error) {
	if v == "" {
		return 3000, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 || p > 65535 {
		return 0, &Error{"PORT", fmt.Sprintf("%q is not a port number (0-65535)", v)}
	}
	return p, nil
}

func appURL(v string, port int) (string, error) {
	if v == "" {
		return fmt.Sprintf("http://localhost:%d", port), nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &Error{"APP_URL", fmt.Sprintf("%q is not an absolute http(s) URL such as https://mail-mcp.example.com", v)}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", &Error{"APP_URL", fmt.Sprintf("%q must be an origin only: no path, query, fragment or credentials", v)}
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

func databaseURL(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		// Never echo the value: it usually holds a password.
		return "", &Error{"DATABASE_URL", "is not a postgres://user:password@host:5432/dbname URL (leave it unset for the embedded SQLite database)"}
	}
	return v, nil
}

func boolean(name, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &Error{name, fmt.Sprintf("%q is not true or false", v)}
	}
	return b, nil
}

func caFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", &Error{"MAIL_CA_FILE", fmt.Sprintf("%s cannot be read: %v", path, err)}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return "", &Error{"MAIL_CA_FILE", fmt.Sprintf("%s holds no PEM certificate", path)}
	}
	return path, nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
