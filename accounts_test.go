package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/handlers"
	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/store"
)

// signedIn starts the server with a local password and returns a signed-in browser.
func signedIn(t *testing.T, env map[string]string) (*instance, *httpBrowser) {
	env["LOCAL_ADMIN_PASSWORD"] = "local-secret"
	inst := start(t, env)
	b := &httpBrowser{t: t, c: browser(t), base: inst.url}
	page := b.get("/sign-in")
	if resp := b.post("/sign-in", neturl.Values{"_csrf": {csrfFrom(t, page)}, "password": {"local-secret"}}); resp != 303 {
		t.Fatalf("sign-in = %d", resp)
	}
	return inst, b
}

func TestAccountPages(t *testing.T) {
	dir := t.TempDir()
	_, b := signedIn(t, map[string]string{"DATA_DIR": dir})
	if page := b.get("/accounts"); !strings.Contains(page, `data-testid="no-accounts"`) {
		t.Fatalf("/accounts:\n%s", page)
	}
	form := b.get("/accounts/new")
	csrf := csrfFrom(t, form)
	valid := neturl.Values{"_csrf": {csrf}, "label": {"Work"}, "email": {"alice@example.com"}, "display_name": {"Alice"},
		"imap_host": {"imap.example.com"}, "imap_port": {"993"}, "imap_tls_mode": {"tls"}, "imap_password": {"app-pass-1"},
		"smtp_host": {"smtp.example.com"}, "smtp_port": {"465"}, "smtp_tls_mode": {"tls"},
		"signature_html": {`<p>Alice <b>Doe</b></p><script>alert(1)</script><img src=x onerror=alert(2)>`}}

	bad := neturl.Values{}
	for k, v := range valid {
		bad[k] = v
	}
	bad.Set("email", "not-an-address")
	bad.Set("imap_port", "99999")
	bad.Set("smtp_tls_mode", "none")
	bad.Del("imap_password")
	status, page := b.postPage("/accounts", bad)
	for _, field := range []string{"email", "imap_port", "smtp_tls_mode", "imap_password"} {
		if !strings.Contains(page, `data-testid="`+field+`-error"`) {
			t.Errorf("no error shown for %s", field)
		}
	}
	if status != 422 || !strings.Contains(page, `value="Work"`) {
		t.Fatalf("invalid form = %d (entered values must be kept)", status)
	}
	// The topmost field in error takes the focus.
	if !regexp.MustCompile(`id="email"[^>]*autofocus`).MatchString(page) || strings.Count(page, "autofocus") != 1 {
		t.Fatal("focus is not on the first field in error")
	}
	bad.Set("imap_password", "typed-once")
	bad.Set("smtp_host", "")
	_, page = b.postPage("/accounts", bad)
	if !strings.Contains(page, "enter them again") || strings.Contains(page, "typed-once") || !strings.Contains(page, "such as smtp.example.com") {
		t.Fatal("the refused form does not say the passwords must be entered again, or shows an IMAP example for SMTP")
	}
	// Presets say how their accounts sign in.
	for preset, want := range map[string]string{"icloud": "app-specific password", "proton": "Proton Mail Bridge", "gmail": "app password",
		"outlook": "refuse passwords"} {
		if page := b.get("/accounts/new?preset=" + preset); !strings.Contains(page, want) {
			t.Errorf("preset %s lacks the note %q", preset, want)
		}
	}
	// Changing the preset keeps what was typed.
	if page := b.get("/accounts/new?preset=fastmail&label=Work&email=me%40fastmail.com"); !strings.Contains(page, `value="Work"`) ||
		!strings.Contains(page, `value="me@fastmail.com"`) || !strings.Contains(page, `value="imap.fastmail.com"`) {
		t.Fatal("a preset change lost the typed label or address")
	}
	if strings.Contains(page, "app-pass-1") {
		t.Fatal("a password was echoed back into the form")
	}
	if page := b.get("/accounts"); !strings.Contains(page, `data-testid="no-accounts"`) {
		t.Fatal("an invalid form stored an account")
	}

	if status := b.post("/accounts", valid); status != 303 {
		t.Fatalf("create = %d", status)
	}
	list := b.get("/accounts")
	if !strings.Contains(list, "alice@example.com") || !strings.Contains(list, `data-testid="default"`) || !strings.Contains(list, "imap.example.com:993") {
		t.Fatalf("/accounts after create:\n%s", list)
	}

	// Stored sealed, SMTP password defaulted to the IMAP one, signature sanitized.
	st, keys := openForTest(t, map[string]string{"DATA_DIR": dir})
	defer st.Close()
	u, _ := st.EnsureLocalUser(context.Background())
	accts, _ := st.ListAccounts(context.Background(), u.ID)
	if len(accts) != 1 {
		t.Fatalf("%d accounts stored", len(accts))
	}
	a := accts[0]
	for enc, column := range map[string]string{a.IMAPPasswordEnc: store.ColumnIMAPPassword, a.SMTPPasswordEnc: store.ColumnSMTPPassword} {
		if pt, err := keys.Open(enc, store.AccountSecretContext(u.ID, column)); err != nil || string(pt) != "app-pass-1" || strings.Contains(enc, "app-pass-1") {
			t.Fatalf("stored password: %q, %v", pt, err)
		}
	}
	if a.IMAPUser != "alice@example.com" || a.SMTPUser != "alice@example.com" {
		t.Fatalf("users default to the address: %q %q", a.IMAPUser, a.SMTPUser)
	}
	if strings.Contains(a.SignatureHTML, "script") || strings.Contains(a.SignatureHTML, "onerror") || !strings.Contains(a.SignatureHTML, "<b>Doe</b>") {
		t.Fatalf("signature not sanitized: %q", a.SignatureHTML)
	}

	// Editing with blank passwords keeps them.
	edit := b.get("/accounts/" + a.ID + "/edit")
	if strings.Contains(edit, "app-pass-1") || !strings.Contains(edit, "leave blank to keep") {
		t.Fatal("edit form shows the password or lacks the keep hint")
	}
	change := neturl.Values{}
	for k, v := range valid {
		change[k] = v
	}
	change.Set("_csrf", csrfFrom(t, edit))
	change.Set("label", "Office")
	change.Del("imap_password")
	if status := b.post("/accounts/"+a.ID, change); status != 303 {
		t.Fatalf("update = %d", status)
	}
	got, _ := st.GetAccount(context.Background(), u.ID, a.ID)
	if pt, _ := keys.Open(got.IMAPPasswordEnc, store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)); got.Label != "Office" || string(pt) != "app-pass-1" {
		t.Fatalf("after edit: label %q password %q", got.Label, pt)
	}
	// The permission level: full for a new account, set on the edit page,
	// shown on the list; an unknown level is refused and nothing changes.
	if got.PermissionLevel != store.PermissionFull || !strings.Contains(edit, `name="permission_level" value="full" checked`) {
		t.Fatalf("a new account's level is %q", got.PermissionLevel)
	}
	change.Set("permission_level", "read")
	if status := b.post("/accounts/"+a.ID, change); status != 303 {
		t.Fatalf("permission edit = %d", status)
	}
	if got, _ = st.GetAccount(context.Background(), u.ID, a.ID); got.PermissionLevel != store.PermissionRead ||
		!strings.Contains(b.get("/accounts"), "AI clients: read only") {
		t.Fatalf("after choosing read only: %q", got.PermissionLevel)
	}
	change.Set("permission_level", "admin")
	if status, page := b.postPage("/accounts/"+a.ID, change); status != 422 || !strings.Contains(page, `data-testid="permission_level-error"`) {
		t.Fatalf("an unknown level: %d", status)
	}
	if got, _ = st.GetAccount(context.Background(), u.ID, a.ID); got.PermissionLevel != store.PermissionRead {
		t.Fatalf("a refused form changed the level to %q", got.PermissionLevel)
	}
	change.Set("permission_level", "full")
	// The undo window and approval.
	change.Set("send_delay_s", "20")
	change.Set("send_requires_approval", "1")
	if status := b.post("/accounts/"+a.ID, change); status != 303 {
		t.Fatalf("sending settings = %d", status)
	}
	if got, _ = st.GetAccount(context.Background(), u.ID, a.ID); got.SendDelayS != 20 || !got.SendRequiresApproval {
		t.Fatalf("sending settings stored as %d %v", got.SendDelayS, got.SendRequiresApproval)
	}
	change.Set("send_delay_s", "301")
	if status, page := b.postPage("/accounts/"+a.ID, change); status != 422 || !strings.Contains(page, "from 0 to 300") {
		t.Fatalf("a delay of 301 s = %d", status)
	}
	change.Set("send_delay_s", "0")
	change.Del("send_requires_approval")

	// Editing only the signature keeps the last connection test.
	if err := st.RecordAccountTest(context.Background(), u.ID, a.ID, store.TestResult{IMAPOK: true, SMTPOK: true}); err != nil {
		t.Fatal(err)
	}
	change.Set("signature_html", "<p>Just Alice</p>")
	if status := b.post("/accounts/"+a.ID, change); status != 303 {
		t.Fatalf("signature edit = %d", status)
	}
	if got, _ = st.GetAccount(context.Background(), u.ID, a.ID); got.TestStatus() != "ok" {
		t.Fatalf("a signature edit reset the test to %q", got.TestStatus())
	}
	change.Set("imap_port", "994")
	change.Set("imap_password", "app-pass-1")
	if status := b.post("/accounts/"+a.ID, change); status != 303 {
		t.Fatalf("port edit = %d", status)
	}
	if got, _ = st.GetAccount(context.Background(), u.ID, a.ID); got.TestStatus() != "untested" {
		t.Fatalf("a port change kept the old test result %q", got.TestStatus())
	}
	change.Set("imap_port", "993")
	change.Del("imap_password")
	// Pointing the account at another server needs the password again, so a
	// stolen session cannot send the stored one to a server of its choice.
	change.Set("imap_host", "imap.attacker.example")
	if status, page := b.postPage("/accounts/"+a.ID, change); status != 422 || !strings.Contains(page, `data-testid="imap_password-error"`) {
		t.Fatalf("host change without password = %d", status)
	}
	if got, _ = st.GetAccount(context.Background(), u.ID, a.ID); got.IMAPHost != "imap.example.com" {
		t.Fatalf("refused edit changed the host to %q", got.IMAPHost)
	}
	change.Set("imap_host", "imap.example.com")

	// Without JavaScript, delete asks first and deletes nothing yet.
	status, page = b.postPage("/accounts/"+a.ID+"/delete", neturl.Values{"_csrf": {csrf}})
	if status != 200 || !strings.Contains(page, `data-testid="confirm-delete"`) || !strings.Contains(page, "alice@example.com") {
		t.Fatalf("unconfirmed delete = %d\n%s", status, page)
	}
	if _, err := st.GetAccount(context.Background(), u.ID, a.ID); err != nil {
		t.Fatalf("an unconfirmed delete removed the account: %v", err)
	}
	if status := b.post("/accounts/"+a.ID+"/delete", neturl.Values{"_csrf": {csrf}, "confirm": {"1"}}); status != 303 {
		t.Fatalf("delete = %d", status)
	}
	if status := b.post("/accounts/"+a.ID+"/delete", neturl.Values{"_csrf": {csrf}, "confirm": {"1"}}); status != 404 {
		t.Fatalf("second delete = %d, want 404", status)
	}
	if status, _ := b.getStatus("/accounts/" + a.ID + "/edit"); status != 404 {
		t.Fatalf("edit of a deleted account = %d", status)
	}
}

