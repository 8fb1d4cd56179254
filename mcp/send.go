package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// Attachment limits of send_message and reply_message.
const (
	maxAttachments       = 10
	maxAttachmentBytes   = 10 << 20 // decoded, each
	maxAttachmentsTotal  = 20 << 20 // decoded, together
	maxRecipients        = mail.MaxRecipients
	defaultSendsPerHour  = 60
	sendLimitDescription = "60 messages per hour per user"
)

// SentResult is the result of send_message and reply_message.
type SentResult struct {
	OutboxID  string `json:"outbox_id" jsonschema:"For get_send_status and cancel_send"`
	State     string `json:"state" jsonschema:"sent, sent_copy_failed (sent; the Sent copy failed), scheduled (goes at send_at unless cancelled), pending_approval (waits for the user), sending, failed or cancelled"`
	SendAt    string `json:"send_at,omitempty" jsonschema:"When a scheduled message goes (RFC 3339)"`
	MessageID string `json:"message_id"`
	SentCopy  string `json:"sent_copy" jsonschema:"Where the sent copy is: appended to a Sent folder, kept by the provider, or none"`
	Folder    string `json:"sent_folder,omitempty"`
	Warning   string `json:"warning,omitempty" jsonschema:"A step after sending failed; the message was sent: do not send it again"`
}

type attachmentArg struct {
	Filename      string `json:"filename"`
	ContentType   string `json:"content_type"`
	ContentBase64 string `json:"content_base64"`
}

type sendArgs struct {
	accountArg
	To               []string        `json:"to"`
	Cc               []string        `json:"cc"`
	Bcc              []string        `json:"bcc"`
	Subject          string          `json:"subject"`
	BodyText         string          `json:"body_text"`
	BodyHTML         string          `json:"body_html"`
	IncludeSignature *bool           `json:"include_signature"`
	Attachments      []attachmentArg `json:"attachments"`
	Folder           string          `json:"folder"`
	UID              uint32          `json:"uid"`
	ReplyAll         bool            `json:"reply_all"`
	QuoteOriginal    *bool           `json:"quote_original"`
	IdempotencyKey   string          `json:"idempotency_key"`
}

var (
	addressList = func(name, desc string, required bool) mcplib.ToolOption {
		opts := []mcplib.PropertyOption{mcplib.MaxItems(maxRecipients), mcplib.Items(map[string]any{"type": "string", "maxLength": 320}), mcplib.Description(desc)}
		if required {
			opts = append(opts, mcplib.Required(), mcplib.MinItems(1))
		}
		return mcplib.WithArray(name, opts...)
	}
	argBodyText = mcplib.WithString("body_text", mcplib.MaxLength(1<<20), mcplib.Description("Plain text body."))
	argBodyHTML = mcplib.WithString("body_html", mcplib.MaxLength(2<<20), mcplib.Description("Optional HTML body, sent as an alternative to body_text."))
	argSig      = mcplib.WithBoolean("include_signature", mcplib.DefaultBool(true), mcplib.Description("Append the account's signature (default true)."))
	argIdem     = mcplib.WithString("idempotency_key", mcplib.MaxLength(200), mcplib.Description(
		"Optional key of this send: a second call with the same key within 10 minutes returns the first one's result instead of "+
			"sending again (an identical call without a key is recognised too)."))
	argAttach = mcplib.WithArray("attachments", mcplib.MaxItems(maxAttachments), mcplib.Items(map[string]any{
		"type": "object", "required": []string{"filename", "content_base64"}, "additionalProperties": false,
		"properties": map[string]any{
			"filename":       map[string]any{"type": "string", "maxLength": 255},
			"content_type":   map[string]any{"type": "string", "maxLength": 127, "description": "MIME type, such as application/pdf; default: from the filename's extension"},
			"content_base64": map[string]any{"type": "string", "description": "File content, base64"},
		},
	}), mcplib.Description("Files to attach (up to 10; 10 MB each, 20 MB together)."))
)

func (s *Server) sendTools() []Tool {
	return []Tool{
		{Scope: oauth.ScopeSend, Handler: handle(s, s.send), Def: tool[SentResult]("send_message",
			"Sends an email from the account to the given recipients (\"Name <addr>\" or plain addresses) and files a copy in Sent. "+
				"Give body_text, body_html or both. The account's signature is appended unless include_signature is false. "+
				"Sending is irreversible: confirm recipients and content with the user. Limited to "+sendLimitDescription+".",
			hints("Send email", false, false, false, true), argAccount,
			addressList("to", "Recipients.", true), addressList("cc", "Cc recipients.", false), addressList("bcc", "Bcc recipients (hidden).", false),
			mcplib.WithString("subject", mcplib.Required(), mcplib.MaxLength(998), mcplib.Description("Subject line.")),
			argBodyText, argBodyHTML, argSig, argAttach, argIdem)},
		{Scope: oauth.ScopeSend, Handler: handle(s, s.reply), Def: tool[SentResult]("reply_message",
			"Replies to a message: to its Reply-To or sender, or with reply_all to everyone on it except the user's own addresses. "+
				"Keeps the conversation threaded (In-Reply-To, References, Re: subject), quotes the original unless quote_original is false, "+
				"marks the original answered and files a copy in Sent. Confirm with the user before sending. Limited to "+sendLimitDescription+".",
			hints("Reply to email", false, false, false, true), argAccount, argFolder, argUID, argBodyText, argBodyHTML,
			mcplib.WithBoolean("reply_all", mcplib.Description("Reply to all recipients (default false).")),
			mcplib.WithBoolean("quote_original", mcplib.DefaultBool(true), mcplib.Description("Quote the original message below the reply (default true).")),
			addressList("cc", "Extra Cc recipients.", false), addressList("bcc", "Bcc recipients.", false), argSig, argAttach, argIdem)},
	}
}

