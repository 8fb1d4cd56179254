package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 3000 || c.Host != "127.0.0.1" || c.AppURL != "http://localhost:3000" || c.DataDir != "data" ||
		!c.Embedded() || c.ClerkEnabled() || c.MasterKey != nil || c.LogLevel != slog.LevelInfo || c.LogFormat != "text" {
		t.Fatalf("defaults = %+v", c)
	}
	if c.Issuer() != "http://localhost:3000" || c.Resource() != "http://localhost:3000/api/mcp" {
		t.Fatalf("issuer %q resource %q", c.Issuer(), c.Resource())
	}
	if c.SQLitePath() != filepath.Join("data", "imap-mcp.db") || c.Addr() != "127.0.0.1:3000" {
		t.Fatalf("paths: %q %q", c.SQLitePath(), c.Addr())
	}
}

func TestValues(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.FromEnv(env(map[string]string{
		"PORT": "8080", "HOST": "0.0.0.0", "APP_URL": "https://Mail.Example.com/", "DATA_DIR": "/var/lib/imap-mcp/",
		"DATABASE_URL":          "postgres://app:pw@db:5432/app?sslmode=disable",
		"MCP_MASTER_KEY":        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"CLERK_PUBLISHABLE_KEY": "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k", "CLERK_SECRET_KEY": "sk_test_abc",
		"MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": ca, "TRUST_PROXY_HEADERS": "1",
		"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "MCP_CALLS_PER_MINUTE": "300", "MCP_SENDS_PER_HOUR": "5",
		"ACTIVITY_RETENTION_DAYS": "30", "OUTBOX_RETENTION_DAYS": "2",
		"GOOGLE_OAUTH_CLIENT_ID": "gid", "GOOGLE_OAUTH_CLIENT_SECRET": "gsecret", "MICROSOFT_OAUTH_TENANT": "contoso.onmicrosoft.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Host != "0.0.0.0" || c.AppURL != "https://mail.example.com" || c.DataDir != "/var/lib/imap-mcp" ||
		c.Embedded() || !c.ClerkEnabled() || len(c.MasterKey) != 32 || c.MasterKey[31] != 31 || !c.MailAllowPrivateHosts ||
		c.MailCAFile != ca || !c.TrustProxyHeaders || c.LogLevel != slog.LevelDebug || c.LogFormat != "json" ||
		c.CallsPerMinute != 300 || c.SendsPerHour != 5 || c.ActivityRetention != 30*24*time.Hour || c.OutboxRetention != 48*time.Hour {
		t.Fatalf("config = %+v", c)
	}
	if c.OAuth["google"] != (config.OAuthClient{ID: "gid", Secret: "gsecret"}) || len(c.OAuth) != 1 || c.MicrosoftTenant != "contoso.onmicrosoft.com" {
		t.Fatalf("mail provider sign-in: %+v, tenant %q", c.OAuth, c.MicrosoftTenant)
	}
	if c.ClerkFrontendAPI != "clerk.example.com" {
		t.Fatalf("Clerk Frontend API = %q", c.ClerkFrontendAPI)
	}
	if c.Resource() != "https://mail.example.com/api/mcp" {
		t.Fatalf("resource = %q", c.Resource())
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		env  map[string]string
		name string
		want string
	}{
		{map[string]string{"PORT": "http"}, "PORT", "not a port number"},
		{map[string]string{"PORT": "70000"}, "PORT", "not a port number"},
		{map[string]string{"HOST": "bad host!"}, "HOST", "not an IP address"},
		{map[string]string{"APP_URL": "mail.example.com"}, "APP_URL", "absolute http(s) URL"},
		{map[string]string{"APP_URL": "https://mail.example.com/mcp"}, "APP_URL", "origin only"},
		{map[string]string{"DATABASE_URL": "mysql://u:hunter2@db/x"}, "DATABASE_URL", "postgres://"},
		{map[string]string{"DATABASE_URL": "postgres://u:hunter2@db/x"}, "MCP_MASTER_KEY", "required with PostgreSQL"},
		{map[string]string{"MCP_MASTER_KEY": "not base64!!"}, "MCP_MASTER_KEY", "not base64"},
		{map[string]string{"MCP_MASTER_KEY": "c2hvcnQ="}, "MCP_MASTER_KEY", "decodes to 5 bytes, want 32"},
		{map[string]string{"CLERK_SECRET_KEY": "sk_test_x"}, "CLERK_PUBLISHABLE_KEY", "set both"},
		{map[string]string{"CLERK_PUBLISHABLE_KEY": "pk_test_x"}, "CLERK_SECRET_KEY", "set both"},
		{map[string]string{"CLERK_PUBLISHABLE_KEY": "x", "CLERK_SECRET_KEY": "sk_x"}, "CLERK_PUBLISHABLE_KEY", "pk_test_"},
		{map[string]string{"CLERK_PUBLISHABLE_KEY": "pk_test_bm9kb2xsYXI=", "CLERK_SECRET_KEY": "sk_x"}, "CLERK_PUBLISHABLE_KEY", "not a Clerk publishable key"},
		{map[string]string{"LOCAL_ADMIN_PASSWORD": "short"}, "LOCAL_ADMIN_PASSWORD", "8 characters"},
		{map[string]string{"MAIL_ALLOW_PRIVATE_HOSTS": "yes please"}, "MAIL_ALLOW_PRIVATE_HOSTS", "not true or false"},
		{map[string]string{"MAIL_CA_FILE": "/nonexistent/ca.pem"}, "MAIL_CA_FILE", "cannot be read"},
		{map[string]string{"MAIL_CA_FILE": notPEM}, "MAIL_CA_FILE", "no PEM certificate"},
		{map[string]string{"TRUST_PROXY_HEADERS": "maybe"}, "TRUST_PROXY_HEADERS", "not true or false"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL", "debug, info, warn, error"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT", "text or json"},
		{map[string]string{"MCP_CALLS_PER_MINUTE": "0"}, "MCP_CALLS_PER_MINUTE", "whole number from 1"},
		{map[string]string{"ACTIVITY_RETENTION_DAYS": "5000"}, "ACTIVITY_RETENTION_DAYS", "days from 1 to 3650"},
		{map[string]string{"MCP_SENDS_PER_HOUR": "lots"}, "MCP_SENDS_PER_HOUR", "whole number from 1"},
		{map[string]string{"DATABASE_MAX_CONNS": "1"}, "DATABASE_MAX_CONNS", "at least 2"},
		{map[string]string{"DATABASE_MAX_CONNS": "many"}, "DATABASE_MAX_CONNS", "whole number"},
		{map[string]string{"GOOGLE_OAUTH_CLIENT_ID": "id.apps.googleusercontent.com"}, "GOOGLE_OAUTH_CLIENT_SECRET", "is unset"},
		{map[string]string{"MICROSOFT_OAUTH_CLIENT_SECRET": "hunter2"}, "MICROSOFT_OAUTH_CLIENT_ID", "set both or neither"},
		{map[string]string{"MICROSOFT_OAUTH_TENANT": "../evil"}, "MICROSOFT_OAUTH_TENANT", "not common"},
		{map[string]string{"MAIL_OAUTH_TEST_ENDPOINTS": "{"}, "MAIL_OAUTH_TEST_ENDPOINTS", "for tests only"},
		{map[string]string{"MAIL_OAUTH_TEST_ENDPOINTS": `{"yahoo":{}}`}, "MAIL_OAUTH_TEST_ENDPOINTS", "unknown provider"},
		{map[string]string{"MAIL_OAUTH_TEST_ENDPOINTS": `{"google":{"auth_url":"x","token_url":"http://t","imap":"h:1","smtp":"h:2"}}`}, "MAIL_OAUTH_TEST_ENDPOINTS", "not an http(s) URL"},
		{map[string]string{"MAIL_OAUTH_TEST_ENDPOINTS": `{"google":{"auth_url":"https://evil.example/a","token_url":"https://evil.example/t","imap":"127.0.0.1:1","smtp":"127.0.0.1:2"}}`}, "MAIL_OAUTH_TEST_ENDPOINTS", "loopback"},
		{map[string]string{"MAIL_OAUTH_TEST_ENDPOINTS": `{"google":{"auth_url":"http://127.0.0.1/a","token_url":"http://127.0.0.1/t","imap":"imap.evil.example:993","smtp":"127.0.0.1:2"}}`}, "MAIL_OAUTH_TEST_ENDPOINTS", "loopback"},
	} {
		_, err := config.FromEnv(env(tc.env))
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Name != tc.name || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %s: …%s…", tc.env, err, tc.name, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: error is not one safe line: %q", tc.env, err)
		}
	}
}

func selfSignedPEM(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
