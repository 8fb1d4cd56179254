package mail

import (
	"fmt"
	"slices"
	"testing"
)

// TestPageMemo: a page listed again on the same connection asks only for
// what changed since (CHANGEDSINCE), and still shows every change another
// session made: flags set and cleared, a message expunged while another
// arrived (the count unchanged), expunges alone; and the engine's own
// moves and permanent deletes. Each list is compared with a fresh
// engine's, which has no memo and no cache.
func TestPageMemo(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	proxy := newCountingProxy(t, rig.IMAPSAddr())
	acct := rigAccount(t, rig, "carol")
	acct.ID, acct.IMAP = "acct-carol-memo", endpoint(t, proxy.ln.Addr().String(), TLSImplicit)
	other := rigAccount(t, rig, "carol")
	folder := uniqueFolder("memo")
	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	n := 0
	add := func(k int) {
		for range k {
			n++
			raw := fmt.Sprintf("From: a%d@example.org\r\nSubject: memo %d\r\nMessage-ID: <memo%d@x>\r\n\r\nbody\r\n", n, n, n)
			if _, err := app.Append(folder, []byte(raw)); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(40)
	ctx := testCtx(t)
	const limit = 20
	list := func(step string, limit int) (*Page, int64) {
		t.Helper()
		before := proxy.down.Load()
		page, err := e.ListMessages(ctx, acct, folder, ListOptions{Limit: limit})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got := proxy.down.Load() - before
		fresh, _ := testEngine(t, Config{})
		want, err := fresh.ListMessages(ctx, other, folder, ListOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != want.Total || len(page.Messages) != len(want.Messages) {
			t.Fatalf("%s: %d of %d messages, want %d of %d", step, len(page.Messages), page.Total, len(want.Messages), want.Total)
		}
		for i, m := range page.Messages {
			w := want.Messages[i]
			if m.UID != w.UID || m.Subject != w.Subject || !slices.Equal(lasting(m.Flags), lasting(w.Flags)) {
				t.Fatalf("%s: message %d is uid %d %q %v, want uid %d %q %v", step, i, m.UID, m.Subject, m.Flags, w.UID, w.Subject, w.Flags)
			}
		}
		return page, got
	}
	list("cold", limit)
	_, whole := list("another page, its summaries cached", limit-1) // its flags read whole
	_, memo := list("unchanged", limit-1)
	page, _ := list("the first page again", limit)
	if memo*3 > whole {
		t.Errorf("an unchanged page took %d bytes, the page's flags %d", memo, whole)
	}
	elsewhere, _ := testEngine(t, Config{}) // another session
	uids := func(ms ...Summary) (out []uint32) {
		for _, m := range ms {
			out = append(out, m.UID)
		}
		return out
	}
	if err := elsewhere.SetFlags(ctx, other, folder, uids(page.Messages[0], page.Messages[5]), []string{`\Flagged`, `\Seen`}, nil); err != nil {
		t.Fatal(err)
	}
	page, _ = list("flags set elsewhere", limit)
	if err := elsewhere.SetFlags(ctx, other, folder, uids(page.Messages[5]), nil, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	page, _ = list("a flag cleared elsewhere", limit)
	if err := elsewhere.Delete(ctx, other, folder, uids(page.Messages[3]), true); err != nil {
		t.Fatal(err)
	}
	add(1)
	page, _ = list("one expunged and one arrived elsewhere", limit)
	if err := elsewhere.Delete(ctx, other, folder, uids(page.Messages[limit-1]), true); err != nil {
		t.Fatal(err)
	}
	page, _ = list("the page's last expunged elsewhere", limit)
	if err := e.Move(ctx, acct, folder, uids(page.Messages[2]), "INBOX"); err != nil {
		t.Fatal(err)
	}
	page, _ = list("moved here", limit)
	if err := e.Delete(ctx, acct, folder, uids(page.Messages[7]), true); err != nil {
		t.Fatal(err)
	}
	list("deleted here", limit)
	add(1)
	list("arrived", limit)
}

// lasting drops \Recent, which only the first session to see a message
// is told.
func lasting(flags []string) []string {
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == `\Recent` })
}
