package handlers

import (
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/store"
)

// Locals keys set by the session middleware.
const (
	localUser  = "user"
	localState = "auth_state"
	localCSRF  = "csrf"
)

// session is the one place that reads sign-in cookies: it resolves the
// user for every request and enforces CSRF on state-changing methods.
func (h *handler) session(c *fiber.Ctx) error {
	csrfCookie := c.Cookies(auth.CSRFCookie)
	if csrfCookie == "" {
		csrfCookie = h.CSRF.NewCookieValue()
		h.setCookie(c, auth.CSRFCookie, csrfCookie, 0)
	}
	c.Locals(localCSRF, h.CSRF.Token(csrfCookie))
	if !isSafeMethod(c.Method()) {
		token := c.Get(auth.CSRFHeader)
		if token == "" {
			token = c.FormValue(auth.CSRFField)
		}
		if !h.CSRF.Check(c.Cookies(auth.CSRFCookie), token, func(k string) string { return c.Get(k) }) {
			return fiber.NewError(fiber.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
		}
	}

	cookies := auth.Cookies{}
	c.Request().Header.VisitAllCookie(func(k, v []byte) { cookies[string(k)] = string(v) })
	u, state, err := h.Auth.Resolve(c.UserContext(), cookies)
	if err != nil {
		return err
	}
	c.Locals(localState, state)
	if state == auth.SignedIn {
		c.Locals(localUser, u)
		c.SetUserContext(auth.WithUser(c.UserContext(), u))
	}
	return c.Next()
}

// requireUser lets signed-in people through. Others: an HTMX request gets
// 401 + HX-Refresh, an API request 401, a page load with an expired Clerk
// session the refresh page (once), and any other page load a redirect to
// sign-in that comes back here.
func (h *handler) requireUser(c *fiber.Ctx) error {
	if _, ok := currentUser(c); ok {
		return c.Next()
	}
	if c.Get("HX-Request") == "true" {
		c.Set("HX-Refresh", "true")
		return c.SendStatus(fiber.StatusUnauthorized)
	}
	if c.Method() != fiber.MethodGet || c.Accepts(fiber.MIMETextHTML, fiber.MIMEApplicationJSON) != fiber.MIMETextHTML {
		return fiber.NewError(fiber.StatusUnauthorized, "Sign in first.")
	}
	target := c.OriginalURL()
	if c.Locals(localState) == auth.Refresh && c.Query(refreshMarker) == "" {
		return h.clerkRefresh(c, withQuery(target, refreshMarker, "1"))
	}
	return c.Redirect("/sign-in?redirect_url="+url.QueryEscape(stripQuery(target, refreshMarker)), fiber.StatusSeeOther)
}

// refreshMarker counts one Clerk refresh attempt, so a session that cannot
// be refreshed ends at sign-in instead of looping.
const refreshMarker = "__clerk_refresh"

func currentUser(c *fiber.Ctx) (store.User, bool) {
	u, ok := c.Locals(localUser).(store.User)
	return u, ok
}

// setCookie sets an HttpOnly, SameSite=Lax cookie, Secure on https; maxAge
// 0 makes a browser-session cookie and -1 deletes it.
func (h *handler) setCookie(c *fiber.Ctx, name, value string, maxAge time.Duration) {
	ck := &fiber.Cookie{Name: name, Value: value, Path: "/", HTTPOnly: true, Secure: h.SecureCookies, SameSite: fiber.CookieSameSiteLaxMode}
	switch {
	case maxAge < 0:
		ck.Expires = time.Unix(1, 0)
		ck.MaxAge = -1
	case maxAge > 0:
		ck.MaxAge = int(maxAge.Seconds())
	}
	c.Cookie(ck)
}

func isSafeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

func withQuery(target, key, value string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func stripQuery(target, key string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	q := u.Query()
	q.Del(key)
	u.RawQuery = q.Encode()
	return u.String()
}
