package mailrig

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// freePorts returns n distinct free TCP ports on 127.0.0.1. All listeners
// are held open together so the kernel cannot hand out a port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close() // a probe listener that fails to close changes nothing
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// greeting describes one listener and the line that proves it is ready.
type greeting struct {
	name   string
	port   int
	tls    bool
	prefix string
}

// waitReady polls every listener until it sends its greeting, a daemon
// exits, or the deadline passes.
func (r *Rig) waitReady(deadline time.Time) error {
	checks := []greeting{
		{"IMAP", r.IMAPPort, false, "* OK"},
		{"IMAPS", r.IMAPSPort, true, "* OK"},
		{"LMTP", r.lmtpPort, false, "220 "},
		{"submission", r.SubmissionPort, false, "220 "},
		{"SMTPS", r.SMTPSPort, true, "220 "},
	}
	for _, c := range checks {
		if err := r.waitGreeting(c, deadline); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rig) waitGreeting(g greeting, deadline time.Time) error {
	for {
		if err := r.dovecot.exitErr(); err != nil {
			return err
		}
		if err := r.postfix.exitErr(); err != nil {
			return fmt.Errorf("%w\n%s", err, r.postfixCheck())
		}
		err := r.readGreeting(g, deadline)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on port %d not ready: %w", g.name, g.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readGreeting connects once and reads the first line.
func (r *Rig) readGreeting(g greeting, deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", r.addr(g.port))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // a probe; its close error is moot
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if g.tls {
		tc := tls.Client(conn, r.TLSConfig())
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, g.prefix) {
		return fmt.Errorf("unexpected greeting %q", strings.TrimSpace(line))
	}
	return nil
}

// logFiles are the daemon logs, relative to the rig directory.
var logFiles = []string{
	"dovecot/stdout.log",
	"dovecot/dovecot.log",
	"postfix/stdout.log",
	"postfix/maillog",
}

// LogTail returns up to n last lines of each daemon log, each block headed
// by the log's path, for failure messages. Missing logs are skipped.
func (r *Rig) LogTail(n int) string {
	var b strings.Builder
	for _, name := range logFiles {
		data, err := os.ReadFile(r.path(name))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		lines = lines[max(0, len(lines)-n):]
		fmt.Fprintf(&b, "==> %s <==\n%s\n", r.path(name), strings.Join(lines, "\n"))
	}
	return b.String()
}
