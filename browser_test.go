package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

// chromium starts headless Chromium (Debian's package) for one test and
// collects console errors and uncaught exceptions, which a page under
// our CSP must not produce.
func chromium(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("headless Chromium is required (%v): run ./scripts/test, which installs it", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900),
		// A name that is not localhost: its plain-http origin is not
		// "potentially trustworthy", as a LAN host's is not.
		chromedp.Flag("host-resolver-rules", "MAP "+lanHost+" 127.0.0.1"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s (%s:%d)", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, fmt.Sprintf("log %s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				problems = append(problems, "console.error: "+strings.Join(parts, " "))
			}
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	}
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// stepper returns a function that runs browser steps and, when one fails,
// ends the test with the page's address, text and logged problems.
func stepper(t *testing.T, ctx context.Context, problems func() []string) func(...chromedp.Action[chromedp.Void]) {
	return func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			t.Fatalf("%v\nat %s:\n%s\n%s", err, loc, body, strings.Join(problems(), "\n"))
		}
	}
}

// signInAt opens path signed out, which shows the sign-in form, and
// signs in with password; the browser then goes on to path.
func signInAt(base, path, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), password), chromedp.Submit(chromedp.CSS("#password")))
}

// set replaces a field's value and fires change, as a person's edit does.
// It is one script, not a node query: chromedp's copy of the DOM lags
// behind htmx swaps, and a node query can land on a removed element.
func set(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(function (el) {
			el.value = %q;
			return el.dispatchEvent(new Event("change", {bubbles: true}));
		})(document.querySelector(%q))`, value, sel))(ctx, tg)
		return err
	})
}

// startOnFreePort runs the server with APP_URL equal to the address the
// browser uses, so same-origin checks see the real origin.
func startOnFreePort(t *testing.T, env map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env["APP_URL"] = url
	inst := startAt(t, env, port)
	return inst.url
}

// screenshot saves a full-page PNG into $IMAP_MCP_ARTIFACTS (when set) in
// the light and the dark scheme.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("IMAP_MCP_ARTIFACTS")
	if dir == "" {
		return
	}
	for _, scheme := range []string{"light", "dark"} {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		var png []byte
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+scheme+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBrowserSignInAccountsConnect(t *testing.T) {
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret"})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	do(chromedp.Navigate(base+"/accounts"), chromedp.WaitVisible(css("#password")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/sign-in?redirect_url=%2Faccounts") {
		t.Fatalf("signed-out visit went to %s", loc)
	}
	screenshot(t, ctx, "sign-in")
	do(chromedp.SendKeys(css("#password"), "browser-secret"),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css(`[data-testid="no-accounts"]`)),
		chromedp.Click(css(`[data-testid="add-account"]`)),
		chromedp.WaitVisible(css("#label")))
	screenshot(t, ctx, "account-new")
	do(chromedp.SendKeys(css("#label"), "Work"),
		chromedp.SendKeys(css("#email"), "alice@example.com"),
		chromedp.SendKeys(css("#imap_host"), "imap.example.com"),
		chromedp.SendKeys(css("#imap_password"), "secret-pass"),
		chromedp.SendKeys(css("#smtp_host"), "smtp.example.com"),
		chromedp.Click(css(`[data-testid="save"]`)),
		chromedp.WaitVisible(css(`[data-testid="account"]`)))
	if card := text(`[data-testid="account"]`); !strings.Contains(card, "alice@example.com") || !strings.Contains(card, "imap.example.com:993") || !strings.Contains(card, "default") {
		t.Fatalf("account card: %q", card)
	}
	screenshot(t, ctx, "accounts")

	// HTMX tab switch on /connect.
	do(chromedp.Navigate(base+"/connect"),
		chromedp.WaitVisible(css(`[data-testid="tab-claude-ai"]`)),
		chromedp.Click(css(`nav.tabs a[href="/connect?tab=code"]`)),
		chromedp.WaitVisible(css(`[data-testid="tab-code"]`)))
	if snippet := text("#snippet-code"); snippet != "claude mcp add --transport http imap-mcp "+base+"/api/mcp" {
		t.Fatalf("Claude Code snippet = %q", snippet)
	}
	screenshot(t, ctx, "connect")

	// Delete through HTMX, accepting the confirmation.
	err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}) // fn must not block
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	do(chromedp.Navigate(base+"/accounts"),
		chromedp.WaitVisible(css(`[data-testid="delete"]`)),
		chromedp.Click(css(`[data-testid="delete"]`)),
		chromedp.WaitNotPresent(css(`[data-testid="account"]`)))
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors (CSP violations show up here):\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserAccountTestAndWarnings adds an account for the rig's Dovecot
// and Postfix through the form: a preset fills the servers, port/TLS
// warnings come and go as the person edits, Test turns both badges ok, a
// wrong password turns them failing with a hint.
func TestBrowserAccountTestAndWarnings(t *testing.T) {
	rig := mailrig.Shared(t)
	alice, _ := rig.User("alice")
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret",
		"MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": rig.CAFile})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			t.Fatalf("%v\n%s\n%s", err, body, strings.Join(problems(), "\n"))
		}
	}
	// warnings reads a warning list by script, for the reason set does;
	// a list that cannot be read is not an empty one.
	warnings := func(proto string) string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector("#%s-warnings").innerText`, proto)))
		if err != nil {
			return "unreadable: " + err.Error()
		}
		return v
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	do(signInAt(base, "/accounts", "browser-secret"),
		chromedp.WaitVisible(css(`[data-testid="no-accounts"]`)), chromedp.Navigate(base+"/accounts/new"), chromedp.WaitVisible(css("#preset")))

	// A preset fills the servers in place.
	// The swapped-in fields get their live checks once htmx has settled
	// them (a person cannot type sooner); wait for that before editing.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__settled = false;
		document.body.addEventListener("htmx:afterSettle", function () { window.__settled = true; }, {once: true}); true`)); err != nil {
		t.Fatal(err)
	}
	do(set("#preset", "gmail"))
	// One script reads the fields and the settle flag together.
	var filled string
	waitFor("the Gmail preset", func() bool {
		filled, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`window.__settled === true ?
			document.querySelector("#imap_host").value + " " + document.querySelector("#smtp_port").value : ""`))
		return strings.HasPrefix(filled, "imap.gmail.com ")
	})
	if filled != "imap.gmail.com 465" {
		t.Fatalf("the Gmail preset filled IMAP host and SMTP port %q, want imap.gmail.com 465", filled)
	}

	// Port 143 with TLS warns; STARTTLS clears it.
	do(set("#imap_port", "143"))
	waitFor("the port/TLS warning", func() bool { return strings.Contains(warnings("imap"), "normally uses") })
	screenshot(t, ctx, "account-warning")
	do(set("#imap_tls_mode", "starttls"))
	waitFor("the warning to clear", func() bool { return strings.TrimSpace(warnings("imap")) == "" })

	do(set("#imap_host", rig.Host), set("#imap_port", fmt.Sprint(rig.IMAPPort)), set("#imap_tls_mode", "starttls"),
		set("#smtp_host", rig.Host), set("#smtp_port", fmt.Sprint(rig.SubmissionPort)), set("#smtp_tls_mode", "starttls"),
		chromedp.SendKeys(css("#label"), "Rig"), chromedp.SendKeys(css("#email"), alice.Email),
		chromedp.SendKeys(css("#imap_password"), alice.Password),
		chromedp.Click(css(`[data-testid="save"]`)), chromedp.WaitVisible(css(`[data-testid="test"]`)),
		chromedp.Click(css(`[data-testid="test"]`)), chromedp.WaitVisible(css(`[data-testid="imap-badge"]`)))
	badges, _ := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="test-status"]`)))
	if !strings.Contains(badges, "IMAP ok") || !strings.Contains(badges, "SMTP ok") {
		t.Fatalf("badges after Test: %q", badges)
	}
	screenshot(t, ctx, "account-tested")

	// A wrong password: both badges fail, with a hint.
	do(chromedp.Click(css(`a[href$="/edit"]`)), chromedp.WaitVisible(css("#imap_password")),
		chromedp.SendKeys(css("#imap_password"), "wrong-password"), chromedp.SendKeys(css("#smtp_password"), "wrong-password"),
		chromedp.Click(css(`[data-testid="save"]`)), chromedp.WaitVisible(css(`[data-testid="test"]`)),
		chromedp.Click(css(`[data-testid="test"]`)), chromedp.WaitVisible(css(`[data-testid="hint"]`)))
	badges, _ = chromedp.Run(ctx, chromedp.Text(css(`[data-testid="test-status"]`)))
	if !strings.Contains(badges, "IMAP failing") || !strings.Contains(badges, "SMTP failing") || !strings.Contains(badges, "password") {
		t.Fatalf("badges after a wrong password: %q", badges)
	}
	screenshot(t, ctx, "account-failing")
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserThemeErrorsNoJSConsent covers the theme toggle, the error
// page, an account added with JavaScript disabled, and OAuth consent.
func TestBrowserThemeErrorsNoJSConsent(t *testing.T) {
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret"})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			t.Fatalf("%v\n%s", err, body)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	do(signInAt(base, "/", "browser-secret"),
		chromedp.WaitVisible(css(`[data-testid="mcp-url"]`)))

	// The theme toggle cycles system -> dark -> light and survives a reload.
	do(chromedp.Click(css(`[data-testid="theme-toggle"]`)))
	if got := eval(`document.documentElement.dataset.theme || "system"`); got != "dark" {
		t.Fatalf("theme after one click = %s", got)
	}
	do(chromedp.Reload(), chromedp.WaitVisible(css(`[data-testid="theme-toggle"]`)))
	if got := eval(`document.documentElement.dataset.theme || "system"`); got != "dark" {
		t.Fatalf("theme after reload = %s", got)
	}
	if got := eval(`getComputedStyle(document.body).backgroundColor`); got != "rgb(17, 19, 24)" {
		t.Fatalf("dark background = %s", got)
	}
	do(chromedp.Click(css(`[data-testid="theme-toggle"]`)), chromedp.Click(css(`[data-testid="theme-toggle"]`)))
	if got := eval(`document.documentElement.dataset.theme || "system"`); got != "system" {
		t.Fatalf("theme after three clicks = %s", got)
	}

	// Unknown pages get the error page in the same look.
	do(chromedp.Navigate(base+"/no/such/page"), chromedp.WaitVisible(css(`[data-testid="error-page"]`)))
	screenshot(t, ctx, "not-found")

	// OAuth consent in the browser: allow, and the client gets its code.
	codes := make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codes <- r.URL.Query().Get("code")
		io.WriteString(w, "done")
	}))
	defer cb.Close()
	resp, err := http.Post(base+"/api/oauth/register", "application/json", strings.NewReader(
		`{"client_name":"Browser Client","redirect_uris":["`+cb.URL+`/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	q := neturl.Values{"client_id": {reg["client_id"].(string)}, "redirect_uri": {cb.URL + "/cb"}, "response_type": {"code"},
		"state": {"s"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	do(chromedp.Navigate(base+"/api/oauth/authorize?"+q.Encode()), chromedp.WaitVisible(css(`[data-testid="consent"]`)))
	screenshot(t, ctx, "consent")
	do(chromedp.Click(css(`[data-testid="allow"]`)))
	select {
	case code := <-codes:
		if code == "" {
			t.Fatal("redirected back without a code")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consent did not redirect to the client")
	}

	// With JavaScript off, adding an account still works (plain form posts).
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do(chromedp.Navigate(base+"/accounts/new"), chromedp.WaitVisible(css("#label")),
		chromedp.SendKeys(css("#label"), "NoJS"), chromedp.SendKeys(css("#email"), "nojs@example.com"),
		chromedp.SendKeys(css("#imap_host"), "imap.example.com"), chromedp.SendKeys(css("#imap_password"), "pw"),
		chromedp.SendKeys(css("#smtp_host"), "smtp.example.com"),
		chromedp.Click(css(`[data-testid="save"]`)), chromedp.WaitVisible(css(`[data-testid="account"]`)))
	for _, p := range problems() {
		if !strings.Contains(p, "/no/such/page") { // the 404 asked for above
			t.Errorf("the pages logged an error: %s", p)
		}
	}
}

// TestBrowserSignatureEditor edits a signature in the rich-text editor
// and watches the sanitized preview follow.
func TestBrowserSignatureEditor(t *testing.T) {
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret"})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	if err := chromedp.Do(ctx, signInAt(base, "/accounts/new", "browser-secret"), chromedp.WaitVisible(css(`[data-testid="signature-editor"]`)),
		chromedp.Click(css(`[data-testid="signature-editor"]`)), chromedp.Click(css(`[data-testid="editor-bold"]`)),
		chromedp.SendKeys(css(`[data-testid="signature-editor"]`), "Alice Doe")); err != nil {
		t.Fatal(err)
	}
	var html string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		html, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("signature-preview").innerHTML`))
		if strings.Contains(html, "Alice Doe") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(html, "<b>Alice Doe</b>") {
		t.Fatalf("preview = %q, want the bold name", html)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("signature_html").value`)); !strings.Contains(v, "<b>Alice Doe</b>") {
		t.Fatalf("the form field did not follow the editor: %q", v)
	}
	screenshot(t, ctx, "signature")
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors:\n%s", strings.Join(p, "\n"))
	}
}

// lanHost stands for a LAN or VPS host name reached over plain http.
const lanHost = "imapmcp.test"

// TestBrowserPlainHTTPOrigin: on plain http at a name that is not
// localhost, browsers send no Sec-Fetch-Site; setup, sign-in, adding an
// account, consent and sign-out still work, and a form posted from
// another site is still refused.
func TestBrowserPlainHTTPOrigin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := fmt.Sprintf("http://%s:%d", lanHost, port)
	inst := startAt(t, map[string]string{"DATA_DIR": t.TempDir(), "APP_URL": base}, port)
	m := regexp.MustCompile(`/setup\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(inst.logs.String())
	if m == nil {
		t.Fatalf("no setup link printed:\n%s", inst.logs)
	}
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	do(chromedp.Navigate(base+"/setup?token="+m[1]), chromedp.WaitVisible(css("#password")),
		chromedp.SendKeys(css("#password"), "lan-password"), chromedp.SendKeys(css("#confirm"), "lan-password"),
		chromedp.Submit(css("#password")), chromedp.WaitVisible(css(`[data-testid="user"]`)))
	do(chromedp.Submit(css(`form[action="/sign-out"]`)), chromedp.WaitVisible(css("#password")))
	do(chromedp.SendKeys(css("#password"), "lan-password"), chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css(`[data-testid="user"]`)))
	do(chromedp.Navigate(base+"/accounts/new"), chromedp.WaitVisible(css("#label")),
		chromedp.SendKeys(css("#label"), "Home"), chromedp.SendKeys(css("#email"), "me@example.com"),
		chromedp.SendKeys(css("#imap_host"), "imap.example.com"), chromedp.SendKeys(css("#imap_password"), "secret-pass"),
		chromedp.SendKeys(css("#smtp_host"), "smtp.example.com"), chromedp.Click(css(`[data-testid="save"]`)),
		chromedp.WaitVisible(css(`[data-testid="account"]`)))

	// Consent for a registered client: the browser ends at its callback
	// with a code.
	codes := make(chan string, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		fmt.Fprint(w, "done")
	}))
	defer callback.Close()
	resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/api/oauth/register", "application/json",
		strings.NewReader(`{"client_name":"LAN client","redirect_uris":["`+callback.URL+`/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	q := neturl.Values{"client_id": {fmt.Sprint(reg["client_id"])}, "redirect_uri": {callback.URL + "/cb"}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}, "state": {"s1"}, "scope": {"mail.read"}}
	do(chromedp.Navigate(base+"/authorize?"+q.Encode()), chromedp.WaitVisible(css(`[data-testid="allow"]`)),
		chromedp.Click(css(`[data-testid="allow"]`)))
	select {
	case code := <-codes:
		if !strings.HasPrefix(code, "imcp_code_") {
			t.Fatalf("callback got code %q", code)
		}
	case <-time.After(10 * time.Second):
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("consent never reached the callback; browser at %s", loc)
	}
	// The browser finishes loading the callback's page before it goes on
	// (a navigation started meanwhile would abort one of the two).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" && document.body ? document.body.innerText : ""`))
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.HasPrefix(loc, callback.URL) && body == "done" {
			break
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("the callback's page never loaded; the browser is at %s", loc)
		}
	}

	// Another site's form that posts here is refused, signed in as the
	// person is.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/sign-out"><input type="hidden" name="_csrf" value="x"></form>`, base)
	}))
	defer evil.Close()
	// The other site's page submits its form once it has loaded (a submit
	// racing the load would abort the navigation that loads it).
	do(chromedp.Navigate(evil.URL), chromedp.WaitReady(css("#f")))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("f").submit(), true`)); err != nil {
		t.Fatal(err)
	}
	// The post was sent (the browser is at its answer), and refused.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc == base+"/sign-out" {
			break
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("the other site's form never posted; the browser is at %s", loc)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		if strings.Contains(body, "did not come from this site") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cross-site post answered %q", body)
		}
	}
	do(chromedp.Navigate(base+"/"), chromedp.WaitReady(css("body")))
	if signedIn, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid="user"]')`)); !signedIn {
		t.Fatal("a form from another site signed the person out")
	}
}

