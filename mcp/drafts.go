package mcp

import (
	"context"
	"fmt"
	"strings"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// DraftResult is the result of create_draft and update_draft.
type DraftResult struct {
	Folder    string `json:"folder" jsonschema:"The Drafts folder: list_messages and get_message read drafts there"`
	UID       uint32 `json:"uid" jsonschema:"The draft's uid in folder, for update_draft and send_draft; 0 if the server did not report it"`
	MessageID string `json:"message_id"`
	Replaced  uint32 `json:"replaced_uid,omitempty" jsonschema:"The uid of the draft this one replaced"`
	Warning   string `json:"warning,omitempty" jsonschema:"A step after saving failed; the new draft is saved"`
}

type draftArgs struct {
	sendArgs
	ReplyToUID uint32 `json:"reply_to_uid"`
}

var (
	argReplyToUID = mcplib.WithNumber("reply_to_uid", mcplib.Min(1), mcplib.Max(4294967295),
		mcplib.Description("Draft a reply to this message (uid in folder): recipients, Re: subject, threading and quote as reply_message."))
	argReplyFolder = mcplib.WithString("folder", mcplib.MaxLength(512), mcplib.DefaultString("INBOX"),
		mcplib.Description("Folder of reply_to_uid (default INBOX)."))
	argDraftUID = mcplib.WithNumber("uid", mcplib.Required(), mcplib.Min(1), mcplib.Max(4294967295),
		mcplib.Description("The draft's uid in the Drafts folder, from create_draft or list_messages on the Drafts folder."))
)

// draftContent are the arguments create_draft and update_draft share.
func draftContent() []mcplib.ToolOption {
	return []mcplib.ToolOption{argAccount,
		addressList("to", "Recipients (may be left for later; a reply draft takes the original's sender).", false),
		addressList("cc", "Cc recipients.", false), addressList("bcc", "Bcc recipients (kept in the draft, hidden when sent).", false),
		mcplib.WithString("subject", mcplib.MaxLength(998), mcplib.Description("Subject line (a reply draft takes Re: and the original's).")),
		argBodyText, argBodyHTML, argSig, argAttach, argReplyToUID, argReplyFolder,
		mcplib.WithBoolean("reply_all", mcplib.Description("With reply_to_uid: reply to all recipients (default false).")),
		mcplib.WithBoolean("quote_original", mcplib.DefaultBool(true), mcplib.Description("With reply_to_uid: quote the original (default true).")),
	}
}

func (s *Server) draftTools() []Tool {
	return []Tool{
		{Scope: oauth.ScopeModify, Handler: handle(s, s.createDraft), Def: tool[DraftResult]("create_draft",
			"Saves a message as a draft in the account's Drafts folder, exactly as it would be sent (signature included), for the "+
				"user to review in their mail app or for send_draft later. Arguments as send_message; with reply_to_uid it drafts a reply "+
				"as reply_message would write it. Nothing is sent.",
			hints("Create draft", false, false, false, false), draftContent()...)},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.updateDraft), Def: tool[DraftResult]("update_draft",
			"Replaces a draft with new content: the new draft is saved first, then the old one (uid) is removed. Give the whole "+
				"message again, as for create_draft; a reply draft keeps its threading. The new draft has a new uid.",
			hints("Update draft", false, true, false, false), append([]mcplib.ToolOption{argDraftUID}, draftContent()...)...)},
		{Scope: oauth.ScopeSend, Handler: handle(s, s.sendDraft), Def: tool[SentResult]("send_draft",
			"Sends a draft of the Drafts folder as it is (dated now), files it in Sent and removes it from Drafts. "+
				"Sending is irreversible: confirm with the user. Limited to "+sendLimitDescription+" with send_message.",
			hints("Send draft", false, false, false, true), argAccount, argDraftUID, argIdem)},
	}
}

