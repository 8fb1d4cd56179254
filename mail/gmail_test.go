package mail

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/mail/gmailtest"
)

// startGmail runs the Gmail-like fake with a small mailbox: a thread of
// three (one reply of ours, only in Sent), and two other messages.
func startGmail(t *testing.T, cfg Config) (*Engine, *Account, *gmailtest.Server) {
	t.Helper()
	srv, err := gmailtest.Start("me@gmail.test", "app-password")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	add := func(i int, thr uint64, from, subject, body string, labels []string, refs ...string) {
		m := gmailtest.Message{ThrID: thr, MessageID: fmt.Sprintf("m%d@gmail.test", i), From: from, To: "me@gmail.test",
			Subject: subject, Body: body, Date: base.Add(time.Duration(i) * time.Hour), Labels: labels, Flags: []string{`\Seen`}}
		if len(refs) > 0 {
			m.InReplyTo, m.References = refs[len(refs)-1], refs
		}
		srv.Add(m)
	}
	add(1, 100, "ann@example.com", "Trip plans", "Shall we go to Lisbon?", []string{gmailtest.Inbox})
	add(2, 200, "news@example.com", "Weekly digest", "Nothing about trips here.", []string{gmailtest.Inbox})
	add(3, 100, "me@gmail.test", "Re: Trip plans", "Yes, Lisbon in May.", []string{gmailtest.Sent}, "m1@gmail.test")
	add(4, 100, "ann@example.com", "Re: Trip plans", "Booked the flights to Lisbon.", []string{gmailtest.Inbox}, "m1@gmail.test", "m3@gmail.test")
	add(5, 300, "bob@example.com", "Invoice", "Invoice attached for March.", []string{gmailtest.Inbox, "[Gmail]/Starred"})

	cfg.AllowPrivateHosts, cfg.RootCAs = true, srv.RootCAs()
	e := New(cfg)
	t.Cleanup(func() { _ = e.Close() })
	acct := &Account{ID: "gmail", IMAP: endpoint(t, srv.Addr(), TLSImplicit), Username: "me@gmail.test",
		Password: "app-password", Email: "me@gmail.test", Provider: "gmail"}
	return e, acct, srv
}

