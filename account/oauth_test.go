package account_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/internal/oauthprovider"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/store"
)

const redirectURL = "http://app.test/accounts/oauth/callback"

type fixture struct {
	prov *oauthprovider.Provider
	st   *store.Store
	keys *secret.Keys
	x    *account.OAuth
	user store.User
}

func newFixture(t *testing.T, client *http.Client) *fixture {
	t.Helper()
	prov, err := oauthprovider.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	keys, err := secret.New(make([]byte, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	st := dbtest.SQLiteStore(t)
	u, err := st.EnsureLocalUser(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	x := account.NewOAuth(account.OAuthOptions{Providers: googleAt(prov), RedirectURL: redirectURL, Store: st, Secrets: keys, HTTP: client,
		Credentials: map[string]account.Credentials{"google": {ClientID: prov.ClientID, ClientSecret: prov.ClientSecret}}})
	return &fixture{prov: prov, st: st, keys: keys, x: x, user: u}
}

func (f *fixture) google(t *testing.T) *account.Provider {
	p, ok := f.x.Provider("google")
	if !ok {
		t.Fatal("google not configured")
	}
	if _, ok := f.x.Provider("microsoft"); ok {
		t.Fatal("microsoft offered without credentials")
	}
	return p
}

// consent walks the provider's consent page as email and returns the code.
func (f *fixture) consent(t *testing.T, email, verifier string) string {
	t.Helper()
	p := f.google(t)
	auth, _ := url.Parse(p.AuthCodeURL("st4te", verifier, email))
	if auth.Query().Get("access_type") != "offline" || auth.Query().Get("code_challenge_method") != "S256" || auth.Query().Get("login_hint") != email {
		t.Fatalf("authorization request %s", auth)
	}
	resp, err := http.Get(auth.String())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("consent page: %v %v", resp, err)
	}
	resp.Body.Close()
	form := url.Values{"decision": {"allow"}, "email": {email}, "redirect_uri": {auth.Query().Get("redirect_uri")},
		"state": {"st4te"}, "code_challenge": {auth.Query().Get("code_challenge")}}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(f.prov.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(back.String(), redirectURL) || back.Query().Get("state") != "st4te" {
		t.Fatalf("redirect back %s", back)
	}
	return back.Query().Get("code")
}

// account stores an OAuth account of the fixture's user holding refresh.
func (f *fixture) account(t *testing.T, email, refresh string) store.MailAccount {
	t.Helper()
	a := &store.MailAccount{UserID: f.user.ID, Label: email, Email: email, IMAPHost: "127.0.0.1", IMAPPort: 993, IMAPTLSMode: "tls",
		IMAPUser: email, SMTPHost: "127.0.0.1", SMTPPort: 465, SMTPTLSMode: "tls", SMTPUser: email, AuthKind: store.AuthOAuthGoogle,
		OAuthRefreshTokenEnc: f.keys.Seal([]byte(refresh), store.AccountSecretContext(f.user.ID, store.ColumnRefreshToken))}
	if err := f.st.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return *a
}

// token opens the stored account id afresh, as each tool call does, and
// asks for its access token.
func (f *fixture) token(t *testing.T, id, refused string) (string, error) {
	a, err := f.st.GetAccount(context.Background(), f.user.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := account.Open(a, f.keys, f.x)
	if err != nil {
		t.Fatal(err)
	}
	// The token goes to the provider's servers, not to what the row says.
	if acct.OAuth == nil || acct.Password != "" || acct.Provider != "gmail" || acct.IMAP.Host != "imap.gmail.com" || acct.SMTP.Host != "smtp.gmail.com" {
		t.Fatalf("opened OAuth account: %+v", acct)
	}
	return acct.OAuth.Token(context.Background(), refused)
}

func TestSignInReadsTheAddressFromTheIDToken(t *testing.T) {
	f := newFixture(t, nil)
	p := f.google(t)
	code := f.consent(t, "Ann@Example.test", "verifier-0123456789-0123456789-0123456789-01")
	if _, err := f.x.Exchange(context.Background(), p, code, "another-verifier-0123456789-0123456789-012345"); err == nil {
		t.Fatal("a code redeemed with the wrong PKCE verifier was accepted")
	}
	code = f.consent(t, "Ann@Example.test", "verifier-0123456789-0123456789-0123456789-01")
	in, err := f.x.Exchange(context.Background(), p, code, "verifier-0123456789-0123456789-0123456789-01")
	if err != nil {
		t.Fatal(err)
	}
	if in.Email != "ann@example.test" || in.Name != "Test Person" || in.RefreshToken == "" {
		t.Fatalf("sign-in %+v", in)
	}
}

// TestSignInRefusesBadProviderAnswers: each answer a provider (or someone
// in its place) could give that must not create an account.
func TestSignInRefusesBadProviderAnswers(t *testing.T) {
	f := newFixture(t, &http.Client{Timeout: 500 * time.Millisecond})
	p := f.google(t)
	ok := map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt"}
	answer := func(body any, status int) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			if s, isString := body.(string); isString {
				w.Write([]byte(s))
			} else {
				json.NewEncoder(w).Encode(body)
			}
			return true
		}
	}
	with := func(claims map[string]any) map[string]any {
		m := map[string]any{"id_token": f.prov.IDToken(claims)}
		for k, v := range ok {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		name, want string
		reply      func(w http.ResponseWriter, r *http.Request) bool
	}{
		{"an ID token for another application", "another application", answer(with(map[string]any{"email": "a@example.test", "aud": "someone-else"}), 200)},
		{"an ID token from another issuer", "unexpected issuer", answer(with(map[string]any{"email": "a@example.test", "iss": "https://evil.example"}), 200)},
		{"an expired ID token", "expired", answer(with(map[string]any{"email": "a@example.test", "exp": time.Now().Add(-time.Hour).Unix()}), 200)},
		{"an unverified address", "no verified email", answer(with(map[string]any{"email": "a@example.test", "email_verified": false}), 200)},
		{"no ID token", "no ID token", answer(ok, 200)},
		{"no refresh token", "no refresh token", answer(map[string]any{"access_token": "at", "token_type": "Bearer"}, 200)},
		{"garbage", "could not be used", answer("<html>oops</html>", 200)},
		{"an OAuth error", "invalid_client", answer(`{"error":"invalid_client"}`, 401)},
		{"a slow answer", "no answer within", func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return true
		}},
	} {
		f.prov.Intercept(c.reply)
		_, err := f.x.Exchange(context.Background(), p, "code", "verifier-0123456789-0123456789-0123456789-01")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "oops") {
			t.Errorf("%s: the provider's body is repeated: %v", c.name, err)
		}
	}
}

func TestTokensRefreshOncePerAccountAndRotate(t *testing.T) {
	f := newFixture(t, nil)
	_, refresh := f.prov.Issue("bob@example.test")
	a := f.account(t, "bob@example.test", refresh)
	f.prov.SetRotation(true)

	// Ten calls at once with no token kept: one refresh between them.
	var wg sync.WaitGroup
	tokens := make([]string, 10)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := f.token(t, a.ID, "")
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		}()
	}
	wg.Wait()
	if n := f.prov.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes for 10 concurrent calls, want 1", n)
	}
	for _, tok := range tokens {
		if tok == "" || tok != tokens[0] {
			t.Fatalf("calls got different tokens: %q", tokens)
		}
	}
	// The rotated refresh token was stored at once; the old one is dead.
	got, _ := f.st.GetAccount(context.Background(), f.user.ID, a.ID)
	pt, err := f.keys.Open(got.OAuthRefreshTokenEnc, store.AccountSecretContext(f.user.ID, store.ColumnRefreshToken))
	if err != nil || string(pt) == refresh || len(pt) == 0 {
		t.Fatalf("stored refresh token after rotation: %q, %v", pt, err)
	}
	// A kept token is used until it is due; a token close to expiry is
	// renewed with the rotated refresh token.
	if _, err := f.token(t, a.ID, ""); err != nil || f.prov.Refreshes() != 1 {
		t.Fatalf("kept token: %v, %d refreshes", err, f.prov.Refreshes())
	}
	// A caller that saw an older token refused gets the current one; a
	// caller that saw the current one refused renews it.
	if tok, err := f.token(t, a.ID, "older-token"); err != nil || tok != tokens[0] || f.prov.Refreshes() != 1 {
		t.Fatalf("refused an older token: %q %v, %d refreshes", tok, err, f.prov.Refreshes())
	}
	second, err := f.token(t, a.ID, tokens[0])
	if err != nil || second == tokens[0] || f.prov.Refreshes() != 2 {
		t.Fatalf("refused the current token: %q %v, %d refreshes", second, err, f.prov.Refreshes())
	}
	// A server that refuses the renewed token too does not make every
	// call ask the provider: within a minute the refusal stands.
	if tok, err := f.token(t, a.ID, second); err != nil || tok != second || f.prov.Refreshes() != 2 {
		t.Fatalf("second refusal within a minute: %q %v, %d refreshes", tok, err, f.prov.Refreshes())
	}
	f.prov.SetAccessTTL(time.Minute)
	f.x.Forget(a.ID)
	if _, err := f.token(t, a.ID, ""); err != nil || f.prov.Refreshes() != 3 {
		t.Fatalf("refresh with the rotated token: %v, %d refreshes", err, f.prov.Refreshes())
	}
	if _, err := f.token(t, a.ID, ""); err != nil || f.prov.Refreshes() != 4 {
		t.Fatalf("a token within two minutes of expiry was not renewed: %v, %d refreshes", err, f.prov.Refreshes())
	}
}

