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

// TestGuardReadsStatusTextAsText: status responses and continuation
// requests are free text to their line's end, as the IMAP library reads
// them: a lone quote or a final "{N}" there ends nothing and starts
// nothing (mailbox names with quotes are echoed unquoted).
func TestGuardReadsStatusTextAsText(t *testing.T) {
	for _, line := range []string{
		"* OK [ALERT] Your \"quota is nearly full\r\n",
		"A1 NO [NONEXISTENT] Unknown Mailbox: a\"b (Failure)\r\n",
		"+ \"\r\n",
		"* OK see {12}\r\n",
		"* OK [UIDVALIDITY 7] ok\r\n",
	} {
		g := &responseGuard{}
		g.reset(false, 0)
		if _, err := g.scan([]byte(line + "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\nA2 OK done\r\n")); err != nil {
			t.Errorf("%q: %v", line, err)
		}
		if g.literal != 0 || g.depth != 0 {
			t.Errorf("%q: the guard waits for a literal of %d or is %d lists deep", line, g.literal, g.depth)
		}
	}
}
