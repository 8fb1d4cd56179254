package handlers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/oauth2"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// OAuthCallbackPath is where Google and Microsoft send the person back;
// APP_URL + this path is the redirect URI operators register.
const OAuthCallbackPath = "/accounts/oauth/callback"

// Mail-provider sign-in limits.
const (
	// signInsPerMinute bounds the sign-ins one person can start.
	signInsPerMinute = 20
	// signInTTL is how long a started sign-in can be completed.
	signInTTL = 10 * time.Minute
)

// OAuthStateStore keeps mail-provider sign-ins in progress.
type OAuthStateStore interface {
	CreateMailOAuthState(ctx context.Context, st *store.MailOAuthState, ttl time.Duration) error
	TakeMailOAuthState(ctx context.Context, stateHash string) (store.MailOAuthState, error)
}

// oauthStart begins signing an account in with its provider: a new one
// (provider) or an existing one (account_id, to reconnect it). It answers
// with a redirect to the provider.
func (h *handler) oauthStart(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	st := store.MailOAuthState{UserID: u.ID, SessionHash: sessionHash(c), Provider: c.FormValue("provider")}
	hint := ""
	if id := c.FormValue("account_id"); id != "" {
		a, err := h.Accounts.GetAccount(c.UserContext(), u.ID, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && a.OAuthProvider() == "" {
			return fiber.NewError(fiber.StatusNotFound, "That account does not exist (any more), or does not sign in with a provider.")
		}
		if err != nil {
			return err
		}
		st.AccountID, st.Provider, hint = a.ID, a.OAuthProvider(), a.Email
	}
	p, ok := h.OAuth.Provider(st.Provider)
	if !ok {
		return fiber.NewError(fiber.StatusBadRequest, "Sign-in with that provider is not configured on this server. Add the account with a password, or ask the operator to configure it (see the README).")
	}
	state, verifier := auth.NewToken(), oauth2.GenerateVerifier()
	st.StateHash = auth.HashToken(state)
	st.VerifierEnc = h.Sealer.Seal([]byte(verifier), store.MailOAuthStateContext(u.ID, "verifier_enc"))
	if err := h.OAuthStates.CreateMailOAuthState(c.UserContext(), &st, signInTTL); err != nil {
		return err
	}
	return c.Redirect(p.AuthCodeURL(state, verifier, hint), fiber.StatusSeeOther)
}

// oauthCallback completes a sign-in: it checks that the state belongs to
// this person and browser session and was not used, redeems the code and
// creates the account or stores its new refresh token. Every failure
// comes back to the form it started from, with what to do.
func (h *handler) oauthCallback(c *fiber.Ctx) error {
	u, signedIn := currentUser(c)
	ctx := c.UserContext()
	st, err := h.OAuthStates.TakeMailOAuthState(ctx, auth.HashToken(c.Query("state")))
	if !signedIn {
		// The code is not carried through sign-in (where it would sit
		// in the redirect URL): the state is spent, the person starts again.
		return fiber.NewError(fiber.StatusUnauthorized, "You were signed out while signing in to your mail provider. Sign in, then add or reconnect the account again from Accounts.")
	}
	if err == nil && (st.UserID != u.ID || st.SessionHash != sessionHash(c)) {
		h.Logger.Warn("mail sign-in returned to another person or browser session", "user", u.ID)
		st, err = store.MailOAuthState{}, store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return h.signInFailed(c, st, "This sign-in has expired, was already completed, or was started in another browser or session. Start it again from this page.")
	}
	if err != nil {
		return err
	}
	p, ok := h.OAuth.Provider(st.Provider)
	if !ok {
		return h.signInFailed(c, st, "Sign-in with that provider is no longer configured on this server.")
	}
	switch e := c.Query("error"); {
	case e == "access_denied":
		return h.signInFailed(c, st, fmt.Sprintf("You did not allow access at %s, so nothing was saved. Sign in again and allow access to use this account.", p.Name))
	case e != "":
		return h.signInFailed(c, st, fmt.Sprintf("%s refused the sign-in (%s). Try again; if it keeps failing, the operator should check the app registration (see the README).", p.Name, oauthErrorCode(e)))
	case c.Query("code") == "":
		return h.signInFailed(c, st, fmt.Sprintf("%s sent no authorization code back. Start the sign-in again.", p.Name))
	}
	verifier, err := h.Secrets.Open(st.VerifierEnc, store.MailOAuthStateContext(st.UserID, "verifier_enc"))
	if err != nil {
		return err
	}
	in, err := h.OAuth.Exchange(ctx, p, c.Query("code"), string(verifier))
	if err != nil {
		h.Logger.Warn("mail sign-in failed", "provider", p.Key, "err", err)
		return h.signInFailed(c, st, "The sign-in could not be completed: "+err.Error())
	}
	a, err := h.signedInAccount(ctx, u.ID, st, p, in)
	if err != nil {
		var fe *fiber.Error
		if errors.As(err, &fe) {
			return h.signInFailed(c, st, fe.Message)
		}
		return err
	}
	h.OAuth.Remember(a.ID, in)
	h.Logger.Info("mail account signed in with its provider", "account", a.ID, "provider", p.Key, "reconnect", st.AccountID != "")
	return c.Redirect("/accounts?done=signed-in", fiber.StatusSeeOther)
}

// signedInAccount stores the outcome of a sign-in: the reconnected
// account, an existing account of the same address and provider, or a
// new one with the provider's servers.
func (h *handler) signedInAccount(ctx context.Context, userID string, st store.MailOAuthState, p *account.Provider, in account.SignIn) (store.MailAccount, error) {
	list, err := h.Accounts.ListAccounts(ctx, userID)
	if err != nil {
		return store.MailAccount{}, err
	}
	kind := store.OAuthAuthKind(p.Key)
	var a *store.MailAccount
	for i := range list {
		same := list[i].AuthKind == kind && strings.EqualFold(list[i].Email, in.Email)
		if st.AccountID != "" && list[i].ID == st.AccountID || st.AccountID == "" && same {
			a = &list[i]
		}
	}
	sealed := h.Sealer.Seal([]byte(in.RefreshToken), store.AccountSecretContext(userID, store.ColumnRefreshToken))
	switch {
	case st.AccountID != "" && a == nil:
		return store.MailAccount{}, fiber.NewError(fiber.StatusNotFound, "The account you were reconnecting was deleted meanwhile. Add it again.")
	case a != nil && (!strings.EqualFold(a.Email, in.Email) || a.OAuthSubject != "" && a.OAuthSubject != in.Subject):
		return store.MailAccount{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf(
			"You signed in at %s as %s, but this account is %s (another %s account). Reconnect it signed in as that account, or add yours as a new account.",
			p.Name, in.Email, a.Email, p.Name))
	case a != nil:
		if err := h.Accounts.SetAccountSignIn(ctx, userID, a.ID, sealed, in.Subject); err != nil {
			return store.MailAccount{}, err
		}
		h.OAuth.Forget(a.ID)
		return *a, nil
	case len(list) >= MaxAccountsPerUser:
		return store.MailAccount{}, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf(
			"You have %d accounts, the most one person can add here. Delete one you no longer use first.", len(list)))
	}
	label := in.Email
	if preset, ok := mail.PresetFor(p.Preset); ok {
		label = preset.Name
	}
	n := &store.MailAccount{UserID: userID, Label: label, Email: in.Email, DisplayName: in.Name,
		IMAPHost: p.IMAP.Host, IMAPPort: p.IMAP.Port, IMAPTLSMode: string(p.IMAP.TLS), IMAPUser: in.Email,
		SMTPHost: p.SMTP.Host, SMTPPort: p.SMTP.Port, SMTPTLSMode: string(p.SMTP.TLS), SMTPUser: in.Email,
		AuthKind: kind, OAuthRefreshTokenEnc: sealed, OAuthSubject: in.Subject}
	if err := h.Accounts.CreateAccount(ctx, n); err != nil {
		return store.MailAccount{}, err
	}
	return *n, nil
}

// signInFailed shows msg on the page the sign-in started from: the
// accounts list for a reconnect, else the new-account form.
func (h *handler) signInFailed(c *fiber.Ctx, st store.MailOAuthState, msg string) error {
	c.Status(fiber.StatusBadRequest)
	if st.AccountID != "" {
		p, err := h.accountsPage(c)
		if err != nil {
			return err
		}
		p.Error = msg
		return render(c, views.Accounts(p))
	}
	preset := ""
	if p, ok := h.OAuth.Provider(st.Provider); ok {
		preset = p.Preset
	}
	f := h.newAccountForm(c, preset)
	f.SignInError = msg
	return render(c, views.AccountEdit(f))
}

// sessionHash identifies the browser session a sign-in belongs to: the
// hash of its CSRF cookie, which this site sets and nobody else can read.
func sessionHash(c *fiber.Ctx) string {
	return auth.HashToken("session\x00" + c.Cookies(auth.CSRFCookie))
}

var oauthErrorPattern = regexp.MustCompile(`^[a-z_]{1,40}$`)

// oauthErrorCode repeats a provider's error code only when it looks like one.
func oauthErrorCode(e string) string {
	if oauthErrorPattern.MatchString(e) {
		return e
	}
	return "an unknown error"
}