// httpBrowser is a signed-in browser for page tests.
type httpBrowser struct {
	t    *testing.T
	c    *http.Client
	base string
}

// accountForm returns a valid new-account form (password "pw-123456")
// with a fresh CSRF token, and key/value pairs set over it.
func (b *httpBrowser) accountForm(set ...string) neturl.Values {
	b.t.Helper()
	v := neturl.Values{"_csrf": {csrfFrom(b.t, b.get("/accounts/new"))}, "label": {"Work"}, "email": {"a@example.com"},
		"imap_host": {"imap.example.com"}, "imap_port": {"993"}, "imap_tls_mode": {"tls"}, "imap_password": {"pw-123456"},
		"smtp_host": {"smtp.example.com"}, "smtp_port": {"465"}, "smtp_tls_mode": {"tls"}}
	for i := 0; i+1 < len(set); i += 2 {
		v.Set(set[i], set[i+1])
	}
	return v
}

// get loads a page that must answer 200.
func (b *httpBrowser) get(path string) string {
	b.t.Helper()
	status, body := b.getStatus(path)
	if status != 200 {
		b.t.Fatalf("GET %s = %d\n%s", path, status, body)
	}
	return body
}

func (b *httpBrowser) getStatus(path string) (int, string) {
	b.t.Helper()
	resp, body := send(b.t, b.c, "GET", b.base+path, nil)
	return resp.StatusCode, body
}

