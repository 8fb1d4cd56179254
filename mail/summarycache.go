package mail

import (
	"github.com/emersion/go-imap/v2"
)

// summaryCache keeps what never changes of a message once it has a UID
// in a folder generation (UIDVALIDITY): its decoded header, size,
// received date, structure. A list of messages seen before then asks the
// server for their flags only, which spares both sides the headers and
// BODYSTRUCTUREs of the page, the most expensive part of a list.
type summaryCache = lru[summaryKey, fetched]

type summaryKey struct {
	account  string // Conn.accountKey
	folder   string
	validity uint32
	uid      uint32
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
	key := summaryKey{account: c.accountKey(), folder: c.selected, validity: c.selData.UIDValidity}
	flags, err := c.fetch("fetch flags", set, flagsFetch)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Summary, 0, len(flags))
	var missing []imap.UID
	for _, m := range flags {
		key.uid = uint32(m.UID)
		f, ok := c.sumCache.get(key)
		if !ok {
			missing = append(missing, m.UID)
			continue
		}
		f.Flags = make([]string, len(m.Flags))
		for i, fl := range m.Flags {
			f.Flags[i] = string(fl)
		}
		out = appendFetched(out, structures, f)
	}
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
			key.uid = f.UID
			cacheSummary(c.sumCache, key, f)
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