func TestGmailFoldersSearchThread(t *testing.T) {
	t.Parallel()
	e, acct, _ := startGmail(t, Config{})
	ctx := testCtx(t)
	folders, err := e.ListFolders(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[Role]string{}
	for _, f := range folders {
		roles[f.Role] = f.Name
		if f.Name == "INBOX" && (f.Messages != 4 || f.Unread != 0) {
			t.Errorf("INBOX counts %d/%d", f.Messages, f.Unread)
		}
	}
	want := map[Role]string{RoleInbox: "INBOX", RoleSent: gmailtest.Sent, RoleTrash: gmailtest.Trash, RoleAll: gmailtest.AllMail,
		RoleJunk: gmailtest.Spam, RoleDrafts: gmailtest.Drafts, RoleFlagged: gmailtest.Starred}
	for r, name := range want {
		if roles[r] != name {
			t.Errorf("role %s = %q, want %q", r, roles[r], name)
		}
	}

	page, err := e.Search(ctx, acct, gmailtest.AllMail, SearchQuery{GmailRaw: "lisbon from:ann"})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range page.Messages {
		subjects = append(subjects, m.MessageID)
	}
	if page.Total != 2 || !slices.Equal(subjects, []string{"m4@gmail.test", "m1@gmail.test"}) {
		t.Fatalf("X-GM-RAW: %d %v", page.Total, subjects)
	}
	if _, err := e.Search(ctx, acct, "INBOX", SearchQuery{GmailRaw: "x", From: "y"}); KindOf(err) != KindInvalid {
		t.Fatalf("raw combined: %v", err)
	}

	inbox, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if inbox.Total != 4 || inbox.Messages[0].MessageID != "m5@gmail.test" {
		t.Fatalf("inbox %+v", inbox)
	}
	var firstUID uint32
	for _, m := range inbox.Messages {
		if m.MessageID == "m1@gmail.test" {
			firstUID = m.UID
		}
	}
	th, err := e.GetThread(ctx, acct, "INBOX", firstUID, ThreadOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range th.Messages {
		ids = append(ids, m.MessageID)
		if m.Folder != gmailtest.AllMail || m.Text == "" {
			t.Errorf("thread message %+v", m)
		}
	}
	if th.Method != "gmail" || !slices.Equal(ids, []string{"m1@gmail.test", "m3@gmail.test", "m4@gmail.test"}) {
		t.Fatalf("thread %s %v", th.Method, ids)
	}

	// Gmail keeps its own Sent copy: nothing is appended.
	var res SendResult
	if err := e.Do(ctx, acct, func(c *Conn) error { return c.saveSent(Filed{Raw: []byte("x")}, "new@gmail.test", &res) }); err != nil {
		t.Fatal(err)
	}
	if res.SentCopy != "provider keeps its own copy" || res.SentFolder != "" {
		t.Fatalf("sent copy on Gmail: %+v", res)
	}
}

func TestGmailDeleteSemantics(t *testing.T) {
	t.Parallel()
	e, acct, srv := startGmail(t, Config{})
	ctx := testCtx(t)
	uidOf := func(folder, id string) uint32 {
		page, err := e.ListMessages(ctx, acct, folder, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if m.MessageID == id {
				return m.UID
			}
		}
		t.Fatalf("%s not in %s", id, folder)
		return 0
	}
	// Delete moves to [Gmail]/Trash, which removes every label.
	if err := e.Delete(ctx, acct, "INBOX", []uint32{uidOf("INBOX", "m5@gmail.test")}, false); err != nil {
		t.Fatal(err)
	}
	if got := srv.Labels("m5@gmail.test"); !slices.Equal(got, []string{gmailtest.Trash}) {
		t.Fatalf("after delete labels %v", got)
	}
	// Permanent delete goes through Trash and is gone everywhere, not just
	// unlabelled from INBOX.
	if err := e.Delete(ctx, acct, "INBOX", []uint32{uidOf("INBOX", "m2@gmail.test")}, true); err != nil {
		t.Fatal(err)
	}
	if got := srv.Labels("m2@gmail.test"); got != nil {
		t.Fatalf("after permanent delete labels %v", got)
	}
	if got := srv.Labels("m1@gmail.test"); !slices.Equal(got, []string{gmailtest.Inbox, gmailtest.AllMail}) {
		t.Fatalf("bystander labels %v", got)
	}
}

func TestSearchFallsBackToASCIIOnBadCharset(t *testing.T) {
	t.Parallel()
	e, acct, srv := startGmail(t, Config{})
	ctx := testCtx(t)
	page, err := e.Search(ctx, acct, "INBOX", SearchQuery{Subject: "Invoice"})
	if err != nil || page.Total != 1 {
		t.Fatalf("ascii search: %v %v", page, err)
	}
	srv.SetFault(gmailtest.FaultBadCharset)
	page, err = e.Search(ctx, acct, "INBOX", SearchQuery{Subject: "Ínvoicé"})
	if err != nil || page.Total != 1 || page.Messages[0].MessageID != "m5@gmail.test" {
		t.Fatalf("after BADCHARSET: %v %v", page, err)
	}
}

func TestGmailRawOnlyOnGmail(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "bob")
	if _, err := e.Search(testCtx(t), acct, "INBOX", SearchQuery{GmailRaw: "has:attachment"}); KindOf(err) != KindUnsupported {
		t.Fatalf("X-GM-RAW on Dovecot: %v", err)
	}
}

func TestMisbehavingServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault gmailtest.Fault
		kind  Kind
	}{
		{"drop mid-FETCH", gmailtest.FaultDropMidFetch, KindOther},
		{"slow answer", gmailtest.FaultSlow, KindTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, acct, srv := startGmail(t, Config{Timeouts: Timeouts{Command: 300 * time.Millisecond}})
			srv.Delay = 2 * time.Second
			ctx := testCtx(t)
			if _, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{}); err != nil {
				t.Fatal(err)
			}
			srv.SetFault(tc.fault)
			start := time.Now()
			_, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{})
			var me *Error
			if !errors.As(err, &me) || me.Kind != tc.kind || time.Since(start) > 1500*time.Millisecond {
				t.Fatalf("err %v (kind %v) after %v", err, KindOf(err), time.Since(start))
			}
			if st := e.Stats()[acct.ID]; st != [2]int{0, 0} {
				t.Fatalf("broken connection kept: %v", st)
			}
			srv.SetFault(gmailtest.FaultNone)
			page, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{})
			if err != nil || page.Total != 4 {
				t.Fatalf("after recovery: %v %v", page, err)
			}
			if strings.Contains(err2s(err), acct.Password) {
				t.Fatal("password in error")
			}
		})
	}
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestUnreadableBodyStructure: an answer go-imap cannot parse (it loses the
// connection with it) costs neither the page nor any message on it.
func TestUnreadableBodyStructure(t *testing.T) {
	t.Parallel()
	e, acct, srv := startGmail(t, Config{})
	ctx := testCtx(t)
	srv.SetFault(gmailtest.FaultBadBodyStructure)
	page, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{})
	if err != nil || page.Total != 4 || len(page.Messages) != 4 {
		t.Fatalf("page %+v, %v", page, err)
	}
	for _, m := range page.Messages {
		if m.Subject == "" || m.MessageID == "" || m.Note != "" {
			t.Fatalf("message not read whole: %+v", m)
		}
	}
	th, err := e.GetThread(ctx, acct, "INBOX", page.Messages[0].UID, ThreadOptions{})
	if err != nil || len(th.Messages) == 0 {
		t.Fatalf("thread %+v, %v", th, err)
	}
	if st := e.Stats()[acct.ID]; st[1] != 0 {
		t.Fatalf("connections still busy: %v", st)
	}
}

