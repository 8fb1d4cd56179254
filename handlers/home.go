package handlers

import (
	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/views"
)

func (h *handler) home(c *fiber.Ctx) error {
	return render(c, views.Home(views.HomePage{
		Page:   h.page("Home", "/"),
		MCPURL: h.MCPURL,
	}))
}

func (h *handler) page(title, nav string) views.Page {
	return views.Page{Title: title, Nav: nav, Mode: h.Mode, Version: h.Version}
}

// render writes a templ component as the HTML response.
func render(c *fiber.Ctx, component templ.Component) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return component.Render(c.UserContext(), c.Response().BodyWriter())
}