func TestRevokedSignInMarksTheAccount(t *testing.T) {
	f := newFixture(t, nil)
	_, refresh := f.prov.Issue("carol@example.test")
	a := f.account(t, "carol@example.test", refresh)

	// A provider that fails for a while is temporary: nothing is marked.
	f.prov.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "upstream trouble", http.StatusBadGateway)
		return true
	})
	_, err := f.token(t, a.ID, "")
	if mail.KindOf(err) != mail.KindTemporary || strings.Contains(err.Error(), "upstream trouble") {
		t.Fatalf("provider outage: %v", err)
	}
	if got, _ := f.st.GetAccount(context.Background(), f.user.ID, a.ID); got.NeedsReauth {
		t.Fatal("an outage marked the account as needing a new sign-in")
	}
	f.prov.Intercept(nil)

	f.prov.Revoke("carol@example.test")
	_, err = f.token(t, a.ID, "")
	if mail.KindOf(err) != mail.KindReauth || !strings.Contains(mail.Hint(err, nil), "Reconnect") {
		t.Fatalf("revoked: %v", err)
	}
	got, _ := f.st.GetAccount(context.Background(), f.user.ID, a.ID)
	if !got.NeedsReauth {
		t.Fatal("a refused refresh token did not mark the account")
	}
	// Marked: later calls fail at once, without asking the provider.
	before := f.prov.Refreshes()
	if _, err := f.token(t, a.ID, ""); mail.KindOf(err) != mail.KindReauth || f.prov.Refreshes() != before {
		t.Fatalf("marked account: %v", err)
	}
	// A new sign-in (a new refresh token) clears the mark.
	_, fresh := f.prov.Issue("carol@example.test")
	sealed := f.keys.Seal([]byte(fresh), store.AccountSecretContext(f.user.ID, store.ColumnRefreshToken))
	if err := f.st.SetAccountSignIn(context.Background(), f.user.ID, a.ID, sealed, "iss|sub"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.token(t, a.ID, ""); err != nil {
		t.Fatalf("after a new sign-in: %v", err)
	}
}

