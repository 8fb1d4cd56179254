// Command imap-mcp serves the web UI, the OAuth authorization server and the
// MCP endpoint that lets AI clients work with IMAP/SMTP mail accounts.
//
// Usage: imap-mcp [serve|migrate|rotate-key|healthcheck|version]
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/config"
	"github.com/imap-mcp/imap-mcp/handlers"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/server"
	"github.com/imap-mcp/imap-mcp/store"
)

// version is set at build time with -ldflags "-X main.version=…"; a
// plain go build in a git checkout reports its commit instead.
var version = buildVersion("dev")

// buildVersion returns v, or for "dev" the VCS revision Go stamped into
// the binary ("dev+1a2b3c4d5e6f", "-dirty" with uncommitted changes).
func buildVersion(v string) string {
	info, ok := debug.ReadBuildInfo()
	if v != "dev" || !ok {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return v
	}
	return v + "+" + rev + dirty
}

const usage = `usage: imap-mcp [command]
  serve        run the server (default)
  migrate      apply database migrations and exit
  rotate-key   re-seal stored secrets with a new master key (MCP_NEW_MASTER_KEY, or a generated one)
  backup FILE  write a consistent copy of the embedded database to FILE, also while the server runs
  healthcheck  exit 0 if the local server answers /readyz (for container health checks)
  version      print the version`

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 15 * time.Second

func main() {
	collectLessOften()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "imap-mcp:", err)
		os.Exit(1)
	}
}

// collectLessOften sets the collector's target to 200 % unless GOGC is
// set. The server's live heap is small (about 15 MB under load) and
// nearly all it allocates dies with the call that allocated it, so at Go's
// default of 100 % it collects after every 15 MB or so; 200 % halves the
// collections, and the CPU they cost, for about 20 MB more memory.
func collectLessOften() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(200)
	}
}

// run executes one subcommand. listening, when not nil, receives the
// server's address once it accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, listening func(net.Addr)) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "imap-mcp", version)
		return nil
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log, stderr, listening)
	case "migrate":
		return migrate(ctx, cfg, log, stdout)
	case "rotate-key":
		return rotateKey(ctx, cfg, log, getenv, stdout)
	case "healthcheck":
		return healthcheck(ctx, cfg)
	case "backup":
		if len(args) != 2 {
			return fmt.Errorf("backup needs the file to write: imap-mcp backup /path/to/imap-mcp-backup.db")
		}
		return backup(ctx, cfg, log, args[1], stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// healthcheck asks the server listening on HOST:PORT for /readyz.
func healthcheck(ctx context.Context, cfg config.Config) error {
	host := cfg.Host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, strconv.Itoa(cfg.Port))+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz answered %s", resp.Status)
	}
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printSetupLink prints the one-time setup link while local mode has no
// password. It goes to stderr as a banner, not to the structured log, which
// never holds secrets.
func printSetupLink(ctx context.Context, cfg config.Config, local *auth.Local, stderr io.Writer) error {
	tok, err := local.PrepareSetup(ctx)
	if err != nil || tok == "" {
		return err
	}
	fmt.Fprintf(stderr, "\n  Local single-user mode: choose your password once at\n\n    %s/setup?token=%s\n\n"+
		"  (the link works once; a restart prints a new one; or set LOCAL_ADMIN_PASSWORD)\n\n", cfg.AppURL, tok)
	return nil
}

// oauthProviders returns the mail provider table, with the stand-ins of
// MAIL_OAUTH_TEST_ENDPOINTS in place of the real endpoints.
func oauthProviders(cfg config.Config, log *slog.Logger) []mail.OAuthProvider {
	table := mail.OAuthProviders(cfg.MicrosoftTenant)
	for i, p := range table {
		o, ok := cfg.OAuthTestEndpoints[p.Key]
		if !ok {
			continue
		}
		log.Warn("MAIL_OAUTH_TEST_ENDPOINTS replaces a mail provider's endpoints: for tests only", "provider", p.Key)
		table[i].AuthURL, table[i].TokenURL, table[i].Issuers = o.AuthURL, o.TokenURL, []string{o.Issuer}
		table[i].IMAP, table[i].SMTP = testEndpoint(o.IMAP, o.IMAPTLS), testEndpoint(o.SMTP, o.SMTPTLS)
	}
	return table
}

func testEndpoint(hostPort, tls string) mail.Endpoint {
	host, port, _ := net.SplitHostPort(hostPort) // validated by config
	n, _ := strconv.Atoi(port)
	return mail.Endpoint{Host: host, Port: n, TLS: mail.TLSMode(tls)}
}