func (b *httpBrowser) post(path string, form neturl.Values) int {
	b.t.Helper()
	status, _ := b.postPage(path, form)
	return status
}

func (b *httpBrowser) postPage(path string, form neturl.Values) (int, string) {
	b.t.Helper()
	resp, body := send(b.t, b.c, "POST", b.base+path, form)
	return resp.StatusCode, body
}

func TestConnectPage(t *testing.T) {
	_, b := signedIn(t, map[string]string{"DATA_DIR": t.TempDir(), "APP_URL": "https://mail.example.org"})
	for tab, want := range map[string]string{
		"":          "Add custom connector",
		"code":      "claude mcp add --transport http imap-mcp https://mail.example.org/api/mcp",
		"desktop":   `&#34;args&#34;: [&#34;-y&#34;, &#34;mcp-remote&#34;, &#34;https://mail.example.org/api/mcp&#34;]`,
		"bogus-tab": `data-testid="tab-claude-ai"`,
	} {
		if page := b.get("/connect?tab=" + tab); !strings.Contains(page, want) || !strings.Contains(page, `data-testid="mcp-url">https://mail.example.org/api/mcp<`) {
			t.Errorf("/connect?tab=%s lacks %s", tab, want)
		}
	}
	if page := b.get("/connect"); !strings.Contains(page, `data-testid="abilities"`) || !strings.Contains(page, "read the text inside attachments") ||
		!strings.Contains(page, "save drafts") || !strings.Contains(page, "what arrived since it last looked") || !strings.Contains(page, "so that you can undo it on the Outbox page") {
		t.Error("/connect does not say what a connected client can do")
	}
	if strings.Contains(b.get("/connect"), `data-testid="reach-warning"`) || strings.Contains(b.get("/"), `data-testid="reach-warning"`) {
		t.Error("a public https APP_URL is warned about")
	}
}

