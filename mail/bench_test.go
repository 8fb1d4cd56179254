package mail

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

// The benchmarks read the INBOX of the rig's sink user, seeded once with
// 10,000 messages; they compare the engine with the same IMAP commands
// issued directly with go-imap on an open, selected connection (the
// floor). Run: go test -run '^$' -bench . -count 8 ./mail/
//
// Medians measured 2026-11-26 (2 vCPU AMD EPYC, Dovecot 2.3.19 on
// loopback, implicit TLS, benchstat over 8 runs):
//
//	List50Floor              1.57 ms
//	List50Pooled             1.82 ms   1.16× the floor
//	List50PooledSnippets     3.91 ms   (opt-in snippets: one more FETCH)
//	List50FreshConnection   16.9 ms    9.3× the pooled list
//	Search3Floor             7.49 ms
//	Search3Pooled            7.64 ms   1.02× the floor
//	Attachment10MB          58.7 ms, peak live-heap growth 73 KiB for a
//	                        9.5 MiB attachment (0.007×)

const benchMessages = 10000

var benchSetup struct {
	once sync.Once
	err  error
	att  struct {
		folder string
		uid    uint32
		part   string
		size   int64
	}
	medium uint32 // a 50 KB message in INBOX
	thread uint32 // the newest of a 30-message thread in INBOX
}

// benchRig seeds the benchmark mailbox once per test binary.
func benchRig(b *testing.B) (*Engine, *Account, *mailrig.Rig) {
	b.Helper()
	e, rig := testEngine(b, Config{})
	acct := rigAccount(b, rig, mailrig.SinkName)
	benchSetup.once.Do(func() {
		if _, benchSetup.err = rig.Seed(mailrig.SinkName, "INBOX", benchMessages, mailrig.SeedOptions{Seed: 42}); benchSetup.err != nil {
			return
		}
		if benchSetup.err = seedBigAttachment(e, acct); benchSetup.err != nil {
			return
		}
		benchSetup.err = seedMediumAndThread(rig)
	})
	if benchSetup.err != nil {
		b.Fatal(benchSetup.err)
	}
	return e, acct, rig
}

// seedBigAttachment appends a 14 MB message with a 10 MB attachment to a
// folder of its own.
func seedBigAttachment(e *Engine, acct *Account) error {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	raw, _, _, err := buildMessage(acct, Outgoing{To: []string{acct.Email}, Subject: "big", Text: "see attachment",
		Attachments: []OutgoingAttachment{{Filename: "big.bin", Data: data}}}, false)
	if err != nil {
		return err
	}
	ctx := context.Background()
	folder := uniqueFolder("bigatt")
	if err := e.CreateFolder(ctx, acct, folder); err != nil {
		return err
	}
	if err := e.Do(ctx, acct, func(c *Conn) error {
		return c.do("append", func() error {
			cmd := c.client.Append(folder, int64(len(raw)), nil)
			if _, err := cmd.Write(raw); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			_, err := cmd.Wait()
			return err
		})
	}); err != nil {
		return err
	}
	msg, err := e.GetMessage(ctx, acct, folder, 1, GetOptions{})
	if err != nil {
		return err
	}
	a := &benchSetup.att
	a.folder, a.uid, a.part, a.size = folder, 1, msg.Attachments[0].Part, int64(len(data))
	return nil
}

// seedMediumAndThread appends to INBOX a 50 KB message (text and HTML)
// and a conversation of 30 messages linked by In-Reply-To and References.
func seedMediumAndThread(rig *mailrig.Rig) error {
	app, err := rig.Appender(mailrig.SinkName)
	if err != nil {
		return err
	}
	defer app.Close()
	para := strings.Repeat("The quarterly figures are attached below, with notes on each line. ", 6) + "\r\n"
	text, html := strings.Repeat(para, 100), strings.Repeat("<p>"+para+"</p>", 120)
	raw := "From: ann@example.org\r\nTo: sink@example.org\r\nSubject: figures\r\nMessage-ID: <medium@bench>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		text + "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "--b--\r\n"
	if benchSetup.medium, err = app.Append("INBOX", []byte(raw)); err != nil {
		return err
	}
	var refs []string
	for i := range 30 {
		id := fmt.Sprintf("<t%d@bench>", i)
		hdr := fmt.Sprintf("From: p%d@example.org\r\nTo: sink@example.org\r\nSubject: Re: plan\r\nMessage-ID: %s\r\n"+
			"Date: Mon, 2 Nov 2026 %02d:%02d:00 +0000\r\n", i%4, id, 8+i/60, i%60)
		if len(refs) > 0 {
			hdr += "In-Reply-To: " + refs[len(refs)-1] + "\r\nReferences: " + strings.Join(refs, " ") + "\r\n"
		}
		refs = append(refs, id)
		if benchSetup.thread, err = app.Append("INBOX", []byte(hdr+"\r\nreply "+strconv.Itoa(i)+"\r\n")); err != nil {
			return err
		}
	}
	return nil
}

