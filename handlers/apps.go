package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// AppStore is what /apps, /activity and the home page need from the
// store about connected clients.
type AppStore interface {
	ListConnectedApps(ctx context.Context, userID string) ([]store.ConnectedApp, error)
	RevokeGrant(ctx context.Context, userID, grantID string) error
	ListActivity(ctx context.Context, userID string, f store.ActivityFilter) ([]store.Activity, error)
	LastActivityByClient(ctx context.Context, userID string) (map[string]store.Activity, error)
}

func (h *handler) apps(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	list, err := h.Apps.ListConnectedApps(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	last, err := h.Apps.LastActivityByClient(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	p := views.AppsPage{Page: h.page(c, "Connected apps", "/apps"), Revoked: c.Query("revoked") != ""}
	for _, a := range list {
		app := views.App{GrantID: a.GrantID, ClientID: a.ClientID, Name: a.ClientName, RedirectHost: redirectHosts(a.RedirectURIs),
			Scopes: strings.Fields(a.Scope), Created: a.CreatedAt, LastUsed: a.LastUsedAt}
		if act, ok := last[a.ClientID]; ok {
			app.LastActivity = activityView(act)
		}
		p.Apps = append(p.Apps, app)
	}
	return render(c, views.Apps(p))
}

// activity lists the tool calls of the person's clients, newest first,
// filtered by client and account.
func (h *handler) activity(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	f := store.ActivityFilter{ClientID: c.Query("client"), AccountID: c.Query("account"), Limit: 200}
	rows, err := h.Apps.ListActivity(c.UserContext(), u.ID, f)
	if err != nil {
		return err
	}
	p := views.ActivityPage{Page: h.page(c, "Activity", "/activity"), Client: f.ClientID, Account: f.AccountID}
	for _, r := range rows {
		p.Entries = append(p.Entries, *activityView(r))
	}
	// The filters offer every client and account the person has.
	apps, err := h.Apps.ListConnectedApps(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		p.Clients = append(p.Clients, views.Choice{Value: a.ClientID, Label: views.AppName(a.ClientName)})
	}
	accounts, err := h.Accounts.ListAccounts(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		p.Accounts = append(p.Accounts, views.Choice{Value: a.ID, Label: a.Label})
	}
	return render(c, views.Activity(p))
}

func activityView(a store.Activity) *views.ActivityEntry {
	client := a.ClientName
	if client == "" {
		client = a.ClientID
	}
	return &views.ActivityEntry{At: a.CreatedAt, Client: client, Account: a.AccountLabel, Tool: a.Tool, Summary: a.Summary,
		Outcome: a.Outcome, Duration: time.Duration(a.DurationMS) * time.Millisecond}
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
