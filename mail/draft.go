package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// DraftResult says where a draft was saved.
type DraftResult struct {
	Folder    string
	UID       uint32 // 0 when the server reported none and it could not be found
	MessageID string // without angle brackets
}

// maxDraftBytes bounds a draft read back to be sent (a message with the
// largest attachments the tools accept, base64-encoded, fits).
const maxDraftBytes = 40 << 20

// SaveDraft renders out as Compose does (signature included, Bcc kept in
// the header as mail clients keep it in drafts) and appends it to the
// Drafts folder with \Draft and \Seen. With replace set, the draft with
// that UID is removed afterwards, by UID only, once the new one is
// saved; when out has no threading of its own it keeps the replaced
// draft's In-Reply-To and References. A draft may have no recipients yet.
func (e *Engine) SaveDraft(ctx context.Context, acct *Account, out Outgoing, replace uint32) (*DraftResult, error) {
	var res *DraftResult
	err := e.Do(ctx, acct, func(c *Conn) error {
		drafts, err := c.draftsFolder()
		if err != nil {
			return err
		}
		if replace != 0 {
			old, err := c.readDraft(drafts, replace, maxHeaderBlock)
			if err != nil {
				return err
			}
			if out.InReplyTo == "" && len(out.References) == 0 {
				out.InReplyTo, out.References = old.InReplyTo, old.References
			}
		}
		raw, msgID, _, err := buildMessage(acct, out, true)
		if err != nil {
			return err
		}
		uid, err := c.appendDraft(drafts, FiledCopy(raw, out.Bcc), msgID)
		if err != nil {
			return err
		}
		res = &DraftResult{Folder: drafts, UID: uid, MessageID: msgID}
		if replace != 0 {
			trash, err := c.roleFolder(RoleTrash)
			if err != nil {
				return err
			}
			return c.deletePermanently(drafts, trash, uidSet([]uint32{replace}))
		}
		return nil
	})
	if err != nil && res != nil {
		return res, &Error{Kind: KindOf(err), Op: "remove replaced draft", Err: fmt.Errorf(
			"the new draft is saved as uid %d, but the old one (uid %d) could not be removed: %w", res.UID, replace, err)}
	}
	return res, err
}

// ComposeDraft reads the draft uid of the Drafts folder and returns it
// as it is sent: as it is, dated now and without its Bcc field (Bcc
// recipients get it all the same), with the Message-ID it answers. Only
// a message with \Draft and one From field holding one of the account's
// own addresses is sent; the From that goes out is written from that
// address, and trace and mail-app fields are dropped (replacedOnSend).
func (e *Engine) ComposeDraft(ctx context.Context, acct *Account, uid uint32) (*Composed, string, error) {
	var d *draft
	var drafts string
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
		if drafts, err = c.draftsFolder(); err != nil {
			return err
		}
		d, err = c.readDraft(drafts, uid, maxDraftBytes)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if !d.flagged {
		return nil, "", invalid("send draft", "message %d of %s is not a draft (it has no \\Draft flag): only drafts are sent as they are; "+
			"send_message sends new mail", uid, drafts)
	}
	from, err := draftFrom(acct, d.raw())
	if err != nil {
		return nil, "", err
	}
	if len(d.rcpts) == 0 {
		return nil, "", invalid("send draft", "the draft has no recipients: give it some with update_draft")
	}
	if len(d.rcpts) > MaxRecipients {
		return nil, "", invalid("send draft", "%d recipients: at most %d per message", len(d.rcpts), MaxRecipients)
	}
	if d.MessageID == "" {
		d.MessageID = newMessageID(acct.Email)
	}
	date := "Date: " + time.Now().Format(time.RFC1123Z) + "\r\n"
	head := "From: " + from.String() + "\r\nMessage-ID: <" + d.MessageID + ">\r\n" + date
	raw := rewriteHeader(d.buf, draftRoom, head, func(name string) bool { return strings.EqualFold(name, "Bcc") || replacedOnSend(name) })
	return &Composed{Raw: raw, MessageID: d.MessageID, Rcpts: d.rcpts, Bcc: d.bcc, Subject: d.Subject}, d.InReplyTo, nil
}

// DraftSent removes the sent draft uid from Drafts (on Gmail through
// Trash, as Gmail's own discard does) and marks the message
// of INBOX with the Message-ID inReplyTo \Answered.
func (e *Engine) DraftSent(ctx context.Context, acct *Account, uid uint32, inReplyTo string) error {
	err := e.Do(ctx, acct, func(c *Conn) error {
		drafts, err := c.draftsFolder()
		if err != nil {
			return err
		}
		trash, err := c.roleFolder(RoleTrash)
		if err != nil {
			return err
		}
		if err := c.deletePermanently(drafts, trash, uidSet([]uint32{uid})); err != nil {
			return err
		}
		return c.markAnswered(inReplyTo)
	})
	if err != nil {
		return &Error{Kind: KindOf(err), Op: "after sending the draft", Err: err}
	}
	return nil
}

