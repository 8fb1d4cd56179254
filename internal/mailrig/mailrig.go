// Package mailrig runs a real Dovecot (IMAP, LMTP, SASL) and a real Postfix
// (submission and SMTPS) on free loopback ports for tests.
//
// Everything a rig creates lives in one private directory, /dev/shm/mr*
// when /dev/shm is a roomy tmpfs and /tmp/mr* otherwise: the
// configuration files, the TLS material, the mail store, the queue and the
// logs. A watchdog child process stops the daemons and removes the directory
// when the rig is closed or when the test binary dies in any way, so a failed
// or killed test run leaves nothing behind.
//
// Postfix refuses to run unprivileged, so a rig needs root.
package mailrig

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/oauthprovider"
)

// Domain is the mail domain every rig user belongs to.
const Domain = "example.test"

// SinkName is the local part of the user that receives every message sent
// to an address outside Domain; nothing ever leaves the machine.
const SinkName = "sink"

// startTimeout bounds how long Start waits for all listeners to greet.
const startTimeout = 10 * time.Second

// User is a mailbox owner. Email is the login name for IMAP and SMTP AUTH;
// Name alone also works for IMAP and SMTP AUTH because Domain is the default
// realm.
type User struct {
	Name     string
	Email    string
	Password string
}

// Rig is a running Dovecot and Postfix pair. Its exported fields are set by
// Start and must not be modified.
type Rig struct {
	// Host is the loopback address all listeners bind to ("127.0.0.1").
	Host string
	// IMAPPort serves plain IMAP with STARTTLS offered; LOGIN works
	// without TLS because loopback is a trusted network.
	IMAPPort int
	// IMAPSPort serves IMAP over implicit TLS.
	IMAPSPort int
	// SubmissionPort serves SMTP submission: STARTTLS, then AUTH, are
	// required before any recipient is accepted.
	SubmissionPort int
	// SMTPSPort serves SMTP submission over implicit TLS; AUTH is required.
	SMTPSPort int
	// CAPEM is the PEM-encoded certificate of the rig's private CA, which
	// signed the server certificate for 127.0.0.1, ::1 and localhost.
	CAPEM []byte
	// CAFile is the path of a file holding CAPEM.
	CAFile string
	// Users are alice, bob, carol and sink, all at Domain, in that order.
	Users []User
	// Dir is the rig's private directory; it is removed by Close.
	Dir string
	// OAuth is the provider whose tokens Dovecot accepts (SASL XOAUTH2
	// and OAUTHBEARER, for IMAP and, through Dovecot, Postfix
	// submission), for the rig's users.
	OAuth *oauthprovider.Provider

	lmtpPort  int
	caPool    *x509.CertPool
	dovecot   *daemon
	postfix   *daemon
	watchdog  *watchdog
	closeOnce sync.Once
	closeErr  error
}

// Start creates a private directory, generates TLS material and
// configuration, starts Dovecot and Postfix and waits until every listener
// greets. It needs root. On error nothing started is left running and the
// error includes the tail of the daemon logs.
func Start() (*Rig, error) {
	// The free ports are found by binding and releasing them, so another
	// process may take one before a daemon binds it: start again on
	// fresh ports when that happened.
	for attempt := 1; ; attempt++ {
		r, err := startOnce()
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return r, err
		}
	}
}

