package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// AccountStore is what the account pages need from the store.
type AccountStore interface {
	ListAccounts(ctx context.Context, userID string) ([]store.MailAccount, error)
	GetAccount(ctx context.Context, userID, id string) (store.MailAccount, error)
	CreateAccount(ctx context.Context, a *store.MailAccount) error
	RecordAccountTest(ctx context.Context, userID, id string, r store.TestResult) error
	UpdateAccount(ctx context.Context, a *store.MailAccount) error
	DeleteAccount(ctx context.Context, userID, id string) error
	SetDefaultAccount(ctx context.Context, userID, id string) error
	SetAccountSignIn(ctx context.Context, userID, id, sealed, subject string) error
}

// Sealer seals mail passwords before they are stored.
type Sealer interface {
	Seal(plaintext []byte, context string) string
}

func (h *handler) accounts(c *fiber.Ctx) error {
	p, err := h.accountsPage(c)
	if err != nil {
		return err
	}
	return render(c, views.Accounts(p))
}

// accountsPage lists the signed-in person's accounts.
func (h *handler) accountsPage(c *fiber.Ctx) (views.AccountsPage, error) {
	u, _ := currentUser(c)
	list, err := h.Accounts.ListAccounts(c.UserContext(), u.ID)
	if err != nil {
		return views.AccountsPage{}, err
	}
	p := views.AccountsPage{Page: h.page(c, "Accounts", "/accounts"), Notice: notices[c.Query("done")]}
	for _, a := range list {
		card := views.AccountCard{ID: a.ID, Label: a.Label, Email: a.Email,
			IMAP: net.JoinHostPort(a.IMAPHost, strconv.Itoa(a.IMAPPort)), SMTP: net.JoinHostPort(a.SMTPHost, strconv.Itoa(a.SMTPPort)),
			IsDefault: a.IsDefault, Test: testBadges(a), NeedsReauth: a.NeedsReauth, Permission: a.PermissionLevel}
		if pk := a.OAuthProvider(); pk != "" {
			card.SignIn = providerName(pk)
			_, card.CanReconnect = h.OAuth.Provider(pk)
		}
		p.Accounts = append(p.Accounts, card)
	}
	return p, nil
}

// providerName is how the pages name an OAuth provider key, configured
// or not.
func providerName(key string) string {
	for _, p := range mail.OAuthProviders("") {
		if p.Key == key {
			return p.Name
		}
	}
	return key
}

var notices = map[string]string{"saved": "Account saved. Run Test to check the settings.", "deleted": "Account deleted.",
	"default": "Default account changed.", "signed-in": "Signed in: the account is ready. Run Test to check it."}

func (h *handler) newAccount(c *fiber.Ctx) error {
	return render(c, views.AccountEdit(h.newAccountForm(c, c.Query("preset"))))
}

// newAccountForm is the add form, filled from preset when it names one.
func (h *handler) newAccountForm(c *fiber.Ctx, presetKey string) views.AccountForm {
	a := store.MailAccount{IMAPPort: 993, IMAPTLSMode: "tls", SMTPPort: 465, SMTPTLSMode: "tls"}
	preset, ok := mail.PresetFor(presetKey)
	ok = ok && presetKey != ""
	if ok {
		a.IMAPHost, a.IMAPPort, a.IMAPTLSMode = preset.IMAP.Host, preset.IMAP.Port, string(preset.IMAP.TLS)
		a.SMTPHost, a.SMTPPort, a.SMTPTLSMode = preset.SMTP.Host, preset.SMTP.Port, string(preset.SMTP.TLS)
	}
	// A preset change keeps what was typed (passwords stay in the page).
	a.Label, a.Email, a.DisplayName = c.Query("label"), c.Query("email"), c.Query("display_name")
	a.IMAPUser, a.SMTPUser = c.Query("imap_user"), c.Query("smtp_user")
	p := formFromAccount(h.page(c, "Add an account", "/accounts"), a)
	p.Presets = presetOptions()
	if ok {
		p.Preset = preset.Key
		p.PresetNote = presetNote(preset, h.OAuth)
		if prov, ok := h.OAuth.ProviderForPreset(preset.Key); ok {
			p.SignIn = &views.SignInOption{Provider: prov.Key, Name: prov.Name}
		}
	}
	return p
}