// TestRotationByAnotherReplica: a refresh token refused because another
// process rotated it a moment earlier is retried with the stored one, and
// the account is not marked.
func TestRotationByAnotherReplica(t *testing.T) {
	f := newFixture(t, nil)
	other := newFixture(t, nil)
	other.st, other.keys, other.user = f.st, f.keys, f.user
	other.x = account.NewOAuth(account.OAuthOptions{Providers: googleAt(f.prov), RedirectURL: redirectURL, Store: f.st, Secrets: f.keys,
		Credentials: map[string]account.Credentials{"google": {ClientID: f.prov.ClientID, ClientSecret: f.prov.ClientSecret}}})
	_, refresh := f.prov.Issue("dan@example.test")
	a := f.account(t, "dan@example.test", refresh)
	f.prov.SetRotation(true)

	var once sync.Once
	f.prov.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		// The other replica rotates the token while this request waits.
		once.Do(func() {
			f.prov.Intercept(nil)
			if _, err := other.token(t, a.ID, ""); err != nil {
				t.Errorf("other replica: %v", err)
			}
		})
		return false
	})
	if _, err := f.token(t, a.ID, ""); err != nil {
		t.Fatalf("refresh racing a rotation: %v", err)
	}
	if got, _ := f.st.GetAccount(context.Background(), f.user.ID, a.ID); got.NeedsReauth {
		t.Fatal("a rotation by another replica marked the account")
	}
	if n := f.prov.Refreshes(); n != 2 {
		t.Fatalf("%d refreshes, want the other replica's and the retry", n)
	}
}

