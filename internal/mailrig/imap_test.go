package mailrig

import (
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestIMAPLoginAndSpecialUse(t *testing.T) {
	r := Shared(t)
	for _, tc := range []struct {
		name        string
		implicitTLS bool
	}{{"STARTTLS", false}, {"implicit TLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialIMAP(t, r, mustUser(t, r, "alice"), tc.implicitTLS)
			list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
			if err != nil {
				t.Fatalf("LIST: %v", err)
			}
			attrs := map[string][]imap.MailboxAttr{}
			for _, mb := range list {
				attrs[mb.Mailbox] = mb.Attrs
				if mb.Delim != '/' {
					t.Errorf("%s: delimiter %q, want '/'", mb.Mailbox, mb.Delim)
				}
			}
			if _, ok := attrs["INBOX"]; !ok {
				t.Errorf("INBOX not listed: %v", attrs)
			}
			for _, sf := range specialFolders {
				if !slices.Contains(attrs[sf.Name], imap.MailboxAttr(sf.Use)) {
					t.Errorf("%s: attributes %v lack %s", sf.Name, attrs[sf.Name], sf.Use)
				}
			}
		})
	}
}

// TestIMAPLoginFailures checks that wrong credentials fail at once and
// cost no auth penalty for the next login.
func TestIMAPLoginFailures(t *testing.T) {
	r := Shared(t)
	u := mustUser(t, r, "carol")
	for _, creds := range [][2]string{
		{u.Email, u.Password + "-wrong"},
		{u.Email, ""},
		{"nobody@" + Domain, u.Password},
	} {
		c, err := imapclient.DialStartTLS(r.IMAPAddr(), &imapclient.Options{TLSConfig: r.TLSConfig()})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = c.Login(creds[0], creds[1]).Wait()
		c.Close()
		if err == nil {
			t.Fatalf("login %q with password %q succeeded", creds[0], creds[1])
		}
		if d := time.Since(start); d > 300*time.Millisecond {
			t.Errorf("failed login %q took %v; failures are delayed", creds[0], d)
		}
	}
	start := time.Now()
	dialIMAP(t, r, u, false)
	if d := time.Since(start); d > time.Second {
		t.Errorf("login after failed ones took %v; the auth penalty is active", d)
	}
}
