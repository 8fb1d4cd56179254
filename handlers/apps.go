package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// AppStore is what /apps needs from the store.
type AppStore interface {
	ListConnectedApps(ctx context.Context, userID string) ([]store.ConnectedApp, error)
	RevokeGrant(ctx context.Context, userID, grantID string) error
}

func (h *handler) apps(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	list, err := h.Apps.ListConnectedApps(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	p := views.AppsPage{Page: h.page(c, "Connected apps", "/apps"), Revoked: c.Query("revoked") != ""}
	for _, a := range list {
		p.Apps = append(p.Apps, views.App{GrantID: a.GrantID, Name: a.ClientName, RedirectHost: redirectHosts(a.RedirectURIs),
			Scopes: strings.Fields(a.Scope), Created: a.CreatedAt, LastUsed: a.LastUsedAt})
	}
	return render(c, views.Apps(p))
}

func (h *handler) revokeApp(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	err := h.Apps.RevokeGrant(c.UserContext(), u.ID, c.Params("grant"))
	if errors.Is(err, store.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "That app is not connected (any more).")
	}
	if err != nil {
		return err
	}
	if c.Get("HX-Request") == "true" {
		return c.SendString("") // the row disappears
	}
	return c.Redirect("/apps?revoked=1", fiber.StatusSeeOther)
}

// redirectHosts names the distinct hosts of a client's redirect URIs.
func redirectHosts(uris string) string {
	var list []string
	if json.Unmarshal([]byte(uris), &list) != nil {
		return ""
	}
	var hosts []string
	for _, raw := range list {
		if u, err := url.Parse(raw); err == nil && !slices.Contains(hosts, u.Host) {
			hosts = append(hosts, u.Host)
		}
	}
	return strings.Join(hosts, ", ")
}
