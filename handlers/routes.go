// Package handlers serves the web UI through Fiber: templ pages and HTMX
// fragments. Handlers hold no SQL and no IMAP commands.
package handlers

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
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
	MCPURL string
	// Mode is "local" or "clerk".
	Mode    string
	Version string
}

// New returns the Fiber app with every web route. It is served behind the
// net/http server (package server), which sets timeouts and body limits.
func New(d Deps) *fiber.App {
	h := &handler{Deps: d}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          h.error,
	})
	app.Use(h.observe)

	app.Get("/", h.home)

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}

type handler struct {
	Deps
}
