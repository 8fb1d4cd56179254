package mail

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// Thread limits.
const (
	DefaultThreadMax = 100 // messages returned
	maxClosureRounds = 5   // reference-closure search rounds
	maxIDsPerSearch  = 60  // Message-IDs per closure search
	maxThreadFolders = 200 // folders one thread reads (AllFolders)
)

// ThreadOptions selects the thread view.
type ThreadOptions struct {
	// Full adds each message's text (a window of MaxChars runes);
	// otherwise the thread is an overview of summaries.
	Full     bool
	MaxChars int
	// AllFolders extends the reference closure to every folder instead of
	// the message's folder, Sent and Archive.
	AllFolders bool
	// Max bounds the messages returned (newest kept); default
	// DefaultThreadMax.
	Max int
}

// ThreadMessage is one message of a thread.
type ThreadMessage struct {
	Folder string
	Summary
	Text string // Full mode only
}

// Thread is a conversation, oldest first.
type Thread struct {
	Messages []ThreadMessage
	// Total counts distinct messages found before the cap.
	Total int
	// Method is "gmail" (X-GM-THRID), "index" (the folders' kept
	// Message-ID/References index) or "references" (the same links found
	// by searching headers on the server, for folders too large to index).
	Method string
}

// GetThread returns the conversation of message uid in folder,
// deduplicated by Message-ID before the cap.
func (e *Engine) GetThread(ctx context.Context, acct *Account, folder string, uid uint32, opt ThreadOptions) (*Thread, error) {
	var th *Thread
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
		if c.has(capGmail) {
			th, err = c.gmailThread(folder, uid, opt)
		} else {
			th, err = c.thread(folder, uid, opt, e.threads)
		}
		return err
	})
	return th, err
}

// fetchMeta fetches thread metadata of uids in the selected folder, at
// most metaFetchChunk messages a command.
func (c *Conn) fetchMeta(folder string, uids []imap.UID) ([]ThreadMessage, error) {
	out := make([]ThreadMessage, 0, len(uids))
	for chunk := range slices.Chunk(uids, metaFetchChunk) {
		msgs, _, err := c.cachedSummaries(imap.UIDSetNum(chunk...), false)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			out = append(out, ThreadMessage{Folder: folder, Summary: m})
		}
	}
	return out, nil
}

// thread builds the conversation of message uid: from the folders'
// indexes when idx is given and they can be kept, else by searching the
// folders' headers on the server (the References/Message-ID closure).
func (c *Conn) thread(folder string, uid uint32, opt ThreadOptions, idx *threadIndexes) (*Thread, error) {
	if _, err := c.selectFolder(folder); err != nil {
		return nil, err
	}
	folders, err := c.threadFolders(folder, opt.AllFolders)
	if err != nil {
		return nil, err
	}
	if idx != nil {
		found, ok, err := idx.conversation(c, folders, uid)
		if err != nil {
			return nil, err
		}
		if ok {
			// The message's own folder is read last, so that it stays
			// selected (selecting a large folder again costs more than
			// the whole thread).
			byFolder := map[string][]ThreadMessage{}
			for _, f := range append(slices.Clone(folders[1:]), folder) {
				if len(found[f]) == 0 {
					continue
				}
				if _, err := c.selectFolder(f); err != nil {
					return nil, err
				}
				if byFolder[f], err = c.fetchMeta(f, found[f]); err != nil {
					return nil, err
				}
			}
			var metas []ThreadMessage
			for _, f := range folders {
				metas = append(metas, byFolder[f]...)
			}
			if !slices.ContainsFunc(metas, func(m ThreadMessage) bool { return m.UID == uid && m.Folder == folder }) {
				return nil, notFound("get thread", "no message with UID %d in %q", uid, folder)
			}
			return c.finishThread(&Thread{Method: "index"}, connected(dedupe(selfFirst(metas, uid, folder)), uid, folder), opt)
		}
		if _, err := c.selectFolder(folder); err != nil {
			return nil, err
		}
	}
	metas, err := c.fetchMeta(folder, []imap.UID{imap.UID(uid)})
	if err != nil {
		return nil, err
	}
	if len(metas) == 0 {
		return nil, notFound("get thread", "no message with UID %d in %q", uid, folder)
	}
	all, err := c.closure(metas, folders)
	if err != nil {
		return nil, err
	}
	return c.finishThread(&Thread{Method: "references"}, connected(all, uid, folder), opt)
}

// dedupe keeps the first message of each Message-ID (messages without
// one are told apart by folder and UID).
func dedupe(metas []ThreadMessage) []ThreadMessage {
	seen := map[string]bool{}
	return slices.DeleteFunc(metas, func(m ThreadMessage) bool {
		key := m.MessageID
		if key == "" {
			key = fmt.Sprintf("%s\x00%d", m.Folder, m.UID)
		}
		dup := seen[key]
		seen[key] = true
		return dup
	})
}