func googleAt(prov *oauthprovider.Provider) []mail.OAuthProvider {
	table := mail.OAuthProviders("common")
	table[0].AuthURL, table[0].TokenURL, table[0].Issuers = prov.URL+"/authorize", prov.URL+"/token", []string{prov.Issuer}
	return table
}

// TestMicrosoftIdentity: Microsoft's ID tokens name the tenant in their
// issuer and often carry the address only as preferred_username.
func TestMicrosoftIdentity(t *testing.T) {
	f := newFixture(t, nil)
	table := mail.OAuthProviders("common")
	table[1].AuthURL, table[1].TokenURL = f.prov.URL+"/authorize", f.prov.URL+"/token"
	x := account.NewOAuth(account.OAuthOptions{Providers: table, RedirectURL: redirectURL, Store: f.st, Secrets: f.keys,
		Credentials: map[string]account.Credentials{"microsoft": {ClientID: f.prov.ClientID, ClientSecret: f.prov.ClientSecret}}})
	p, ok := x.Provider("microsoft")
	if !ok || !strings.Contains(p.AuthURL, "/authorize") || p.Preset != "outlook" {
		t.Fatalf("microsoft provider %+v", p)
	}
	if _, ok := x.ProviderForPreset("gmail"); ok {
		t.Fatal("gmail offered without Google credentials")
	}
	tenantIssuer := "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
	for _, c := range []struct {
		claims map[string]any
		want   string // address, or a fragment of the error
	}{
		{map[string]any{"iss": tenantIssuer, "preferred_username": "Ann@Contoso.example"}, "ann@contoso.example"},
		{map[string]any{"iss": tenantIssuer, "email": "ann@contoso.example", "preferred_username": "other@contoso.example"}, "ann@contoso.example"},
		{map[string]any{"iss": tenantIssuer, "preferred_username": "+15550100"}, "no verified email"},
		{map[string]any{"iss": "https://login.microsoftonline.com.evil.example/x/v2.0", "email": "ann@contoso.example"}, "unexpected issuer"},
		{map[string]any{"iss": "https://sts.windows.net/x/", "email": "ann@contoso.example"}, "unexpected issuer"},
	} {
		idToken := f.prov.IDToken(c.claims)
		f.prov.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt", "id_token": idToken})
			return true
		})
		in, err := x.Exchange(context.Background(), p, "code", "verifier-0123456789-0123456789-0123456789-01")
		got := in.Email
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("claims %v: got %q, want %q", c.claims, got, c.want)
		}
	}
}