// floorConn opens, logs in and selects INBOX with go-imap directly.
func floorConn(b *testing.B, rig *mailrig.Rig, acct *Account) (*imapclient.Client, *imap.SelectData) {
	b.Helper()
	c, err := imapclient.DialTLS(rig.IMAPSAddr(), &imapclient.Options{TLSConfig: rig.TLSConfig()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Login(acct.Username, acct.Password).Wait(); err != nil {
		b.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	return c, sel
}

func BenchmarkList50Floor(b *testing.B) {
	_, acct, rig := benchRig(b)
	c, sel := floorConn(b, rig, acct)
	set := imap.SeqSetNum(seqRange(sel.NumMessages-49, sel.NumMessages)...)
	for b.Loop() {
		msgs, err := c.Fetch(set, summaryFetch).Collect()
		if err != nil || len(msgs) != 50 {
			b.Fatal(len(msgs), err)
		}
	}
}

func BenchmarkList50Pooled(b *testing.B) {
	e, acct, _ := benchRig(b)
	ctx := context.Background()
	for b.Loop() {
		page, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{Limit: 50})
		if err != nil || len(page.Messages) != 50 || page.Total < benchMessages {
			b.Fatal(err)
		}
	}
}

func BenchmarkList50PooledSnippets(b *testing.B) {
	e, acct, _ := benchRig(b)
	ctx := context.Background()
	for b.Loop() {
		page, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{Limit: 50, Snippets: true})
		if err != nil || len(page.Messages) != 50 || page.Messages[0].Snippet == "" {
			b.Fatal(err)
		}
	}
}

func BenchmarkList50FreshConnection(b *testing.B) {
	_, acct, rig := benchRig(b)
	roots, err := LoadRootCAs(rig.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		e := New(Config{AllowPrivateHosts: true, RootCAs: roots})
		page, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{Limit: 50})
		if err != nil || len(page.Messages) != 50 {
			b.Fatal(err)
		}
		_ = e.Close()
	}
}

// benchQuery has three criteria: a From substring, a date and unread.
func benchQuery() SearchQuery {
	return SearchQuery{From: "example.com", Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Unread: true, Limit: 50}
}

