package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/secret"
	"github.com/imap-mcp/imap-mcp/store"
)

// TestOutboxReplicas: two server processes on one PostgreSQL drain one
// outbox (the messages wait out an undo window, so that both workers
// find them due): every message is delivered exactly once.
func TestOutboxReplicas(t *testing.T) {
	rig := mailrig.Shared(t)
	ca := rigCAFile(t, rig)
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + front.Addr().String()
	key := make([]byte, 32)
	rand.Read(key)
	pg := dbtest.PostgresURL(t)
	env := func() map[string]string {
		return map[string]string{"DATA_DIR": t.TempDir(), "DATABASE_URL": pg, "APP_URL": appURL, "MCP_MASTER_KEY": base64.StdEncoding.EncodeToString(key),
			"LOCAL_ADMIN_PASSWORD": "local-secret", "MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": ca, "MCP_SENDS_PER_HOUR": "1000"}
	}
	a, b := start(t, env()), start(t, env())
	rr := &roundRobin{backends: []string{a.url, b.url}}
	rr.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	srv := &http.Server{Handler: rr}
	go srv.Serve(front)
	t.Cleanup(func() { srv.Close() })
	_, tok, _ := authorizeLocal(t, appURL, appURL)

	st, keys := openForTest(t, env())
	defer st.Close()
	ctx := context.Background()
	u, _ := st.EnsureLocalUser(ctx)
	addSender(t, st, keys, u, portOf(rig.IMAPAddr()), portOf(rig.SubmissionAddr()), func(a *store.MailAccount) { a.SendDelayS = 1 })

	const n = 20
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			callToolRaw(appURL, tok.AccessToken, "send_message",
				fmt.Sprintf(`{"to":[%q],"subject":"Replica %s %02d","body_text":"once"}`, rig.Users[1].Email, stamp, i))
		})
	}
	wg.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		list, _ := st.ListOutbox(ctx, u.ID, 100)
		done := 0
		for _, it := range list {
			if it.State == store.OutboxSent {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sent", done, n)
		}
	}
	count := mailCounter(t, rig)
	time.Sleep(time.Second) // a second copy would arrive by now
	for i := range n {
		if got := count("bob", "INBOX", fmt.Sprintf("Replica %s %02d", stamp, i)); got != 1 {
			t.Errorf("message %d delivered %d times", i, got)
		}
	}
}

// TestBrowserOutboxApproval: on an account that requires approval, two
// messages from an AI client wait on /outbox in Chromium with their
// content; Send delivers the first, Discard drops the second.
func TestBrowserOutboxApproval(t *testing.T) {
	rig := mailrig.Shared(t)
	ca := rigCAFile(t, rig)
	dir := t.TempDir()
	env := map[string]string{"DATA_DIR": dir, "LOCAL_ADMIN_PASSWORD": "local-secret", "MAIL_ALLOW_PRIVATE_HOSTS": "true", "MAIL_CA_FILE": ca}
	base := startOnFreePort(t, env)
	_, tok, _ := authorizeLocal(t, base, base)
	st, keys := openForTest(t, env)
	defer st.Close()
	ctx := context.Background()
	u, _ := st.EnsureLocalUser(ctx)
	addSender(t, st, keys, u, portOf(rig.IMAPAddr()), portOf(rig.SubmissionAddr()), func(a *store.MailAccount) { a.SendRequiresApproval = true })
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	keep, drop := "Approve me "+stamp, "Discard me "+stamp
	for _, subject := range []string{keep, drop} {
		callToolRaw(base, tok.AccessToken, "send_message", fmt.Sprintf(`{"to":[%q],"subject":%q,"body_text":"Text of %s"}`, rig.Users[1].Email, subject, subject))
	}

	bctx, problems := chromium(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := stepper(t, bctx, problems)
	do(signInAt(base, "/outbox", "local-secret"), chromedp.WaitVisible(css(`[data-testid="outbox-waiting"]`)))
	text, _ := chromedp.Run(bctx, chromedp.Evaluate[string]("document.body.innerText"))
	if !strings.Contains(text, "2 waiting") || !strings.Contains(text, "Text of "+keep) || !strings.Contains(text, "Text of "+drop) {
		t.Fatalf("/outbox shows:\n%s", text)
	}
	item := func(subject string) string {
		list, _ := st.ListOutbox(ctx, u.ID, 10)
		for _, it := range list {
			if it.Subject == subject {
				return "#outbox-" + it.ID
			}
		}
		t.Fatalf("no outbox item %q", subject)
		return ""
	}
	do(chromedp.Click(css(item(keep)+` [data-testid="outbox-send"]`)), chromedp.WaitVisible(css(`[data-testid="outbox-notice"]`)))
	do(chromedp.Click(css(item(drop)+` [data-testid="outbox-discard"]`)), chromedp.WaitVisible(css(`[data-testid="outbox-notice"]`)))

	counter := mailCounter(t, rig)
	count := func(subject string) int { return counter("bob", "INBOX", subject) }
	for deadline := time.Now().Add(15 * time.Second); count(keep) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the approved message never arrived")
		}
	}
	time.Sleep(time.Second)
	if count(keep) != 1 || count(drop) != 0 {
		t.Fatalf("delivered: approved %d, discarded %d", count(keep), count(drop))
	}
}

// rigCAFile writes the rig's CA certificate for MAIL_CA_FILE.
func rigCAFile(t *testing.T, rig *mailrig.Rig) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "rig-ca.pem")
	if err := os.WriteFile(ca, rig.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// addSender stores the rig user alice's account for u, reached over
// STARTTLS at imapPort and smtpPort (the rig's own, or a gate's), with
// settings changed by tweak.
func addSender(t *testing.T, st *store.Store, keys *secret.Keys, u store.User, imapPort, smtpPort int, tweak func(*store.MailAccount)) *store.MailAccount {
	t.Helper()
	alice, _ := mailrig.Shared(t).User("alice")
	acct := &store.MailAccount{UserID: u.ID, Label: "alice", Email: alice.Email, IMAPHost: "127.0.0.1", IMAPPort: imapPort,
		IMAPTLSMode: "starttls", IMAPUser: alice.Email, IMAPPasswordEnc: keys.Seal([]byte(alice.Password), store.AccountSecretContext(u.ID, store.ColumnIMAPPassword)),
		SMTPHost: "127.0.0.1", SMTPPort: smtpPort, SMTPTLSMode: "starttls", SMTPUser: alice.Email,
		SMTPPasswordEnc: keys.Seal([]byte(alice.Password), store.AccountSecretContext(u.ID, store.ColumnSMTPPassword))}
	if tweak != nil {
		tweak(acct)
	}
	if err := st.CreateAccount(context.Background(), acct); err != nil {
		t.Fatal(err)
	}
	return acct
}

// mailCounter counts, by subject, the messages of a rig user's folder,
// read directly (not through the server under test).
func mailCounter(t *testing.T, rig *mailrig.Rig) func(user, folder, subject string) int {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rig.CAPEM)
	engine := mail.New(mail.Config{AllowPrivateHosts: true, RootCAs: pool})
	t.Cleanup(func() { engine.Close() })
	return func(user, folder, subject string) int {
		t.Helper()
		ru, _ := rig.User(user)
		a := &mail.Account{ID: "counter-" + user, IMAP: mail.Endpoint{Host: "127.0.0.1", Port: portOf(rig.IMAPSAddr()), TLS: mail.TLSImplicit},
			Username: ru.Email, Password: ru.Password, Email: ru.Email}
		page, err := engine.Search(context.Background(), a, folder, mail.SearchQuery{Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		return page.Total
	}
}
