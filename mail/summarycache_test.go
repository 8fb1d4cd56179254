package mail

import (
	"fmt"
	"slices"
	"testing"
	"unique"
)

// TestListFromSummaryCache: a page listed again asks for flags only,
// shows flags changed meanwhile, and a folder recreated under the same
// name (a new UIDVALIDITY) is not read from the old folder's entries.
func TestListFromSummaryCache(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct, proxy := countedAccount(t, rig, "carol", "acct-carol-cache")
	folder := uniqueFolder("cache")
	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	fill := func(word string) {
		for i := range 30 {
			raw := fmt.Sprintf("From: a%d@example.org\r\nSubject: %s %d\r\nMessage-ID: <%s%d@x>\r\n\r\n%s\r\n", i, word, i, word, i, word)
			if _, err := app.Append(folder, []byte(raw)); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill("first")
	ctx := testCtx(t)
	list := func() (*Page, int64) {
		before := proxy.down.Load()
		page, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: 30})
		if err != nil {
			t.Fatal(err)
		}
		return page, proxy.down.Load() - before
	}
	first, cold := list()
	if err := e.SetFlags(ctx, acct, folder, []uint32{first.Messages[0].UID}, []string{`\Flagged`}, nil); err != nil {
		t.Fatal(err)
	}
	second, warm := list()
	if warm*3 > cold {
		t.Errorf("listed again: %d bytes received, the first time %d", warm, cold)
	}
	for i := range first.Messages {
		a, b := first.Messages[i], second.Messages[i]
		a.Flags, b.Flags = nil, nil
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("cached summary differs:\n%+v\n%+v", a, b)
		}
	}
	if !slices.Contains(second.Messages[0].Flags, `\Flagged`) || slices.Contains(first.Messages[0].Flags, `\Flagged`) {
		t.Errorf("flags: %v then %v", first.Messages[0].Flags, second.Messages[0].Flags)
	}

	app = recreateFolder(t, e, rig, acct, "carol", folder)
	fill("second")
	third, _ := list()
	if third.Messages[0].Subject != "second 29" || third.Messages[0].UID != first.Messages[0].UID {
		t.Errorf("recreated folder lists %q (uid %d)", third.Messages[0].Subject, third.Messages[0].UID)
	}
}

func TestSummaryCacheBound(t *testing.T) {
	sc := newSummaryCache()
	sc.limit = 3000
	for uid := range uint32(10) {
		cacheSummary(sc, summaryKey{scope: unique.Make(summaryScope{account: "a", folder: "INBOX"}), uid: uid}, fetched{Summary: Summary{UID: uid, Header: Header{Subject: "s"}}})
	}
	if sc.bytes > sc.limit || sc.order.Len() != len(sc.items) || len(sc.items) == 0 {
		t.Fatalf("%d bytes in %d items", sc.bytes, len(sc.items))
	}
	if _, ok := sc.get(summaryKey{scope: unique.Make(summaryScope{account: "a", folder: "INBOX"}), uid: 9}); !ok {
		t.Error("the newest entry was dropped")
	}
	if _, ok := sc.get(summaryKey{scope: unique.Make(summaryScope{account: "a", folder: "INBOX"}), uid: 0}); ok {
		t.Error("the oldest entry was kept")
	}
	if _, ok := sc.get(summaryKey{scope: unique.Make(summaryScope{account: "b", folder: "INBOX"}), uid: 9}); ok {
		t.Error("another account's entry was found")
	}
	inbox := unique.Make(summaryScope{account: "a", folder: "INBOX"})
	keys := []summaryKey{{inbox, 9}, {inbox, 0}, {unique.Make(summaryScope{account: "a", folder: "Sent"}), 9}, {inbox, 8}}
	var found []bool
	sc.getEach(keys, func(i int, f fetched, ok bool) {
		if ok && f.UID != keys[i].uid {
			t.Errorf("key %d found uid %d", i, f.UID)
		}
		found = append(found, ok)
	})
	if want := []bool{true, false, false, true}; !slices.Equal(found, want) {
		t.Errorf("getEach found %v, want %v", found, want)
	}
}