// TestBrowserSignInWithGoogle adds a Gmail account by signing in at the
// provider (the rig's stand-in for Google), without typing any server
// setting or password, and tests it: both badges turn ok against the real
// Dovecot and Postfix, which accept the token through XOAUTH2.
func TestBrowserSignInWithGoogle(t *testing.T) {
	rig := mailrig.Shared(t)
	alice, _ := rig.User("alice")
	env := oauthEnv(t, rig)
	env["LOCAL_ADMIN_PASSWORD"] = "browser-secret"
	base := startOnFreePort(t, env)
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)

	do(signInAt(base, "/accounts/new", "browser-secret"),
		chromedp.WaitVisible(css(`[data-testid="preset"]`)))
	// Choosing Gmail (HTMX) offers the sign-in and keeps the password form
	// behind a choice.
	do(set(`[data-testid="preset"]`, "gmail"), chromedp.WaitVisible(css(`[data-testid="sign-in-provider"]`)))
	if visible, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#imap_password").checkVisibility()`)); visible {
		t.Fatal("the password field shows although Sign in with Google is offered")
	}
	screenshot(t, ctx, "account-new-gmail")
	do(chromedp.Click(css(`[data-testid="sign-in-provider"]`)), chromedp.WaitVisible(css("#allow"))) // on the provider's page only
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, rig.OAuth.URL+"/authorize?") {
		t.Fatalf("sign-in went to %s", loc)
	}
	do(chromedp.SendKeys(css("#email"), alice.Email), chromedp.Click(css("#allow")),
		chromedp.WaitVisible(css(`[data-testid="account"]`)))
	if card, _ := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="account"]`))); !strings.Contains(card, alice.Email) ||
		!strings.Contains(card, "signs in with Google") {
		t.Fatalf("account card: %q", card)
	}
	do(chromedp.Click(css(`[data-testid="test"]`)), chromedp.WaitVisible(css(`[data-testid="smtp-badge"]`)))
	if badges, _ := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="test-status"]`))); !strings.Contains(badges, "IMAP ok") || !strings.Contains(badges, "SMTP ok") {
		t.Fatalf("test badges: %q", badges)
	}
	screenshot(t, ctx, "accounts-google")
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserTestShowsProgress: while a connection test waits on a server
// that never answers, the account says it is testing, instead of showing
// only the old badge.
func TestBrowserTestShowsProgress(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()
	port := strconv.Itoa(silent.Addr().(*net.TCPAddr).Port)
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret", "MAIL_ALLOW_PRIVATE_HOSTS": "true"})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	do(signInAt(base, "/accounts/new", "browser-secret"),
		chromedp.WaitVisible(css("#label")),
		chromedp.SendKeys(css("#label"), "Silent"), chromedp.SendKeys(css("#email"), "me@example.com"),
		chromedp.SetValue(css("#imap_host"), "127.0.0.1"), chromedp.SetValue(css("#imap_port"), port),
		chromedp.SendKeys(css("#imap_password"), "pw"),
		chromedp.SetValue(css("#smtp_host"), "127.0.0.1"), chromedp.SetValue(css("#smtp_port"), port),
		chromedp.Click(css(`[data-testid="save"]`)), chromedp.WaitVisible(css(`[data-testid="account"]`)))
	if visible, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="testing"]').checkVisibility()`)); visible {
		t.Fatal("the testing notice shows before any test")
	}
	do(chromedp.Click(css(`[data-testid="test"]`)), chromedp.WaitVisible(css(`[data-testid="testing"]`)))
}

