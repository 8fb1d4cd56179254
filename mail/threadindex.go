package mail

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
)

// threadIndexes keeps, per account folder, the Message-ID, In-Reply-To
// and References of every message, so that a conversation is found
// without asking the server to search every message's headers (on
// Dovecot, one SEARCH HEADER over 10,000 messages takes 25–95 ms and
// THREAD=REFERENCES 55 ms). An index is brought up to date on each use
// (UID SEARCH ALL, then the headers of new messages only) and starts
// again when the folder's UIDVALIDITY changes.
type threadIndexes struct {
	mu      sync.Mutex
	folders map[string]*folderIndex // by account, settings and folder
	total   int                     // estimated bytes of all indexes
	limit   int                     // bound of total
}

// Index bounds: messages in one folder (a larger folder is searched on
// the server), the estimated bytes of all indexes (the least recently
// used folders are dropped), the number of indexes, message ids kept
// per message and their length (a longer id is not indexed), and
// messages whose headers one FETCH asks for (at up to 16 KiB of them a
// message, the answer stays within MaxResponseBytes); metaFetchChunk is
// the same for a conversation's summaries (up to 40 KiB of structure
// and header fields a message).
const (
	maxIndexedFolder = 100_000
	maxIndexedBytes  = 64 << 20
	maxIndexes       = 2000
	maxIndexIDs      = 40
	maxIndexIDLen    = 250
	indexFetchChunk  = 500
	metaFetchChunk   = 200
	maxConversation  = 1000 // messages one conversation is followed to
	indexEntryBytes  = 96   // estimated cost of a message besides its ids
)

// folderIndex is one folder's index; mu is held while it is updated.
type folderIndex struct {
	mu       sync.Mutex
	validity uint32
	uids     []imap.UID            // ascending
	ids      map[imap.UID][]string // Message-ID first, then In-Reply-To and References
	byID     map[string][]imap.UID
	status   imap.StatusData // STATUS before the last update, when it was not selected
	bytes    int             // estimated size
	// Guarded by threadIndexes.mu:
	used    time.Time
	counted int  // messages counted in threadIndexes.total
	dropped bool // no longer in threadIndexes.folders
}

func newThreadIndexes() *threadIndexes {
	return &threadIndexes{folders: map[string]*folderIndex{}, limit: maxIndexedBytes}
}

// folder returns the index of an account's folder (account from
// Conn.accountKey), creating it.
func (t *threadIndexes) folder(account, folder string) *folderIndex {
	key := account + "\x00" + folder
	t.mu.Lock()
	defer t.mu.Unlock()
	fi := t.folders[key]
	if fi == nil {
		fi = &folderIndex{}
		t.folders[key] = fi
	}
	fi.used = time.Now()
	return fi
}

// resize records that keep holds n estimated bytes and drops the least
// recently used other indexes while there are too many or the total is
// over its bound. A dropped index still in use is left to its user and
// then collected.
func (t *threadIndexes) resize(keep *folderIndex, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if keep.dropped {
		return
	}
	n = max(n, indexEntryBytes) // an empty index costs too
	t.total += n - keep.counted
	keep.counted = n
	for t.total > t.limit || len(t.folders) > maxIndexes {
		var oldKey string
		var old *folderIndex
		for k, fi := range t.folders {
			if fi != keep && (old == nil || fi.used.Before(old.used)) {
				oldKey, old = k, fi
			}
		}
		if old == nil {
			return
		}
		delete(t.folders, oldKey)
		t.total -= old.counted
		old.dropped = true
	}
}

func (fi *folderIndex) reset(validity uint32) {
	fi.validity, fi.uids, fi.ids, fi.byID, fi.bytes = validity, nil, map[imap.UID][]string{}, map[string][]imap.UID{}, 0
}

// threadIDHeader holds the fields an index is made of.
var threadIDHeader = &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-Id", "In-Reply-To", "References"}}

