package mailrig

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gomail "github.com/wneessen/go-mail"
)

// submitClient returns a go-mail client for the submission port
// (STARTTLS mandatory) or the SMTPS port (implicit TLS), authenticating
// as u unless u.Email is empty.
func submitClient(t *testing.T, r *Rig, u User, implicitTLS bool) *gomail.Client {
	t.Helper()
	opts := []gomail.Option{gomail.WithTLSConfig(r.TLSConfig()), gomail.WithTimeout(10 * time.Second)}
	if implicitTLS {
		opts = append(opts, gomail.WithPort(r.SMTPSPort), gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithPort(r.SubmissionPort), gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if u.Email != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(u.Email), gomail.WithPassword(u.Password))
	}
	c, err := gomail.NewClient(r.Host, opts...)
	if err != nil {
		t.Fatalf("go-mail client: %v", err)
	}
	return c
}

// newMessage builds a text message with a unique Message-ID.
func newMessage(t *testing.T, from, to, subject, body string) (*gomail.Msg, string) {
	t.Helper()
	m := gomail.NewMsg()
	if err := m.From(from); err != nil {
		t.Fatal(err)
	}
	if err := m.To(to); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d.%s@%s", time.Now().UnixNano(), strings.ReplaceAll(t.Name(), "/", "."), Domain)
	m.SetMessageIDWithValue(id)
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, body)
	return m, id
}

// waitForMessage polls u's INBOX until a message with Message-ID id
// arrives and returns its full text.
func waitForMessage(t *testing.T, r *Rig, u User, id string) string {
	t.Helper()
	c := dialIMAP(t, r, u, false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("SELECT INBOX: %v", err)
		}
		if uids := searchMessageID(t, c, id); len(uids) == 1 {
			return fetchText(t, c, uids[0])
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not delivered to %s within 15s\n%s", id, u.Email, r.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchText returns the full RFC 822 text of the message with uid.
func fetchText(t *testing.T, c *imapclient.Client, uid imap.UID) string {
	t.Helper()
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("UID FETCH %d: %d messages, %v", uid, len(msgs), err)
	}
	return string(msgs[0].FindBodySection(section))
}

func TestSubmitDeliversToLocalUser(t *testing.T) {
	r := Shared(t)
	alice, bob := mustUser(t, r, "alice"), mustUser(t, r, "bob")
	for _, tc := range []struct {
		name        string
		implicitTLS bool
	}{{"submission STARTTLS", false}, {"SMTPS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			subject := "Hello via " + tc.name
			body := "Body sent through " + tc.name + " at " + time.Now().Format(time.RFC3339Nano)
			m, id := newMessage(t, alice.Email, bob.Email, subject, body)
			if err := submitClient(t, r, alice, tc.implicitTLS).DialAndSend(m); err != nil {
				t.Fatalf("send: %v\n%s", err, r.LogTail(30))
			}
			text := waitForMessage(t, r, bob, id)
			for _, want := range []string{"Subject: " + subject, body, "Delivered-To: " + bob.Email} {
				if !strings.Contains(text, want) {
					t.Errorf("delivered message lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

func TestForeignRecipientGoesToSink(t *testing.T) {
	r := Shared(t)
	alice, sink := mustUser(t, r, "alice"), mustUser(t, r, SinkName)
	m, id := newMessage(t, alice.Email, "someone@example.com", "Must not leave", "This must stay local.")
	if err := submitClient(t, r, alice, false).DialAndSend(m); err != nil {
		t.Fatalf("send: %v\n%s", err, r.LogTail(30))
	}
	text := waitForMessage(t, r, sink, id)
	if !strings.Contains(text, "To: <someone@example.com>") || !strings.Contains(text, "Delivered-To: "+sink.Email) {
		t.Errorf("sink copy lacks original To or Delivered-To:\n%s", text)
	}
}

func TestSubmitRequiresAuth(t *testing.T) {
	r := Shared(t)
	alice, bob := mustUser(t, r, "alice"), mustUser(t, r, "bob")
	wrong := alice
	wrong.Password += "-wrong"
	for _, tc := range []struct {
		name        string
		user        User
		implicitTLS bool
		wantErr     string
	}{
		{"no auth, submission", User{}, false, "5.7.1"},
		{"no auth, SMTPS", User{}, true, "5.7.1"},
		{"wrong password, submission", wrong, false, "535"},
		{"wrong password, SMTPS", wrong, true, "535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newMessage(t, alice.Email, bob.Email, "refused", "must be refused")
			start := time.Now()
			err := submitClient(t, r, tc.user, tc.implicitTLS).DialAndSend(m)
			if err == nil {
				t.Fatal("message accepted")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %s", err, tc.wantErr)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusal took %v", d)
			}
		})
	}
}

// TestBareNameLogin checks that the local part alone logs in over IMAP and
// SMTP AUTH, since Domain is the default realm.
func TestBareNameLogin(t *testing.T) {
	r := Shared(t)
	alice, bob := mustUser(t, r, "alice"), mustUser(t, r, "bob")
	bare := alice
	bare.Email = alice.Name
	dialIMAP(t, r, bare, true)
	m, id := newMessage(t, alice.Email, bob.Email, "bare name", "sent with a bare login name")
	if err := submitClient(t, r, bare, false).DialAndSend(m); err != nil {
		t.Fatalf("send with login %q: %v", bare.Email, err)
	}
	waitForMessage(t, r, bob, id)
}