func startOnce() (*Rig, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("mailrig: the rig needs root: Postfix cannot run unprivileged and Dovecot must switch to the mail user")
	}
	dir, err := makeRigDir()
	if err != nil {
		return nil, err
	}
	r := &Rig{Host: "127.0.0.1", Dir: dir}
	if r.watchdog, err = startWatchdog(dir); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	if err := r.start(); err != nil {
		err = fmt.Errorf("mailrig: start: %w\n%s", err, r.LogTail(40))
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

// makeRigDir creates a short, world-traversable directory under rigBase:
// the unprivileged daemon users must reach files inside it and unix socket
// paths below it must stay under 108 bytes.
func makeRigDir() (string, error) {
	dir, err := os.MkdirTemp(rigBase(), "mr")
	if err != nil {
		return "", fmt.Errorf("mailrig: create rig directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", errors.Join(fmt.Errorf("mailrig: chmod rig directory: %w", err), os.RemoveAll(dir))
	}
	return dir, nil
}

// tmpfsMagic is the statfs(2) type of tmpfs.
const tmpfsMagic = 0x01021994

// rigBase returns /dev/shm when it is a tmpfs with at least 1 GiB free,
// else /tmp. Creating a file costs about 15 µs on tmpfs against up to
// 500 µs on a journaled disk, which decides how fast Seed is.
func rigBase() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil &&
		int64(st.Type) == tmpfsMagic && uint64(st.Bavail)*uint64(st.Bsize) >= 1<<30 {
		return "/dev/shm"
	}
	return "/tmp"
}

func (r *Rig) start() error {
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	r.IMAPPort, r.IMAPSPort, r.SubmissionPort, r.SMTPSPort, r.lmtpPort = ports[0], ports[1], ports[2], ports[3], ports[4]
	if r.Users, err = newUsers(); err != nil {
		return err
	}
	if err := r.writeTLS(); err != nil {
		return err
	}
	if r.OAuth, err = oauthprovider.Start(); err != nil {
		return fmt.Errorf("start oauth provider: %w", err)
	}
	if err := r.writeDovecotConfig(); err != nil {
		return err
	}
	if err := r.writePostfixConfig(); err != nil {
		return err
	}
	if r.dovecot, err = r.startDovecot(); err != nil {
		return err
	}
	if r.postfix, err = r.startPostfix(); err != nil {
		return err
	}
	return r.waitReady(time.Now().Add(startTimeout))
}

// newUsers returns the rig users with fresh random passwords.
func newUsers() ([]User, error) {
	names := []string{"alice", "bob", "carol", SinkName}
	users := make([]User, len(names))
	for i, name := range names {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate password: %w", err)
		}
		users[i] = User{Name: name, Email: name + "@" + Domain, Password: name + "-" + hex.EncodeToString(b)}
	}
	return users, nil
}

// User returns the rig user whose Name or Email equals name.
func (r *Rig) User(name string) (User, bool) {
	for _, u := range r.Users {
		if u.Name == name || u.Email == name {
			return u, true
		}
	}
	return User{}, false
}

// IMAPAddr returns "host:port" of the plain/STARTTLS IMAP listener.
func (r *Rig) IMAPAddr() string { return r.addr(r.IMAPPort) }

// IMAPSAddr returns "host:port" of the implicit-TLS IMAP listener.
func (r *Rig) IMAPSAddr() string { return r.addr(r.IMAPSPort) }

// SubmissionAddr returns "host:port" of the STARTTLS submission listener.
func (r *Rig) SubmissionAddr() string { return r.addr(r.SubmissionPort) }

// SMTPSAddr returns "host:port" of the implicit-TLS submission listener.
func (r *Rig) SMTPSAddr() string { return r.addr(r.SMTPSPort) }

func (r *Rig) addr(port int) string {
	return r.Host + ":" + strconv.Itoa(port)
}

// TLSConfig returns a new client configuration that trusts only the rig CA,
// with ServerName set to Host. Callers may change the returned value.
func (r *Rig) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: r.caPool, ServerName: r.Host, MinVersion: tls.VersionTLS12}
}

// Close stops Dovecot and Postfix and removes Dir. It is safe to call more
// than once and from several goroutines; later calls return the first
// result.
func (r *Rig) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = r.watchdog.stop()
		if r.OAuth != nil {
			_ = r.OAuth.Close()
		}
		for _, d := range []*daemon{r.dovecot, r.postfix} {
			if d != nil {
				r.closeErr = errors.Join(r.closeErr, d.wait(5*time.Second))
			}
		}
		if _, err := os.Stat(r.Dir); !errors.Is(err, os.ErrNotExist) {
			r.closeErr = errors.Join(r.closeErr, fmt.Errorf("mailrig: close: %s still exists", r.Dir))
		}
	})
	return r.closeErr
}

// path joins elements onto the rig directory.
func (r *Rig) path(elem ...string) string {
	return filepath.Join(append([]string{r.Dir}, elem...)...)
}
