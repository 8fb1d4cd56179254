package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/store"
)

// serveEnv, set in the environment of this test binary, makes it serve
// as the imap-mcp binary would (see TestMain), so that a test can kill
// a real server process.
const serveEnv = "IMAP_MCP_TEST_SERVE"

// serveAsChild runs the server as main does, when serveEnv asks for it.
func serveAsChild() {
	if os.Getenv(serveEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, nil, os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "imap-mcp:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serverProcess is the server running as a child process.
type serverProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

func startProcess(t *testing.T, env map[string]string, base string) *serverProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &serverProcess{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("the server exited:\n%s", p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen:\n%s", p.logs)
		}
	}
}

// kill sends sig and waits for the process to end.
func (p *serverProcess) kill(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// TestOutboxSurvivesKillAndTerm: a send interrupted by SIGKILL or SIGTERM
// before SMTP, after SMTP and before the copy in Sent, or during the
// append of that copy (IMAP slowed by a tcpLink) is finished by the
// restarted server: delivered once and filed in Sent once.
func TestOutboxSurvivesKillAndTerm(t *testing.T) {
	rig := mailrig.Shared(t)
	ca := rigCAFile(t, rig)
	imapGate, smtpGate := newTCPLink(t, rig.IMAPAddr()), newTCPLink(t, rig.SubmissionAddr())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	env := map[string]string{"DATA_DIR": t.TempDir(), "PORT": strconv.Itoa(port), "APP_URL": base, "LOCAL_ADMIN_PASSWORD": "local-secret",
		"MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": ca, "MCP_SENDS_PER_HOUR": "1000", "LOG_LEVEL": "warn"}
	proc := startProcess(t, env, base)
	_, tok, _ := authorizeLocal(t, base, base)

	// alice's account goes through the gates; bob is read directly.
	st, keys := openForTest(t, env)
	defer st.Close()
	ctx := context.Background()
	u, _ := st.EnsureLocalUser(ctx)
	addSender(t, st, keys, u, imapGate.port(), smtpGate.port(), nil)
	counter := mailCounter(t, rig)
	count := func(user, folder, subject string) int { return counter(user, folder, subject) }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened\n%s", what, proc.logs)
			}
		}
	}
	row := func(subject string) store.OutboxItem {
		list, _ := st.ListOutbox(ctx, u.ID, 100)
		for _, it := range list {
			if it.Subject == subject {
				return it
			}
		}
		return store.OutboxItem{}
	}
	bigFile := strings.Repeat("0123456789abcdef", 1<<16) // 1 MB, so that the append takes a while when slowed

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		for _, step := range []string{"before SMTP", "after SMTP", "during the append"} {
			subject := fmt.Sprintf("Crash %s %s %d", sig, step, time.Now().UnixNano())
			args := fmt.Sprintf(`{"to":[%q],"subject":%q,"body_text":"once only"`, rig.Users[1].Email, subject)
			switch step {
			case "before SMTP":
				smtpGate.held.Store(true)
			case "after SMTP":
				imapGate.held.Store(true)
			case "during the append":
				imapGate.slow.Store(512 << 10)
				args += fmt.Sprintf(`,"attachments":[{"filename":"big.txt","content_base64":%q}]`, b64(bigFile))
			}
			args += "}"
			var wg sync.WaitGroup
			wg.Go(func() { callToolRaw(base, tok.AccessToken, "send_message", args) })
			switch step {
			case "before SMTP":
				waitFor("the outbox row", func() bool { return row(subject).State == store.OutboxSending })
				time.Sleep(300 * time.Millisecond) // the SMTP connection is held at the gate
			case "after SMTP":
				waitFor("the delivery", func() bool { return count("bob", "INBOX", subject) == 1 && row(subject).SMTPDone != nil })
			case "during the append":
				waitFor("the delivery", func() bool { return count("bob", "INBOX", subject) == 1 && row(subject).SMTPDone != nil })
				time.Sleep(time.Second) // part of the Sent copy is through; the rest, already sent, arrives later
			}
			if sig == syscall.SIGTERM {
				// Shutting down waits for the call; let the gates go so that
				// it can finish, or be cut at the shutdown timeout.
				go func() { time.Sleep(200 * time.Millisecond); smtpGate.held.Store(false); imapGate.held.Store(false) }()
			}
			proc.kill(sig)
			wg.Wait()
			smtpGate.held.Store(false)
			imapGate.held.Store(false)
			imapGate.slow.Store(0)
			proc = startProcess(t, env, base)
			waitFor("the send to finish after the restart", func() bool {
				s := row(subject).State
				return s == store.OutboxSent || s == store.OutboxFailed || s == store.OutboxSentCopyFailed
			})
			if it := row(subject); it.State != store.OutboxSent {
				t.Errorf("%s %s: ended %s (%s)", sig, step, it.State, it.Outcome)
			}
			waitFor("the Sent copy", func() bool { return count("alice", "Sent", subject) >= 1 })
			time.Sleep(500 * time.Millisecond) // a second delivery or copy would show by now
			if d, c := count("bob", "INBOX", subject), count("alice", "Sent", subject); d != 1 || c != 1 {
				t.Errorf("%s %s: delivered %d times, filed in Sent %d times, want 1 and 1", sig, step, d, c)
			} else {
				t.Logf("%s %s: delivered once, filed once", sig, step)
			}
		}
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// callToolRaw calls a tool with arguments as JSON and ignores what
// becomes of the call (the server may be killed during it).
func callToolRaw(base, token, name, args string) {
	req, err := http.NewRequest("POST", base+"/api/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+name+`","arguments":`+args+`}}`))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if resp, err := (&http.Client{Timeout: time.Minute}).Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
