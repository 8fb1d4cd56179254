package mail

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// deadlineCounter counts the deadlines set on it.
type deadlineCounter struct {
	net.Conn
	reads, writes int
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.reads++
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineCounter) SetWriteDeadline(t time.Time) error {
	c.writes++
	return c.Conn.SetWriteDeadline(t)
}

// While a step is armed its limit alone bounds reads, and the deadlines
// the IMAP library sets around each response it reads do not touch the
// connection; writes keep an earlier client deadline; unarmed, the
// library's deadlines apply again.
func TestDeadlineConnSetsWhatChanges(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc := &deadlineCounter{Conn: a}
	d := &deadlineConn{Conn: cc}

	d.setLimit(time.Now().Add(time.Minute))
	for range 50 { // as go-imap reads fifty FETCH responses
		_ = d.SetReadDeadline(time.Now().Add(30 * time.Second))
		_ = d.SetReadDeadline(time.Time{})
	}
	_ = d.SetWriteDeadline(time.Now().Add(2 * time.Minute)) // later than the limit
	if cc.reads != 1 || cc.writes != 1 {
		t.Fatalf("armed: %d read and %d write deadlines set, want 1 and 1 (the limit's)", cc.reads, cc.writes)
	}

	// A client write deadline earlier than the limit holds (TLS bounds its
	// close_notify so), and a later one gives the limit back.
	_ = d.SetWriteDeadline(time.Unix(1, 0))
	if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("armed write past the client's earlier deadline: %v, want a deadline error", err)
	}
	_ = d.SetWriteDeadline(time.Time{})
	if cc.writes != 3 {
		t.Fatalf("%d write deadlines set, want 3", cc.writes)
	}

	// A client deadline that has passed does not end an armed step.
	_ = d.SetReadDeadline(time.Unix(1, 0))
	go func() { _, _ = b.Write([]byte("x")) }()
	if _, err := a.Read(make([]byte, 1)); err != nil {
		t.Fatalf("armed read: %v, want the byte", err)
	}

	// Unarmed, the client's own deadline is the connection's again.
	d.setLimit(time.Time{})
	if cc.reads != 2 {
		t.Fatalf("unarmed: %d read deadlines set, want 2", cc.reads)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the client's deadline: %v, want a deadline error", err)
	}
	_ = d.SetReadDeadline(time.Time{})
	_ = d.SetReadDeadline(time.Time{})
	if cc.reads != 3 {
		t.Fatalf("the same deadline twice: %d read deadlines set, want 3", cc.reads)
	}

	// A limit in the past aborts blocked I/O at once.
	done := make(chan error, 1)
	go func() { _, err := a.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	d.setLimit(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("aborted read: %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a limit in the past did not abort the blocked read")
	}
}