// signaturePreview answers the sanitized signature, as it will be sent.
func (h *handler) signaturePreview(c *fiber.Ctx) error {
	return render(c, views.SignaturePreview(mail.SanitizeSignature(c.FormValue("signature_html"))))
}

func (h *handler) editAccount(c *fiber.Ctx) error {
	a, err := h.userAccount(c)
	if err != nil {
		return err
	}
	return render(c, views.AccountEdit(h.editForm(c, a)))
}

// editForm is the edit form of a; an OAuth account can be reconnected
// but not pointed at other servers.
func (h *handler) editForm(c *fiber.Ctx, a store.MailAccount) views.AccountForm {
	p := formFromAccount(h.page(c, "Edit "+a.Label, "/accounts"), a)
	if pk := a.OAuthProvider(); pk != "" {
		p.SignIn = &views.SignInOption{Provider: pk, Name: providerName(pk), AccountID: a.ID, NeedsReauth: a.NeedsReauth}
		_, p.SignIn.Available = h.OAuth.Provider(pk)
	}
	return p
}

// MaxAccountsPerUser bounds the mail accounts one person can add (each
// costs pooled connections and outbound traffic).
const MaxAccountsPerUser = 50

func (h *handler) createAccount(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	a := &store.MailAccount{UserID: u.ID}
	errs := h.applyForm(c, a, true)
	existing, err := h.Accounts.ListAccounts(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	if len(existing) >= MaxAccountsPerUser {
		errs["label"] = fmt.Sprintf("You have %d accounts, the most one person can add here. Delete one you no longer use first.", len(existing))
	}
	if len(errs) > 0 {
		return h.formErrors(c, a, errs)
	}
	if err := h.Accounts.CreateAccount(c.UserContext(), a); err != nil {
		return err
	}
	return c.Redirect("/accounts?done=saved", fiber.StatusSeeOther)
}

func (h *handler) updateAccount(c *fiber.Ctx) error {
	a, err := h.userAccount(c)
	if err != nil {
		return err
	}
	wasDefault := a.IsDefault
	if errs := h.applyForm(c, &a, false); len(errs) > 0 {
		return h.formErrors(c, &a, errs)
	}
	if err := h.Accounts.UpdateAccount(c.UserContext(), &a); err != nil {
		return err
	}
	if a.IsDefault && !wasDefault {
		if err := h.Accounts.SetDefaultAccount(c.UserContext(), a.UserID, a.ID); err != nil {
			return err
		}
	}
	return c.Redirect("/accounts?done=saved", fiber.StatusSeeOther)
}

func (h *handler) deleteAccount(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	if c.FormValue("confirm") == "" {
		// Without JavaScript there was no confirmation dialog: ask here.
		a, err := h.userAccount(c)
		if err != nil {
			return err
		}
		return render(c, views.ConfirmDelete(h.page(c, "Delete "+a.Label, "/accounts"), a.ID, a.Label, a.Email))
	}
	err := h.Accounts.DeleteAccount(c.UserContext(), u.ID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "That account does not exist (any more).")
	}
	if err != nil {
		return err
	}
	h.OAuth.Forget(c.Params("id"))
	if c.Get("HX-Request") == "true" {
		return c.SendString("")
	}
	return c.Redirect("/accounts?done=deleted", fiber.StatusSeeOther)
}

func (h *handler) defaultAccount(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	err := h.Accounts.SetDefaultAccount(c.UserContext(), u.ID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "That account does not exist (any more).")
	}
	if err != nil {
		return err
	}
	return c.Redirect("/accounts?done=default", fiber.StatusSeeOther)
}

// userAccount loads the signed-in person's account named in the path.
func (h *handler) userAccount(c *fiber.Ctx) (store.MailAccount, error) {
	u, _ := currentUser(c)
	a, err := h.Accounts.GetAccount(c.UserContext(), u.ID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return a, fiber.NewError(fiber.StatusNotFound, "That account does not exist (any more).")
	}
	return a, err
}