// TestServerRestartIsInvisible: after the server dropped every idle
// pooled connection (a restart), the next read-only calls succeed on
// fresh connections instead of failing one after another.
func TestServerRestartIsInvisible(t *testing.T) {
	t.Parallel()
	e, acct, srv := startGmail(t, Config{MaxConns: 4})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range 4 { // four idle connections in the pool
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	srv.DropAll()
	time.Sleep(50 * time.Millisecond)
	for i := range 5 {
		if _, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{}); err != nil {
			t.Fatalf("call %d after the restart: %v", i+1, err)
		}
	}
}

// TestRawSessionEncodesMailboxNames: a raw session names a folder as
// the IMAP library does (modified UTF-7); before, it sent UTF-8, which a
// server without UTF8=ACCEPT takes for another folder, so Gmail accounts
// in other languages found no All Mail.
func TestRawSessionEncodesMailboxNames(t *testing.T) {
	lines := make(chan string, 100)
	acct := startHostile(t, &hostileServer{lineHook: func(l string) { lines <- l }, answer: func(string, string, *bufio.Writer) bool { return false }})
	e := New(Config{AllowPrivateHosts: true})
	defer e.Close()
	sent := func(verb string) string {
		for {
			select {
			case l := <-lines:
				if _, rest, _ := strings.Cut(l, " "); strings.HasPrefix(rest, verb+" ") {
					return strings.TrimSpace(strings.TrimPrefix(rest, verb+" "))
				}
			default:
				t.Fatalf("no %s sent", verb)
			}
		}
	}
	for _, name := range []string{"[Gmail]/Вся почта", "Entwürfe & Co", "日本語", "a&b", "📁 x", "plain"} {
		if _, err := e.ListMessages(testCtx(t), acct, name, ListOptions{}); err != nil {
			t.Fatal(err)
		}
		library := sent("SELECT")
		c := &Conn{dial: e.Pool.dial, acct: acct, ctx: testCtx(t), cfg: &e.Pool.cfg}
		s, err := c.rawExamine(name)
		if err != nil {
			t.Fatal(err)
		}
		s.close()
		if raw := sent("EXAMINE"); raw != library && raw != `"`+library+`"` {
			t.Errorf("%q: raw session sent %s, the library %s", name, raw, library)
		}
	}
}