func (s *Server) send(ctx context.Context, acct *mail.Account, a sendArgs) (any, string, error) {
	if err := s.allowSend(ctx); err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(a.BodyText) == "" && strings.TrimSpace(a.BodyHTML) == "" {
		return nil, "", fail("Give body_text or body_html: the message has no content.")
	}
	if n := len(a.To) + len(a.Cc) + len(a.Bcc); n > maxRecipients {
		return nil, "", fail("%d recipients: at most %d per message.", n, maxRecipients)
	}
	files, err := decodeAttachments(ctx, a.Attachments)
	if err != nil {
		return nil, "", err
	}
	m, err := s.o.Mail.Compose(acct, mail.Outgoing{To: a.To, Cc: a.Cc, Bcc: a.Bcc, Subject: a.Subject, Text: a.BodyText,
		HTML: a.BodyHTML, IncludeSignature: boolOr(a.IncludeSignature, true), Attachments: files})
	if err != nil {
		return nil, "", err
	}
	return s.enqueue(ctx, acct, outboxItem{kind: store.OutboxSend, msg: m,
		key: callKey(a.IdempotencyKey, store.OutboxSend, acct.ID, a.To, a.Cc, a.Bcc, a.Subject, a.BodyText, a.BodyHTML, a.IncludeSignature, filesHash(files))})
}

// filesHash identifies attachments by name, type and content.
func filesHash(files []mail.OutgoingAttachment) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00", f.Filename, f.ContentType, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) reply(ctx context.Context, acct *mail.Account, a sendArgs) (any, string, error) {
	if err := s.allowSend(ctx); err != nil {
		return nil, "", err
	}
	if a.UID == 0 {
		return nil, "", fail("uid is required: the message to reply to, from list_messages or search_messages.")
	}
	if strings.TrimSpace(a.BodyText) == "" && strings.TrimSpace(a.BodyHTML) == "" {
		return nil, "", fail("Give body_text or body_html: the reply has no content.")
	}
	if n := len(a.Cc) + len(a.Bcc); n > maxRecipients {
		return nil, "", fail("%d extra recipients: at most %d per message.", n, maxRecipients)
	}
	files, err := decodeAttachments(ctx, a.Attachments)
	if err != nil {
		return nil, "", err
	}
	out, err := s.o.Mail.ReplyOutgoing(ctx, acct, mail.ReplyOptions{Folder: folderOr(a.Folder), UID: a.UID, ReplyAll: a.ReplyAll,
		Quote: boolOr(a.QuoteOriginal, true), Text: a.BodyText, HTML: a.BodyHTML, Cc: a.Cc, Bcc: a.Bcc,
		IncludeSignature: boolOr(a.IncludeSignature, true), Attachments: files})
	if err != nil {
		return nil, "", err
	}
	m, err := s.o.Mail.Compose(acct, out)
	if err != nil {
		return nil, "", err
	}
	return s.enqueue(ctx, acct, outboxItem{kind: store.OutboxReply, msg: m, replyFolder: folderOr(a.Folder), replyUID: a.UID,
		key: callKey(a.IdempotencyKey, store.OutboxReply, acct.ID, folderOr(a.Folder), a.UID, a.ReplyAll, a.Cc, a.Bcc, a.BodyText, a.BodyHTML,
			a.IncludeSignature, a.QuoteOriginal, filesHash(files))})
}

// allowSend applies the stricter per-user limit on sending.
func (s *Server) allowSend(ctx context.Context) error {
	p, _ := oauth.PrincipalFrom(ctx)
	if wait, ok := s.sends.allow(p.UserID); !ok {
		return fail("Sending is limited to %s. Retry in %d minutes.", sendLimitDescription, int(wait.Minutes())+1)
	}
	return nil
}

// decodeAttachments decodes the attachments of a send; their content is
// base64, or a reference to a file the request's body was stripped of
// (see extractFiles).
func decodeAttachments(ctx context.Context, in []attachmentArg) ([]mail.OutgoingAttachment, error) {
	if len(in) > maxAttachments {
		return nil, fail("At most %d attachments per message.", maxAttachments)
	}
	var out []mail.OutgoingAttachment
	total := 0
	for _, a := range in {
		if strings.TrimSpace(a.Filename) == "" || strings.ContainsAny(a.Filename, "\r\n/\\") {
			return nil, fail("Each attachment needs a plain filename (no path, no line breaks).")
		}
		f, ok := filesFrom(ctx).take(a.ContentBase64)
		if !ok {
			f.data, f.err = base64.StdEncoding.DecodeString(a.ContentBase64)
			if f.err != nil {
				f.data, f.err = base64.RawStdEncoding.DecodeString(a.ContentBase64)
			}
			f.size = int64(len(f.data))
		}
		data := f.data
		if f.err != nil {
			return nil, fail("Attachment %q: content_base64 is not valid base64.", a.Filename)
		}
		if f.size > maxAttachmentBytes {
			return nil, fail("Attachment %q is %.1f MB; the limit is %d MB per file.", a.Filename, float64(f.size)/(1<<20), maxAttachmentBytes>>20)
		}
		if total += len(data); total > maxAttachmentsTotal {
			return nil, fail("Attachments total more than %d MB; send fewer or smaller files.", maxAttachmentsTotal>>20)
		}
		out = append(out, mail.OutgoingAttachment{Filename: a.Filename, ContentType: a.ContentType, Data: data})
	}
	return out, nil
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
