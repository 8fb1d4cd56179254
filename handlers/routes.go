// Package handlers serves the web UI through Fiber: templ pages and HTMX
// fragments. Handlers hold no SQL and no IMAP commands.
package handlers

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/auth"
)

// Observer records request metrics by route pattern.
type Observer interface {
	Observe(route, method string, code int, d time.Duration)
}

// Deps are what the web UI needs.
type Deps struct {
	Logger  *slog.Logger
	Metrics Observer
	// MCPURL is the canonical MCP endpoint shown to people.
	MCPURL  string
	Version string

	Auth auth.Authenticator
	// Local is set in local single-user mode, nil in Clerk mode.
	Local *auth.Local
	// ClerkFrontendAPI and ClerkPublishableKey are set in Clerk mode:
	// every page loads ClerkJS from that host.
	ClerkFrontendAPI    string
	ClerkPublishableKey string
	CSRF                *auth.CSRF
	// Apps lists and revokes the signed-in person's connected MCP clients.
	Apps AppStore
	// Outbox shows the messages AI clients handed over, for approval and
	// undo.
	Outbox OutboxStore
	// Accounts, Sealer and Secrets back the account pages; Mail tests
	// an account's connection.
	Accounts AccountStore
	Sealer   Sealer
	Secrets  account.Opener
	// OAuth signs accounts in with Google or Microsoft; nil or without
	// providers when the operator configured none.
	OAuth       *account.OAuth
	OAuthStates OAuthStateStore
	Mail        Tester
	// SecureCookies marks cookies Secure (APP_URL is https).
	SecureCookies bool
	// TrustProxyHeaders: client addresses come from X-Forwarded-For.
	TrustProxyHeaders bool
}

// New returns the Fiber app with every web route. It is served behind the
// net/http server (package server), which sets timeouts and body limits.
func New(d Deps) *fiber.App {
	h := &handler{Deps: d}
	cfg := fiber.Config{DisableStartupMessage: true, ErrorHandler: h.error}
	if d.TrustProxyHeaders {
		cfg.ProxyHeader = fiber.HeaderXForwardedFor
	}
	app := fiber.New(cfg)
	app.Use(h.observe, h.session)

	app.Get("/sign-in", h.signInPage)
	app.Post("/sign-in", h.signInLimiter(), h.signIn)
	app.Get("/sign-up", h.signUpPage)
	app.Get("/setup", h.setupPage)
	app.Post("/setup", h.signInLimiter(), h.setup)
	app.Get("/sign-out", h.signOutPage)
	app.Post("/sign-out", h.signOut)

	app.Get("/", h.requireUser, h.home)
	app.Get("/accounts", h.requireUser, h.accounts)
	app.Get("/accounts/new", h.requireUser, h.newAccount)
	app.Get("/accounts/check", h.requireUser, h.checkEndpoint)
	app.Post("/accounts/signature-preview", h.requireUser, h.signaturePreview)
	app.Post("/accounts", h.requireUser, h.createAccount)
	app.Get("/accounts/:id/edit", h.requireUser, h.editAccount)
	app.Post("/accounts/:id", h.requireUser, h.updateAccount)
	app.Post("/accounts/:id/delete", h.requireUser, h.deleteAccount)
	app.Post("/accounts/:id/default", h.requireUser, h.defaultAccount)
	app.Post("/accounts/:id/test", h.requireUser,
		perUserLimit(testsPerMinute, fmt.Sprintf("At most %d tests a minute: wait a moment and test again.", testsPerMinute)), h.testAccount)
	app.Post("/accounts/oauth/start", h.requireUser,
		perUserLimit(signInsPerMinute, fmt.Sprintf("At most %d sign-ins a minute: wait a moment and try again.", signInsPerMinute)), h.oauthStart)
	app.Get(OAuthCallbackPath, h.oauthCallback) // answers a signed-out person itself
	app.Get("/connect", h.requireUser, h.connect)
	app.Get("/apps", h.requireUser, h.apps)
	app.Get("/activity", h.requireUser, h.activity)
	app.Get("/outbox", h.requireUser, h.outbox)
	app.Post("/outbox/:id/send", h.requireUser, h.outboxSend)
	app.Post("/outbox/:id/discard", h.requireUser, h.outboxDiscard)
	app.Post("/outbox/:id/undo", h.requireUser, h.outboxUndo)
	app.Post("/apps/:grant/revoke", h.requireUser, h.revokeApp)

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}

type handler struct {
	Deps
}