// TestHomeDashboard: home lists the accounts with their state and the
// connected apps, and warns that Claude.ai cannot reach a localhost URL.
func TestHomeDashboard(t *testing.T) {
	inst, b := signedIn(t, map[string]string{"DATA_DIR": t.TempDir()})
	home := b.get("/")
	if !strings.Contains(home, `data-testid="reach-warning"`) || !strings.Contains(home, "Claude.ai cannot") ||
		!strings.Contains(b.get("/connect"), "Claude.ai cannot") {
		t.Fatal("no warning that Claude.ai cannot reach a localhost URL")
	}
	b.post("/accounts", b.accountForm())
	_, tok, _ := authorizeLocal(t, inst.url, "http://localhost:0")
	home = b.get("/")
	if !strings.Contains(home, "a@example.com") || !strings.Contains(home, `data-testid="home-status">untested<`) ||
		!strings.Contains(home, "mcp-remote") || !strings.Contains(home, "not used yet") || !strings.Contains(home, "What your clients do appears here") {
		t.Fatalf("dashboard:\n%s", home)
	}

	// A tool call shows in the latest activity, on /activity with its
	// client, and as the app's last activity; the filters narrow it.
	toolCallAllowed(t, inst.url, tok.AccessToken)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(home, "listed the accounts"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tool call never reached the home page:\n%s", home)
		}
		home = b.get("/")
	}
	activity := b.get("/activity")
	if !strings.Contains(activity, `data-testid="activity"`) || !strings.Contains(activity, "<td data-label=\"Client\">mcp-remote</td>") ||
		!strings.Contains(activity, "listed the accounts") {
		t.Fatalf("/activity:\n%s", activity)
	}
	if apps := b.get("/apps"); !strings.Contains(apps, `data-testid="last-activity"><a href="/activity?client=`) {
		t.Fatalf("/apps lacks the last activity:\n%s", apps)
	}
	if none := b.get("/activity?account=00000000-0000-0000-0000-000000000000"); !strings.Contains(none, `data-testid="no-activity"`) {
		t.Fatal("the account filter shows another account's activity")
	}
}

func TestSignaturePreviewIsSanitized(t *testing.T) {
	_, b := signedIn(t, map[string]string{"DATA_DIR": t.TempDir()})
	csrf := csrfFrom(t, b.get("/accounts/new"))
	status, body := b.postPage("/accounts/signature-preview", neturl.Values{"_csrf": {csrf},
		"signature_html": {`<b>Alice</b><img src=x onerror="alert(1)"><script>alert(2)</script><a href="javascript:alert(3)">x</a>`}})
	if status != 200 || !strings.Contains(body, "<b>Alice</b>") || strings.Contains(body, "onerror") ||
		strings.Contains(body, "<script") || strings.Contains(body, "javascript:") {
		t.Fatalf("preview = %d %s", status, body)
	}
	if status := b.post("/accounts/signature-preview", neturl.Values{"signature_html": {"x"}}); status != 403 {
		t.Fatalf("preview without CSRF token = %d, want 403", status)
	}
}

