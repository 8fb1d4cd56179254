package mail

import (
	"slices"

	"github.com/emersion/go-imap/v2"
)

// pageMemo is what a connection knows of the newest page it listed (the
// last messages by sequence number) on a server with CONDSTORE (RFC
// 7162): the UID and flags of each message, and a modification sequence
// that none of them had passed when they were read. Listing the same
// range again asks only for the messages changed since (CHANGEDSINCE),
// on most calls none, so neither side reads or writes a FETCH response
// per message.
//
// Why the UIDs the memo holds stay right: the range is asked again only
// while it ends at the folder's last message, by the count the NOOP
// before each list brings up to date, so while the folder holds as many
// messages as when the memo was made. The page then
// holds other messages only if some were expunged and as many arrived;
// an arrival comes last, in the page, with a modification sequence above
// every earlier one (RFC 7162 §3.1.1), so CHANGEDSINCE returns it, under
// a UID the memo does not have at its place, and the page is read whole.
type pageMemo struct {
	folder   string
	validity uint32
	set      imap.SeqSet
	first    uint32     // sequence number of msgs[0]
	msgs     []uidFlags // by sequence number
	modseq   uint64
}

// flagsModSeqFetch reads a page whole for its memo.
var flagsModSeqFetch = &imap.FetchOptions{UID: true, Flags: true, ModSeq: true}

// pageFlags is fetchFlags for set, through the connection's page memo
// when set is the newest page of the selected folder and the server has
// CONDSTORE.
func (c *Conn) pageFlags(set imap.NumSet) ([]uidFlags, error) {
	seq, ok := set.(imap.SeqSet)
	mbox := c.client.Mailbox()
	if !ok || len(seq) != 1 || seq[0].Start == 0 || seq[0].Start > seq[0].Stop || mbox == nil || seq[0].Stop != mbox.NumMessages ||
		mbox.Name != c.selected || c.selData == nil || !c.has(imap.CapCondStore) {
		return c.fetchFlags(set, flagsFetch)
	}
	if m := c.memo; m != nil && m.folder == c.selected && m.validity == c.selData.UIDValidity && slices.Equal(m.set, seq) {
		changed, err := c.fetchFlags(set, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: m.modseq})
		if err != nil {
			c.memo = nil
			return nil, err
		}
		if m.update(changed) {
			return slices.Clone(m.msgs), nil
		}
	}
	c.memo = nil
	all, err := c.fetchFlags(set, flagsModSeqFetch)
	if err != nil {
		return nil, err
	}
	c.memo = newPageMemo(c.selected, c.selData.UIDValidity, seq, all)
	return all, nil
}

// newPageMemo returns the memo of the newest page, set (one range), read
// whole; nil when the answer does not cover it exactly once with UIDs and
// modification sequences.
func newPageMemo(folder string, validity uint32, set imap.SeqSet, all []uidFlags) *pageMemo {
	m := &pageMemo{folder: folder, validity: validity, set: slices.Clone(set),
		first: set[0].Start, msgs: make([]uidFlags, set[0].Stop-set[0].Start+1)}
	if len(all) != len(m.msgs) {
		return nil
	}
	for _, f := range all {
		i := int64(f.seq) - int64(m.first)
		if i < 0 || i >= int64(len(m.msgs)) || m.msgs[i].uid != 0 || f.uid == 0 || f.modseq == 0 {
			return nil
		}
		m.msgs[i] = f
		m.modseq = max(m.modseq, f.modseq)
	}
	return m
}

// update applies the messages changed since m.modseq, and reports false
// when one of them is not the message m has at its place (the page must
// then be read whole).
func (m *pageMemo) update(changed []uidFlags) bool {
	for _, f := range changed {
		i := int64(f.seq) - int64(m.first)
		if i < 0 || i >= int64(len(m.msgs)) || m.msgs[i].uid != f.uid || f.modseq == 0 {
			return false
		}
		m.msgs[i].flags, m.msgs[i].modseq = f.flags, f.modseq
		m.modseq = max(m.modseq, f.modseq)
	}
	return true
}