func BenchmarkSearch3Floor(b *testing.B) {
	_, acct, rig := benchRig(b)
	c, _ := floorConn(b, rig, acct)
	criteria, err := benchQuery().criteria()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		data, err := c.UIDSearch(criteria, &imap.SearchOptions{ReturnAll: true}).Wait()
		if err != nil {
			b.Fatal(err)
		}
		uids, _ := data.All.(imap.UIDSet).Nums()
		if len(uids) > 50 {
			uids = uids[len(uids)-50:]
		}
		if len(uids) == 0 {
			b.Fatal("no match")
		}
		if _, err := c.Fetch(imap.UIDSetNum(uids...), summaryFetch).Collect(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearch3Pooled(b *testing.B) {
	e, acct, _ := benchRig(b)
	ctx := context.Background()
	for b.Loop() {
		page, err := e.Search(ctx, acct, "INBOX", benchQuery())
		if err != nil || len(page.Messages) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttachment10MB streams a 10 MB attachment and reports the
// peak growth of live heap while it streams (peak-heap-MB) against the
// attachment's size (attachment-MB).
func BenchmarkAttachment10MB(b *testing.B) {
	e, acct, _ := benchRig(b)
	a := benchSetup.att
	ctx := context.Background()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	var peak uint64
	for b.Loop() {
		base := heap()
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() {
			var max uint64
			t := time.NewTicker(200 * time.Microsecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					done <- max
					return
				case <-t.C:
					if h := heap(); h > base && h-base > max {
						max = h - base
					}
				}
			}
		}()
		info, err := e.GetAttachment(ctx, acct, a.folder, a.uid, a.part, func(AttachmentInfo) io.Writer { return io.Discard })
		close(stop)
		peak = max(peak, <-done)
		if err != nil || info.Size != a.size {
			b.Fatal(info.Size, err)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(a.size)/(1<<20), "attachment-MB")
}

func BenchmarkGet50KBFloor(b *testing.B) {
	_, acct, rig := benchRig(b)
	c, _ := floorConn(b, rig, acct)
	for b.Loop() {
		msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(benchSetup.medium)), &imap.FetchOptions{UID: true, Flags: true,
			RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{wholeBody}}).Collect()
		if err != nil || len(msgs) != 1 || len(msgs[0].BodySection[0].Bytes) < 50000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet50KB(b *testing.B) {
	e, acct, _ := benchRig(b)
	ctx := context.Background()
	for b.Loop() {
		msg, err := e.GetMessage(ctx, acct, "INBOX", benchSetup.medium, GetOptions{})
		if err != nil || msg.TextLength < 20000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet14MB reads the text of the message holding the 10 MB
// attachment.
func BenchmarkGet14MB(b *testing.B) {
	e, acct, _ := benchRig(b)
	ctx := context.Background()
	a := benchSetup.att
	for b.Loop() {
		msg, err := e.GetMessage(ctx, acct, a.folder, a.uid, GetOptions{})
		if err != nil || msg.Text != "see attachment" || msg.Size < 13<<20 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttachment10MBFloor fetches the attachment's section with
// go-imap and decodes its base64, as a download must.
func BenchmarkAttachment10MBFloor(b *testing.B) {
	_, acct, rig := benchRig(b)
	c, _ := floorConn(b, rig, acct)
	a := benchSetup.att
	if _, err := c.Select(a.folder, nil).Wait(); err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.Atoi(a.part)
	for b.Loop() {
		cmd := c.Fetch(imap.UIDSetNum(imap.UID(a.uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true, Part: []int{n}}}})
		var size int64
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for item := m.Next(); item != nil; item = m.Next() {
				if it, ok := item.(imapclient.FetchItemDataBodySection); ok {
					size, _ = io.Copy(io.Discard, decodeTransfer("base64", it.Literal))
				}
			}
		}
		if err := cmd.Close(); err != nil || size != a.size {
			b.Fatal(size, err)
		}
	}
}

// BenchmarkThread30ServerThread is what finding the conversation cost
// with THREAD=REFERENCES over the whole folder, before its messages are
// fetched.
func BenchmarkThread30ServerThread(b *testing.B) {
	_, acct, rig := benchRig(b)
	c, _ := floorConn(b, rig, acct)
	for b.Loop() {
		if _, err := c.UIDThread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences, SearchCriteria: &imap.SearchCriteria{}}).Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThread30 reads the conversation with the folders' indexes
// made (the first call makes them: cold-ms).
func BenchmarkThread30(b *testing.B) {
	e, acct, _ := benchRig(b)
	ctx := context.Background()
	start := time.Now()
	if _, err := e.GetThread(ctx, acct, "INBOX", benchSetup.thread, ThreadOptions{}); err != nil {
		b.Fatal(err)
	}
	cold := time.Since(start)
	for b.Loop() {
		th, err := e.GetThread(ctx, acct, "INBOX", benchSetup.thread, ThreadOptions{})
		if err != nil || th.Total != 30 {
			b.Fatal(th, err)
		}
	}
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
}

// BenchmarkParseSmallMessage parses a 5 KB two-part message (base64 text
// and HTML), as most mail is, with no server involved.
func BenchmarkParseSmallMessage(b *testing.B) {
	text := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("Deadline deadline week could new week for schedule meeting.\n", 30)))
	html := base64.StdEncoding.EncodeToString([]byte("<p>" + strings.Repeat("Final check the numbers before the release. ", 30) + "</p>"))
	raw := []byte("Date: Sun, 29 Jun 2025 19:24:50 +0100\r\nFrom: Carol <carol@example.test>\r\nTo: Sink <sink@example.test>\r\n" +
		"Subject: =?ISO-8859-1?q?Re:_=DCbersicht_Projekt_K=F6ln?=\r\nMessage-ID: <t867.4@example.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + text + "\r\n" +
		"--b1\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + html + "\r\n--b1--\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if p := parseMessage(bytes.NewReader(raw)); !strings.HasPrefix(p.Text, "Deadline") {
			b.Fatalf("text %.40q", p.Text)
		}
	}
}
