package mail

import "context"

// The engine's steps of a send (Compose, Submit, FileSent; ComposeDraft,
// DraftSent; ReplyOutgoing) are put together by the outbox, outside this
// package. These tests put them together the same way, in one call.

// Send builds the MIME once, submits exactly those bytes over SMTP and
// appends the same bytes (with the Bcc field, see FiledCopy) to Sent with
// \Seen, unless the provider keeps
// its own copy (Gmail, Outlook/Microsoft 365) or a message with the same
// Message-ID is already in Sent. Header fields with CR or LF are refused
// (KindInvalid). When the message went out but saving the copy failed,
// both the result and the error are returned: do not send again.
func (e *Engine) Send(ctx context.Context, acct *Account, out Outgoing) (*SendResult, error) {
	m, err := e.Compose(acct, out)
	if err != nil {
		return nil, err
	}
	return e.deliver(ctx, acct, m)
}

// deliver submits m and files it in Sent, as Send describes.
func (e *Engine) deliver(ctx context.Context, acct *Account, m *Composed) (*SendResult, error) {
	if err := e.Submit(ctx, acct, m.Raw, m.Rcpts, nil); err != nil {
		return nil, err
	}
	return e.FileSent(ctx, acct, FiledCopy(m.Raw, m.Bcc), m.MessageID)
}

// Reply answers the message opt.UID in opt.Folder: to its Reply-To (else
// From); with ReplyAll also to (To ∪ Cc ∪ Reply-To) minus the account's
// own addresses. It keeps the thread (In-Reply-To, References), prefixes
// "Re: " once, and sets \Answered on the original after sending. As with
// Send, a non-nil result with an error means the reply was sent.
func (e *Engine) Reply(ctx context.Context, acct *Account, opt ReplyOptions) (*SendResult, error) {
	out, err := e.ReplyOutgoing(ctx, acct, opt)
	if err != nil {
		return nil, err
	}
	res, err := e.Send(ctx, acct, out)
	if res == nil {
		return nil, err
	}
	if ferr := e.SetFlags(ctx, acct, opt.Folder, []uint32{opt.UID}, []string{FlagAnswered}, nil); err == nil {
		err = ferr
	}
	return res, err
}

// SendDraft sends the draft uid of the Drafts folder as it is, dated
// now and without its Bcc field (Bcc recipients get it all the same),
// files it in Sent as Send does, and then removes the draft (on Gmail
// through Trash, as Gmail's own discard does) and marks the message it
// answers \Answered when that is in INBOX. As with Send, a non-nil
// result with an error means the message was sent: do not send again.
func (e *Engine) SendDraft(ctx context.Context, acct *Account, uid uint32) (*SendResult, error) {
	m, inReplyTo, err := e.ComposeDraft(ctx, acct, uid)
	if err != nil {
		return nil, err
	}
	res, err := e.deliver(ctx, acct, m)
	if res == nil {
		return nil, err
	}
	if ferr := e.DraftSent(ctx, acct, uid, inReplyTo); err == nil {
		err = ferr
	}
	return res, err
}