func (s *Server) createDraft(ctx context.Context, acct *mail.Account, a draftArgs) (any, string, error) {
	return s.saveDraft(ctx, acct, a, 0)
}

func (s *Server) updateDraft(ctx context.Context, acct *mail.Account, a draftArgs) (any, string, error) {
	if a.UID == 0 {
		return nil, "", fail("uid is required: the draft to replace, from create_draft or list_messages on the Drafts folder.")
	}
	return s.saveDraft(ctx, acct, a, a.UID)
}

// saveDraft composes the draft a describes and saves it, replacing the
// draft replace when set.
func (s *Server) saveDraft(ctx context.Context, acct *mail.Account, a draftArgs, replace uint32) (any, string, error) {
	if n := len(a.To) + len(a.Cc) + len(a.Bcc); n > maxRecipients {
		return nil, "", fail("%d recipients: at most %d per message.", n, maxRecipients)
	}
	if a.ReplyToUID == 0 && len(a.To)+len(a.Cc)+len(a.Bcc) == 0 && strings.TrimSpace(a.Subject+a.BodyText+a.BodyHTML) == "" {
		return nil, "", fail("The draft is empty: give at least recipients, a subject or a body.")
	}
	files, err := decodeAttachments(ctx, a.Attachments)
	if err != nil {
		return nil, "", err
	}
	sig := boolOr(a.IncludeSignature, true)
	out := mail.Outgoing{To: a.To, Cc: a.Cc, Bcc: a.Bcc, Subject: a.Subject, Text: a.BodyText, HTML: a.BodyHTML,
		IncludeSignature: sig, Attachments: files}
	if a.ReplyToUID != 0 {
		out, err = s.o.Mail.ReplyOutgoing(ctx, acct, mail.ReplyOptions{Folder: folderOr(a.Folder), UID: a.ReplyToUID, ReplyAll: a.ReplyAll,
			Quote: boolOr(a.QuoteOriginal, true), Text: a.BodyText, HTML: a.BodyHTML, Cc: a.Cc, Bcc: a.Bcc, IncludeSignature: sig, Attachments: files})
		if err != nil {
			return nil, "", err
		}
		if len(a.To) > 0 {
			out.To = a.To
		}
		if a.Subject != "" {
			out.Subject = a.Subject
		}
	}
	res, err := s.o.Mail.SaveDraft(ctx, acct, out, replace)
	if res == nil {
		return nil, "", err
	}
	d := DraftResult{Folder: res.Folder, UID: res.UID, MessageID: res.MessageID, Replaced: replace}
	text := fmt.Sprintf("Draft saved in %s as uid=%d (Message-ID <%s>). ", displayFolder(res.Folder), res.UID, res.MessageID)
	if replace != 0 {
		text += fmt.Sprintf("It replaces the draft uid=%d. ", replace)
	}
	text += "Nothing was sent: send_draft sends it, update_draft changes it."
	if err != nil {
		d.Warning = "The new draft is saved, but the old one could not be removed (" + mail.KindOf(err).String() + "): delete it with delete_messages."
		text += " " + d.Warning
	}
	return d, text, nil
}

func (s *Server) sendDraft(ctx context.Context, acct *mail.Account, a draftArgs) (any, string, error) {
	if a.UID == 0 {
		return nil, "", fail("uid is required: the draft to send, from create_draft or list_messages on the Drafts folder.")
	}
	if err := s.allowSend(ctx); err != nil {
		return nil, "", err
	}
	m, inReplyTo, err := s.o.Mail.ComposeDraft(ctx, acct, a.UID)
	if err != nil {
		return nil, "", err
	}
	return s.enqueue(ctx, acct, outboxItem{kind: store.OutboxDraft, msg: m, draftUID: a.UID, inReplyTo: inReplyTo,
		key: callKey(a.IdempotencyKey, store.OutboxDraft, acct.ID, a.UID, m.Rcpts, m.Subject)})
}
