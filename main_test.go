package main

import (
	"bytes"
	"context"
	stdsql "database/sql"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/config"
	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/sql"
	"github.com/imap-mcp/imap-mcp/store"
)

func TestMain(m *testing.M) {
	serveAsChild()
	os.Exit(mailrig.Main(m))
}

// instance is one running `imap-mcp serve`.
type instance struct {
	url  string
	logs *syncBuffer
	stop func() error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs serve on a free port with env and waits until it listens.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	return startAt(t, env, 0)
}

// startAt runs serve on port (0: any free port) and waits until it listens.
func startAt(t *testing.T, env map[string]string, port int) *instance {
	t.Helper()
	env["PORT"] = strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, logs, func(a net.Addr) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		stop := sync.OnceValue(func() error { cancel(); return <-done })
		t.Cleanup(func() { stop() })
		return &instance{url: "http://" + a.String(), logs: logs, stop: stop}
	case err := <-done:
		cancel()
		t.Fatalf("serve exited before listening: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not listen within 30 s\n%s", logs)
	}
	return nil
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestServeEmbedded(t *testing.T) {
	dir := t.TempDir()
	inst := start(t, map[string]string{"DATA_DIR": dir})

	resp, body := get(t, inst.url+"/sign-in")
	if resp.StatusCode != 200 || !strings.Contains(body, "Local single-user mode") || !strings.Contains(body, `data-testid="needs-setup"`) {
		t.Fatalf("GET /sign-in = %d\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	if directives["frame-ancestors"] != "'none'" || directives["script-src"] != "'self'" || directives["style-src"] != "'self'" ||
		directives["img-src"] != "'self' data:" || directives["style-src-attr"] != "" {
		t.Fatalf("CSP = %q", csp)
	}
	// The account pages, which show signatures, also take https images
	// and style attributes; never inline scripts or style elements.
	resp, _ = noRedirect(t, "GET", inst.url+"/accounts/new", nil)
	accounts := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(accounts, "img-src 'self' data: https:") || !strings.Contains(accounts, "style-src-attr 'unsafe-inline'") ||
		!strings.Contains(accounts, "script-src 'self';") || !strings.Contains(accounts, "style-src 'self';") {
		t.Fatalf("CSP of /accounts = %q", accounts)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
		if got := resp.Header.Get(h); got != want {
			t.Fatalf("%s = %q, want %q", h, got, want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Fatal("page has inline script or style, which the CSP blocks")
	}
	if resp, _ := noRedirect(t, http.MethodGet, inst.url+"/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in?redirect_url=%2F" {
		t.Fatalf("GET / signed out = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ok\n"} {
		if resp, body := get(t, inst.url+path); resp.StatusCode != 200 || body != want {
			t.Fatalf("GET %s = %d %q", path, resp.StatusCode, body)
		}
	}
	resp, body = get(t, inst.url+"/static/htmx.min.js")
	if resp.StatusCode != 200 || !strings.Contains(body, "htmx") || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET htmx = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, inst.url+"/no/such/page"); resp.StatusCode != 404 {
		t.Fatalf("GET unknown path = %d, want 404", resp.StatusCode)
	}

	big := bytes.Repeat([]byte("a"), 2<<20)
	resp, err := http.Post(inst.url+"/sign-in", "text/plain", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB body = %d, want 413", resp.StatusCode)
	}

	_, metrics := get(t, inst.url+"/metrics")
	for _, want := range []string{
		`imapmcp_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`imapmcp_http_requests_total{code="303",method="GET",route="/"} 1`,
		`imapmcp_http_requests_total{code="200",method="GET",route="/sign-in"} 1`,
		`imapmcp_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`imapmcp_http_request_duration_seconds_count{method="GET",route="GET /readyz"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s\n%s", want, grep(metrics, "imapmcp_http_requests_total"))
		}
	}

	key1, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Mode().Perm() != 0o600 {
		t.Fatalf("master.key mode %v", st.Mode().Perm())
	}
	if !strings.Contains(inst.logs.String(), "GENERATED A NEW MASTER KEY") {
		t.Fatalf("no warning about the generated key:\n%s", inst.logs)
	}
	port := inst.url[strings.LastIndex(inst.url, ":")+1:]
	if err := run(context.Background(), []string{"healthcheck"}, envFunc(map[string]string{"PORT": port}), io.Discard, io.Discard, nil); err != nil {
		t.Fatalf("healthcheck against a ready server: %v", err)
	}
	if err := inst.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck"}, envFunc(map[string]string{"PORT": port}), io.Discard, io.Discard, nil); err == nil {
		t.Fatal("healthcheck passed after the server stopped")
	}

	// A second start reuses the key and the database.
	again := start(t, map[string]string{"DATA_DIR": dir})
	if resp, _ := get(t, again.url+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("second start not ready: %d", resp.StatusCode)
	}
	key2, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	if !bytes.Equal(key1, key2) || strings.Contains(again.logs.String(), "GENERATED") {
		t.Fatal("second start generated a new key")
	}
	if strings.Contains(again.logs.String(), "migration applied") {
		t.Fatalf("second start migrated again:\n%s", again.logs)
	}
}

func TestServeRefusesAWrongKey(t *testing.T) {
	dir := t.TempDir()
	start(t, map[string]string{"DATA_DIR": dir}).stop()
	other := secret.Encode(secret.Generate())
	err := run(context.Background(), nil, envFunc(map[string]string{"DATA_DIR": dir, "MCP_MASTER_KEY": other}), io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "MCP_MASTER_KEY does not open the stored secrets") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadConfigStopsWithOneLine(t *testing.T) {
	err := run(context.Background(), nil, envFunc(map[string]string{"PORT": "abc"}), io.Discard, io.Discard, nil)
	if err == nil || err.Error() != `config: PORT: "abc" is not a port number (0-65535)` {
		t.Fatalf("err = %v", err)
	}
	err = run(context.Background(), nil, envFunc(map[string]string{"DATABASE_URL": dbtest.DefaultAdminURL}), io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "MCP_MASTER_KEY: is required with PostgreSQL") {
		t.Fatalf("postgres without key: err = %v", err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, envFunc(nil), io.Discard, io.Discard, nil); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func TestPostgresInstancesStartTogether(t *testing.T) {
	env := map[string]string{"DATABASE_URL": dbtest.PostgresURL(t), "MCP_MASTER_KEY": secret.Encode(secret.Generate())}
	var wg sync.WaitGroup
	insts := make([]*instance, 3)
	for i := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			insts[i] = start(t, e)
		}()
	}
	wg.Wait()
	migrations := 0
	for _, inst := range insts {
		if inst == nil {
			t.FailNow()
		}
		if resp, _ := get(t, inst.url+"/readyz"); resp.StatusCode != 200 {
			t.Fatalf("instance not ready: %d", resp.StatusCode)
		}
		migrations += strings.Count(inst.logs.String(), "migration applied")
	}
	fsys, _ := sql.Migrations(store.Postgres)
	files, _ := fs.Glob(fsys, "*.sql")
	if migrations != len(files) {
		t.Fatalf("%d migrations applied across 3 instances, want %d", migrations, len(files))
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, envFunc(env), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "0 migration(s) applied") {
		t.Fatalf("migrate on an up-to-date database: %q", out.String())
	}
}

func TestRotateKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"embedded key file", func(t *testing.T) map[string]string { return map[string]string{"DATA_DIR": t.TempDir()} }},
		{"postgres env key", func(t *testing.T) map[string]string {
			return map[string]string{"DATABASE_URL": dbtest.PostgresURL(t), "MCP_MASTER_KEY": secret.Encode(secret.Generate())}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			var out bytes.Buffer
			if err := run(context.Background(), []string{"migrate"}, envFunc(env), &out, io.Discard, nil); err != nil {
				t.Fatal(err)
			}
			// A stored account whose password was sealed by the first start.
			st, keys := openForTest(t, env)
			u, _ := st.EnsureLocalUser(context.Background())
			acct := &store.MailAccount{UserID: u.ID, Label: "work", Email: "a@example.test",
				IMAPHost: "imap.example.test", IMAPPort: 993, IMAPTLSMode: "tls", IMAPUser: "a", IMAPPasswordEnc: keys.Seal([]byte("imap secret"), store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)),
				SMTPHost: "smtp.example.test", SMTPPort: 465, SMTPTLSMode: "tls", SMTPUser: "a", SMTPPasswordEnc: keys.Seal([]byte("smtp secret"), store.AccountSecretContext(u.ID, store.ColumnSMTPPassword))}
			if err := st.CreateAccount(context.Background(), acct); err != nil {
				t.Fatal(err)
			}
			// And one that signs in with Google: its refresh token moves too.
			oauthAcct := &store.MailAccount{UserID: u.ID, Label: "gmail", Email: "g@example.test", AuthKind: store.AuthOAuthGoogle,
				IMAPHost: "imap.gmail.com", IMAPPort: 993, IMAPTLSMode: "tls", IMAPUser: "g@example.test",
				SMTPHost: "smtp.gmail.com", SMTPPort: 465, SMTPTLSMode: "tls", SMTPUser: "g@example.test",
				OAuthRefreshTokenEnc: keys.Seal([]byte("refresh secret"), store.AccountSecretContext(u.ID, store.ColumnRefreshToken))}
			if err := st.CreateAccount(context.Background(), oauthAcct); err != nil {
				t.Fatal(err)
			}
			st.Close()

			next := secret.Generate()
			rotEnv := map[string]string{"MCP_NEW_MASTER_KEY": secret.Encode(next)}
			for k, v := range env {
				rotEnv[k] = v
			}
			out.Reset()
			if err := run(context.Background(), []string{"rotate-key"}, envFunc(rotEnv), &out, io.Discard, nil); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "re-sealed 4 secret(s)") {
				t.Fatalf("rotate-key said %q", out.String())
			}
			if _, ok := env["MCP_MASTER_KEY"]; ok {
				env["MCP_MASTER_KEY"] = secret.Encode(next)
			}
			st, keys = openForTest(t, env)
			defer st.Close()
			got, err := st.GetAccount(context.Background(), u.ID, acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			nextKeys, _ := secret.New(next)
			if pt, err := nextKeys.Open(got.IMAPPasswordEnc, store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)); err != nil || string(pt) != "imap secret" {
				t.Fatalf("IMAP password after rotation: %q, %v", pt, err)
			}
			if pt, err := keys.Open(got.SMTPPasswordEnc, store.AccountSecretContext(u.ID, store.ColumnSMTPPassword)); err != nil || string(pt) != "smtp secret" {
				t.Fatalf("SMTP password with the loaded key after rotation: %q, %v", pt, err)
			}
			got, _ = st.GetAccount(context.Background(), u.ID, oauthAcct.ID)
			if pt, err := nextKeys.Open(got.OAuthRefreshTokenEnc, store.AccountSecretContext(u.ID, store.ColumnRefreshToken)); err != nil || string(pt) != "refresh secret" {
				t.Fatalf("refresh token after rotation: %q, %v", pt, err)
			}
		})
	}
}

// openForTest opens the store as serve would and returns the loaded keys.
func openForTest(t *testing.T, env map[string]string) (*store.Store, *secret.Keys) {
	t.Helper()
	cfg, err := config.FromEnv(envFunc(env))
	if err != nil {
		t.Fatal(err)
	}
	st, keys, _, err := openStore(context.Background(), cfg, newLogger(cfg, io.Discard), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, keys
}

// noRedirect sends one request without following redirects.
func noRedirect(t *testing.T, method, url string, form neturl.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	return send(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, method, url, form, hdr...)
}

// send sends a request (a form body when form is not nil) with header
// name/value pairs and returns the response and its body.
func send(t *testing.T, c *http.Client, method, url string, form neturl.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRotateKeyRefusesWhileServing: with a server running on the
// database, rotate-key changes nothing and says to stop it; once it has
// stopped, rotate-key runs.
func TestRotateKeyRefusesWhileServing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"embedded", func(t *testing.T) map[string]string { return map[string]string{"DATA_DIR": t.TempDir()} }},
		{"postgres", func(t *testing.T) map[string]string {
			return map[string]string{"DATABASE_URL": dbtest.PostgresURL(t), "MCP_MASTER_KEY": secret.Encode(secret.Generate())}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			serveEnv := map[string]string{}
			for k, v := range env {
				serveEnv[k] = v
			}
			inst := start(t, serveEnv)
			rotEnv := map[string]string{"MCP_NEW_MASTER_KEY": secret.Encode(secret.Generate())}
			for k, v := range env {
				rotEnv[k] = v
			}
			var out bytes.Buffer
			err := run(context.Background(), []string{"rotate-key"}, envFunc(rotEnv), &out, io.Discard, nil)
			if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "stop every imap-mcp server") {
				t.Fatalf("rotate-key while serving: %v", err)
			}
			if resp, _ := get(t, inst.url+"/readyz"); resp.StatusCode != 200 {
				t.Fatalf("the server after a refused rotate-key: %d", resp.StatusCode)
			}
			if err := inst.stop(); err != nil {
				t.Fatal(err)
			}
			if err := run(context.Background(), []string{"rotate-key"}, envFunc(rotEnv), &out, io.Discard, nil); err != nil {
				t.Fatalf("rotate-key after the server stopped: %v", err)
			}
		})
	}
}

// TestOlderBinaryRefusesNewerSchema: a database migrated by a newer
// version is not used by this one.
func TestOlderBinaryRefusesNewerSchema(t *testing.T) {
	env := map[string]string{"DATA_DIR": t.TempDir()}
	if err := run(context.Background(), []string{"migrate"}, envFunc(env), io.Discard, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	db, err := stdsql.Open("sqlite", filepath.Join(env["DATA_DIR"], "imap-mcp.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, TRUE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	err = run(context.Background(), []string{"serve"}, envFunc(env), io.Discard, io.Discard, nil)
	if !errors.Is(err, store.ErrSchemaNewer) || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("serve on a newer schema: %v", err)
	}
}

// TestBackupWhileServing: backup writes a copy (0600) of the embedded
// database while the server runs, which opens with the same key and holds
// the accounts; it does not overwrite a file.
func TestBackupWhileServing(t *testing.T) {
	dir := t.TempDir()
	_, b := signedIn(t, map[string]string{"DATA_DIR": dir})
	if status := b.post("/accounts", b.accountForm()); status != 303 {
		t.Fatalf("create = %d", status)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	var out bytes.Buffer
	env := map[string]string{"DATA_DIR": dir}
	if err := run(context.Background(), []string{"backup", file}, envFunc(env), &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(out.String(), "master.key") {
		t.Fatalf("backup file: %v %v, said %q", fi, err, out.String())
	}
	if err := run(context.Background(), []string{"backup", file}, envFunc(env), &out, io.Discard, nil); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	// Restore: the copy and the key in a fresh data directory.
	restored := t.TempDir()
	for src, dst := range map[string]string{file: "imap-mcp.db", filepath.Join(dir, "master.key"): "master.key"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(restored, dst), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, keys := openForTest(t, map[string]string{"DATA_DIR": restored})
	defer st.Close()
	u, _ := st.EnsureLocalUser(context.Background())
	accts, _ := st.ListAccounts(context.Background(), u.ID)
	if len(accts) != 1 {
		t.Fatalf("%d accounts in the restored copy", len(accts))
	}
	if pt, err := keys.Open(accts[0].IMAPPasswordEnc, store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)); err != nil || string(pt) != "pw-123456" {
		t.Fatalf("restored password: %q %v", pt, err)
	}
}

// TestCollectLessOften: the collector's target is 200 % unless GOGC
// names one (the runtime has read GOGC at start; it is left as it is).
func TestCollectLessOften(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	collectLessOften()
	if got := debug.SetGCPercent(100); got != 200 {
		t.Fatalf("without GOGC: %d %%, want 200 %%", got)
	}
	t.Setenv("GOGC", "100")
	collectLessOften()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC=100: %d %%, want it left at 100 %%", got)
	}
}
