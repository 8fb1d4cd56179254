package handlers

import (
	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/views"
)

func (h *handler) home(c *fiber.Ctx) error {
	return render(c, views.Home(views.HomePage{
		Page:   h.page(c, "Home", "/"),
		MCPURL: h.MCPURL,
	}))
}

// page fills what every page shows: mode, user, CSRF token, ClerkJS.
func (h *handler) page(c *fiber.Ctx, title, nav string) views.Page {
	p := views.Page{Title: title, Nav: nav, Mode: h.Auth.Mode(), Version: h.Version}
	p.CSRF, _ = c.Locals(localCSRF).(string)
	if u, ok := currentUser(c); ok {
		p.User = u.Email
		if u.Local {
			p.User = "Local admin"
		}
	}
	if h.ClerkFrontendAPI != "" {
		p.Clerk = &views.Clerk{FrontendAPI: h.ClerkFrontendAPI, PublishableKey: h.ClerkPublishableKey}
	}
	return p
}

// render writes a templ component as the HTML response.
func render(c *fiber.Ctx, component templ.Component) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return component.Render(c.UserContext(), c.Response().BodyWriter())
}
