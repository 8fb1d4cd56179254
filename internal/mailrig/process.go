package mailrig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// daemon is a foreground server process started by the rig. It runs in its
// own process group and is reaped by a goroutine as soon as it exits, so
// that it never lingers as a zombie that looks alive to the watchdog.
type daemon struct {
	name string
	done chan struct{}
	err  error // valid once done is closed
}

// startDaemon runs argv with stdout and stderr appended to logPath. The
// output must go to a file: Dovecot hands its stderr on to long-lived
// children, so a pipe would never reach EOF.
func startDaemon(name, logPath string, argv ...string) (*daemon, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	// The child gets its own descriptor; ours is only needed until Start.
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// exitErr returns a non-nil error if the daemon has already exited.
func (d *daemon) exitErr() error {
	select {
	case <-d.done:
		return fmt.Errorf("%s exited early: %v", d.name, d.err)
	default:
		return nil
	}
}

// wait waits up to timeout for the daemon to exit.
func (d *daemon) wait(timeout time.Duration) error {
	select {
	case <-d.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", d.name, timeout)
	}
}

// watchdogScript blocks until its stdin reaches EOF, which happens when the
// rig is closed or when the process holding the pipe dies for any reason.
// It then terminates the process groups recorded in the Dovecot and Postfix
// pid files, waits until no live (non-zombie) member remains, escalating to
// SIGKILL, and removes the rig directory. It exits 1 if a group survived.
const watchdogScript = `
cat >/dev/null
dir=$1
dovecot=$dir/dovecot/run/master.pid
postfix=$dir/queue/pid/master.pid
pgid() { [ -s "$1" ] && tr -dc 0-9 <"$1"; }
alive() { ps -A -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }
signal() { for g in $groups; do kill -s "$1" -- "-$g" 2>/dev/null; done; }
groups="$(pgid "$dovecot") $(pgid "$postfix")"
signal TERM
rc=0
for g in $groups; do
	i=0
	while alive "$g"; do
		i=$((i + 1))
		[ "$i" -eq 100 ] && signal KILL
		[ "$i" -ge 200 ] && { rc=1; break; }
		sleep 0.05
	done
done
rm -rf "$dir" || rc=1
exit $rc
`

// watchdog is the cleanup child process described by watchdogScript.
type watchdog struct {
	stdin io.WriteCloser
	done  chan struct{}
	err   error // valid once done is closed
}

// startWatchdog starts the watchdog for dir in its own process group, so
// that a terminal's SIGINT to the test process group does not kill it
// before it has cleaned up.
func startWatchdog(dir string) (*watchdog, error) {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "mailrig-watchdog", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("mailrig: watchdog stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mailrig: start watchdog: %w", err)
	}
	w := &watchdog{stdin: stdin, done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

// stop makes the watchdog clean up now and waits for it to finish.
func (w *watchdog) stop() error {
	if err := w.stdin.Close(); err != nil {
		return fmt.Errorf("mailrig: release watchdog: %w", err)
	}
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		return errors.New("mailrig: watchdog did not finish cleaning up within 30s")
	}
	if w.err != nil {
		return fmt.Errorf("mailrig: watchdog cleanup failed (daemons may still run): %w", w.err)
	}
	return nil
}