// TestAccountAndTestLimits: one person cannot add accounts without end,
// nor make the server dial out with connection tests without end.
func TestAccountAndTestLimits(t *testing.T) {
	_, b := signedIn(t, map[string]string{"DATA_DIR": t.TempDir()})
	csrf := csrfFrom(t, b.get("/accounts/new"))
	form := func(i int) neturl.Values {
		return neturl.Values{"_csrf": {csrf}, "label": {fmt.Sprintf("A%d", i)}, "email": {fmt.Sprintf("a%d@example.com", i)},
			"imap_host": {"imap.example.com"}, "imap_port": {"993"}, "imap_tls_mode": {"tls"}, "imap_password": {"pw"},
			"smtp_host": {"smtp.example.com"}, "smtp_port": {"465"}, "smtp_tls_mode": {"tls"}}
	}
	for i := range handlers.MaxAccountsPerUser {
		if status := b.post("/accounts", form(i)); status != 303 {
			t.Fatalf("account %d = %d", i+1, status)
		}
	}
	status, page := b.postPage("/accounts", form(99))
	if status != 422 || !strings.Contains(page, "the most one person can add") {
		t.Fatalf("account past the limit = %d", status)
	}
	id := regexp.MustCompile(`/accounts/([0-9a-f-]{36})/test`).FindStringSubmatch(b.get("/accounts"))
	if id == nil {
		t.Fatal("no test button")
	}
	limited := false
	for range 12 {
		if status, _ := b.postPage("/accounts/"+id[1]+"/test", neturl.Values{"_csrf": {csrf}}); status == 429 {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("12 connection tests in a minute were all run")
	}
}

// TestFailedTestIsLoggedWithItsReason: the log says why a connection test
// failed (kind and step), never the password.
func TestFailedTestIsLoggedWithItsReason(t *testing.T) {
	rig := mailrig.Shared(t)
	alice, _ := rig.User("alice")
	inst, b := signedIn(t, map[string]string{"DATA_DIR": t.TempDir(), "MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": rig.CAFile})
	imapHost, imapPort, _ := net.SplitHostPort(rig.IMAPSAddr())
	_, smtpPort, _ := net.SplitHostPort(rig.SMTPSAddr())
	form := b.get("/accounts/new")
	if status := b.post("/accounts", neturl.Values{"_csrf": {csrfFrom(t, form)}, "label": {"Rig"}, "email": {alice.Email},
		"imap_host": {imapHost}, "imap_port": {imapPort}, "imap_tls_mode": {"tls"}, "imap_password": {"wrong-password-123"},
		"smtp_host": {imapHost}, "smtp_port": {smtpPort}, "smtp_tls_mode": {"tls"}}); status != 303 {
		t.Fatalf("create = %d", status)
	}
	list := b.get("/accounts")
	id := regexp.MustCompile(`id="account-([^"]+)"`).FindStringSubmatch(list)[1]
	b.post("/accounts/"+id+"/test", neturl.Values{"_csrf": {csrfFrom(t, list)}})
	logs := inst.logs.String()
	if !strings.Contains(logs, `imap_error="authentication failed during imap login"`) || !strings.Contains(logs, `smtp_error="authentication failed during smtp auth"`) {
		t.Fatalf("the log does not say why the test failed:\n%s", grep(logs, "account test"))
	}
	if strings.Contains(logs, "wrong-password-123") {
		t.Fatal("the password is in the log")
	}
}

// TestSignatureRules: saved signatures keep mail-safe inline styles and
// hosted images, drop other styles, and a pasted data: image is refused
// with a message instead of being saved as a broken tag.
func TestSignatureRules(t *testing.T) {
	dir := t.TempDir()
	_, b := signedIn(t, map[string]string{"DATA_DIR": dir})
	values := b.accountForm("signature_html", `<p><span style="color: #1f4e79; font-size: 11pt; position: fixed">Alice</span></p><img src="data:image/png;base64,iVBORw0KGgo=" alt="logo">`)
	status, page := b.postPage("/accounts", values)
	if status != 422 || !strings.Contains(page, `data-testid="signature_html-error"`) || !strings.Contains(page, "https address") {
		t.Fatalf("data: image = %d", status)
	}
	values.Set("signature_html", `<p><span style="color: #1f4e79; font-size: 11pt; position: fixed">Alice</span></p><img src="https://example.com/logo.png" alt="logo">`)
	if status := b.post("/accounts", values); status != 303 {
		t.Fatalf("create = %d", status)
	}
	st, _ := openForTest(t, map[string]string{"DATA_DIR": dir})
	defer st.Close()
	u, _ := st.EnsureLocalUser(context.Background())
	accts, _ := st.ListAccounts(context.Background(), u.ID)
	sig := accts[0].SignatureHTML
	if !strings.Contains(sig, "color: #1f4e79") || !strings.Contains(sig, "font-size: 11pt") || strings.Contains(sig, "position") ||
		!strings.Contains(sig, `src="https://example.com/logo.png"`) {
		t.Fatalf("saved signature %q", sig)
	}
}