// TestBrowserPresetKeepsWhatWasTyped: choosing a provider after typing
// the label, address and password fills the servers and keeps the rest.
func TestBrowserPresetKeepsWhatWasTyped(t *testing.T) {
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret"})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	do(signInAt(base, "/accounts/new", "browser-secret"),
		chromedp.WaitVisible(css("#label")),
		chromedp.SendKeys(css("#label"), "Personal"), chromedp.SendKeys(css("#email"), "me@fastmail.com"),
		chromedp.SendKeys(css("#imap_password"), "typed-secret"),
		set(`[data-testid="preset"]`, "fastmail"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		host, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#imap_host").value`))
		if host == "imap.fastmail.com" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the preset did not fill the servers (imap_host %q)", host)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[label.value, email.value, imap_password.value].join("|")`))
	if got != "Personal|me@fastmail.com|typed-secret" {
		t.Fatalf("after choosing the preset: %q", got)
	}
	// The live port checks send host, port and TLS mode, never a password.
	// htmx may still be moving the preserved password field into the new
	// form, which makes a node looked up a moment earlier vanish: wait
	// for the swap to settle, and try a keystroke again if it raced one.
	for _, step := range []chromedp.Action[chromedp.Void]{chromedp.SendKeys(css("#imap_password"), "-more"), chromedp.SendKeys(css("#imap_port"), "3")} {
		for attempt := 0; ; attempt++ {
			settle := time.Now().Add(5 * time.Second)
			for settled := false; !settled && time.Now().Before(settle); time.Sleep(20 * time.Millisecond) {
				settled, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector(".htmx-settling, .htmx-swapping, .htmx-request")`))
			}
			_, err := chromedp.Run(ctx, step)
			if err == nil {
				break
			}
			if attempt == 20 || !strings.Contains(err.Error(), "Could not find node") {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var checks []string
	for deadline := time.Now().Add(5 * time.Second); len(checks) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		checks, _ = chromedp.Run(ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType("resource").map(e => e.name).filter(n => n.includes("/accounts/check"))`))
	}
	if len(checks) == 0 {
		t.Fatal("no live port check ran")
	}
	for _, u := range checks {
		if strings.Contains(u, "password") || strings.Contains(u, "typed-secret") {
			t.Fatalf("a live check sent a password: %s", u)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserAppsOnAPhone: at 390 px /apps fits the screen, Revoke
// included, with scopes in words and times marked UTC.
func TestBrowserAppsOnAPhone(t *testing.T) {
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "local-secret"})
	authorizeLocal(t, base, base)
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	do(signInAt(base, "/apps", "local-secret"),
		chromedp.WaitVisible(css(`[data-testid="revoke"]`)))
	fits, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390 &&
		document.querySelector('[data-testid="revoke"]').getBoundingClientRect().right <= 390`))
	if !fits {
		width, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		t.Fatalf("/apps is %v px wide at 390 px, or Revoke is off-screen", width)
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("table.apps").textContent + getComputedStyle(document.querySelector('[data-testid="app"] td[data-label]'), "::before").content`))
	if !strings.Contains(text, "send mail") || !strings.Contains(text, "Connected (UTC)") || !strings.Contains(text, `"Application: "`) {
		t.Fatalf("app row: %q", text)
	}
	screenshot(t, ctx, "apps-390")
}