func (h *handler) formErrors(c *fiber.Ctx, a *store.MailAccount, errs map[string]string) error {
	p := formFromAccount(h.page(c, "Account", "/accounts"), *a)
	if a.ID != "" {
		p = h.editForm(c, *a)
	}
	p.Errors = errs
	if a.ID == "" {
		p.Presets = presetOptions()
	}
	p.PasswordsDropped = c.FormValue("imap_password") != "" || c.FormValue("smtp_password") != ""
	c.Status(fiber.StatusUnprocessableEntity)
	return render(c, views.AccountEdit(p))
}

func formFromAccount(page views.Page, a store.MailAccount) views.AccountForm {
	page.Editor = true
	return views.AccountForm{Page: page, ID: a.ID, Label: a.Label, Email: a.Email, DisplayName: a.DisplayName,
		IMAPHost: a.IMAPHost, IMAPPort: a.IMAPPort, IMAPTLSMode: a.IMAPTLSMode, IMAPUser: a.IMAPUser,
		SMTPHost: a.SMTPHost, SMTPPort: a.SMTPPort, SMTPTLSMode: a.SMTPTLSMode, SMTPUser: a.SMTPUser,
		SignatureHTML: a.SignatureHTML, SignatureSanitized: mail.SanitizeSignature(a.SignatureHTML), IsDefault: a.IsDefault,
		PermissionLevel: a.PermissionLevel, SendDelayS: a.SendDelayS, SendRequiresApproval: a.SendRequiresApproval,
		IMAPWarnings: endpointWarnings("imap", a.IMAPHost, strconv.Itoa(a.IMAPPort), a.IMAPTLSMode),
		SMTPWarnings: endpointWarnings("smtp", a.SMTPHost, strconv.Itoa(a.SMTPPort), a.SMTPTLSMode)}
}

// applyForm validates the posted form into a and returns messages by
// field. Passwords are sealed at once; on edit a blank one keeps the
// stored one. a is only meaningful when no message is returned.
func (h *handler) applyForm(c *fiber.Ctx, a *store.MailAccount, creating bool) map[string]string {
	errs := map[string]string{}
	field := func(name string) string { return strings.TrimSpace(c.FormValue(name)) }
	// A stored password only goes back to the server it was entered for.
	before := map[string]string{"imap_password": endpointKey(a.IMAPHost, a.IMAPPort, a.IMAPUser),
		"smtp_password": endpointKey(a.SMTPHost, a.SMTPPort, a.SMTPUser)}
	if a.OAuthProvider() != "" {
		return h.applyOAuthForm(c, a)
	}
	a.Label, a.Email, a.DisplayName = field("label"), field("email"), field("display_name")
	a.IMAPHost, a.IMAPTLSMode, a.IMAPUser = strings.ToLower(field("imap_host")), field("imap_tls_mode"), field("imap_user")
	a.SMTPHost, a.SMTPTLSMode, a.SMTPUser = strings.ToLower(field("smtp_host")), field("smtp_tls_mode"), field("smtp_user")
	a.SignatureHTML = mail.SanitizeSignature(c.FormValue("signature_html"))
	a.IsDefault = c.FormValue("is_default") != ""
	checkSignature(c.FormValue("signature_html"), errs)
	applyPermission(c, a, errs)

	checkCommon(a, errs)
	if addr, err := netmail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
		errs["email"] = "Enter an email address such as you@example.com."
	}
	if a.IMAPUser == "" {
		a.IMAPUser = a.Email
	}
	if a.SMTPUser == "" {
		a.SMTPUser = a.IMAPUser
	}
	var ok bool
	if a.IMAPPort, ok = validPort(field("imap_port")); !ok {
		errs["imap_port"] = "Enter a port between 1 and 65535 (IMAP: usually 993 with TLS, 143 with STARTTLS)."
	}
	if a.SMTPPort, ok = validPort(field("smtp_port")); !ok {
		errs["smtp_port"] = "Enter a port between 1 and 65535 (SMTP: usually 465 with TLS, 587 with STARTTLS)."
	}
	for _, ep := range []struct{ prefix, host, mode string }{{"imap", a.IMAPHost, a.IMAPTLSMode}, {"smtp", a.SMTPHost, a.SMTPTLSMode}} {
		if !validHost(ep.host) {
			errs[ep.prefix+"_host"] = "Enter the server's host name, such as " + ep.prefix + ".example.com."
		}
		switch ep.mode {
		case "tls", "starttls":
		case "none":
			if !isLoopbackHost(ep.host) {
				errs[ep.prefix+"_tls_mode"] = "Unencrypted connections are only allowed to a server on this machine: choose TLS or STARTTLS."
			}
		default:
			errs[ep.prefix+"_tls_mode"] = "Choose TLS, STARTTLS or None."
		}
	}
	for _, pw := range []struct {
		name, column string
		dst          *string
	}{{"imap_password", store.ColumnIMAPPassword, &a.IMAPPasswordEnc}, {"smtp_password", store.ColumnSMTPPassword, &a.SMTPPasswordEnc}} {
		v := c.FormValue(pw.name)
		context := store.AccountSecretContext(a.UserID, pw.column)
		switch {
		case v != "" && len(v) > 1024:
			errs[pw.name] = "That password is too long."
		case v != "":
			*pw.dst = h.Sealer.Seal([]byte(v), context)
		case creating && pw.name == "smtp_password" && c.FormValue("imap_password") != "":
			*pw.dst = h.Sealer.Seal([]byte(c.FormValue("imap_password")), context) // same password for both, the common case
		case creating:
			errs[pw.name] = "Enter the password (many providers require an app password)."
		case pw.name == "imap_password" && before[pw.name] != endpointKey(a.IMAPHost, a.IMAPPort, a.IMAPUser),
			pw.name == "smtp_password" && before[pw.name] != endpointKey(a.SMTPHost, a.SMTPPort, a.SMTPUser):
			errs[pw.name] = "The server or user name changed: enter the password again."
		}
	}
	return errs
}