// replacedOnSend names the fields a draft loses when it is sent: those
// written anew (From, Date, Message-ID), the trace and authentication
// fields a message collects on its way in, which a draft of ours never
// has and a message copied into Drafts would carry out again, and what
// mail apps keep in their drafts for themselves (Thunderbird's Fcc names
// the IMAP login).
func replacedOnSend(name string) bool {
	switch strings.ToLower(name) {
	case "from", "sender", "date", "message-id", "received", "return-path", "delivered-to", "x-original-to", "authentication-results",
		"received-spf", "dkim-signature", "x-google-dkim-signature", "x-received", "x-gm-message-state",
		"fcc", "x-identity-key", "x-account-key", "x-uniform-type-identifier", "x-unsent", "x-universally-unique-identifier":
		return true
	}
	lower := strings.ToLower(name)
	return strings.HasPrefix(lower, "resent-") || strings.HasPrefix(lower, "arc-") || strings.HasPrefix(lower, "x-mozilla-") ||
		strings.HasPrefix(lower, "x-apple-")
}

// draftFrom returns the sender of a draft: its one From field must hold
// one mailbox, one of the account's own addresses. The draft is sent
// with a From written from it (and no Sender), so what is checked is
// what goes out.
func draftFrom(acct *Account, raw []byte) (*netmail.Address, error) {
	const op = "send draft"
	froms, size := fieldValues(raw, "From")
	switch {
	case size > maxHeaderBlock:
		return nil, invalid(op, "the draft's header is larger than %d KB", maxHeaderBlock>>10)
	case len(froms) != 1:
		return nil, invalid(op, "the draft has %d From fields, not one: update_draft writes it anew", len(froms))
	}
	list := parseAddressList(froms[0], "")
	if len(list) != 1 {
		return nil, invalid(op, "the draft's From holds %d addresses, not one: update_draft writes it anew", len(list))
	}
	p, err := netmail.ParseAddress(list[0])
	if err != nil {
		return nil, invalid(op, "the draft's From cannot be read: update_draft writes it anew")
	}
	if !acct.ownAddresses()[strings.ToLower(p.Address)] {
		return nil, invalid(op, "the draft's From (%s) is not this account's address: update_draft writes it anew", cleanLine(p.Address[:min(len(p.Address), 100)]))
	}
	p.Name = cleanLine(p.Name)
	return p, nil
}

// fieldValues returns the values of the header fields of raw named name
// (unfolded, as rewriteHeader sees the fields), and the header's size.
func fieldValues(raw []byte, name string) (values []string, size int) {
	cur := -1
	for rest := raw; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		size += len(line)
		text := strings.TrimRight(string(line), "\r\n")
		switch {
		case text == "":
			return values, size
		case text[0] == ' ' || text[0] == '\t':
			if cur >= 0 {
				values[cur] += text
			}
		default:
			cur = -1
			if k, v, ok := strings.Cut(text, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
				values, cur = append(values, strings.TrimSpace(v)), len(values)
			}
		}
	}
	return values, size
}

// draftsFolder returns the account's Drafts folder.
func (c *Conn) draftsFolder() (string, error) {
	drafts, err := c.roleFolder(RoleDrafts)
	if err != nil {
		return "", err
	}
	if drafts == "" {
		return "", &Error{Kind: KindUnsupported, Op: "drafts", Addr: c.addr,
			Err: errors.New("the account has no Drafts folder: create one named Drafts (create_folder)")}
	}
	return drafts, nil
}

// appendDraft appends filed to folder as a draft and returns its UID: the
// server's APPENDUID, or else the UID of the message with msgID.
func (c *Conn) appendDraft(folder string, filed Filed, msgID string) (uint32, error) {
	data, err := c.appendMessage(folder, filed, imap.FlagDraft, imap.FlagSeen)
	if err != nil {
		return 0, err
	}
	if data != nil && data.UID != 0 {
		return uint32(data.UID), nil
	}
	if _, err := c.selectFolder(folder); err != nil {
		return 0, err
	}
	found, err := c.search(SearchQuery{}, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}})
	if err != nil || len(found) == 0 {
		return 0, err
	}
	return uint32(found[len(found)-1]), nil
}