func oauthCredentials(cfg config.Config) map[string]account.Credentials {
	creds := map[string]account.Credentials{}
	for k, c := range cfg.OAuth {
		creds[k] = account.Credentials{ClientID: c.ID, ClientSecret: c.Secret}
	}
	return creds
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stderr io.Writer, listening func(net.Addr)) error {
	// While this server holds the serving lock, rotate-key refuses.
	st, keys, release, err := openStore(ctx, cfg, log, (*store.Store).Serve)
	if err != nil {
		return err
	}
	defer st.Close()
	defer release()
	st.KeepHotReads()
	go st.CleanupEvery(ctx, time.Hour)
	var roots *x509.CertPool // nil: the system roots
	if cfg.MailCAFile != "" {
		if roots, err = mail.LoadRootCAs(cfg.MailCAFile); err != nil {
			return err
		}
	}
	engine := mail.New(mail.Config{AllowPrivateHosts: cfg.MailAllowPrivateHosts, RootCAs: roots, Logger: log})
	defer engine.Close()

	mailOAuth := account.NewOAuth(account.OAuthOptions{Providers: oauthProviders(cfg, log), Credentials: oauthCredentials(cfg),
		RedirectURL: cfg.AppURL + handlers.OAuthCallbackPath, Store: st, Secrets: keys, Logger: log})

	https := strings.HasPrefix(cfg.AppURL, "https://")
	deps := handlers.Deps{
		Logger: log, MCPURL: cfg.Resource(), Version: version, Apps: st, Outbox: st, Accounts: st, Sealer: keys, Secrets: keys, Mail: engine,
		OAuth: mailOAuth, OAuthStates: st,
		CSRF: auth.NewCSRF(keys.CookieKey(), cfg.AppURL), SecureCookies: https, TrustProxyHeaders: cfg.TrustProxyHeaders,
	}
	if cfg.ClerkEnabled() {
		deps.Auth = auth.NewClerk(st, auth.ClerkOptions{SecretKey: cfg.ClerkSecretKey, AppOrigin: cfg.AppURL})
		deps.ClerkFrontendAPI, deps.ClerkPublishableKey = cfg.ClerkFrontendAPI, cfg.ClerkPublishableKey
	} else {
		deps.Local = auth.NewLocal(st, cfg.LocalAdminPassword, 0)
		deps.Auth = deps.Local
		if err := printSetupLink(ctx, cfg, deps.Local, stderr); err != nil {
			return err
		}
	}
	metrics := server.NewMetrics()
	deps.Metrics = metrics
	front := server.New(server.Options{
		Addr: cfg.Addr(), Web: adaptor.FiberApp(handlers.New(deps)), WebObserved: true, DB: st, Metrics: metrics,
		Logger: log, HTTPS: https, TrustProxyHeaders: cfg.TrustProxyHeaders, CSP: server.ContentSecurityPolicy(cfg.ClerkFrontendAPI),
	})
	authz := oauth.New(oauth.Options{
		Issuer: cfg.Issuer(), Resource: cfg.Resource(), Store: st, Auth: deps.Auth, CSRF: deps.CSRF,
		SecureCookies: https, Logger: log, Page: deps.Page,
	})
	authz.Routes(front)
	var counters mcp.RateStore
	if !cfg.Embedded() {
		counters = st // replicas share one PostgreSQL, so they share the limits
	}
	tools := mcp.New(mcp.Options{Store: st, Mail: engine, Secrets: keys, Sealer: keys, OAuth: mailOAuth, AttachmentKey: keys.AttachmentKey(),
		AppURL: cfg.AppURL, Logger: log, Version: version, CallsPerMinute: cfg.CallsPerMinute, SendsPerHour: cfg.SendsPerHour,
		Counters: counters})
	endpoint := http.MaxBytesHandler(authz.Bearer(tools.Handler()), mcp.MaxRequestBytes)
	for _, path := range oauth.MCPPaths {
		front.Handle(path, endpoint)
	}
	front.Handle("GET /api/attachments/{token}", tools.AttachmentHandler())
	srv := front.HTTPServer()

	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set PORT or HOST): %w", srv.Addr, err)
	}
	log.Info("imap-mcp listening", "addr", ln.Addr().String(), "url", cfg.AppURL, "database", st.Dialect(),
		"sign_in", deps.Auth.Mode(), "version", version)
	if listening != nil {
		listening(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	outboxCtx, stopOutbox := context.WithCancel(context.WithoutCancel(ctx))
	outboxDone := make(chan struct{})
	go func() { defer close(outboxDone); tools.RunOutbox(outboxCtx) }()
	defer func() { stopOutbox(); <-outboxDone }() // a message being sent is finished first
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	tools.Close() // writes the activity of the last calls
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// openStore opens and migrates the database and checks that the master key
// opens its secrets. hold, when set, takes the serving lock first (shared
// for a server, exclusive for rotate-key), so that no key check or key
// change falls between another process's; the store's Close does not
// release it, the returned release does.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, hold func(*store.Store, context.Context) (func(), error)) (*store.Store, *secret.Keys, func(), error) {
	st, err := store.Open(ctx, store.Options{DatabaseURL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath(),
		MaxConns: cfg.DatabaseMaxConns, ActivityRetention: cfg.ActivityRetention, OutboxRetention: cfg.OutboxRetention, Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	release := func() {}
	if hold != nil {
		if release, err = hold(st, ctx); err != nil {
			st.Close()
			return nil, nil, nil, err
		}
	}
	keys, err := loadKeys(ctx, cfg, log, st)
	if err != nil {
		release()
		st.Close()
		return nil, nil, nil, err
	}
	return st, keys, release, nil
}

func loadKeys(ctx context.Context, cfg config.Config, log *slog.Logger, st *store.Store) (*secret.Keys, error) {
	if _, err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	master := cfg.MasterKey
	if master == nil { // embedded mode; config refuses PostgreSQL without a key
		var created bool
		var err error
		master, created, err = secret.LoadOrCreateFile(cfg.MasterKeyPath())
		if err != nil {
			return nil, err
		}
		if created {
			log.Warn("GENERATED A NEW MASTER KEY: back it up. Without it the stored mail passwords cannot be decrypted. "+
				"For production set MCP_MASTER_KEY instead.", "path", cfg.MasterKeyPath())
		}
	}
	keys, err := secret.New(master)
	if err != nil {
		return nil, err
	}
	if err := st.CheckSealer(ctx, keys); err != nil {
		return nil, err
	}
	return keys, nil
}

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	st, err := store.Open(ctx, store.Options{DatabaseURL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath(), Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d migration(s) applied; the %s database is up to date\n", n, st.Dialect())
	return nil
}

// backup writes a consistent copy of the embedded database to file.
func backup(ctx context.Context, cfg config.Config, log *slog.Logger, file string, stdout io.Writer) error {
	if !cfg.Embedded() {
		return errors.New("backup copies the embedded SQLite database; for PostgreSQL use pg_dump (see the README)")
	}
	if _, err := os.Stat(cfg.SQLitePath()); err != nil {
		return fmt.Errorf("no database to back up at %s (set DATA_DIR to the server's data directory): %w", cfg.SQLitePath(), err)
	}
	st, err := store.Open(ctx, store.Options{SQLitePath: cfg.SQLitePath(), Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.BackupTo(ctx, file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; keep it with a copy of %s (or MCP_MASTER_KEY), which it cannot be read without, stored apart from it\n",
		file, cfg.MasterKeyPath())
	return nil
}

// rotateKey re-seals every stored secret from the current master key to a
// new one: MCP_NEW_MASTER_KEY, or a generated key.
func rotateKey(ctx context.Context, cfg config.Config, log *slog.Logger, getenv func(string) string, stdout io.Writer) error {
	next, err := config.ParseMasterKey("MCP_NEW_MASTER_KEY", getenv("MCP_NEW_MASTER_KEY"))
	if err != nil {
		return err
	}
	generated := next == nil
	if generated {
		next = secret.Generate()
	}
	// A running server would go on using the old key, and a secret it
	// saved meanwhile would be lost at its next start.
	st, current, release, err := openStore(ctx, cfg, log, (*store.Store).Exclusive)
	if err != nil {
		return fmt.Errorf("rotate-key: %w", err)
	}
	defer st.Close()
	defer release()
	nextKeys, err := secret.New(next)
	if err != nil {
		return err
	}
	keyFile := cfg.MasterKey == nil
	pending := cfg.MasterKeyPath() + ".next"
	if keyFile {
		// Written before the database changes, so that a crash in between
		// leaves the new key on disk.
		if err := secret.WriteFile(pending, next); err != nil {
			return err
		}
	}
	n, err := st.ResealSecrets(ctx, current, nextKeys)
	if err != nil {
		if keyFile {
			os.Remove(pending)
		}
		return err
	}
	if keyFile {
		if err := os.Rename(pending, cfg.MasterKeyPath()); err != nil {
			return fmt.Errorf("secrets now use the key in %s, but it could not replace %s: %w", pending, cfg.MasterKeyPath(), err)
		}
		fmt.Fprintf(stdout, "re-sealed %d secret(s); the new key is in %s\n", n, cfg.MasterKeyPath())
		return nil
	}
	fmt.Fprintf(stdout, "re-sealed %d secret(s). Set MCP_MASTER_KEY to the new key before the next start", n)
	if generated {
		fmt.Fprintf(stdout, ":\n%s\n", secret.Encode(next))
	} else {
		fmt.Fprintln(stdout, " (the value of MCP_NEW_MASTER_KEY).")
	}
	return nil
}