// update brings fi up to date with folder, selecting it. ok is false
// when the folder is too large to index.
func (fi *folderIndex) update(c *Conn, t *threadIndexes, folder string) (ok bool, err error) {
	defer func() { t.resize(fi, fi.bytes) }()
	// A folder other than the selected one is selected (which can cost
	// more than the whole thread on a large folder) only when its STATUS
	// says it changed since the index was made.
	var st imap.StatusData
	if c.selected != folder {
		if err := c.do("status", func() error {
			d, err := c.client.Status(folder, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}).Wait()
			if d != nil {
				st = *d
			}
			return err
		}); err == nil && fi.ids != nil && sameStatus(st, fi.status) {
			return true, nil
		}
	}
	sel, err := c.selectFolder(folder)
	if err != nil {
		fi.reset(0)
		return false, err
	}
	if sel.NumMessages > maxIndexedFolder {
		fi.reset(0)
		return false, nil
	}
	if fi.ids == nil || fi.validity != sel.UIDValidity {
		fi.reset(sel.UIDValidity)
	}
	// New messages are those above the highest UID known; when the count
	// then does not add up, some were expunged and every UID is listed.
	var after imap.UID
	if len(fi.uids) > 0 {
		after = fi.uids[len(fi.uids)-1]
	}
	var added imap.UIDSet
	added.AddRange(after+1, 0)
	all, err := c.search(SearchQuery{}, &imap.SearchCriteria{UID: []imap.UIDSet{added}})
	if err != nil {
		return false, err
	}
	all = slices.DeleteFunc(all, func(uid imap.UID) bool { return uid <= after }) // n:* includes the last message
	if len(fi.uids)+len(all) != int(sel.NumMessages) {
		if all, err = c.search(SearchQuery{}, nil); err != nil {
			return false, err
		}
	} else {
		all = append(slices.Clone(fi.uids), all...)
	}
	if len(all) > maxIndexedFolder {
		fi.reset(0)
		return false, nil
	}
	present := make(map[imap.UID]bool, len(all))
	var fresh []imap.UID
	for _, uid := range all {
		present[uid] = true
		if _, known := fi.ids[uid]; !known {
			fresh = append(fresh, uid)
		}
	}
	if len(all)-len(fresh) < len(fi.uids) { // some were expunged
		fi.uids = slices.DeleteFunc(fi.uids, func(uid imap.UID) bool {
			if !present[uid] {
				fi.remove(uid)
				return true
			}
			return false
		})
	}
	for chunk := range slices.Chunk(fresh, indexFetchChunk) {
		bufs, err := c.fetch("fetch thread ids", imap.UIDSetNum(chunk...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{threadIDHeader}})
		if err != nil {
			return false, err
		}
		for _, b := range bufs {
			var raw []byte
			for _, sec := range b.BodySection {
				raw = sec.Bytes
			}
			if _, known := fi.ids[b.UID]; !known && present[b.UID] {
				fi.add(b.UID, headerOf(headerBytes(raw)))
			}
		}
	}
	slices.Sort(fi.uids)
	fi.status = st // as it was before the update, so a change during it shows next time
	return true, nil
}

func sameStatus(a, b imap.StatusData) bool {
	return a.NumMessages != nil && b.NumMessages != nil && *a.NumMessages == *b.NumMessages &&
		a.UIDNext == b.UIDNext && a.UIDValidity == b.UIDValidity
}

func (fi *folderIndex) add(uid imap.UID, h Header) {
	refs := h.References
	if len(refs) > maxIndexIDs {
		refs = append(refs[:1:1], refs[len(refs)-maxIndexIDs+1:]...) // the root and the nearest
	}
	// Message-ID first (empty when it is missing or too long), then the
	// ids it refers to.
	ids := []string{""}
	for i, id := range append([]string{h.MessageID, h.InReplyTo}, refs...) {
		if id != "" && len(id) <= maxIndexIDLen && !slices.Contains(ids, id) {
			if i == 0 {
				ids[0] = id
			} else {
				ids = append(ids, id)
			}
		}
	}
	fi.uids = append(fi.uids, uid)
	fi.ids[uid] = ids
	fi.bytes += indexEntryBytes
	for _, id := range ids {
		if id != "" && !slices.Contains(fi.byID[id], uid) {
			fi.byID[id] = append(fi.byID[id], uid)
			fi.bytes += 2*len(id) + 24
		}
	}
}

func (fi *folderIndex) remove(uid imap.UID) {
	fi.bytes -= indexEntryBytes
	for _, id := range fi.ids[uid] {
		if id != "" {
			fi.bytes -= 2*len(id) + 24
		}
		if fi.byID[id] = slices.DeleteFunc(fi.byID[id], func(u imap.UID) bool { return u == uid }); len(fi.byID[id]) == 0 {
			delete(fi.byID, id)
		}
	}
	delete(fi.ids, uid)
}

// conversation returns, per folder, the UIDs linked to message uid of
// folders[0] through Message-ID, In-Reply-To and References, at most
// maxConversation of them; ok is false when a folder could not be
// indexed (the caller searches on the server instead). Each index is
// locked while it is updated and read.
func (t *threadIndexes) conversation(c *Conn, folders []string, uid uint32) (map[string][]imap.UID, bool, error) {
	indexes := make([]*folderIndex, len(folders))
	for i, f := range folders {
		indexes[i] = t.folder(c.accountKey(), f)
	}
	// Locked in one order (by folder name), so that two conversations
	// over the same folders never wait for each other.
	order := make([]int, len(folders))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(folders[a], folders[b]) })
	for _, i := range order {
		indexes[i].mu.Lock()
		defer indexes[i].mu.Unlock()
	}
	for i := range folders { // the message's own folder last, to stay selected
		i = (i + 1) % len(folders)
		ok, err := indexes[i].update(c, t, folders[i])
		if i > 0 && KindOf(err) == KindNotFound {
			continue // deleted since it was listed: it holds nothing
		}
		if err != nil || !ok {
			return nil, false, err
		}
	}
	start, ok := indexes[0].ids[imap.UID(uid)]
	if !ok {
		return map[string][]imap.UID{}, true, nil
	}
	out := map[string][]imap.UID{folders[0]: {imap.UID(uid)}}
	seen := map[string]bool{}
	queue := slices.Clone(start)
	members := 1
	for len(queue) > 0 && members < maxConversation {
		id := queue[0]
		queue = queue[1:]
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		for i, fi := range indexes {
			for _, u := range fi.byID[id] {
				if !slices.Contains(out[folders[i]], u) && members < maxConversation {
					out[folders[i]] = append(out[folders[i]], u)
					members++
					queue = append(queue, fi.ids[u]...)
				}
			}
		}
	}
	return out, true, nil
}