// applyOAuthForm validates the fields an OAuth account lets the person
// change: its servers, user and address come from the provider.
func (h *handler) applyOAuthForm(c *fiber.Ctx, a *store.MailAccount) map[string]string {
	errs := map[string]string{}
	a.Label, a.DisplayName = strings.TrimSpace(c.FormValue("label")), strings.TrimSpace(c.FormValue("display_name"))
	a.SignatureHTML = mail.SanitizeSignature(c.FormValue("signature_html"))
	a.IsDefault = c.FormValue("is_default") != ""
	checkCommon(a, errs)
	checkSignature(c.FormValue("signature_html"), errs)
	applyPermission(c, a, errs)
	return errs
}

// applyPermission sets what AI clients may do with the account from the
// form: its permission level (a form without the field keeps it, full
// for a new account), the undo window and approval.
func applyPermission(c *fiber.Ctx, a *store.MailAccount, errs map[string]string) {
	if v := strings.TrimSpace(c.FormValue("send_delay_s")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 300 {
			errs["send_delay_s"] = "Enter a number of seconds from 0 to 300 (0 sends at once)."
		}
		a.SendDelayS = n
	}
	a.SendRequiresApproval = c.FormValue("send_requires_approval") != ""
	switch v := c.FormValue("permission_level"); v {
	case store.PermissionRead, store.PermissionOrganize, store.PermissionFull:
		a.PermissionLevel = v
	case "":
		if a.PermissionLevel == "" {
			a.PermissionLevel = store.PermissionFull
		}
	default:
		errs["permission_level"] = "Choose what AI clients may do: read only, read and organize, or full."
	}
}

// checkSignature refuses images pasted into a signature as data: URLs:
// most mail clients show them as broken images.
func checkSignature(raw string, errs map[string]string) {
	if mail.DataImage(raw) {
		errs["signature_html"] = "The signature holds a pasted image (a data: image), which most mail clients do not show. Remove it and insert an image hosted on an https address instead."
	}
}

// checkCommon validates the label and display name.
func checkCommon(a *store.MailAccount, errs map[string]string) {
	if a.Label == "" || len(a.Label) > 100 {
		errs["label"] = "Give the account a short label (up to 100 characters)."
	}
	if strings.ContainsAny(a.DisplayName, "\r\n") || len(a.DisplayName) > 100 {
		errs["display_name"] = "Use one line of up to 100 characters."
	}
}

func endpointKey(host string, port int, user string) string {
	return host + "\x00" + strconv.Itoa(port) + "\x00" + user
}

func validPort(v string) (int, bool) {
	p, err := strconv.Atoi(v)
	return p, err == nil && p >= 1 && p <= 65535
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 || strings.ContainsAny(h, " /:@\r\n") && net.ParseIP(h) == nil {
		return false
	}
	return true
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
