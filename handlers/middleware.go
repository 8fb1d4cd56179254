package handlers

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/views"
)

// observe records each request under its route pattern; requests that no
// route matched share one label.
func (h *handler) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			h.Logger.Error("error handler failed", "err", herr)
		}
	}
	route := c.Route().Path
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
		route = "unmatched"
	}
	h.Metrics.Observe(route, c.Method(), c.Response().StatusCode(), time.Since(start))
	return nil
}

// error answers with a safe message; the detail of unexpected errors goes
// to the log only.
func (h *handler) error(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	msg := "Something went wrong on our side. Please try again."
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
		msg = fe.Message
		if code == fiber.StatusNotFound {
			msg = "There is no page at this address."
		}
	} else {
		h.Logger.Error("web request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	c.Status(code)
	if c.Get("HX-Request") == "true" || c.Accepts(fiber.MIMETextHTML, fiber.MIMEApplicationJSON) != fiber.MIMETextHTML {
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.SendString(msg)
	}
	return render(c, views.ErrorPage(h.page(c, "Error", ""), code, msg))
}
