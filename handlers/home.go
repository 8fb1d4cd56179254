package handlers

import (
	"net"
	"net/url"
	"strings"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// homeActivity is how many of the latest tool calls the home page shows.
const homeActivity = 8

// home is the dashboard: where to connect, the accounts with their
// state, the connected apps and what they did last.
func (h *handler) home(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	p := views.HomePage{Page: h.page(c, "Home", "/"), MCPURL: h.MCPURL, Reach: reachability(h.MCPURL)}
	accounts, err := h.Accounts.ListAccounts(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		status := a.TestStatus()
		if a.NeedsReauth {
			status = "needs sign-in"
		}
		p.Accounts = append(p.Accounts, views.HomeAccount{Label: a.Label, Email: a.Email, Status: status, IsDefault: a.IsDefault})
	}
	apps, err := h.Apps.ListConnectedApps(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		p.Apps = append(p.Apps, views.App{GrantID: a.GrantID, Name: a.ClientName, Created: a.CreatedAt, LastUsed: a.LastUsedAt})
	}
	recent, err := h.Apps.ListActivity(c.UserContext(), u.ID, store.ActivityFilter{Limit: homeActivity})
	if err != nil {
		return err
	}
	for _, r := range recent {
		p.Activity = append(p.Activity, *activityView(r))
	}
	return render(c, views.Home(p))
}

// reachability says who can reach the MCP URL: "" when it is a public
// https URL, else a sentence on what works and what does not.
func reachability(mcpURL string) string {
	u, err := url.Parse(mcpURL)
	if err != nil {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	ip := net.ParseIP(host)
	private := host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".local") ||
		strings.HasSuffix(host, ".lan") || strings.HasSuffix(host, ".internal") || strings.HasSuffix(host, ".home.arpa") ||
		!strings.Contains(host, ".") && ip == nil ||
		ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast())
	switch {
	case private:
		return "This address is only reachable from this machine or your network: Claude Desktop (through mcp-remote) and Claude Code can connect from there, but Claude.ai cannot, because it connects from the internet. Give the server a public https address (a reverse proxy or a tunnel, see the README) and set APP_URL to it."
	case u.Scheme != "https":
		return "This address is plain http: Claude.ai only connects to https. Put a TLS reverse proxy in front (see the README) and set APP_URL to its https address."
	}
	return ""
}

func (h *handler) connect(c *fiber.Ctx) error {
	tab := c.Query("tab")
	switch tab {
	case "desktop", "code":
	default:
		tab = "claude-ai"
	}
	return render(c, views.Connect(views.ConnectPage{Page: h.page(c, "Connect a client", "/connect"), MCPURL: h.MCPURL, Tab: tab,
		Reach: reachability(h.MCPURL)}))
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
	if user != nil && h.Outbox != nil {
		// The header's badge: messages waiting for the person.
		if n, err := h.Outbox.CountOutbox(c.UserContext(), user.ID, store.OutboxPendingApproval); err == nil {
			p.Waiting = n
		}
	}
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