// connected keeps the messages linked to message uid of folder through
// Message-ID, In-Reply-To and References. THREAD=REFERENCES also merges
// threads by subject, and header searches match substrings, so both
// return unrelated messages that this removes.
func connected(metas []ThreadMessage, uid uint32, folder string) []ThreadMessage {
	parent := map[string]string{}
	find := func(x string) string {
		for parent[x] != "" && parent[x] != x {
			x = parent[x]
		}
		return x
	}
	union := func(a, b string) {
		if ra, rb := find(a), find(b); ra != rb {
			parent[ra] = rb
		}
	}
	key := func(m ThreadMessage) string { return fmt.Sprintf("\x00%s\x00%d", m.Folder, m.UID) }
	for _, m := range metas {
		union(key(m), key(m))
		for _, id := range append([]string{m.MessageID, m.InReplyTo}, m.References...) {
			if id != "" {
				union(key(m), "<"+id+">")
			}
		}
	}
	i := slices.IndexFunc(metas, func(m ThreadMessage) bool { return m.UID == uid && m.Folder == folder })
	if i < 0 {
		return nil
	}
	root := find(key(metas[i]))
	return slices.DeleteFunc(slices.Clone(metas), func(m ThreadMessage) bool { return find(key(m)) != root })
}

// selfFirst moves message uid of folder to the front, so that it wins
// over copies with the same Message-ID and a thread always holds it.
func selfFirst(metas []ThreadMessage, uid uint32, folder string) []ThreadMessage {
	i := slices.IndexFunc(metas, func(m ThreadMessage) bool { return m.UID == uid && m.Folder == folder })
	if i > 0 {
		metas[0], metas[i] = metas[i], metas[0]
	}
	return metas
}

// threadFolders lists the folders the closure searches: folder, Sent and
// Archive, or every selectable folder (at most maxThreadFolders), each
// once.
func (c *Conn) threadFolders(folder string, all bool) ([]string, error) {
	out := []string{folder}
	if all {
		folders, err := c.listFolders(false)
		if err != nil {
			return nil, err
		}
		for _, f := range folders {
			if f.Selectable && f.Role != RoleTrash && f.Role != RoleJunk && !slices.Contains(out, f.Name) && len(out) < maxThreadFolders {
				out = append(out, f.Name) // a server may list a folder twice
			}
		}
		return out, nil
	}
	for _, r := range []Role{RoleSent, RoleArchive} {
		name, err := c.roleFolder(r)
		if err != nil {
			return nil, err
		}
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// closure grows known by searching folders for messages whose
// Message-ID or References mention a known id, until nothing new turns
// up. Messages are deduplicated by Message-ID (first folder wins).
func (c *Conn) closure(known []ThreadMessage, folders []string) ([]ThreadMessage, error) {
	queried := map[string]bool{}
	out := dedupe(known)
	add := func(ms []ThreadMessage) { out = dedupe(append(out, ms...)) }
	for range maxClosureRounds {
		var ids []string
		for _, m := range out {
			for _, id := range append([]string{m.MessageID, m.InReplyTo}, m.References...) {
				if id != "" && !queried[id] && len(ids) < maxIDsPerSearch {
					queried[id] = true
					ids = append(ids, id)
				}
			}
		}
		if len(ids) == 0 {
			break
		}
		for i, f := range folders {
			if _, err := c.selectFolder(f); i > 0 && KindOf(err) == KindNotFound {
				continue // deleted since it was listed
			} else if err != nil {
				return nil, err
			}
			uids, err := c.search(SearchQuery{}, idCriteria(ids))
			if err != nil {
				return nil, err
			}
			metas, err := c.fetchMeta(f, uids)
			if err != nil {
				return nil, err
			}
			add(metas)
		}
	}
	return out, nil
}

// idCriteria matches messages whose Message-ID or References holds any id.
func idCriteria(ids []string) *imap.SearchCriteria {
	var terms []imap.SearchCriteria
	for _, id := range ids {
		for _, key := range []string{"Message-ID", "References"} {
			terms = append(terms, imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: key, Value: id}}})
		}
	}
	for len(terms) > 1 {
		var next []imap.SearchCriteria
		for i := 0; i+1 < len(terms); i += 2 {
			next = append(next, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{terms[i], terms[i+1]}}})
		}
		if len(terms)%2 == 1 {
			next = append(next, terms[len(terms)-1])
		}
		terms = next
	}
	return &terms[0]
}

// finishThread sorts oldest first, caps (keeping the newest) and, in full
// mode, adds each message's text.
func (c *Conn) finishThread(th *Thread, metas []ThreadMessage, opt ThreadOptions) (*Thread, error) {
	slices.SortStableFunc(metas, func(a, b ThreadMessage) int { return cmp.Compare(a.Date.UnixNano(), b.Date.UnixNano()) })
	th.Total = len(metas)
	limit := opt.Max
	if limit <= 0 {
		limit = DefaultThreadMax
	}
	if len(metas) > limit {
		metas = metas[len(metas)-limit:]
	}
	for _, m := range metas {
		if opt.Full {
			msg, err := c.getMessage(m.Folder, m.UID, GetOptions{MaxChars: opt.MaxChars})
			if err != nil {
				return nil, err
			}
			m.Text = msg.Text
		}
		th.Messages = append(th.Messages, m)
	}
	return th, nil
}
