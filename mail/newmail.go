package mail

import (
	"context"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// Mark is where a reader last looked in a folder: the folder's
// UIDVALIDITY and UIDNEXT then, and its HIGHESTMODSEQ where the server
// has CONDSTORE (0 otherwise). The zero Mark means "never looked".
type Mark struct {
	UIDValidity uint32
	UIDNext     uint32
	ModSeq      uint64
}

// NewMail is what changed in a folder since a Mark.
type NewMail struct {
	// Messages are the newest of the new messages, newest first, at most
	// the limit asked for; Total counts them all. On a first look they
	// are the folder's most recent messages instead, and Total is 0.
	Messages []Summary
	Total    int
	// First is set when there was no mark; Reset when the folder's
	// UIDVALIDITY changed since the mark, so that nothing could be
	// compared (the folder was recreated or rebuilt): both are first
	// looks.
	First, Reset bool
	// Changed are messages older than the mark whose flags changed since
	// (read, flagged, answered elsewhere), newest first, at most the
	// limit; ChangedTotal counts them all. Only servers with CONDSTORE
	// report them; ChangesKnown says whether this one did.
	Changed      []Summary
	ChangedTotal int
	ChangesKnown bool
	// Mark is the mark to keep for the next look.
	Mark Mark
}

// FirstLook is how many recent messages a first look returns.
const FirstLook = 5

// NewMessages reports what arrived in folder since mark: messages whose
// UID is at or above the mark's UIDNEXT, and with CONDSTORE the older
// messages whose flags changed. A folder that has not changed costs one
// STATUS. Nothing is marked read.
func (e *Engine) NewMessages(ctx context.Context, acct *Account, folder string, mark Mark, limit int) (*NewMail, error) {
	var out *NewMail
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
		out, err = c.newSince(folder, mark, limit)
		return err
	})
	return out, err
}

func (c *Conn) newSince(folder string, mark Mark, limit int) (*NewMail, error) {
	limit = min(max(limit, 1), MaxLimit)
	condstore := c.has(imap.CapCondStore)
	var st imap.StatusData
	err := c.do("status", func() error {
		d, err := c.client.Status(folder, &imap.StatusOptions{UIDNext: true, UIDValidity: true, HighestModSeq: condstore}).Wait()
		if d != nil {
			st = *d
		}
		return err
	})
	if err != nil {
		if _, serr := c.selectFolder(folder); serr != nil {
			return nil, serr // names a folder that does not exist
		}
		return nil, err
	}
	out := &NewMail{Mark: Mark{UIDValidity: st.UIDValidity, UIDNext: uint32(st.UIDNext), ModSeq: st.HighestModSeq}, ChangesKnown: condstore && st.HighestModSeq > 0}
	if mark.UIDValidity == 0 || mark.UIDValidity != st.UIDValidity {
		out.First, out.Reset = mark.UIDValidity == 0, mark.UIDValidity != 0
		sel, err := c.selectFolder(folder)
		if err != nil {
			return nil, err
		}
		page, err := c.newest(sel, min(limit, FirstLook), false)
		if err != nil {
			return nil, err
		}
		out.Messages = page.Messages
		if len(page.Messages) > 0 {
			out.Mark.UIDNext = max(out.Mark.UIDNext, page.Messages[0].UID+1)
		}
		return out, nil
	}
	arrived := uint32(st.UIDNext) > mark.UIDNext
	changed := out.ChangesKnown && mark.ModSeq > 0 && st.HighestModSeq > mark.ModSeq
	if !arrived && !changed {
		out.Mark.UIDNext = max(out.Mark.UIDNext, mark.UIDNext)
		return out, nil
	}
	if _, err := c.selectFolder(folder); err != nil {
		return nil, err
	}
	if arrived {
		uids, err := c.search(SearchQuery{}, &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(mark.UIDNext), Stop: 0}}}})
		if err != nil {
			return nil, err
		}
		// "n:*" also matches the highest UID when it is below n.
		uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return u < imap.UID(mark.UIDNext) })
		if out.Total = len(uids); out.Total > 0 {
			out.Mark.UIDNext = max(out.Mark.UIDNext, uint32(uids[len(uids)-1])+1)
			if out.Messages, err = c.summaries(imap.UIDSetNum(uids[max(0, len(uids)-limit):]...), false); err != nil {
				return nil, err
			}
		}
	}
	if changed && mark.UIDNext > 1 {
		uids, err := c.changedSince(imap.UIDRange{Start: 1, Stop: imap.UID(mark.UIDNext - 1)}, mark.ModSeq)
		if err != nil {
			return nil, err
		}
		if out.ChangedTotal = len(uids); out.ChangedTotal > 0 {
			if out.Changed, err = c.summaries(imap.UIDSetNum(uids[max(0, len(uids)-limit):]...), false); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// changedSince returns, ascending, the UIDs in r of the selected folder
// whose flags changed after modseq (CONDSTORE's CHANGEDSINCE).
func (c *Conn) changedSince(r imap.UIDRange, modseq uint64) ([]imap.UID, error) {
	var uids []imap.UID
	err := c.do("fetch changed flags", func() error {
		cmd := c.client.Fetch(imap.UIDSet{r}, &imap.FetchOptions{UID: true, ChangedSince: modseq})
		defer cmd.Close()
		for {
			m := cmd.Next()
			if m == nil {
				break
			}
			buf, err := m.Collect()
			if err != nil {
				return err
			}
			if buf.UID != 0 {
				uids = append(uids, buf.UID)
			}
		}
		return cmd.Close()
	})
	slices.Sort(uids)
	return slices.Compact(uids), err
}
