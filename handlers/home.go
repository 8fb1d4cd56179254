package handlers

import (
	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

func (h *handler) home(c *fiber.Ctx) error {
	return render(c, views.Home(views.HomePage{
		Page:   h.page(c, "Home", "/"),
		MCPURL: h.MCPURL,
	}))
}

func (h *handler) connect(c *fiber.Ctx) error {
	tab := c.Query("tab")
	switch tab {
	case "desktop", "code":
	default:
		tab = "claude-ai"
	}
	return render(c, views.Connect(views.ConnectPage{Page: h.page(c, "Connect a client", "/connect"), MCPURL: h.MCPURL, Tab: tab}))
}

// page fills what every page shows for the request.
func (h *handler) page(c *fiber.Ctx, title, nav string) views.Page {
	csrf, _ := c.Locals(localCSRF).(string)
	var user *store.User
	if u, ok := currentUser(c); ok {
		user = &u
	}
	p := h.Page(title, user, csrf)
	p.Nav = nav
	return p
}

// Page fills what every page shows: mode, the signed-in user (nil when
// nobody is), the CSRF token, ClerkJS. Pages served outside Fiber (OAuth
// consent) use it too.
func (d Deps) Page(title string, user *store.User, csrf string) views.Page {
	p := views.Page{Title: title, Mode: d.Auth.Mode(), Version: d.Version, CSRF: csrf}
	if user != nil {
		p.User = user.Email
		if user.Local {
			p.User = "Local admin"
		}
	}
	if d.ClerkFrontendAPI != "" {
		p.Clerk = &views.Clerk{FrontendAPI: d.ClerkFrontendAPI, PublishableKey: d.ClerkPublishableKey}
	}
	return p
}

// render writes a templ component as the HTML response.
func render(c *fiber.Ctx, component templ.Component) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return component.Render(c.UserContext(), c.Response().BodyWriter())
}
