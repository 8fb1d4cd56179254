package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// OutboxStore is what /outbox needs from the store.
type OutboxStore interface {
	ListOutbox(ctx context.Context, userID string, limit int) ([]store.OutboxItem, error)
	OutboxMessage(ctx context.Context, userID, id string) (string, error)
	MoveOutbox(ctx context.Context, userID, id string, from []string, to string, sendAt time.Time, outcome string) (store.OutboxItem, error)
	CountOutbox(ctx context.Context, userID, state string) (int, error)
}

// outboxShown bounds the items /outbox lists; the previews of waiting
// messages are cut at previewTextBytes of text and previewHTMLBytes of
// HTML, so that the page holding the Discard buttons stays light.
const (
	outboxShown      = 100
	previewTextBytes = 32 << 10
	previewHTMLBytes = 256 << 10
)

// excerpt cuts s at n bytes (on a character boundary) and says whether
// it did.
func excerpt(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// outbox lists what AI clients handed over, newest first: those waiting
// for approval with their content (text, sanitized HTML, recipients,
// attachments by name and size), those waiting for their undo window,
// and what became of the others.
func (h *handler) outbox(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	items, err := h.Outbox.ListOutbox(c.UserContext(), u.ID, outboxShown)
	if err != nil {
		return err
	}
	accounts, err := h.Accounts.ListAccounts(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for _, a := range accounts {
		labels[a.ID] = a.Label
	}
	p := views.OutboxPage{Page: h.page(c, "Outbox", "/outbox"), Notice: outboxNotices[c.Query("done")]}
	for _, it := range items {
		e := views.OutboxEntry{ID: it.ID, Account: labels[it.AccountID], Subject: it.Subject, State: it.State, Outcome: it.Outcome,
			Created: it.CreatedAt, SendAt: it.SendAt}
		_ = json.Unmarshal([]byte(it.Recipients), &e.To)
		if it.State == store.OutboxPendingApproval {
			sealed, err := h.Outbox.OutboxMessage(c.UserContext(), u.ID, it.ID)
			if err != nil {
				return err
			}
			if raw, err := h.Secrets.Open(sealed, store.OutboxSecretContext(it)); err == nil {
				m, hidden := mail.ReadRaw(raw)
				e.From, e.Subject, e.Hidden = m.From, m.Subject, hidden
				e.Text, e.TextCut = excerpt(m.Text, previewTextBytes)
				if e.HTML, _ = excerpt(m.HTML, previewHTMLBytes); len(m.HTML) > previewHTMLBytes {
					e.HTML, e.HTMLCut = "", true // a cut HTML document would not render as sent
				}
				for _, a := range m.Attachments {
					e.Attachments = append(e.Attachments, views.OutboxAttachment{Name: a.Filename, Type: a.ContentType, Size: a.Size})
				}
			}
		}
		p.Items = append(p.Items, e)
	}
	return render(c, views.Outbox(p))
}

var outboxNotices = map[string]string{"sent": "Approved: the message goes now.", "discarded": "Discarded: nothing was sent.",
	"undone": "Undone: nothing was sent."}

// outboxSend approves a waiting message: it goes at once.
func (h *handler) outboxSend(c *fiber.Ctx) error {
	return h.moveOutbox(c, []string{store.OutboxPendingApproval}, store.OutboxScheduled, store.OutcomeApproved, "sent")
}

// outboxDiscard drops a waiting message.
func (h *handler) outboxDiscard(c *fiber.Ctx) error {
	return h.moveOutbox(c, []string{store.OutboxPendingApproval}, store.OutboxCancelled, "discarded by the user", "discarded")
}

// outboxUndo cancels a message still in its undo window.
func (h *handler) outboxUndo(c *fiber.Ctx) error {
	return h.moveOutbox(c, []string{store.OutboxScheduled}, store.OutboxCancelled, "undone by the user", "undone")
}

func (h *handler) moveOutbox(c *fiber.Ctx, from []string, to, outcome, done string) error {
	u, _ := currentUser(c)
	_, err := h.Outbox.MoveOutbox(c.UserContext(), u.ID, c.Params("id"), from, to, time.Now(), outcome)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fiber.NewError(fiber.StatusNotFound, "That message is not in your outbox.")
	case errors.Is(err, store.ErrConflict):
		return fiber.NewError(fiber.StatusConflict, "Too late: that message has already moved on (see its state in the Outbox).")
	case err != nil:
		return err
	}
	return c.Redirect("/outbox?done="+done, fiber.StatusSeeOther)
}