// TestBrowserPagesFitAPhone: home, accounts, connect, apps, activity and outbox have no
// horizontal scrolling at 390 px, with an account and an app present.
func TestBrowserPagesFitAPhone(t *testing.T) {
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "local-secret"})
	authorizeLocal(t, base, base)
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	do(signInAt(base, "/accounts/new", "local-secret"),
		chromedp.WaitVisible(css("#label")),
		chromedp.SendKeys(css("#label"), "A rather long account label for a phone"), chromedp.SendKeys(css("#email"), "someone.with.a.long.address@example.com"),
		chromedp.SendKeys(css("#imap_host"), "imap.example.com"), chromedp.SendKeys(css("#imap_password"), "pw"),
		chromedp.SendKeys(css("#smtp_host"), "smtp.example.com"), chromedp.Click(css(`[data-testid="save"]`)),
		chromedp.WaitVisible(css(`[data-testid="account"]`)))
	for _, width := range []int64{390, 1280} {
		if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: width, Height: 844, DeviceScaleFactor: 1, Mobile: width < 600}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/", "/accounts", "/accounts/new", "/connect", "/apps", "/activity", "/outbox"} {
			do(chromedp.Navigate(base+path), chromedp.WaitReady(css("main")))
			if w, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); w > float64(width) {
				t.Errorf("%s is %v px wide at %d px", path, w, width)
			}
			name := strings.Trim(strings.ReplaceAll(path, "/", "-"), "-")
			if name == "" {
				name = "home"
			}
			screenshot(t, ctx, fmt.Sprintf("%s-%d", name, width))
		}
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserSignaturePasteAndSource: a signature pasted from Word keeps
// its colours and sizes (and loses the rest), the HTML view edits the
// source, and a hosted logo shows in the preview.
func TestBrowserSignaturePasteAndSource(t *testing.T) {
	logo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/gif")
		w.Write([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"))
	}))
	defer logo.Close()
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "browser-secret"})
	ctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, ctx, problems)
	do(signInAt(base, "/accounts/new", "browser-secret"), chromedp.WaitVisible(css(`[data-testid="signature-editor"]`)),
		chromedp.Click(css(`[data-testid="signature-editor"]`)))
	word := `<p class="MsoNormal"><span style="color:#1F4E79;font-size:11pt;font-family:Calibri,sans-serif;mso-fareast-language:EN-US;position:fixed" onclick="x()">Alice Doe</span></p>`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.setData("text/html", %q);
		return document.querySelector('[data-testid="signature-editor"]').dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
	})()`, word))); err != nil {
		t.Fatal(err)
	}
	var value string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if value, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`signature_html.value`)); strings.Contains(value, "Alice Doe") {
			break
		}
	}
	if !strings.Contains(value, "color: rgb(31, 78, 121)") && !strings.Contains(value, "color: #1F4E79") || !strings.Contains(value, "font-size: 11pt") ||
		strings.Contains(value, "position") || strings.Contains(value, "mso-") || strings.Contains(value, "onclick") || strings.Contains(value, "MsoNormal") {
		t.Fatalf("pasted from Word: %q", value)
	}
	// The HTML view edits the source; back in the editor the change shows.
	do(chromedp.Click(css(`[data-testid="editor-html"]`)), chromedp.WaitVisible(css("#signature_html")))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		signature_html.value = '<p>Alice</p><img src="%s/logo.gif" alt="Logo">';
		signature_html.dispatchEvent(new Event("input")); return true })()`, logo.URL))); err != nil {
		t.Fatal(err)
	}
	do(chromedp.Click(css(`[data-testid="editor-html"]`)), chromedp.WaitVisible(css(`[data-testid="signature-editor"]`)))
	var preview string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if preview, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("signature-preview").innerHTML`)); strings.Contains(preview, "logo.gif") {
			break
		}
	}
	if !strings.Contains(preview, "logo.gif") {
		t.Fatalf("preview after the HTML view: %q", preview)
	}
	p := problems()
	for _, line := range p {
		if strings.Contains(line, "img-src") || strings.Contains(line, "style-src") {
			t.Fatalf("the preview's logo or styles were blocked:\n%s", strings.Join(p, "\n"))
		}
	}
}
