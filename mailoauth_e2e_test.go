package main

import (
	"context"
	"encoding/json"
	neturl "net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

// oauthEnv configures Sign in with Google against the rig: its provider
// stands in for Google and its Dovecot and Postfix for Gmail's servers.
func oauthEnv(t *testing.T, rig *mailrig.Rig) map[string]string {
	t.Helper()
	endpoints, err := json.Marshal(map[string]any{"google": map[string]string{
		"auth_url": rig.OAuth.URL + "/authorize", "token_url": rig.OAuth.URL + "/token", "issuer": rig.OAuth.Issuer,
		"imap": rig.IMAPSAddr(), "imap_tls": "tls", "smtp": rig.SubmissionAddr(), "smtp_tls": "starttls"}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"DATA_DIR": t.TempDir(), "MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": rig.CAFile,
		"GOOGLE_OAUTH_CLIENT_ID": rig.OAuth.ClientID, "GOOGLE_OAUTH_CLIENT_SECRET": rig.OAuth.ClientSecret,
		"MAIL_OAUTH_TEST_ENDPOINTS": string(endpoints)}
}

// providerSignIn starts a sign-in from page (a page of b holding a CSRF
// token) with form, consents at the rig's provider as email (or denies)
// and returns the callback path with its query, unvisited.
func providerSignIn(t *testing.T, b *httpBrowser, page string, form neturl.Values, email string, allow bool) string {
	t.Helper()
	form.Set("_csrf", csrfFrom(t, page))
	resp, _ := send(t, b.c, "POST", b.base+"/accounts/oauth/start", form)
	auth, err := neturl.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 303 || err != nil || !strings.HasSuffix(auth.Path, "/authorize") {
		t.Fatalf("start = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("state")) < 40 || !strings.HasSuffix(q.Get("redirect_uri"), "/accounts/oauth/callback") {
		t.Fatalf("authorization request %s", auth)
	}
	_, consent := send(t, b.c, "GET", auth.String(), nil)
	decision := neturl.Values{"email": {email}, "decision": {"deny"}}
	if allow {
		decision.Set("decision", "allow")
	}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(consent, -1) {
		decision.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	resp, _ = send(t, b.c, "POST", auth.Scheme+"://"+auth.Host+"/authorize", decision)
	back, err := neturl.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || err != nil {
		t.Fatalf("consent = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return back.RequestURI()
}

// mcpClient connects a real MCP client with token to inst.
func mcpClient(t *testing.T, base, token string) *client.Client {
	t.Helper()
	mc, err := client.NewStreamableHttpClient(base+"/api/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	if err := mc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Initialize(context.Background(), mcplib.InitializeRequest{Params: mcplib.InitializeParams{
		ProtocolVersion: mcplib.LATEST_PROTOCOL_VERSION, ClientInfo: mcplib.Implementation{Name: "e2e", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	return mc
}

// call runs a tool and returns its text and whether it is an error.
func call(t *testing.T, mc *client.Client, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := mc.CallTool(context.Background(), mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcplib.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return text.String(), res.IsError
}

// TestMailSignInWithProvider: an account added with "Sign in with Google"
// reads and sends over MCP through XOAUTH2 against the real Dovecot and
// Postfix, renews its token once for concurrent calls, says so when the
// provider withdraws the sign-in, and works again after Reconnect.
func TestMailSignInWithProvider(t *testing.T) {
	rig := mailrig.Shared(t)
	alice, _ := rig.User("alice")
	bob, _ := rig.User("bob")
	// Tokens live two minutes and five seconds: five seconds after each
	// renewal they are due again (long enough for ten calls on a loaded
	// machine to share one renewal).
	rig.OAuth.SetAccessTTL(2*time.Minute + 5*time.Second)
	t.Cleanup(func() { rig.OAuth.SetAccessTTL(time.Hour) })
	inst, b := signedIn(t, oauthEnv(t, rig))

	page := b.get("/accounts/new?preset=gmail")
	if !strings.Contains(page, `data-testid="sign-in-provider"`) || !strings.Contains(page, "Sign in with Google") ||
		!strings.Contains(page, `data-testid="password-choice"`) || !strings.Contains(page, "app password") {
		t.Fatalf("Gmail preset with Google configured:\n%s", page)
	}
	if page := b.get("/accounts/new?preset=outlook"); strings.Contains(page, `data-testid="sign-in-provider"`) ||
		!strings.Contains(page, "refuse passwords") {
		t.Fatal("the Outlook preset offers a sign-in that is not configured, or does not explain why passwords fail")
	}

	// Denied at the provider: back on the form, nothing saved.
	cb := providerSignIn(t, b, page, neturl.Values{"provider": {"google"}}, alice.Email, false)
	if status, body := b.getStatus(cb); status != 400 || !strings.Contains(body, "did not allow access at Google") {
		t.Fatalf("denied = %d\n%s", status, body)
	}

	// Allowed: the account exists with Google's (here: the rig's) servers.
	cb = providerSignIn(t, b, page, neturl.Values{"provider": {"google"}}, alice.Email, true)
	resp, _ := send(t, b.c, "GET", b.base+cb, nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/accounts?done=signed-in" {
		t.Fatalf("callback = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Replaying the same callback is refused.
	if status, body := b.getStatus(cb); status != 400 || !strings.Contains(body, "already completed") {
		t.Fatalf("replayed callback = %d", status)
	}
	list := b.get("/accounts")
	if !strings.Contains(list, alice.Email) || !strings.Contains(list, "signs in with Google") {
		t.Fatalf("/accounts:\n%s", list)
	}
	id := regexp.MustCompile(`id="account-([^"]+)"`).FindStringSubmatch(list)[1]
	edit := b.get("/accounts/" + id + "/edit")
	if strings.Contains(edit, `name="imap_host"`) || strings.Contains(edit, `name="imap_password"`) || !strings.Contains(edit, `data-testid="signs-in-with"`) {
		t.Fatal("the edit form of an OAuth account lets its servers or password be changed")
	}
	if status := b.post("/accounts/"+id+"/test", neturl.Values{"_csrf": {csrfFrom(t, list)}}); status != 303 {
		t.Fatalf("test = %d", status)
	}
	if list = b.get("/accounts"); !strings.Contains(list, `data-testid="imap-badge">IMAP ok`) || !strings.Contains(list, `data-testid="smtp-badge">SMTP ok`) {
		t.Fatalf("connection test of the signed-in account:\n%s", list)
	}

	_, tok, _ := authorizeLocal(t, inst.url, "http://localhost:0")
	mc := mcpClient(t, inst.url, tok.AccessToken)
	if text, isErr := call(t, mc, "list_messages", nil); isErr {
		t.Fatalf("list_messages: %s", text)
	}
	subject := "Signed in with Google " + time.Now().Format(time.RFC3339Nano)
	if text, isErr := call(t, mc, "send_message", map[string]any{"to": []string{bob.Email}, "subject": subject, "body_text": "via XOAUTH2"}); isErr {
		t.Fatalf("send_message: %s", text)
	}

	// The token falls due: ten concurrent calls share one renewal.
	time.Sleep(5500 * time.Millisecond)
	before := rig.OAuth.Refreshes()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if text, isErr := call(t, mc, "list_messages", map[string]any{"limit": 5}); isErr {
				t.Errorf("list_messages during renewal: %s", text)
			}
		}()
	}
	wg.Wait()
	if n := rig.OAuth.Refreshes() - before; n != 1 {
		t.Fatalf("%d refreshes for 10 concurrent calls, want 1", n)
	}
	t.Logf("10 concurrent calls during a renewal: all answered, %d refresh", rig.OAuth.Refreshes()-before)

	// Google withdraws access: the next send is refused by Postfix (Dovecot
	// asks the provider), the refresh fails, and the tools say what to do.
	rig.OAuth.Revoke(alice.Email)
	text, isErr := call(t, mc, "send_message", map[string]any{"to": []string{bob.Email}, "subject": "after revocation", "body_text": "x"})
	if !isErr || !strings.Contains(text, "Reconnect") {
		t.Fatalf("send after revocation: %v %s", isErr, text)
	}
	if text, isErr := call(t, mc, "list_messages", nil); !isErr || !strings.Contains(text, "Reconnect") {
		t.Fatalf("list after revocation: %v %s", isErr, text)
	}
	if text, _ := call(t, mc, "list_accounts", nil); !strings.Contains(text, "status=needs_sign_in") {
		t.Fatalf("list_accounts after revocation: %s", text)
	}
	list = b.get("/accounts")
	if !strings.Contains(list, `data-testid="needs-reauth"`) || !strings.Contains(list, `data-testid="reconnect"`) {
		t.Fatalf("/accounts after revocation:\n%s", list)
	}
	b.post("/accounts/"+id+"/test", neturl.Values{"_csrf": {csrfFrom(t, list)}})
	if list = b.get("/accounts"); !strings.Contains(list, "Reconnect on this account") {
		t.Fatalf("connection test after revocation does not say to reconnect:\n%s", list)
	}

	// Reconnecting as someone else is refused; as the account's owner it works.
	cb = providerSignIn(t, b, list, neturl.Values{"account_id": {id}}, bob.Email, true)
	if status, body := b.getStatus(cb); status != 400 || !strings.Contains(body, "but this account is "+alice.Email) {
		t.Fatalf("reconnect as another address = %d\n%s", status, body)
	}
	cb = providerSignIn(t, b, list, neturl.Values{"account_id": {id}}, alice.Email, true)
	if resp, _ := send(t, b.c, "GET", b.base+cb, nil); resp.StatusCode != 303 {
		t.Fatalf("reconnect = %d", resp.StatusCode)
	}
	if list = b.get("/accounts"); strings.Contains(list, `data-testid="needs-reauth"`) || strings.Count(list, `data-testid="account"`) != 1 {
		t.Fatalf("/accounts after reconnect:\n%s", list)
	}
	if text, isErr := call(t, mc, "list_messages", nil); isErr {
		t.Fatalf("list_messages after reconnect: %s", text)
	}
}

// TestMailSignInStateIsBound: a callback whose state is made up, belongs
// to another browser session or another person is refused and creates
// nothing.
func TestMailSignInStateIsBound(t *testing.T) {
	rig := mailrig.Shared(t)
	carol, _ := rig.User("carol")
	env := oauthEnv(t, rig)
	inst, b := signedIn(t, env)
	page := b.get("/accounts/new?preset=gmail")

	for _, state := range []string{"", "made-up-state", strings.Repeat("A", 43)} {
		if status, body := b.getStatus("/accounts/oauth/callback?code=x&state=" + neturl.QueryEscape(state)); status != 400 ||
			!strings.Contains(body, "Start it again") {
			t.Fatalf("state %q = %d", state, status)
		}
	}

	// The same person signed in in another browser cannot complete it.
	cb := providerSignIn(t, b, page, neturl.Values{"provider": {"google"}}, carol.Email, true)
	other := &httpBrowser{t: t, c: browser(t), base: inst.url}
	signIn := other.get("/sign-in")
	other.post("/sign-in", neturl.Values{"_csrf": {csrfFrom(t, signIn)}, "password": {"local-secret"}})
	if status, _ := other.getStatus(cb); status != 400 {
		t.Fatalf("callback in another browser session = %d", status)
	}
	// And once refused, the state is spent for the first browser too.
	if status, _ := b.getStatus(cb); status != 400 {
		t.Fatalf("callback after a refused attempt = %d", status)
	}
	// Back from the provider signed out: the code is not carried through
	// sign-in, and the state is spent.
	cb = providerSignIn(t, b, page, neturl.Values{"provider": {"google"}}, carol.Email, true)
	if resp, body := send(t, browser(t), "GET", inst.url+cb, nil); resp.StatusCode != 401 || !strings.Contains(body, "signed out") {
		t.Fatalf("signed-out callback = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if status, _ := b.getStatus(cb); status != 400 {
		t.Fatalf("callback after a signed-out attempt = %d", status)
	}
	// Tampering with the state of a fresh sign-in fails too.
	cb = providerSignIn(t, b, page, neturl.Values{"provider": {"google"}}, carol.Email, true)
	u, _ := neturl.Parse(cb)
	q := u.Query()
	q.Set("state", q.Get("state")[1:]+"x")
	if status, _ := b.getStatus(u.Path + "?" + q.Encode()); status != 400 {
		t.Fatalf("tampered state = %d", status)
	}
	// A provider that answers with an error code names it, and nothing else.
	if status, body := b.getStatus(cb[:strings.Index(cb, "?")] + "?error=%3Cscript%3E&state=x"); status != 400 || strings.Contains(body, "<script>") {
		t.Fatalf("provider error = %d", status)
	}
	if list := b.get("/accounts"); !strings.Contains(list, `data-testid="no-accounts"`) {
		t.Fatal("a refused sign-in created an account")
	}

	// Unknown providers and other people's accounts cannot be started.
	form := neturl.Values{"_csrf": {csrfFrom(t, page)}, "provider": {"microsoft"}}
	if resp, _ := send(t, b.c, "POST", inst.url+"/accounts/oauth/start", form); resp.StatusCode != 400 {
		t.Fatalf("start with an unconfigured provider = %d", resp.StatusCode)
	}
	form = neturl.Values{"_csrf": {csrfFrom(t, page)}, "account_id": {"00000000-0000-0000-0000-000000000000"}}
	if resp, _ := send(t, b.c, "POST", inst.url+"/accounts/oauth/start", form); resp.StatusCode != 404 {
		t.Fatalf("start for an unknown account = %d", resp.StatusCode)
	}
	// Without the CSRF token, starting is refused.
	if resp, _ := send(t, b.c, "POST", inst.url+"/accounts/oauth/start", neturl.Values{"provider": {"google"}}, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Fatalf("start without CSRF = %d", resp.StatusCode)
	}
}
