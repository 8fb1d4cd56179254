package mailrig

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
)

// TestSeed10000 fills carol's INBOX, which no other test delivers to.
func TestSeed10000(t *testing.T) {
	r := Shared(t)
	const n = 10000
	start := time.Now()
	res, err := r.Seed("carol", "INBOX", n, SeedOptions{Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeding %d messages took %v", n, time.Since(start))
	if len(res.Messages) != n || len(res.Thread) < 4 {
		t.Fatalf("got %d messages and a thread of %d", len(res.Messages), len(res.Thread))
	}

	c := dialIMAP(t, r, mustUser(t, r, "carol"), false)
	start = time.Now()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	t.Logf("first SELECT of %d messages took %v", sel.NumMessages, time.Since(start))
	if sel.NumMessages != n {
		t.Fatalf("SELECT reports %d messages, want %d", sel.NumMessages, n)
	}

	var prev imap.UID
	for _, m := range res.Thread {
		uids := searchMessageID(t, c, m.MessageID)
		if len(uids) != 1 || uids[0] <= prev {
			t.Fatalf("thread message %s: UIDs %v, want one above %d", m.MessageID, uids, prev)
		}
		prev = uids[0]
	}
	checkEnvelope(t, c, imap.SeqSetNum(n), res.Newest())
	checkFlagCounts(t, c, res)
}

// checkEnvelope asserts the Message-ID and decoded subject of one message.
func checkEnvelope(t *testing.T, c *imapclient.Client, seq imap.SeqSet, want SeededMessage) {
	t.Helper()
	msgs, err := c.Fetch(seq, &imap.FetchOptions{Envelope: true, InternalDate: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH %v ENVELOPE: %d messages, %v", seq, len(msgs), err)
	}
	env := msgs[0].Envelope
	if env.MessageID != want.MessageID || env.Subject != want.Subject {
		t.Errorf("message %v is %q %q, want %q %q", seq, env.MessageID, env.Subject, want.MessageID, want.Subject)
	}
	if !msgs[0].InternalDate.Equal(want.Date) || !env.Date.Equal(want.Date) {
		t.Errorf("message %v dated %v (internal %v), want %v", seq, env.Date, msgs[0].InternalDate, want.Date)
	}
}

// checkFlagCounts compares UNSEEN, FLAGGED and ANSWERED counts with the
// seed result.
func checkFlagCounts(t *testing.T, c *imapclient.Client, res SeedResult) {
	t.Helper()
	var unseen, flagged, answered uint32
	for _, m := range res.Messages {
		unseen += b2u(!m.Seen)
		flagged += b2u(m.Flagged)
		answered += b2u(m.Answered)
	}
	if unseen == 0 || flagged == 0 || answered == 0 || unseen == uint32(len(res.Messages)) {
		t.Errorf("flag mix too uniform: %d unseen, %d flagged, %d answered", unseen, flagged, answered)
	}
	for _, tc := range []struct {
		name     string
		criteria imap.SearchCriteria
		want     uint32
	}{
		{"UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, unseen},
		{"FLAGGED", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, flagged},
		{"ANSWERED", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagAnswered}}, answered},
	} {
		data, err := c.Search(&tc.criteria, &imap.SearchOptions{ReturnCount: true}).Wait()
		if err != nil {
			t.Fatalf("SEARCH %s: %v", tc.name, err)
		}
		if data.Count != tc.want {
			t.Errorf("SEARCH %s counts %d, want %d", tc.name, data.Count, tc.want)
		}
	}
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// TestSeedVariety parses every seeded message of a smaller corpus with
// go-message and checks the promised variety survives the round trip
// through Dovecot.
func TestSeedVariety(t *testing.T) {
	r := Shared(t)
	res, err := r.Seed("alice", "Archive", 400, SeedOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	c := dialIMAP(t, r, mustUser(t, r, "alice"), true)
	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatalf("SELECT Archive: %v", err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != len(res.Messages) {
		t.Fatalf("FETCH 1:*: %d of %d messages, %v", len(msgs), len(res.Messages), err)
	}
	seen := map[string]int{}
	for i, m := range msgs {
		raw := m.FindBodySection(section)
		for _, f := range inspectMessage(t, raw) {
			seen[f]++
		}
		seen["kind "+res.Messages[i].Kind]++
		if res.Messages[i].Kind == KindNewsletter && len(raw) >= 100*1024 {
			seen["newsletter >= 100 KB"]++
		}
	}
	for _, want := range []string{
		"kind " + KindPlain, "kind " + KindAlternative, "kind " + KindMixed, "kind " + KindNewsletter,
		"newsletter >= 100 KB", "text/html", "application/pdf", "image/png", "message/rfc822",
		"attachment notes.txt", "attachment Résumé 2024.txt", "quoted-printable", "base64", "8bit",
		"subject =?UTF-8?b?", "subject =?UTF-8?q?", "subject =?ISO-8859-1?q?", "from =?UTF-8?", "in-reply-to",
		"charset UTF-8", "charset ISO-8859-1", "charset windows-1252", "charset KOI8-R",
		"charset ISO-2022-JP", "charset Shift_JIS",
	} {
		if seen[want] == 0 {
			t.Errorf("no seeded message has %s", want)
		}
	}
	t.Logf("variety: %v", seen)
}

// inspectMessage parses raw and returns the features it shows. It fails
// the test when a part cannot be decoded or a charset sample does not
// decode to its UTF-8 text.
func inspectMessage(t *testing.T, raw []byte) []string {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw[:min(len(raw), 2000)])
	}
	features := headerFeatures(ent.Header)
	err = ent.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil {
			return err
		}
		f, err := partFeatures(part)
		features = append(features, f...)
		return err
	})
	if err != nil {
		t.Fatalf("walk message: %v\n%s", err, raw[:min(len(raw), 2000)])
	}
	return features
}

func headerFeatures(h message.Header) []string {
	var f []string
	subject := h.Get("Subject")
	for _, prefix := range []string{"=?UTF-8?b?", "=?UTF-8?q?", "=?ISO-8859-1?q?"} {
		if strings.HasPrefix(subject, prefix) {
			f = append(f, "subject "+prefix)
		}
	}
	if strings.Contains(h.Get("From"), "=?UTF-8?") {
		f = append(f, "from =?UTF-8?")
	}
	if h.Get("In-Reply-To") != "" {
		f = append(f, "in-reply-to")
	}
	return f
}

// partFeatures reads one leaf part (decoded to UTF-8 by go-message) and
// verifies non-UTF-8 charset samples.
func partFeatures(part *message.Entity) ([]string, error) {
	mediaType, params, _ := part.Header.ContentType()
	if strings.HasPrefix(mediaType, "multipart/") {
		return nil, nil
	}
	f := []string{mediaType, part.Header.Get("Content-Transfer-Encoding")}
	if _, dp, err := part.Header.ContentDisposition(); err == nil && dp["filename"] != "" {
		f = append(f, "attachment "+dp["filename"])
	}
	body, err := io.ReadAll(part.Body)
	if err != nil {
		return nil, err
	}
	if mediaType == "text/plain" && params["charset"] != "" {
		f = append(f, "charset "+params["charset"])
		for _, s := range charsetSamples {
			if strings.EqualFold(s.Charset, params["charset"]) && !bytes.Contains(body, []byte(s.Text)) {
				return nil, &sampleError{s.Charset, string(body)}
			}
		}
	}
	return f, nil
}

type sampleError struct{ charset, body string }

func (e *sampleError) Error() string {
	return "decoded " + e.charset + " body lacks the sample text:\n" + e.body
}

func TestCharsetSamplesMatch(t *testing.T) {
	for _, s := range charsetSamples {
		rd, err := charset.Reader(s.Charset, strings.NewReader(s.Raw))
		if err != nil {
			t.Fatalf("%s: %v", s.Charset, err)
		}
		got, err := io.ReadAll(rd)
		if err != nil || string(got) != s.Text {
			t.Errorf("%s decodes to %q (%v), want %q", s.Charset, got, err, s.Text)
		}
	}
}

// TestSeedWhileConnected seeds a special-use folder, a new nested folder
// and the selected INBOX of a logged-in user.
func TestSeedWhileConnected(t *testing.T) {
	r := Shared(t)
	bob := mustUser(t, r, "bob")
	c := dialIMAP(t, r, bob, false)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	sent, err := r.Seed("bob", "Sent", 30, SeedOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sent.Messages {
		if m.From != bob.Email || !m.Seen {
			t.Fatalf("Sent message %s from %s, seen %v; want from %s and seen", m.MessageID, m.From, m.Seen, bob.Email)
		}
	}
	for folder, n := range map[string]int{"Projects/2024": 5, "INBOX": 7} {
		if _, err := r.Seed("bob", folder, n, SeedOptions{Seed: 4}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("NOOP: %v", err)
	}
	if got := c.Mailbox().NumMessages; got != sel.NumMessages+7 {
		t.Errorf("selected INBOX has %d messages after seeding 7 more, want %d", got, sel.NumMessages+7)
	}
	for folder, want := range map[string]uint32{"Sent": 30, "Projects/2024": 5} {
		data, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS %s: %v", folder, err)
		}
		if *data.NumMessages != want {
			t.Errorf("%s has %d messages, want %d", folder, *data.NumMessages, want)
		}
	}
}

func TestSeedDeterministic(t *testing.T) {
	r := &Rig{Users: []User{{"alice", "alice@" + Domain, ""}, {"bob", "bob@" + Domain, ""}}}
	render2 := func() [][]byte {
		msgs := r.newPlanner(r.Users[0], "INBOX", SeedOptions{Seed: 9}).plan(300, defaultNewest, 30*24*time.Hour)
		out := make([][]byte, len(msgs))
		for i := range msgs {
			out[i] = render(&msgs[i])
		}
		return out
	}
	a, b := render2(), render2()
	if !slices.EqualFunc(a, b, bytes.Equal) {
		t.Fatal("equal seeds rendered different corpora")
	}
}

func TestSeedRejectsBadInput(t *testing.T) {
	r := Shared(t)
	for _, tc := range []struct{ user, folder string }{
		{"mallory", "INBOX"},
		{"alice", "a.b"},
		{"alice", "/abs"},
		{"alice", ""},
	} {
		if _, err := r.Seed(tc.user, tc.folder, 1, SeedOptions{}); err == nil {
			t.Errorf("Seed(%q, %q) succeeded", tc.user, tc.folder)
		}
	}
}
