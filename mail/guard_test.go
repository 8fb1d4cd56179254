package mail

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestGuardStreamsOnlyFetchItems: only a body that is an item of the
// FETCH list itself streams past the literal limit. The same words inside
// a BODYSTRUCTURE (whose extension values the IMAP library reads into
// memory) or inside another word do not: before, a server could make
// get_message hold a 300 MB literal in memory that way.
func TestGuardStreamsOnlyFetchItems(t *testing.T) {
	const fetch = "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (A "
	statusThenFetch := fmt.Sprintf("* OK (x {%d}\r\n%sBODY[] {300000000}\r\n", len(fetch), fetch)
	for _, tc := range []struct {
		name, line string
		streams    bool
	}{
		{"a body", "* 1 FETCH (UID 1 BODY[] {300000000}\r\n", true},
		{"a partial body", "* 1 FETCH (UID 1 BODY[]<0> {300000000}\r\n", true},
		{"a section with fields", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (DATE FROM)] {300000000}\r\n", true},
		{"RFC822", "* 1 FETCH (UID 1 RFC822 {300000000}\r\n", true},
		{"a binary section", "* 1 FETCH (UID 1 BINARY[1] ~{300000000}\r\n", true},
		{"inside a BODYSTRUCTURE", "* 1 FETCH (UID 1 BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1 NIL NIL NIL NIL RFC822 {300000000}\r\n", false},
		{"inside a word", "* 1 FETCH (UID 1 XRFC822 {300000000}\r\n", false},
		// Ways to make this guard and the IMAP library disagree on where a
		// list or a response is, so that the body seems one list deep:
		{"a literal ending in a space", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS ({1} \r\n( BODY[] {300000000}\r\n", false},
		{"a line break in a quoted string", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (\"a\n(\" BODY[] {300000000}\r\n", false},
		{"an escaped line break", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (\"a\\\n(\" BODY[] {300000000}\r\n", false},
		{"status text ending like a literal", statusThenFetch, false},
		{"a response code left open", "* OK [X a\r\n* 1 FETCH (UID 1 BODY[] {300000000}\r\n", false},
		{"a numbered status's code left open", "* 5 ok [X a\r\n* 1 FETCH (UID 1 BODY[] {300000000}\r\n", false},
		{"a number padded past the kept head", "* " + strings.Repeat("0", 60) + "5 OK [X a\r\n* 1 FETCH (UID 1 BODY[] {300000000}\r\n", false},
		{"a literal's size padded past the line's kept end", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS ({" + strings.Repeat("0", 2000) + "37}\r\n" +
			"* 1 FETCH (UID 1 BODY[] {300000000}\r\n", false},
	} {
		g := &responseGuard{}
		g.reset(true, 0)
		_, err := g.scan([]byte(tc.line))
		if streams := err == nil; streams != tc.streams {
			t.Errorf("%s: streams = %v (%v), want %v", tc.name, streams, err, tc.streams)
		}
		if !tc.streams && !errors.Is(err, ErrLimit) {
			t.Errorf("%s: err %v does not name the limit", tc.name, err)
		}
	}
}

// TestGuardEndsAStreamWithItsCommand: a body still arriving when the
// next command begins came unasked, and loses the connection; before, it
// kept the last command's allowance of any size.
func TestGuardEndsAStreamWithItsCommand(t *testing.T) {
	g := &responseGuard{}
	g.reset(true, 0)
	if _, err := g.scan([]byte("* 2 FETCH (UID 2 BODY[] {1000000000}\r\n" + strings.Repeat("x", 1<<20))); err != nil {
		t.Fatal(err)
	}
	g.reset(false, 0)
	if _, err := g.scan([]byte(strings.Repeat("x", 1<<20))); !errors.Is(err, ErrLimit) {
		t.Fatalf("err %v, want one naming the limit", err)
	}
}

// TestGuardFailsTheNextReadAtOnce: the read after the one cut short at a
// line over a limit fails without waiting for the server to send more.
func TestGuardFailsTheNextReadAtOnce(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	g := &responseGuard{}
	g.reset(true, 100)
	go server.Write([]byte("* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789 BODY[1] {200}\r\n")) // then nothing more
	c := guardedConn{Conn: client, g: g}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.HasSuffix(string(buf[:n]), "0123456789") {
		t.Fatalf("first read %q, %v; want the first body whole", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("err %v, want one naming the limit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read after the limit waited for the server")
	}
}

// TestGuardFailsAParenthesisInCapabilities: the IMAP library reads a
// capability list at a "(" forever, without reading more; elsewhere on
// the line a parenthesis is text.
func TestGuardFailsAParenthesisInCapabilities(t *testing.T) {
	for line, fails := range map[string]bool{
		"* OK [CAPABILITY (] hi\r\n":                                true,
		"* CAPABILITY IMAP4rev1 X(\r\n":                             true,
		"* 2 capability IMAP4rev1 (\r\n":                            true,
		"* ENABLED UTF8=ACCEPT (\r\n":                               true,
		"* CAPAB\u0131LITY IMAP4rev1 (\r\n":                         true, // the library upper-cases "ı" to "I"
		"* 3 capab\u0131l\u0131ty X(\r\n":                           true,
		"T1 OK [CAPABILITY IMAP4rev1 (x] hi\r\n":                    true,
		"T1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in (Success)\r\n": false,
		"* OK [capability (] the library skips this code\r\n":       false,
		"* ENABLED UTF8=ACCEPT\r\n":                                 false,
	} {
		g := &responseGuard{}
		g.reset(false, 0)
		if _, err := g.scan([]byte(line)); (err != nil) != fails {
			t.Errorf("%q: err %v, want failure %v", line, err, fails)
		}
	}
}

// TestGuardHoldsOneAnswerToItsBudget: a literal that would take a
// command's answer past MaxResponseBytes fails before the library reads
// it; before, one response could hand over twice the budget.
func TestGuardHoldsOneAnswerToItsBudget(t *testing.T) {
	g := &responseGuard{}
	g.reset(false, 0)
	head := "* 1 FETCH (UID 1 ENVELOPE (\"" + strings.Repeat("a", MaxResponseBytes-200) + "\" {" + fmt.Sprint(MaxLiteral) + "}\r\n"
	ok, err := g.scan([]byte(head + strings.Repeat("b", MaxLiteral) + " NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"))
	if !errors.Is(err, ErrLimit) || ok > MaxResponseBytes {
		t.Fatalf("handed over %d bytes of one answer (budget %d): %v", ok, MaxResponseBytes, err)
	}
}

// TestThreadFetchesStayInTheAnswerBudget: one FETCH of a thread's
// summaries or of a folder's thread ids, at the per-message sizes the
// chunks are made for, is an answer the guard passes; before, 1000
// summaries of 8.5 KiB or 2000 headers of 4.3 KiB lost the connection.
func TestThreadFetchesStayInTheAnswerBudget(t *testing.T) {
	for _, tc := range []struct {
		name       string
		count, per int
		structure  bool
	}{
		{"thread ids", indexFetchChunk, 16 << 10, false},
		{"a conversation's summaries", metaFetchChunk, 40 << 10, true},
	} {
		g := &responseGuard{}
		g.reset(false, 0)
		var err error
		for i := 1; i <= tc.count && err == nil; i++ {
			resp := fmt.Sprintf("* %d FETCH (UID %d ", i, i)
			if tc.structure {
				resp += `BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 1 NIL NIL NIL NIL) `
			}
			hdr := "References: " + strings.Repeat("<x@example.com> ", (tc.per-len(resp)-60)/16) + "\r\n\r\n"
			_, err = g.scan(fmt.Appendf(nil, "%sBODY[HEADER.FIELDS (REFERENCES)] {%d}\r\n%s)\r\n", resp, len(hdr), hdr))
		}
		if err == nil {
			_, err = g.scan([]byte("A9 OK done\r\n"))
		}
		if err != nil {
			t.Errorf("%s: %d messages of %d bytes: %v", tc.name, tc.count, tc.per, err)
		}
	}
}

// BenchmarkGuardScanList feeds the guard a 50-message list answer in
// 4 KiB reads, as the IMAP library's buffered reader asks for them.
func BenchmarkGuardScanList(b *testing.B) {
	var answer []byte
	for i := range 50 {
		answer = fmt.Appendf(answer, "* %d FETCH (UID %d RFC822.SIZE 51234 FLAGS (\\Seen) INTERNALDATE \"01-Dec-2026 10:00:00 +0000\" "+
			"ENVELOPE (\"Tue, 1 Dec 2026 10:00:00 +0000\" \"Quarterly numbers for the board, draft %d\" ((\"Ann Example\" NIL \"ann\" \"example.com\")) "+
			"((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((NIL NIL \"team\" \"example.org\")) NIL NIL "+
			"\"<prev%d@example.com>\" \"<msg%d@example.com>\") BODY[HEADER.FIELDS (REFERENCES)] {62}\r\n"+
			"References: <a%d@example.com> <b%d@example.com>\r\n\r\n)\r\n", 9950+i, 9950+i, i, i, i, i, i)
	}
	answer = append(answer, "A7 OK Fetch completed (0.001 + 0.000 secs).\r\n"...)
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	g := &responseGuard{}
	for b.Loop() {
		g.reset(false, 0)
		for p := answer; len(p) > 0; {
			n := min(len(p), 4096)
			if _, err := g.scan(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
}

// TestKindOf: a response's kind as the IMAP library reads it, numbered
// status responses included (before, "* 5 OK [X" went unread as one, and
// its code skipped the next line's body past the cap).
func TestKindOf(t *testing.T) {
	for head, want := range map[string]kind{
		"+ go ahead\r\n":                   kindStatus,
		"+\r\n":                            kindStatus,
		"* OK [UIDNEXT 5] ok\r\n":          kindCode,
		"* ok done\r\n":                    kindStatus,
		"* 5 OK [X\r\n":                    kindCode,
		"* 5 bye\r\n":                      kindStatus,
		"* PREAUTH hi\r\n":                 kindStatus,
		"A12 OK [READ-WRITE] done\r\n":     kindCode,
		"A12 NO nope\r\n":                  kindStatus,
		"A12 XYZ {5}\r\n":                  kindStatus,
		"* 12 FETCH (UID 4 BODY[] {5}\r\n": kindFetch,
		"* 12 fetch (UID 4)\r\n":           kindFetch,
		"* FETCH (BODY[] {5}\r\n":          kindOther,
		"* 12 FETCH{5}\r\n":                kindOther,
		"* 12 EXISTS\r\n":                  kindOther,
		"* LIST () \"/\" {5}\r\n":          kindOther,
		"* OK[ALERT] x\r\n":                kindOther,
		"* O\u212a hi\r\n":                 kindOther,
		"* 5OK x\r\n":                      kindOther,
		"* 00000000005 OK [X\r\n":          kindUnreadable,
		"* " + strings.Repeat("A", 62):     kindUnreadable,
		strings.Repeat("T", 64):            kindUnreadable,
		"* 1 " + strings.Repeat("F", 60):   kindUnreadable,
	} {
		if got, _ := kindOf([]byte(head)[:min(len(head), headLen)]); got != want {
			t.Errorf("%q: kind %d, want %d", head, got, want)
		}
	}
}

// TestGuardPassesWhatServersSend: responses in the shapes Gmail,
// Dovecot, Outlook, Cyrus and Yahoo send pass the guard, and a body after
// a literal in the same FETCH still streams. Status responses and
// continuation requests are free text to their line's end, as the IMAP
// library reads them: a lone quote or a final "{N}" there ends nothing
// and starts nothing (mailbox names with quotes are echoed unquoted).
func TestGuardPassesWhatServersSend(t *testing.T) {
	for _, s := range []string{
		"* OK [ALERT] Your \"quota is nearly full\r\n",
		"A1 NO [NONEXISTENT] Unknown Mailbox: a\"b (Failure)\r\n",
		"+ \"\r\n",
		"* OK see {12}\r\n",
		"* OK [UIDVALIDITY 7] ok\r\n",
		"* 3 NO \"\r\n",
		"* ok\r\n",
		"A1 OK\r\n",
		"* OK Gimap ready for requests from 192.0.2.1 a1mb123456xyz\r\n",
		"* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMQBDAEEAMAAwADIAMAAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n",
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
		"* OK [CAPABILITY IMAP4rev1 ID MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT UNSELECT OBJECTID] IMAP4rev1 Hello\r\n",
		"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584\r\n",
		"T1 OK u@example.com authenticated (Success)\r\n",
		"T1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in (Success)\r\n",
		"* 3 OK [X] numbered (fine)\r\n",
		"* LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n",
		"* LIST (\\HasNoChildren) \".\" {9}\r\nfoo\"bar(x\r\n",
		"* LIST (\\HasNoChildren) \"\\\\\" \"a\\\\b\"\r\n",
		"* STATUS \"Sent Items\" (MESSAGES 3 UIDNEXT 4 UNSEEN 0)\r\n",
		"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n",
		"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing \\*)] Flags permitted.\r\n",
		"* OK [UIDVALIDITY 1] UIDs valid.\r\n* 12 EXISTS\r\n* 0 RECENT\r\n* OK [UIDNEXT 13] Predicted next UID.\r\n* OK [HIGHESTMODSEQ 4242]\r\n",
		"T3 OK [READ-WRITE] INBOX selected. (Success)\r\n",
		"T4 NO [NONEXISTENT] Unknown Mailbox: [Gmail]/Foo (Failure)\r\n",
		"T4 NO [TRYCREATE] Mailbox doesn't exist: a\"b\r\n",
		"* ESEARCH (TAG \"T5\") UID ALL 1:100,200\r\n* SEARCH 1 2 3\r\n",
		"* 1 FETCH (UID 1 FLAGS (\\Seen) ENVELOPE (\"Mon, 1 Jan 2024 00:00:00 +0000\" {5}\r\n(a\"b) ((\"\\\"Doe, J\\\\\\\"\" NIL \"j\" \"example.com\")) NIL NIL NIL NIL NIL NIL \"<a@b>\"))\r\n",
		"* 1 FETCH (UID 1 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" {9}\r\nfo\"o).pdf) NIL NIL \"base64\" 100 NIL (\"attachment\" (\"filename\" \"x.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\n",
		"* BYE Connection is closed. 13\r\n",
		"+ idling\r\n+ \r\n+\r\n",
		"* ID (\"name\" \"GImap\" \"vendor\" \"Google, Inc.\" \"support-url\" \"https://support.google.com/mail\" \"remote-host\" \"192.0.2.1\")\r\n",
		"* ID (\"name\" \"Cyrus IMAPD\" \"version\" \"v3.9.0-alpha0-1 (fastmail)\" \"vendor\" \"Project Cyrus\")\r\n",
		"* ID NIL\r\n",
		"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
		"* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\")(\"shared.\" \".\"))\r\n",
		"* NAMESPACE ((\"\" \"/\" \"X-PARAM\" (\"a\" \"b\"))) NIL NIL\r\n",
		"* QUOTAROOT INBOX \"User quota\"\r\n* QUOTA \"User quota\" (STORAGE 12 102400 MESSAGE 5 1000)\r\n",
		"* ENABLED CONDSTORE QRESYNC\r\n* ENABLED UTF8=ACCEPT\r\n* ENABLED\r\n",
		"* OK [CLOSED] Previous mailbox closed.\r\n",
		"* OK [UNSEEN 1] Is the first unseen message\r\n",
		"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)] Permanent flags\r\n",
		"* OK [MYRIGHTS \"acdilrsw\"] ACL\r\n",
		"* OK [CAPABILITY XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN] iSCREAM ready to rumble (1Q49:4) st11p00mm-iscream009 [3:1431]\r\n",
		"* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE ACL ACL2=UNION STARTTLS] Courier-IMAP ready. Copyright 1998-2018 Double Precision, Inc.  See COPYING for distribution information.\r\n",
		"T2 OK [READ-WRITE] [Gmail]/All Mail selected. (Success)\r\n",
		"T5 NO [NONEXISTENT] Mailbox doesn't exist: Foo (0.001 + 0.000 secs).\r\n",
		"T2 OK Fetch completed (0.001 + 0.000 secs).\r\n",
		"* 3 EXPUNGE\r\n* 4 EXISTS\r\n* 0 RECENT\r\n",
		"* 2 FETCH (UID 2 MODSEQ (1234) FLAGS ())\r\n",
		"* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Important \"\\\\Sent\" \"Foo (bar)\") UID 4 FLAGS (\\Seen))\r\n",
		"* 1 FETCH (UID 1 BODY[] {0}\r\n)\r\n",
		"* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LSUB () \".\" INBOX\r\n",
		"* STATUS \"Sent\" (MESSAGES 0 UIDNEXT 1 UNSEEN 0 HIGHESTMODSEQ 1)\r\n",
		"* SORT 2 3 1\r\n* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
		"+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n",
		"* PREAUTH [CAPABILITY IMAP4rev1] logged in as u\r\n",
		"* BYE [UNAVAILABLE] Server shutting down\r\n",
	} {
		g := &responseGuard{}
		g.reset(false, 0)
		if _, err := g.scan([]byte(s + "T9 OK done\r\n")); err != nil || g.depth != 0 || g.literal != 0 {
			t.Errorf("%q: %v (depth %d, literal %d)", s, err, g.depth, g.literal)
		}
	}
	for _, s := range []string{
		"* 1 FETCH (UID 1 ENVELOPE (NIL {3}\r\nabc NIL NIL NIL NIL NIL NIL NIL NIL) BODY[] {300000000}\r\n",
		"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (\"Subject\" DATE)] {300000000}\r\n",
		"* 1 FETCH (UID 1 MODSEQ (5) BODY[1.2] {300000000}\r\n",
	} {
		g := &responseGuard{}
		g.reset(true, 0)
		if _, err := g.scan([]byte(s)); err != nil || !g.streamed {
			t.Errorf("%q: %v, streamed %v", s, err, g.streamed)
		}
	}
}
