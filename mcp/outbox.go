package mcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	mcplib "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// Every send goes through the outbox: the composed message is sealed
// into a row before anything goes out, and the row's state records each
// step (SMTP begun, SMTP done, filed in Sent), so that a restart finishes
// what was interrupted and never sends a message twice. A message with
// no undo window and no approval is sent at once by the call itself;
// the others wait for their time (the worker, RunOutbox) or for the
// person (approval on /outbox).

// OutboxStore keeps the outbox.
type OutboxStore interface {
	AddOutbox(ctx context.Context, it *store.OutboxItem) error
	GetOutbox(ctx context.Context, userID, id string) (store.OutboxItem, error)
	OutboxMessage(ctx context.Context, userID, id string) (string, error)
	RecentOutbox(ctx context.Context, userID, accountID, key string, since time.Time) (store.OutboxItem, error)
	ClaimOutbox(ctx context.Context, owner string, lease time.Time, limit int) ([]store.OutboxItem, error)
	RenewOutboxLease(ctx context.Context, id, owner string, lease time.Time) error
	ExpireOutboxLeases(ctx context.Context, owner string) error
	OutboxStep(ctx context.Context, id, owner, field string) error
	FinishOutbox(ctx context.Context, id, owner, state, outcome, sentFolder, sentCopy string, sendAt time.Time) error
	MoveOutbox(ctx context.Context, userID, id string, from []string, to string, sendAt time.Time, outcome string) (store.OutboxItem, error)
	CountOutbox(ctx context.Context, userID, state string) (int, error)
	ClientConnected(ctx context.Context, userID, clientID string) (bool, error)
	Dialect() string
}

// Sealer seals and opens values bound to a context (secret.Keys).
type Sealer interface {
	Seal(plaintext []byte, context string) string
	Open(sealed, context string) ([]byte, error)
}

// Outbox timing.
const (
	// sameCallWindow is how long an identical send returns the first
	// one's result instead of sending again.
	sameCallWindow = 10 * time.Minute
	// outboxLease is how long a claim lasts without renewal; a claim is
	// renewed every third of it while its message is being sent.
	outboxLease = 30 * time.Second
	// outboxPoll is how often the worker looks for messages that are due.
	outboxPoll = time.Second
	// sendTimeout bounds the sending of one message, all steps.
	sendTimeout = 3 * time.Minute
	// maxWaiting bounds the messages one person has waiting for approval.
	maxWaiting = 50
	// copyGrace is how long a send taken up after SMTP waits for a Sent
	// copy that an interrupted append may still complete.
	copyGrace = 10 * time.Second
)

// outboxItem is what a send tool hands to the outbox.
type outboxItem struct {
	kind        string
	msg         *mail.Composed
	replyFolder string
	replyUID    uint32
	draftUID    uint32
	inReplyTo   string // of a draft: the Message-ID it answers
	// key identifies identical calls (see sameCallWindow).
	key string
}