// draft is a draft read back from the server.
type draft struct {
	Header
	buf     []byte   // the message after draftRoom free bytes (see raw)
	rcpts   []string // envelope addresses of To, Cc and Bcc
	bcc     []string // the Bcc recipients
	flagged bool     // it has \Draft
}

// raw is the message as read.
func (d *draft) raw() []byte { return d.buf[draftRoom:] }

// readDraft reads up to limit bytes of the draft uid in folder; a draft
// larger than limit is refused, unless limit only asks for its header.
func (c *Conn) readDraft(folder string, uid uint32, limit int) (*draft, error) {
	stale, err := c.openFolder(folder)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	read := func(r io.Reader) {
		size := int64(limit) + 1
		if s, ok := r.(interface{ Size() int64 }); ok {
			size = min(size, s.Size())
		}
		// Sized once (a bytes.Buffer reads MinRead bytes at a time), with
		// room in front for the fields sending writes (rewriteHeader).
		buf.Grow(draftRoom + int(size) + bytes.MinRead)
		buf.Write(make([]byte, draftRoom))
		_, err = io.Copy(&buf, io.LimitReader(r, int64(limit)+1))
	}
	exists, ferr := c.streamWhole("fetch draft", uid, 0, read)
	if ferr == nil && !exists && stale {
		if ferr = c.catchUp(); ferr == nil {
			exists, ferr = c.streamWhole("fetch draft", uid, 0, read)
		}
	}
	switch {
	case ferr != nil:
		return nil, ferr
	case err != nil:
		return nil, &Error{Kind: KindOther, Op: "fetch draft", Addr: c.addr, Err: err}
	case !exists:
		return nil, &Error{Kind: KindNotFound, Op: "fetch draft", Addr: c.addr,
			Err: fmt.Errorf("no message with uid %d in %s: list_messages on %s shows the drafts", uid, folder, folder)}
	case buf.Len()-draftRoom > limit && limit == maxDraftBytes:
		return nil, invalid("send draft", "the draft is larger than %d MB", maxDraftBytes>>20)
	}
	d := &draft{buf: buf.Bytes()}
	h, _ := readHeader(bufio.NewReader(bytes.NewReader(d.raw())))
	d.Header = headerOf(h)
	bufs, err := c.fetch("fetch draft flags", imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, Flags: true})
	if err != nil {
		return nil, err
	}
	for _, m := range bufs {
		d.flagged = d.flagged || slices.Contains(m.Flags, imap.FlagDraft)
	}
	_, params := parseMediaType(h.Get("Content-Type"))
	for _, field := range []string{"To", "Cc", "Bcc"} {
		for _, a := range parseAddressList(h.Get(field), params["charset"]) {
			if p, err := netmail.ParseAddress(a); err == nil {
				d.rcpts = append(d.rcpts, p.Address)
				if field == "Bcc" {
					d.bcc = append(d.bcc, p.String())
				}
			}
		}
	}
	return d, nil
}

// markAnswered sets \Answered on the message of INBOX with msgID, if
// there is one.
func (c *Conn) markAnswered(msgID string) error {
	if msgID == "" {
		return nil
	}
	if _, err := c.selectFolder("INBOX"); err != nil {
		return err
	}
	found, err := c.search(SearchQuery{}, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}})
	if err != nil || len(found) == 0 {
		return err
	}
	return c.store(imap.UIDSetNum(found...), imap.StoreFlagsAdd, []imap.Flag{imap.FlagAnswered})
}

// draftRoom is the room kept in front of a draft read to be sent, so
// that the fields sending writes fit before the body without copying it.
const draftRoom = 1 << 10

// rewriteHeader returns the message buf[at:] with the header fields drop
// names removed (with their continuation lines) and head put in front;
// the rest of the message is kept byte for byte. The new header is
// written over the old one and the at bytes before it when it fits, so
// that the body is not copied; buf is then no longer the old message.
func rewriteHeader(buf []byte, at int, head string, drop func(name string) bool) []byte {
	raw := buf[at:]
	out := bytes.NewBuffer(make([]byte, 0, len(head)+min(len(raw), maxHeaderBlock)))
	out.WriteString(head)
	skipping := false
	rest := raw
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the empty line that ends the header
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(string(line), ":")
			skipping = drop(strings.TrimSpace(name))
		}
		if !skipping {
			out.Write(line)
		}
		rest = rest[len(line):]
	}
	if end := len(buf) - len(rest); out.Len() <= end { // the new header ends where the old one did
		start := end - out.Len()
		copy(buf[start:end], out.Bytes())
		return buf[start:]
	}
	out.Write(rest)
	return out.Bytes()
}
