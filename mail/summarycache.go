package mail

import (
	"unique"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// summaryCache keeps what never changes of a message once it has a UID
// in a folder generation (UIDVALIDITY): its decoded header, size,
// received date, structure. A list of messages seen before then asks the
// server for their flags only, which spares both sides the headers and
// BODYSTRUCTUREs of the page, the most expensive part of a list.
type summaryCache = lru[summaryKey, fetched]

// summaryKey names a message in a folder generation. The generation is
// interned, so that the lookups of a page hash and compare a pointer and
// a UID, not the strings of the account and folder.
type summaryKey struct {
	scope unique.Handle[summaryScope]
	uid   uint32
}

// summaryScope is a folder generation of an account.
type summaryScope struct {
	account  string // Conn.accountKey
	folder   string
	validity uint32
}

// summaryCacheBytes bounds the cache's estimated size.
const summaryCacheBytes = 32 << 20

func newSummaryCache() *summaryCache { return newLRU[summaryKey, fetched](summaryCacheBytes) }

// cacheSummary keeps f (without its flags, which change) under k.
func cacheSummary(sc *summaryCache, k summaryKey, f fetched) {
	f.Flags = nil
	size := 512 + len(f.Subject) + len(f.From) + len(f.MessageID) + len(f.InReplyTo)
	for _, l := range [][]string{f.To, f.Cc, f.ReplyTo, f.References} {
		for _, s := range l {
			size += len(s) + 16
		}
	}
	sc.put(k, f, size)
}

// flagsFetch asks for what changes of a message: its flags.
var flagsFetch = &imap.FetchOptions{UID: true, Flags: true}

// uidFlags is what a FETCH of flags tells of one message.
type uidFlags struct {
	seq      uint32
	uid      imap.UID
	flags    []imap.Flag
	hasFlags bool   // the answer held FLAGS (an unasked one may not)
	modseq   uint64 // when asked for
}

// fetchFlags runs a FETCH of flags (opt asks for no more than UID, FLAGS
// and MODSEQ), reading each message's items as they come rather than
// collecting them into a buffer.
func (c *Conn) fetchFlags(set imap.NumSet, opt *imap.FetchOptions) (out []uidFlags, err error) {
	err = c.do("fetch flags", func() error {
		cmd := c.client.Fetch(set, opt)
		defer cmd.Close()
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			f := uidFlags{seq: m.SeqNum}
			for item := m.Next(); item != nil; item = m.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					f.uid = it.UID
				case imapclient.FetchItemDataFlags:
					f.flags, f.hasFlags = it.Flags, true
				case imapclient.FetchItemDataModSeq:
					f.modseq = it.ModSeq
				}
			}
			out = append(out, f)
		}
		return cmd.Close()
	})
	return out, err
}

// cachedSummaries is fetchSummaries through the cache: the flags of set,
// then the rest of the messages not cached yet. The structures, by UID,
// come only when asked for.
func (c *Conn) cachedSummaries(set imap.NumSet, withStructures bool) ([]Summary, map[uint32]imap.BodyStructure, error) {
	var structures map[uint32]imap.BodyStructure
	if withStructures {
		structures = map[uint32]imap.BodyStructure{}
	}
	if c.sumCache == nil || c.selData == nil || c.acct == nil {
		fresh, err := c.fetchSummaries(set)
		if err != nil {
			return nil, nil, err
		}
		return appendFetched(nil, structures, fresh...), structures, nil
	}
	scope := unique.Make(summaryScope{account: c.accountKey(), folder: c.selected, validity: c.selData.UIDValidity})
	flags, err := c.pageFlags(set)
	if err != nil {
		return nil, nil, err
	}
	keys := make([]summaryKey, len(flags))
	for i, m := range flags {
		keys[i] = summaryKey{scope: scope, uid: uint32(m.uid)}
	}
	out := make([]Summary, 0, len(flags))
	var missing []imap.UID
	c.sumCache.getEach(keys, func(i int, f fetched, ok bool) {
		m := flags[i]
		if !ok {
			missing = append(missing, m.uid)
			return
		}
		f.Flags = make([]string, len(m.flags))
		for j, fl := range m.flags {
			f.Flags[j] = string(fl)
		}
		out = appendFetched(out, structures, f)
	})
	if len(missing) == 0 {
		return out, structures, nil
	}
	asked := make(map[imap.UID]bool, len(missing))
	for _, uid := range missing {
		asked[uid] = true
	}
	fresh, err := c.fetchSummaries(imap.UIDSetNum(missing...))
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fresh {
		if f.Note == "" && asked[imap.UID(f.UID)] {
			cacheSummary(c.sumCache, summaryKey{scope: scope, uid: f.UID}, f)
		}
	}
	return appendFetched(out, structures, fresh...), structures, nil
}

// appendFetched appends the summaries of fs to out and, when structures
// is not nil, records their structures in it.
func appendFetched(out []Summary, structures map[uint32]imap.BodyStructure, fs ...fetched) []Summary {
	for _, f := range fs {
		out = append(out, f.Summary)
		if structures != nil {
			structures[f.UID] = f.structure
		}
	}
	return out
}
