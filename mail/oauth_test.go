package mail

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
)

// oauthAccount is a rig user signing in with a bearer token from the rig's
// provider. token serves it; renewals counts the calls that name a
// refused token.
func oauthAccount(t *testing.T, name string, token func(refused string) (string, error)) (*Account, *atomic.Int32) {
	_, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, name)
	acct.ID, acct.Password = "oauth-"+name, ""
	var renewals atomic.Int32
	acct.OAuth = &OAuth{Grant: "g1", Token: func(_ context.Context, refused string) (string, error) {
		if refused != "" {
			renewals.Add(1)
		}
		return token(refused)
	}}
	return acct, &renewals
}

func TestOAuthSignsInToDovecotAndPostfix(t *testing.T) {
	e, rig := testEngine(t, Config{})
	bob, _ := rig.User("bob")
	access, _ := rig.OAuth.Issue(bob.Email)
	acct, renewals := oauthAccount(t, "bob", func(string) (string, error) { return access, nil })
	ctx := testCtx(t)

	for _, mode := range []struct {
		imap, smtp string
		tls        TLSMode
	}{{rig.IMAPSAddr(), rig.SMTPSAddr(), TLSImplicit}, {rig.IMAPAddr(), rig.SubmissionAddr(), TLSStartTLS}} {
		acct.IMAP, acct.SMTP = endpoint(t, mode.imap, mode.tls), endpoint(t, mode.smtp, mode.tls)
		res := e.TestConnection(ctx, acct)
		if !res.IMAP.OK || !res.SMTP.OK {
			t.Fatalf("%s: connection test with a valid token: %+v", mode.tls, res)
		}
	}
	if _, err := e.ListFolders(ctx, acct); err != nil {
		t.Fatal(err)
	}
	subject := uniqueFolder("oauth-send")
	res, err := e.Send(ctx, acct, Outgoing{To: []string{bob.Email}, Subject: subject, Text: "sent with XOAUTH2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := findByMessageID(t, e, acct, "INBOX", res.MessageID); got.Subject != subject {
		t.Fatalf("received %q", got.Subject)
	}
	if n := renewals.Load(); n != 0 {
		t.Fatalf("%d renewals with a valid token", n)
	}
	if rig.OAuth.Introspections() == 0 {
		t.Fatal("Dovecot never asked the provider about the token")
	}
}

func TestOAuthRenewsARefusedTokenOnce(t *testing.T) {
	e, rig := testEngine(t, Config{})
	carol, _ := rig.User("carol")
	fresh, _ := rig.OAuth.Issue(carol.Email)
	acct, renewals := oauthAccount(t, "carol", func(refused string) (string, error) {
		if refused == "expired-token" {
			return fresh, nil
		}
		return "expired-token", nil
	})
	ctx := testCtx(t)
	res := e.TestConnection(ctx, acct)
	if !res.IMAP.OK || !res.SMTP.OK {
		t.Fatalf("connection test: %+v", res)
	}
	if n := renewals.Load(); n != 2 {
		t.Fatalf("%d renewals, want one for IMAP and one for SMTP", n)
	}

	// A token the server refuses even after renewal is an auth failure
	// whose hint says to reconnect, not to check a password.
	acct, renewals = oauthAccount(t, "carol", func(string) (string, error) { return "revoked", nil })
	acct.ID = "oauth-carol-revoked"
	_, err := e.ListFolders(ctx, acct)
	if KindOf(err) != KindAuth || renewals.Load() != 1 || !strings.Contains(Hint(err, acct), "Reconnect") {
		t.Fatalf("refused token: %v (renewals %d), hint %q", err, renewals.Load(), Hint(err, acct))
	}
	if strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the error repeats the token: %v", err)
	}

	// A withdrawn sign-in stops the account before any server is asked.
	acct, _ = oauthAccount(t, "carol", func(string) (string, error) {
		return "", &Error{Kind: KindReauth, Op: "oauth", Err: errors.New("invalid_grant")}
	})
	acct.ID = "oauth-carol-reauth"
	_, err = e.ListFolders(ctx, acct)
	if KindOf(err) != KindReauth || !strings.Contains(Hint(err, acct), "Reconnect") {
		t.Fatalf("withdrawn sign-in: %v", err)
	}
	if _, err := e.Send(ctx, acct, Outgoing{To: []string{carol.Email}, Subject: "x", Text: "x"}); KindOf(err) != KindReauth {
		t.Fatalf("send with a withdrawn sign-in: %v", err)
	}
}

// TestOAuthBearerMechanism runs the RFC 7628 client against Dovecot: a
// valid token signs in, a refused one ends in NO rather than a hung
// exchange.
func TestOAuthBearerMechanism(t *testing.T) {
	rig := mailrig.Shared(t)
	bob, _ := rig.User("bob")
	access, _ := rig.OAuth.Issue(bob.Email)
	host, port := rig.Host, rig.IMAPSPort
	for _, c := range []struct {
		token string
		ok    bool
	}{{access, true}, {"not-a-token", false}} {
		client, err := imapclient.DialTLS(rig.IMAPSAddr(), &imapclient.Options{TLSConfig: rig.TLSConfig()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- client.Authenticate(oauthBearer{user: bob.Email, token: c.token, host: host, port: port})
		}()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("OAUTHBEARER exchange with %s token hung", map[bool]string{true: "a valid", false: "a refused"}[c.ok])
		}
		client.Close()
		var imapErr *imap.Error
		if c.ok && err != nil || !c.ok && !errors.As(err, &imapErr) {
			t.Fatalf("OAUTHBEARER (valid %v): %v", c.ok, err)
		}
	}
}
