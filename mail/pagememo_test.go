package mail

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
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
	acct, proxy := countedAccount(t, rig, "carol", "acct-carol-memo")
	other := rigAccount(t, rig, "carol")
	folder := uniqueFolder("memo")
	add := numbered(t, rig, "carol", folder, "memo")
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
	if _, again := list("arrived, listed again", limit); again*3 > whole {
		t.Errorf("listed again after an arrival: %d bytes, the page's flags %d", again, whole)
	}
}

// numbered returns a func that appends k messages to folder of user,
// "Subject: word N" with N counting from 1, and returns the last N.
func numbered(t *testing.T, rig *mailrig.Rig, user, folder, word string) func(k int) int {
	t.Helper()
	app, err := rig.Appender(user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	n := 0
	return func(k int) int {
		for range k {
			n++
			raw := fmt.Sprintf("From: a%d@example.org\r\nSubject: %s %d\r\nMessage-ID: <%s%d@x>\r\n\r\nbody\r\n", n, word, n, word, n)
			if _, err := app.Append(folder, []byte(raw)); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
}

// lasting drops \Recent, which only the first session to see a message
// is told.
func lasting(flags []string) []string {
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == `\Recent` })
}

// TestPageMemoArrivalDuringRead: a message that arrives after a list's
// NOOP and before its FETCH, while another message's flags change, is
// shown once the count is back (another message expunged): the memo's
// CHANGEDSINCE must not start above the arrival's modification sequence.
func TestPageMemoArrivalDuringRead(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	acct.ID = "acct-carol-memo-race"
	folder := uniqueFolder("memorace")
	add := numbered(t, rig, "carol", folder, "race")
	n := add(30)
	ctx := testCtx(t)
	elsewhere, _ := testEngine(t, Config{})
	// between runs between the NOOP and the FETCH of the page.
	list := func(between func()) *Page {
		t.Helper()
		var page *Page
		err := e.Read(ctx, acct, func(c *Conn) error {
			sel, err := c.selectFolder(folder)
			if err != nil {
				return err
			}
			if between != nil {
				between()
			}
			page, err = c.newest(sel, 10, false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	var page *Page
	for range 3 {
		page = list(nil)
	}
	page = list(func() {
		n = add(1)
		if err := elsewhere.SetFlags(ctx, acct, folder, []uint32{page.Messages[3].UID}, []string{`\Flagged`}, nil); err != nil {
			t.Fatal(err)
		}
	})
	if err := elsewhere.Delete(ctx, acct, folder, []uint32{page.Messages[len(page.Messages)-1].UID}, true); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		page = list(nil)
		if page.Messages[0].Subject != fmt.Sprintf("race %d", n) {
			t.Fatalf("the newest message listed is %q, want \"race %d\"", page.Messages[0].Subject, n)
		}
	}
}

// TestPageMemoScripted: servers with CONDSTORE that answer a FETCH with
// modification sequences unusually. One refusing them in a folder with
// BAD (NOMODSEQ) is listed with flags read whole and not asked again; a
// passing NO is not taken for that; an answer without FLAGS (a server's
// own, before the asked one) never stands for the message's flags.
func TestPageMemoScripted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		modseq func(tag, line string, w *bufio.Writer) // answers a FETCH with MODSEQ
		asked  int32                                   // FETCHes with MODSEQ over four lists
	}{
		{"BAD", func(tag, _ string, w *bufio.Writer) {
			w.WriteString(tag + " BAD [NOMODSEQ] no modification sequences here\r\n")
		}, 1},
		{"NO", func(tag, _ string, w *bufio.Writer) {
			w.WriteString(tag + " NO [UNAVAILABLE] try again\r\n")
		}, 4},
		{"an answer without FLAGS first", func(tag, line string, w *bufio.Writer) {
			if strings.Contains(line, "CHANGEDSINCE") {
				w.WriteString("* 1 FETCH (UID 1 MODSEQ (5))\r\n")
			}
			w.WriteString("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (5))\r\n" + tag + " OK done\r\n")
		}, 7}, // each later list: CHANGEDSINCE, its answer refused, then the page whole
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked atomic.Int32
			acct := startHostile(t, &hostileServer{caps: "CONDSTORE",
				reply: func(tag, cmd, line string, w *bufio.Writer) bool {
					switch {
					case cmd == "SELECT":
						w.WriteString("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [HIGHESTMODSEQ 4] ok\r\n" + tag + " OK done\r\n")
					case (cmd == "FETCH" || cmd == "UID FETCH") && strings.Contains(line, "MODSEQ"):
						asked.Add(1)
						tc.modseq(tag, line, w)
					case cmd == "FETCH" || cmd == "UID FETCH":
						w.WriteString("* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 20 INTERNALDATE \"01-Jan-2024 00:00:00 +0000\" " +
							"BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 4 1) BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: plain\r\n\r\n)\r\n" +
							tag + " OK done\r\n")
					default:
						return false
					}
					return true
				},
				answer: func(string, string, *bufio.Writer) bool { return false }})
			e, _ := testEngine(t, Config{})
			for i := range 4 {
				page, err := e.ListMessages(testCtx(t), acct, "INBOX", ListOptions{})
				if err != nil {
					t.Fatalf("list %d: %v", i, err)
				}
				if len(page.Messages) != 1 || page.Messages[0].Subject != "plain" || !slices.Equal(page.Messages[0].Flags, []string{`\Seen`}) {
					t.Fatalf("list %d: %+v", i, page.Messages)
				}
			}
			if n := asked.Load(); n != tc.asked {
				t.Errorf("modification sequences asked for %d times, want %d", n, tc.asked)
			}
		})
	}
}
