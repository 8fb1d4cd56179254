package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

func TestMain(m *testing.M) { os.Exit(mailrig.Main(m)) }

// testEngine returns an engine that trusts the rig and may dial loopback.
func testEngine(t testing.TB, cfg Config) (*Engine, *mailrig.Rig) {
	t.Helper()
	rig := mailrig.Shared(t)
	roots, err := LoadRootCAs(rig.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowPrivateHosts, cfg.RootCAs = true, roots
	e := New(cfg)
	t.Cleanup(func() { _ = e.Close() })
	return e, rig
}

// endpoint splits a rig address.
func endpoint(t testing.TB, addr string, mode TLSMode) Endpoint {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return Endpoint{Host: host, Port: p, TLS: mode}
}

// rigAccount returns the account of a rig user over implicit TLS.
func rigAccount(t testing.TB, rig *mailrig.Rig, name string) *Account {
	t.Helper()
	u, ok := rig.User(name)
	if !ok {
		t.Fatalf("no rig user %s", name)
	}
	return &Account{ID: "acct-" + name, IMAP: endpoint(t, rig.IMAPSAddr(), TLSImplicit),
		SMTP: endpoint(t, rig.SMTPSAddr(), TLSImplicit), Username: u.Email, Password: u.Password,
		Email: u.Email, Name: name}
}

// testCtx is a context bounded well below the test timeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// uniqueFolder returns a folder name no other test uses.
func uniqueFolder(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// seedFolder seeds n messages into a fresh folder of user.
func seedFolder(t testing.TB, rig *mailrig.Rig, user, prefix string, n int) (string, mailrig.SeedResult) {
	t.Helper()
	folder := uniqueFolder(prefix)
	res, err := rig.Seed(user, folder, n, mailrig.SeedOptions{Seed: int64(n)})
	if err != nil {
		t.Fatal(err)
	}
	return folder, res
}

// testRig returns the shared rig.
func testRig(t testing.TB) *mailrig.Rig { return mailrig.Shared(t) }

// recreateFolder deletes folder and returns an appender that creates it
// anew (with a new UIDVALIDITY) on its first Append.
func recreateFolder(t testing.TB, e *Engine, rig *mailrig.Rig, acct *Account, user, folder string) *mailrig.Appender {
	t.Helper()
	if err := e.DeleteFolder(testCtx(t), acct, folder); err != nil {
		t.Fatal(err)
	}
	app, err := rig.Appender(user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}
