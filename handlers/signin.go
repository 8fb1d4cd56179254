package handlers

import (
	"errors"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/views"
)

// Sign-in attempts allowed per client address per signInWindow; only
// failed attempts count.
const (
	signInAttempts = 5
	signInWindow   = time.Minute
)

// signInLimiter rate-limits password attempts per client address.
func (h *handler) signInLimiter() fiber.Handler {
	return limiter.New(limiter.Config{
		Max:                    signInAttempts,
		Expiration:             signInWindow,
		SkipSuccessfulRequests: true,
		KeyGenerator:           clientIP,
		LimitReached: func(c *fiber.Ctx) error {
			return fiber.NewError(fiber.StatusTooManyRequests, "Too many attempts. Wait a minute, then try again.")
		},
	})
}

// clientIP is the address the trusted proxy saw: the last X-Forwarded-For
// entry (earlier ones come from the client and can be forged). Without
// TRUST_PROXY_HEADERS the server drops the header and this is the peer.
func clientIP(c *fiber.Ctx) string {
	if ips := c.IPs(); len(ips) > 0 {
		return ips[len(ips)-1]
	}
	return c.IP()
}

func (h *handler) signInPage(c *fiber.Ctx) error {
	redirect := auth.SafeRedirect(c.Query("redirect_url"))
	if _, ok := currentUser(c); ok {
		return c.Redirect(redirect, fiber.StatusSeeOther)
	}
	if h.Local == nil {
		return h.clerkPage(c, "sign-in", "Sign in", redirect)
	}
	needs, err := h.Local.NeedsSetup(c.UserContext())
	if err != nil {
		return err
	}
	return render(c, views.SignIn(views.SignInPage{Page: h.page(c, "Sign in", ""), Redirect: redirect, NeedsSetup: needs}))
}

func (h *handler) signIn(c *fiber.Ctx) error {
	if h.Local == nil {
		return fiber.ErrMethodNotAllowed
	}
	redirect := auth.SafeRedirect(c.FormValue("redirect_url"))
	tok, err := h.Local.SignIn(c.UserContext(), c.FormValue("password"))
	switch {
	case errors.Is(err, auth.ErrWrongPassword):
		c.Status(fiber.StatusUnauthorized)
		return render(c, views.SignIn(views.SignInPage{Page: h.page(c, "Sign in", ""), Redirect: redirect,
			Error: "That password is not right."}))
	case errors.Is(err, auth.ErrNoPassword):
		c.Status(fiber.StatusConflict)
		return render(c, views.SignIn(views.SignInPage{Page: h.page(c, "Sign in", ""), NeedsSetup: true}))
	case err != nil:
		return err
	}
	h.setCookie(c, auth.SessionCookie, tok, auth.SessionTTL)
	return c.Redirect(redirect, fiber.StatusSeeOther)
}

func (h *handler) signUpPage(c *fiber.Ctx) error {
	redirect := auth.SafeRedirect(c.Query("redirect_url"))
	if h.Local != nil {
		return c.Redirect("/sign-in?redirect_url="+url.QueryEscape(redirect), fiber.StatusSeeOther)
	}
	return h.clerkPage(c, "sign-up", "Create your account", redirect)
}

func (h *handler) setupPage(c *fiber.Ctx) error {
	if h.Local == nil {
		return fiber.ErrNotFound
	}
	tok := c.Query("token")
	p := views.SetupPage{Page: h.page(c, "Set up", ""), Token: tok, Invalid: !h.Local.SetupTokenValid(c.UserContext(), tok)}
	if p.Invalid {
		c.Status(fiber.StatusNotFound)
	}
	return render(c, views.Setup(p))
}

func (h *handler) setup(c *fiber.Ctx) error {
	if h.Local == nil {
		return fiber.ErrNotFound
	}
	tok, pw := c.FormValue("token"), c.FormValue("password")
	p := views.SetupPage{Page: h.page(c, "Set up", ""), Token: tok}
	if pw != c.FormValue("confirm") {
		p.Error = "The two passwords differ. Type the same password twice."
		c.Status(fiber.StatusUnprocessableEntity)
		return render(c, views.Setup(p))
	}
	session, err := h.Local.CompleteSetup(c.UserContext(), tok, pw)
	switch {
	case errors.Is(err, auth.ErrWeakPassword):
		p.Error = "Choose a password of at least 8 characters."
		c.Status(fiber.StatusUnprocessableEntity)
		return render(c, views.Setup(p))
	case errors.Is(err, auth.ErrBadSetupLink):
		p.Invalid = true
		c.Status(fiber.StatusNotFound)
		return render(c, views.Setup(p))
	case err != nil:
		return err
	}
	h.setCookie(c, auth.SessionCookie, session, auth.SessionTTL)
	return c.Redirect("/", fiber.StatusSeeOther)
}

func (h *handler) signOutPage(c *fiber.Ctx) error {
	return render(c, views.SignOutPage(h.page(c, "Sign out", "")))
}

func (h *handler) signOut(c *fiber.Ctx) error {
	if h.Local != nil {
		if err := h.Local.SignOut(c.UserContext(), c.Cookies(auth.SessionCookie)); err != nil {
			return err
		}
		h.setCookie(c, auth.SessionCookie, "", -1)
		return c.Redirect("/sign-in", fiber.StatusSeeOther)
	}
	// ClerkJS ends the session at Clerk and clears its cookies.
	return h.clerkPage(c, "sign-out", "Signing out…", "/sign-in")
}

func (h *handler) clerkRefresh(c *fiber.Ctx, redirect string) error {
	return h.clerkPage(c, "refresh", "Refreshing your session…", redirect)
}

func (h *handler) clerkPage(c *fiber.Ctx, action, heading, redirect string) error {
	p := h.page(c, heading, "")
	p.Clerk.Action, p.Clerk.Redirect = action, redirect
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render(c, views.ClerkPage(p, heading))
}
