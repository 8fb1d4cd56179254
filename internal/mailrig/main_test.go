package mailrig

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// crashEnv makes the test binary act as a rig owner that dies without
// closing its rig; see crash.
const crashEnv = "MAILRIG_CRASH_MODE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(crashEnv); mode != "" {
		crash(mode)
	}
	os.Exit(Main(m))
}

// crash starts a rig, prints its directory and the Dovecot and Postfix
// process group ids, and dies as mode says ("kill", "panic" or "exit")
// without closing the rig.
func crash(mode string) {
	r, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	dovecot, _ := os.ReadFile(r.path("dovecot", "run", "master.pid"))
	postfix, _ := os.ReadFile(r.path("queue", "pid", "master.pid"))
	fmt.Println(r.Dir, strings.TrimSpace(string(dovecot)), strings.TrimSpace(string(postfix)))
	switch mode {
	case "panic":
		panic("mailrig: crash test")
	case "exit":
		os.Exit(3)
	default:
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

func TestWatchdogCleansUpAfterCrash(t *testing.T) {
	for _, mode := range []string{"kill", "panic", "exit"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+mode)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err == nil {
				t.Fatalf("crashing child exited cleanly")
			}
			var dir string
			var dovecot, postfix int
			if _, err := fmt.Sscan(string(out), &dir, &dovecot, &postfix); err != nil {
				t.Fatalf("child output %q: %v\n%s", out, err, stderr.String())
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				_, statErr := os.Stat(dir)
				gone := errors.Is(statErr, os.ErrNotExist)
				live := liveGroups(t, dovecot, postfix)
				if gone && len(live) == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("after %s: %s removed: %v; live processes in daemon groups: %v", mode, dir, gone, live)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// liveGroups returns the ids of non-zombie processes whose process group
// is one of pgids.
func liveGroups(t *testing.T, pgids ...int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // the process exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		pgrp, _ := strconv.Atoi(fields[2])
		if fields[0] != "Z" && slices.Contains(pgids, pgrp) {
			pid, _ := strconv.Atoi(strings.Fields(string(data))[0])
			live = append(live, pid)
		}
	}
	return live
}

// dialIMAP logs u in over STARTTLS on IMAPPort, or over implicit TLS on
// IMAPSPort, and closes the connection when the test ends.
func dialIMAP(t *testing.T, r *Rig, u User, implicitTLS bool) *imapclient.Client {
	t.Helper()
	opts := &imapclient.Options{TLSConfig: r.TLSConfig()}
	dial, addr := imapclient.DialStartTLS, r.IMAPAddr()
	if implicitTLS {
		dial, addr = imapclient.DialTLS, r.IMAPSAddr()
	}
	c, err := dial(addr, opts)
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", addr, err, r.LogTail(20))
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(u.Email, u.Password).Wait(); err != nil {
		t.Fatalf("login %s: %v\n%s", u.Email, err, r.LogTail(20))
	}
	return c
}

// mustUser returns the named rig user.
func mustUser(t *testing.T, r *Rig, name string) User {
	t.Helper()
	u, ok := r.User(name)
	if !ok {
		t.Fatalf("no rig user %q", name)
	}
	return u
}

// searchMessageID returns the UIDs in the selected mailbox whose
// Message-ID header contains id.
func searchMessageID(t *testing.T, c *imapclient.Client, id string) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(&imap.SearchCriteria{
		Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: id}},
	}, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH HEADER Message-ID %s: %v", id, err)
	}
	return data.AllUIDs()
}

func TestStartAndClose(t *testing.T) {
	start := time.Now()
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start-up took %v", time.Since(start))
	if r.Host != "127.0.0.1" || r.IMAPPort == 0 || r.IMAPSPort == 0 || r.SubmissionPort == 0 || r.SMTPSPort == 0 {
		t.Errorf("incomplete rig: %+v", r)
	}
	conn, err := tls.Dial("tcp", r.IMAPSAddr(), r.TLSConfig())
	if err != nil {
		t.Errorf("TLSConfig does not verify the IMAPS certificate: %v", err)
	} else {
		conn.Close()
	}
	closeStart := time.Now()
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	t.Logf("close took %v", time.Since(closeStart))
	if _, err := os.Stat(r.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Close: %v", r.Dir, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := imapclient.DialTLS(r.IMAPSAddr(), &imapclient.Options{TLSConfig: r.TLSConfig()}); err == nil {
		c.Close()
		t.Errorf("IMAPS still answers after Close")
	}
}
