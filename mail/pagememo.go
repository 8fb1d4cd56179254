package mail

import (
	"errors"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// pageMemo is what a connection knows of the newest page it listed (the
// last messages by sequence number) on a server with CONDSTORE (RFC
// 7162): the UID and flags of each message. Listing the same range again
// asks only for the messages whose modification sequence passed base
// (CHANGEDSINCE), on most calls none, so neither side reads or writes a
// FETCH response per message.
//
// base is the highest modification sequence seen before the previous
// read of the page began (on this connection, in this folder generation,
// or in the SELECT's HIGHESTMODSEQ), never one seen during it. Every
// change made after a read began gets a modification sequence above
// everything seen before, so the next read asks for it whatever order the
// server answered in; a change seen twice is applied twice, which is
// harmless.
//
// The UIDs the memo holds stay right: the range is asked again only while
// it ends at the folder's last message, by the count the NOOP before each
// list brings up to date, so while the folder holds as many messages as
// then. It holds other messages only if some were expunged and as many
// arrived; an arrival comes last, into the page, with a modification
// sequence above base, so CHANGEDSINCE returns it under a UID the memo
// does not have at its place, and the page is read whole.
type pageMemo struct {
	folder   string
	validity uint32
	plain    bool       // the folder has no modification sequences: flags are read whole
	first    uint32     // sequence number of msgs[0]
	msgs     []uidFlags // by sequence number
	base     uint64     // CHANGEDSINCE of the next read
	seen     uint64     // the highest modification sequence read so far
}

// flagsModSeqFetch reads a page whole for its memo.
var flagsModSeqFetch = &imap.FetchOptions{UID: true, Flags: true, ModSeq: true}

// pageFlags is fetchFlags for set, through the connection's page memo
// when set is the newest page of the selected folder and the server has
// CONDSTORE.
func (c *Conn) pageFlags(set imap.NumSet) ([]uidFlags, error) {
	seq, ok := set.(imap.SeqSet)
	if !ok || len(seq) != 1 || seq[0].Start == 0 || seq[0].Start > seq[0].Stop || c.selData == nil ||
		seq[0].Stop != c.count() || !c.has(imap.CapCondStore) {
		return c.fetchFlags(set, flagsFetch)
	}
	m := c.memo
	if m == nil || m.folder != c.selected || m.validity != c.selData.UIDValidity {
		m = nil
	}
	if m != nil && m.plain {
		return c.fetchFlags(set, flagsFetch)
	}
	if m != nil && m.first == seq[0].Start && len(m.msgs) == int(seq[0].Stop-seq[0].Start+1) {
		changed, err := c.fetchFlags(set, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: m.base})
		if err != nil {
			return c.plainAfter(set, err)
		}
		if before := m.seen; m.update(changed) {
			m.base = before
			return slices.Clone(m.msgs), nil
		}
	}
	seen := c.selData.HighestModSeq // all seen before the whole read begins
	if m != nil {
		seen = max(seen, m.seen)
	}
	c.memo = nil
	all, err := c.fetchFlags(set, flagsModSeqFetch)
	if err != nil {
		return c.plainAfter(set, err)
	}
	c.memo = newPageMemo(c.selected, c.selData.UIDValidity, seen, seq[0], all)
	return all, nil
}

// count is the selected folder's message count as the client last heard
// it. go-imap reports a SELECT done before it records the mailbox, so
// right after one its own count may be missing or the last folder's; the
// SELECT's answer has it then.
func (c *Conn) count() uint32 {
	if mbox := c.client.Mailbox(); mbox != nil && mbox.Name == c.selected {
		return mbox.NumMessages
	}
	return c.selData.NumMessages
}

// plainAfter reads set's flags without modification sequences when err
// is the server refusing a FETCH with them, and returns other errors. A
// BAD is how a folder without them (NOMODSEQ, RFC 7162) refuses: such a
// folder is not asked again on this connection.
func (c *Conn) plainAfter(set imap.NumSet, err error) ([]uidFlags, error) {
	c.memo = nil
	var imapErr *imap.Error
	if c.broken || !errors.As(err, &imapErr) {
		return nil, err
	}
	if imapErr.Type == imap.StatusResponseTypeBad {
		c.memo = &pageMemo{folder: c.selected, validity: c.selData.UIDValidity, plain: true}
	}
	return c.fetchFlags(set, flagsFetch)
}

// newPageMemo returns the memo of the newest page, page, read whole; nil
// when the answer does not cover it exactly once with UIDs, flags and
// modification sequences.
func newPageMemo(folder string, validity uint32, base uint64, page imap.SeqRange, all []uidFlags) *pageMemo {
	m := &pageMemo{folder: folder, validity: validity, base: base, seen: base,
		first: page.Start, msgs: make([]uidFlags, page.Stop-page.Start+1)}
	if len(all) != len(m.msgs) {
		return nil
	}
	for _, f := range all {
		i := int64(f.seq) - int64(m.first)
		if i < 0 || i >= int64(len(m.msgs)) || m.msgs[i].uid != 0 || f.uid == 0 || f.modseq == 0 || !f.hasFlags {
			return nil
		}
		m.msgs[i] = f
		m.seen = max(m.seen, f.modseq)
	}
	return m
}

// update applies the messages changed since m.base, and reports false
// when one of them is not the message m has at its place (the page must
// then be read whole).
func (m *pageMemo) update(changed []uidFlags) bool {
	for _, f := range changed {
		i := int64(f.seq) - int64(m.first)
		if i < 0 || i >= int64(len(m.msgs)) || m.msgs[i].uid != f.uid || f.modseq == 0 || !f.hasFlags {
			return false
		}
		m.msgs[i].flags, m.msgs[i].modseq = f.flags, f.modseq
		m.seen = max(m.seen, f.modseq)
	}
	return true
}
