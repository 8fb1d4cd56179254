package handlers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// Tester runs the mail engine's connection test.
type Tester interface {
	TestConnection(ctx context.Context, acct *mail.Account) mail.TestResult
}

// testTimeout bounds a connection test from the web UI (both protocols,
// each with the engine's own phase timeouts).
const testTimeout = 45 * time.Second

func presetOptions() []views.PresetOption {
	var out []views.PresetOption
	for _, p := range mail.Presets {
		out = append(out, views.PresetOption{Key: p.Key, Name: p.Name})
	}
	return out
}

// presetNote says how a provider's accounts sign in, given which
// providers the operator configured.
func presetNote(p mail.Preset, oauth *account.OAuth) views.PresetNote {
	_, signIn := oauth.ProviderForPreset(p.Key)
	n := views.PresetNote{Help: p.Help}
	switch {
	case p.Key == "outlook" && signIn:
		n.Text = "Microsoft 365 and Outlook.com refuse passwords for IMAP and SMTP: use Sign in with Microsoft."
	case p.Key == "outlook":
		n.Text = "Microsoft 365 and Outlook.com refuse passwords for IMAP and SMTP. Such an account works only once the operator of this server configures Sign in with Microsoft (see the README)."
	case p.Key == "gmail" && signIn:
		n.Text = "Sign in with Google is the simplest way. A password works only as an app password, which needs 2-Step Verification (some organisations block both):"
	case p.Key == "gmail":
		n.Text = "Gmail takes an app password, which needs 2-Step Verification; the operator of this server can also configure Sign in with Google (see the README). App passwords:"
	case p.Key == "icloud":
		n.Text = "iCloud Mail takes an app-specific password (Apple ID → Sign-In and Security → App-Specific Passwords), not your Apple ID password; the user name is your iCloud address:"
	case p.Key == "proton":
		n.Text = "Proton Mail works through Proton Mail Bridge running where this server can reach it: use the user name and password Bridge shows (not your Proton password), MAIL_ALLOW_PRIVATE_HOSTS=true for 127.0.0.1, and Bridge's certificate in MAIL_CA_FILE."
	case p.AppPassword:
		n.Text = p.Name + " needs an app password when two-step verification is on:"
	}
	return n
}

// checkEndpoint answers the live port/TLS warnings of one fieldset.
func (h *handler) checkEndpoint(c *fiber.Ctx) error {
	proto := c.Query("proto")
	if proto != "imap" && proto != "smtp" {
		return fiber.NewError(fiber.StatusBadRequest, "proto must be imap or smtp")
	}
	return render(c, views.Warnings(proto, endpointWarnings(proto, c.Query(proto+"_host"), c.Query(proto+"_port"), c.Query(proto+"_tls_mode"))))
}

func endpointWarnings(proto, host, port, mode string) []string {
	p, err := strconv.Atoi(strings.TrimSpace(port))
	if err != nil {
		return []string{"Enter the port as a number."}
	}
	return mail.CheckEndpoint(proto, mail.Endpoint{Host: strings.TrimSpace(strings.ToLower(host)), Port: p, TLS: mail.TLSMode(mode)})
}

// testAccount runs the connection test, records it and answers with the
// badges (HTMX) or back on /accounts.
// testsPerMinute bounds the connection tests one person can run: each
// dials out to a server of their choosing.
const testsPerMinute = 10

// perUserLimit refuses a person's requests beyond max a minute with msg.
func perUserLimit(max int, msg string) fiber.Handler {
	return limiter.New(limiter.Config{Max: max, Expiration: time.Minute,
		KeyGenerator: func(c *fiber.Ctx) string {
			u, _ := currentUser(c)
			return u.ID
		},
		LimitReached: func(c *fiber.Ctx) error {
			return fiber.NewError(fiber.StatusTooManyRequests, msg)
		}})
}

func (h *handler) testAccount(c *fiber.Ctx) error {
	a, err := h.userAccount(c)
	if err != nil {
		return err
	}
	acct, err := account.Open(a, h.Secrets, h.OAuth)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), testTimeout)
	defer cancel()
	res := h.Mail.TestConnection(ctx, acct)
	rec := store.TestResult{IMAPOK: res.IMAP.OK, SMTPOK: res.SMTP.OK, Settings: a.UpdatedAt}
	var hints []string
	for _, r := range []struct {
		name string
		mail.CheckResult
	}{{"IMAP", res.IMAP}, {"SMTP", res.SMTP}} {
		if !r.OK {
			hints = append(hints, r.name+": "+r.Hint)
		}
	}
	rec.Error = strings.Join(hints, " ")
	if err := h.Accounts.RecordAccountTest(c.UserContext(), a.UserID, a.ID, rec); err != nil {
		return err
	}
	h.Logger.Info("account test", "account", a.ID, "imap_ok", rec.IMAPOK, "smtp_ok", rec.SMTPOK,
		"imap_error", failure(res.IMAP), "smtp_error", failure(res.SMTP))
	if c.Get("HX-Request") != "true" {
		return c.Redirect("/accounts", fiber.StatusSeeOther)
	}
	now := time.Now()
	a.LastTestAt, a.LastTestIMAPOK, a.LastTestSMTPOK, a.LastTestError = &now, &rec.IMAPOK, &rec.SMTPOK, rec.Error
	return render(c, views.TestStatus(testBadges(a)))
}

// failure names what went wrong in a check for the log: the error's kind
// and step, never its text (which can hold what the server said).
func failure(r mail.CheckResult) string {
	var e *mail.Error
	switch {
	case r.OK:
		return ""
	case errors.As(r.Err, &e):
		return e.Kind.String() + " during " + e.Op
	}
	return "error"
}

func testBadges(a store.MailAccount) views.TestBadges {
	b := views.TestBadges{ID: a.ID, Status: a.TestStatus(), Hint: a.LastTestError}
	word := func(ok *bool) string {
		switch {
		case ok == nil:
			return ""
		case *ok:
			return "ok"
		}
		return "failing"
	}
	b.IMAP, b.SMTP = word(a.LastTestIMAPOK), word(a.LastTestSMTPOK)
	return b
}
