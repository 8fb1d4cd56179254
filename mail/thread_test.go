package mail

import (
	"maps"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
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
		noThread   bool
		wantMethod string
	}{{"server THREAD", false, "thread-references"}, {"references closure", true, "references"}} {
		var th *Thread
		err := e.Do(ctx, acct, func(c *Conn) (err error) {
			if tc.noThread {
				c.caps = maps.Clone(c.caps)
				delete(c.caps, imap.Cap("THREAD=REFERENCES"))
				c.broken = true
			}
			th, err = c.thread(folder, uid, ThreadOptions{})
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