// callKey hashes what makes two send calls the same: the kind of send,
// and the account and the parts given (an explicit idempotency key
// stands for those).
func callKey(explicit, kind string, parts ...any) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", kind)
	if explicit != "" {
		fmt.Fprintf(h, "key\x00%s", explicit)
	} else {
		for _, p := range parts {
			b, _ := json.Marshal(p)
			h.Write(b)
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newOwner names this process in the claims it makes.
func newOwner() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// enqueue writes the message into the outbox and, when its account holds
// neither an undo window nor approval, sends it at once. An identical
// call within sameCallWindow answers with the first one's item.
func (s *Server) enqueue(ctx context.Context, acct *mail.Account, in outboxItem) (any, string, error) {
	ci := callInfoFrom(ctx)
	a := ci.stored
	if prev, err := s.o.Store.RecentOutbox(ctx, a.UserID, a.ID, in.key, time.Now().Add(-sameCallWindow)); err == nil {
		out, text := sentResult(prev)
		text = fmt.Sprintf("The same message was already handed over %s ago (outbox_id=%s); nothing was sent again. %s",
			time.Since(prev.CreatedAt).Round(time.Second), prev.ID, text)
		ci.summary = "sent nothing again (a repeat of an earlier call): " + outboxSummary(prev)
		if prev.State == store.OutboxFailed {
			return nil, "", fail("%s", text)
		}
		return out, text, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, "", err
	}
	if a.SendRequiresApproval {
		if n, err := s.o.Store.CountOutbox(ctx, a.UserID, store.OutboxPendingApproval); err != nil {
			return nil, "", err
		} else if n >= maxWaiting {
			return nil, "", fail("%d messages already wait for the user's approval in imap-mcp (Outbox): ask the user to send or discard them first.", n)
		}
	}
	now := time.Now()
	rcpts, _ := json.Marshal(in.msg.Rcpts)
	bcc, _ := json.Marshal(nonNil(in.msg.Bcc))
	it := store.OutboxItem{ID: uuid.NewString(), UserID: a.UserID, AccountID: a.ID, ClientID: ci.clientID, Kind: in.kind,
		MessageID: in.msg.MessageID, Recipients: string(rcpts), Bcc: string(bcc), Subject: capRunes(in.msg.Subject, 300),
		ReplyFolder: in.replyFolder, ReplyUID: int64(in.replyUID), DraftUID: int64(in.draftUID), InReplyTo: in.inReplyTo, IdemKey: in.key, SendAt: now}
	it.MIMEEnc = s.o.Sealer.Seal(in.msg.Raw, store.OutboxSecretContext(it))
	inline := false
	switch {
	case a.SendRequiresApproval:
		it.State = store.OutboxPendingApproval
	case a.SendDelayS > 0:
		it.State, it.SendAt = store.OutboxScheduled, now.Add(time.Duration(a.SendDelayS)*time.Second)
	default:
		lease := now.Add(outboxLease)
		it.State, it.ClaimedBy, it.LeaseUntil, it.Attempts, inline = store.OutboxSending, s.owner, &lease, 1, true
	}
	if err := s.o.Store.AddOutbox(ctx, &it); err != nil {
		return nil, "", err
	}
	it.MIMEEnc = "" // stored: not held while it is sent
	if inline {
		it = s.deliver(ctx, it, acct, in.msg.Raw)
	}
	out, text := sentResult(it)
	ci.summary = outboxSummary(it)
	if it.State == store.OutboxFailed {
		return nil, "", fail("%s (outbox_id=%s)", text, it.ID) // a tool error, as a failed send always was
	}
	return out, text, nil
}

// outboxSummary says in the activity log what became of a message: "sent
// a reply to ann@example.org: Re: Budget", "queued …", "held for
// approval …".
func outboxSummary(it store.OutboxItem) string {
	var to []string
	_ = json.Unmarshal([]byte(it.Recipients), &to)
	what := map[string]string{store.OutboxSend: "a message", store.OutboxReply: "a reply", store.OutboxDraft: "a draft"}[it.Kind]
	verb := map[string]string{store.OutboxSent: "sent", store.OutboxSentCopyFailed: "sent (no Sent copy)", store.OutboxScheduled: "queued",
		store.OutboxPendingApproval: "held for approval", store.OutboxSending: "is sending", store.OutboxFailed: "failed to send",
		store.OutboxCancelled: "cancelled"}[it.State]
	list := strings.Join(to[:min(len(to), 3)], ", ")
	if len(to) > 3 {
		list += fmt.Sprintf(" +%d more", len(to)-3)
	}
	return fmt.Sprintf("%s %s to %s: %s", verb, what, capRunes(cleanSummary(list), 2*summaryField), capRunes(cleanSummary(it.Subject), summaryField))
}

// sentResult is what a send tool answers about an outbox item.
func sentResult(it store.OutboxItem) (SentResult, string) {
	out := SentResult{OutboxID: it.ID, State: it.State, MessageID: it.MessageID, SentCopy: it.SentCopy, Folder: it.SentFolder}
	var to []string
	_ = json.Unmarshal([]byte(it.Recipients), &to)
	what := fmt.Sprintf("%q to %s", it.Subject, strings.Join(to[:min(len(to), 5)], ", "))
	switch it.State {
	case store.OutboxSent:
		return out, fmt.Sprintf("Sent %s. Message-ID <%s>; sent copy: %s.", what, it.MessageID, it.SentCopy)
	case store.OutboxSentCopyFailed:
		out.Warning = "The message was sent, but filing the copy in Sent failed (" + it.Outcome + "): do not send it again."
		return out, fmt.Sprintf("Sent %s. Message-ID <%s>. %s", what, it.MessageID, out.Warning)
	case store.OutboxScheduled:
		out.SendAt = it.SendAt.UTC().Format(time.RFC3339)
		return out, fmt.Sprintf("Queued %s: it goes at %s (in %s), unless cancelled before: cancel_send with outbox_id=%s "+
			"stops it, and the user can undo it on the Outbox page.", what, out.SendAt, time.Until(it.SendAt).Round(time.Second), it.ID)
	case store.OutboxPendingApproval:
		return out, fmt.Sprintf("The message %s is waiting for the user's approval on the Outbox page of imap-mcp: nothing has been sent. "+
			"get_send_status with outbox_id=%s tells whether it was sent or discarded.", what, it.ID)
	case store.OutboxSending:
		return out, fmt.Sprintf("The message %s is being sent (outbox_id=%s): get_send_status tells when it is done; do not send it again.", what, it.ID)
	case store.OutboxCancelled:
		return out, fmt.Sprintf("The message %s was cancelled: nothing was sent. %s", what, it.Outcome)
	}
	out.Warning = it.Outcome
	return out, fmt.Sprintf("The message %s was not sent: %s", what, it.Outcome)
}

// deliver sends a claimed item: SMTP unless that was done already, the
// Sent copy, then what the kind needs after sending. Each step is
// recorded before the next begins: the end of DATA (from then on the
// server may have taken it), the server's answer, the copy. An item
// interrupted between the first two is not sent again but reported (it
// may have gone out), unless its copy in Sent shows it did; one
// interrupted before the end of DATA is sent again, since nothing was
// delivered. The item is returned as it ended.
func (s *Server) deliver(ctx context.Context, it store.OutboxItem, acct *mail.Account, raw []byte) store.OutboxItem {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	stop := s.keepLease(ctx, it.ID)
	defer stop()
	finish := func(state, outcome, folder, copy string) store.OutboxItem {
		if err := s.o.Store.FinishOutbox(ctx, it.ID, s.owner, state, outcome, folder, copy, it.SendAt); err != nil {
			s.o.Logger.Error("outbox: record the end of a send", "outbox", it.ID, "state", state, "err", err)
		}
		it.State, it.Outcome, it.SentFolder, it.SentCopy = state, outcome, folder, copy
		return it
	}
	var bcc []string
	_ = json.Unmarshal([]byte(it.Bcc), &bcc)
	if it.SMTPDone == nil {
		if it.SMTPStarted != nil {
			// Interrupted between handing the message over and hearing
			// back: only its copy in Sent tells whether it went.
			if found, err := s.o.Mail.InSent(ctx, acct, it.MessageID); err != nil || !found {
				return finish(store.OutboxFailed, store.OutcomeInterrupted+": it may or may not have been delivered; check with the "+
					"recipients or in Sent before sending it again", "", "")
			}
			return s.afterSend(ctx, it, acct, finish, "already in Sent", "")
		}
		var rcpts []string
		_ = json.Unmarshal([]byte(it.Recipients), &rcpts)
		committed := false
		committing := func() error {
			err := s.o.Store.OutboxStep(ctx, it.ID, s.owner, "smtp_started_at")
			committed = err == nil
			return err
		}
		if err := s.o.Mail.Submit(ctx, acct, raw, rcpts, committing); err != nil {
			if committed { // the end of DATA was sent, and no answer came
				return finish(store.OutboxFailed, store.OutcomeInterrupted+": it may or may not have been delivered; check with the "+
					"recipients or in Sent before sending it again", "", "")
			}
			msg, _ := errorText(err, acct)
			return finish(store.OutboxFailed, orDefault(msg, "the mail server did not take the message, or the send could not be recorded"), "", "")
		}
		if err := s.o.Store.OutboxStep(ctx, it.ID, s.owner, "smtp_done_at"); err != nil {
			s.o.Logger.Error("outbox: record a finished SMTP session", "outbox", it.ID, "err", err)
		}
	}
	file := s.o.Mail.FileSent
	if it.Attempts > 1 && it.SMTPDone != nil {
		// Taken up after an interruption: the copy may be on its way.
		file = func(ctx context.Context, acct *mail.Account, filed mail.Filed, msgID string) (*mail.SendResult, error) {
			return s.o.Mail.FileSentAgain(ctx, acct, filed, msgID, copyGrace)
		}
	}
	res, err := file(ctx, acct, mail.FiledCopy(raw, bcc), it.MessageID)
	if err != nil {
		return finish(store.OutboxSentCopyFailed, mail.KindOf(err).String(), res.SentFolder, res.SentCopy)
	}
	return s.afterSend(ctx, it, acct, finish, res.SentCopy, res.SentFolder)
}

// afterSend does what a reply or a draft needs once sent, and ends the
// item as sent.
func (s *Server) afterSend(ctx context.Context, it store.OutboxItem, acct *mail.Account, finish func(state, outcome, folder, copy string) store.OutboxItem,
	copy, folder string) store.OutboxItem {
	var err error
	switch it.Kind {
	case store.OutboxReply:
		err = s.o.Mail.SetFlags(ctx, acct, it.ReplyFolder, []uint32{uint32(it.ReplyUID)}, []string{mail.FlagAnswered}, nil)
	case store.OutboxDraft:
		err = s.o.Mail.DraftSent(ctx, acct, uint32(it.DraftUID), it.InReplyTo)
	}
	outcome := ""
	if err != nil {
		outcome = "sent; a step after sending failed (" + mail.KindOf(err).String() + ")"
	}
	return finish(store.OutboxSent, outcome, folder, copy)
}

// keepLease renews this process's claim on id until the returned stop is
// called.
func (s *Server) keepLease(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(outboxLease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.o.Store.RenewOutboxLease(ctx, id, s.owner, time.Now().Add(outboxLease)); err != nil && ctx.Err() == nil {
					s.o.Logger.Warn("outbox: renew lease", "outbox", id, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// RunOutbox sends what is due until ctx ends: scheduled messages whose
// undo window has passed, approved ones, and what a process that
// stopped left half sent. On the embedded database, the only process
// serving it, every claim left over from before is taken up at once.
// A message being sent when ctx ends is finished first.
func (s *Server) RunOutbox(ctx context.Context) {
	if s.o.Store.Dialect() == store.SQLite {
		if err := s.o.Store.ExpireOutboxLeases(ctx, s.owner); err != nil {
			s.o.Logger.Error("outbox: take up earlier claims", "err", err)
		}
	}
	t := time.NewTicker(outboxPoll)
	defer t.Stop()
	for {
		items, err := s.o.Store.ClaimOutbox(ctx, s.owner, time.Now().Add(outboxLease), 10)
		if err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("outbox: claim", "err", err)
		}
		for _, it := range items {
			s.sendClaimed(ctx, it)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sendClaimed opens the account and the sealed message of a claimed
// item and sends it, unless things changed since the item was queued: a
// client the user disconnected, or an account that no longer lets AI
// clients send, cancels it; an account that now requires approval holds
// it (unless the person approved this one). A failure that says nothing about the item (the process
// stopping, the database) hands the claim back, so that it is sent
// later; an item with SMTP steps behind it is never ended as failed for
// sure.
func (s *Server) sendClaimed(ctx context.Context, it store.OutboxItem) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	end := func(state, outcome string) {
		if state == store.OutboxFailed && (it.SMTPStarted != nil || it.SMTPDone != nil) {
			outcome = store.OutcomeInterrupted + ": it may or may not have been delivered (" + outcome + ")"
		}
		if err := s.o.Store.FinishOutbox(bg, it.ID, s.owner, state, outcome, "", "", it.SendAt); err != nil {
			s.o.Logger.Error("outbox: record the end of a send", "outbox", it.ID, "state", state, "err", err)
		}
	}
	if ctx.Err() != nil {
		end(store.OutboxScheduled, it.Outcome) // stopping: sent by the next process
		return
	}
	a, err := s.o.Store.GetAccount(bg, it.UserID, it.AccountID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		end(store.OutboxFailed, "the account is no longer available")
		return
	case err != nil:
		s.o.Logger.Warn("outbox: read the account", "outbox", it.ID, "err", err)
		end(store.OutboxScheduled, it.Outcome)
		return
	}
	if it.SMTPStarted == nil && it.SMTPDone == nil {
		connected := true
		if it.ClientID != "" && it.Outcome != store.OutcomeApproved {
			if connected, err = s.o.Store.ClientConnected(bg, it.UserID, it.ClientID); err != nil {
				end(store.OutboxScheduled, it.Outcome)
				return
			}
		}
		switch {
		case !connected:
			end(store.OutboxCancelled, "cancelled: the user disconnected the client that sent it")
			return
		case !levelAllows(a.PermissionLevel, oauth.ScopeSend):
			end(store.OutboxCancelled, "cancelled: the user no longer lets AI clients send from this account")
			return
		case a.SendRequiresApproval && it.Outcome != store.OutcomeApproved:
			end(store.OutboxPendingApproval, "held: the account now requires the user's approval")
			return
		}
	}
	acct, err := account.Open(a, s.o.Secrets, s.o.OAuth)
	if err != nil {
		end(store.OutboxFailed, "the account's sign-in could not be opened: the user should check it in imap-mcp (Accounts)")
		return
	}
	sealed, err := s.o.Store.OutboxMessage(bg, it.UserID, it.ID)
	if err != nil {
		s.o.Logger.Warn("outbox: read the message", "outbox", it.ID, "err", err)
		end(store.OutboxScheduled, it.Outcome)
		return
	}
	raw, err := s.o.Sealer.Open(sealed, store.OutboxSecretContext(it))
	if err != nil {
		end(store.OutboxFailed, "the stored message could not be opened")
		return
	}
	it = s.deliver(ctx, it, acct, raw)
	s.o.Logger.Info("outbox: sent", "outbox", it.ID, "state", it.State)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type outboxArgs struct {
	OutboxID string `json:"outbox_id"`
}

func (outboxArgs) accountID() string { return "" }

func (s *Server) outboxTools() []Tool {
	id := mcplib.WithString("outbox_id", mcplib.Required(), mcplib.MaxLength(64), mcplib.Description("outbox_id from send_message, reply_message or send_draft."))
	return []Tool{
		{Scope: oauth.ScopeSend, Handler: s.outboxHandler(s.cancelSend), Def: tool[SentResult]("cancel_send",
			"Cancels a message that has not gone yet: one waiting for its time (the account holds outgoing mail for an undo window) "+
				"or for the user's approval. A message already sent cannot be called back; the answer says so.",
			hints("Cancel send", false, true, true, false), id)},
		{Scope: oauth.ScopeSend, Handler: s.outboxHandler(s.sendStatus), Def: tool[SentResult]("get_send_status",
			"Tells what became of a message handed to send_message, reply_message or send_draft: sent, scheduled (and when), "+
				"waiting for the user's approval, cancelled or discarded, or failed (and why).",
			hints("Send status", true, false, true, false), id)},
	}
}

// outboxHandler binds outbox_id and runs f on the caller's item.
func (s *Server) outboxHandler(f func(ctx context.Context, it store.OutboxItem) (any, string, error)) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
		var a outboxArgs
		if err := bind(req, &a); err != nil {
			return result(nil, "", err, nil)
		}
		p, _ := oauth.PrincipalFrom(ctx)
		it, err := s.o.Store.GetOutbox(ctx, p.UserID, a.OutboxID)
		if errors.Is(err, store.ErrNotFound) {
			return result(nil, "", fail("Unknown outbox_id %q: take it from the answer of send_message, reply_message or send_draft.", a.OutboxID), nil)
		}
		if err != nil {
			return result(nil, "", err, nil)
		}
		ci := callInfoFrom(ctx)
		ci.stored.ID = it.AccountID
		if a, err := s.o.Store.GetAccount(ctx, p.UserID, it.AccountID); err == nil {
			ci.stored = a
		}
		out, text, err := f(ctx, it)
		return result(out, text, err, nil)
	}
}

func (s *Server) sendStatus(_ context.Context, it store.OutboxItem) (any, string, error) {
	out, text := sentResult(it)
	return out, text, nil
}

func (s *Server) cancelSend(ctx context.Context, it store.OutboxItem) (any, string, error) {
	it, err := s.o.Store.MoveOutbox(ctx, it.UserID, it.ID, []string{store.OutboxScheduled, store.OutboxPendingApproval},
		store.OutboxCancelled, it.SendAt, "cancelled by the AI client")
	if errors.Is(err, store.ErrConflict) {
		out, text := sentResult(it)
		return out, "Too late to cancel: " + text, nil
	}
	if err != nil {
		return nil, "", err
	}
	out, text := sentResult(it)
	return out, text, nil
}
