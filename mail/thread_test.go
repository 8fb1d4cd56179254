package mail

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestThreadAcrossFolderAndSent(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	acct.ID = "thread-carol"
	ctx := testCtx(t)
	folder, seeded := seedFolder(t, rig, "carol", "thread", 80)
	want := map[string]bool{}
	for _, m := range seeded.Thread {
		want[m.MessageID] = true
	}
	page, err := e.Search(ctx, acct, folder, SearchQuery{Text: seeded.Thread[1].MessageID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var uid uint32
	for _, s := range page.Messages {
		if s.MessageID == seeded.Thread[1].MessageID {
			uid = s.UID
		}
	}
	// Carol's reply lands in Sent: the thread must include it.
	res, err := e.Reply(ctx, acct, ReplyOptions{Folder: folder, UID: uid, Text: "Replying in thread."})
	if err != nil {
		t.Fatal(err)
	}
	want[res.MessageID] = true

	for _, tc := range []struct {
		name       string
		index      *threadIndexes
		wantMethod string
	}{{"index", e.threads, "index"}, {"index again", e.threads, "index"}, {"search closure", nil, "references"}} {
		var th *Thread
		err := e.Do(ctx, acct, func(c *Conn) (err error) {
			th, err = c.thread(folder, uid, ThreadOptions{}, tc.index)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, m := range th.Messages {
			if got[m.MessageID] {
				t.Errorf("%s: duplicate %s", tc.name, m.MessageID)
			}
			got[m.MessageID] = true
		}
		if th.Method != tc.wantMethod || !maps.Equal(got, want) || th.Total != len(want) {
			t.Fatalf("%s: method %s, got %v, want %v", tc.name, th.Method, slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(want)))
		}
		if !slices.IsSortedFunc(th.Messages, func(a, b ThreadMessage) int { return a.Date.Compare(b.Date) }) {
			t.Errorf("%s: not oldest first", tc.name)
		}
	}

	full, err := e.GetThread(ctx, acct, folder, uid, ThreadOptions{Full: true, MaxChars: 200, Max: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Messages) != 2 || full.Total != len(want) || full.Messages[1].MessageID != res.MessageID || full.Messages[1].Text == "" {
		t.Fatalf("capped full thread: %d of %d, last %q", len(full.Messages), full.Total, full.Messages[len(full.Messages)-1].MessageID)
	}

	// Filed away in another folder, the reply is found only with
	// AllFolders.
	other := uniqueFolder("filed")
	if err := e.CreateFolder(ctx, acct, other); err != nil {
		t.Fatal(err)
	}
	sent := findByMessageID(t, e, acct, "Sent", res.MessageID)
	if err := e.Move(ctx, acct, "Sent", []uint32{sent.UID}, other); err != nil {
		t.Fatal(err)
	}
	for _, all := range []bool{false, true} {
		th, err := e.GetThread(ctx, acct, folder, uid, ThreadOptions{AllFolders: all})
		if err != nil {
			t.Fatal(err)
		}
		if want := len(want) - map[bool]int{false: 1, true: 0}[all]; th.Total != want {
			t.Errorf("all folders %v: %d messages, want %d", all, th.Total, want)
		}
	}
}

// TestThreadIndexFollowsTheFolder: the index sees deliveries, expunges
// and a folder recreated under the same name (new UIDVALIDITY), and
// threads read from two folders at once do not wait on each other.
func TestThreadIndexFollowsTheFolder(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	acct.ID = "thread-index-carol"
	ctx := testCtx(t)
	folder, other := uniqueFolder("tindex"), uniqueFolder("tindex-other")
	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	// Message-IDs of this run only: other tests read every folder.
	run := strings.TrimPrefix(folder, "tindex-")
	msg := func(id, parent string) []byte {
		h := "From: ann@example.org\r\nSubject: plan\r\nMessage-ID: <" + id + run + ">\r\n"
		if parent != "" {
			h += "In-Reply-To: <" + parent + run + ">\r\nReferences: <" + parent + run + ">\r\n"
		}
		return []byte(h + "\r\nbody\r\n")
	}
	appendTo := func(folder, id, parent string) uint32 {
		uid, err := app.Append(folder, msg(id, parent))
		if err != nil {
			t.Fatal(err)
		}
		return uid
	}
	ids := func(uid uint32, opt ThreadOptions) []string {
		th, err := e.GetThread(ctx, acct, folder, uid, opt)
		if err != nil {
			t.Fatal(err)
		}
		if th.Method != "index" {
			t.Errorf("method %s", th.Method)
		}
		var out []string
		for _, m := range th.Messages {
			out = append(out, strings.TrimSuffix(m.MessageID, run))
		}
		slices.Sort(out)
		return out
	}
	appendTo(folder, "a@x", "")
	b := appendTo(folder, "b@x", "a@x")
	appendTo(folder, "unrelated@x", "")
	if got := ids(b, ThreadOptions{}); !slices.Equal(got, []string{"a@x", "b@x"}) {
		t.Fatalf("thread %v", got)
	}
	c := appendTo(folder, "c@x", "b@x")
	if got := ids(b, ThreadOptions{}); !slices.Equal(got, []string{"a@x", "b@x", "c@x"}) {
		t.Fatalf("after a delivery: %v", got)
	}
	if err := e.Delete(ctx, acct, folder, []uint32{c}, true); err != nil {
		t.Fatal(err)
	}
	if got := ids(b, ThreadOptions{}); !slices.Equal(got, []string{"a@x", "b@x"}) {
		t.Fatalf("after an expunge: %v", got)
	}

	// Two threads at once, one starting in each folder, over both.
	d := appendTo(other, "d@x", "b@x")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			f, uid := folder, b
			if i%2 == 1 {
				f, uid = other, d
			}
			th, err := e.GetThread(ctx, acct, f, uid, ThreadOptions{AllFolders: true})
			if err != nil || th.Total != 3 {
				t.Errorf("from %s: %v, %v", f, th, err)
			}
		})
	}
	wg.Wait()

	if err := e.DeleteFolder(ctx, acct, folder); err != nil {
		t.Fatal(err)
	}
	app2, err := rig.Appender("carol") // its folder list is stale
	if err != nil {
		t.Fatal(err)
	}
	defer app2.Close()
	app = app2
	appendTo(folder, "unrelated@x", "")
	e2 := appendTo(folder, "e@x", "a@x")
	if got := ids(e2, ThreadOptions{}); !slices.Equal(got, []string{"e@x"}) {
		t.Fatalf("recreated folder: %v", got)
	}
}

func TestThreadIndexBound(t *testing.T) {
	idx := newThreadIndexes()
	idx.limit = 250
	first := idx.folder("a", "one")
	idx.resize(first, 150)
	second := idx.folder("a", "two")
	idx.resize(second, 150)
	if !first.dropped || second.dropped || idx.total != 150 || len(idx.folders) != 1 {
		t.Fatalf("total %d, folders %d", idx.total, len(idx.folders))
	}
	idx.resize(first, 200) // a dropped index in use counts no more
	if idx.total != 150 {
		t.Fatalf("total %d", idx.total)
	}
	// Empty indexes count too, and their number is bounded.
	idx.limit = 1 << 30
	for i := range maxIndexes + 10 {
		idx.resize(idx.folder("a", fmt.Sprint("empty", i)), 0)
	}
	if len(idx.folders) > maxIndexes || idx.total < maxIndexes*indexEntryBytes {
		t.Fatalf("%d indexes, total %d", len(idx.folders), idx.total)
	}

	// Ids are kept once each and not when too long; removing a message
	// gives back what adding it counted.
	fi := &folderIndex{}
	fi.reset(1)
	long := strings.Repeat("x", maxIndexIDLen+1) + "@x"
	fi.add(7, Header{MessageID: long, InReplyTo: "p@x", References: []string{"r@x", "p@x"}})
	if ids := fi.ids[7]; !slices.Equal(ids, []string{"", "p@x", "r@x"}) {
		t.Fatalf("ids %q", ids)
	}
	fi.remove(7)
	if fi.bytes != 0 || len(fi.byID) != 0 {
		t.Fatalf("after removal: %d bytes, %v", fi.bytes, fi.byID)
	}
}

// TestThreadFolderListedTwice: a server that lists a folder twice does
// not make a thread over all folders wait on itself.
func TestThreadFolderListedTwice(t *testing.T) {
	t.Parallel()
	s := &hostileServer{}
	s.answer = func(tag, cmd string, w *bufio.Writer) bool {
		switch cmd {
		case "LIST":
			w.WriteString("* LIST () \"/\" INBOX\r\n* LIST () \"/\" Dup\r\n* LIST () \"/\" Dup\r\n")
		case "SEARCH", "UID SEARCH":
			w.WriteString("* SEARCH 1\r\n")
		case "FETCH", "UID FETCH":
			w.WriteString("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (Message-Id In-Reply-To References)] {20}\r\nMessage-Id: <a@b>\r\n\r\n)\r\n")
		case "STATUS":
			w.WriteString("* STATUS Dup (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)\r\n")
		}
		return false
	}
	acct := startHostile(t, s)
	e := New(Config{AllowPrivateHosts: true, Timeouts: Timeouts{Command: 2 * time.Second, TLSHandshake: 2 * time.Second}})
	defer e.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := e.GetThread(ctx, acct, "INBOX", 1, ThreadOptions{AllFolders: true})
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("get_thread still waiting 5 s after its deadline")
	}
}
