// Package account turns a stored mail account into the mail engine's
// settings, opening its sealed passwords for the duration of one call, and
// signs accounts in with their provider (OAuth) and keeps their tokens.
package account

import (
	"fmt"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/store"
)

// Opener opens sealed passwords (package secret implements it).
type Opener interface {
	Open(sealed, context string) ([]byte, error)
}

// Open returns the engine settings of a: with both passwords opened, or for
// an OAuth account with its token source from oauth (which may be nil when
// no provider is configured). The caller drops the result when its call
// ends.
func Open(a store.MailAccount, secrets Opener, oauth *OAuth) (*mail.Account, error) {
	acct := &mail.Account{
		ID:       a.ID,
		IMAP:     mail.Endpoint{Host: a.IMAPHost, Port: a.IMAPPort, TLS: mail.TLSMode(a.IMAPTLSMode)},
		SMTP:     mail.Endpoint{Host: a.SMTPHost, Port: a.SMTPPort, TLS: mail.TLSMode(a.SMTPTLSMode)},
		Username: a.IMAPUser, SMTPUsername: a.SMTPUser,
		Email: a.Email, Name: a.DisplayName, SignatureHTML: a.SignatureHTML,
	}
	if a.OAuthProvider() != "" {
		// The token goes only to the provider's own servers, whatever the
		// stored row says.
		p, ok := oauth.Provider(a.OAuthProvider())
		if !ok {
			return nil, &mail.Error{Kind: mail.KindInvalid, Op: "oauth", Err: fmt.Errorf(
				"sign-in with %s is not configured on this server any more; the operator must set its client id again", a.OAuthProvider())}
		}
		acct.Provider, acct.IMAP, acct.SMTP = p.Preset, p.IMAP, p.SMTP
		acct.OAuth = oauth.bearer(p, a)
		return acct, nil
	}
	imapPW, err := secrets.Open(a.IMAPPasswordEnc, store.AccountSecretContext(a.UserID, store.ColumnIMAPPassword))
	if err != nil {
		return nil, fmt.Errorf("account: open IMAP password of %s: %w", a.ID, err)
	}
	smtpPW, err := secrets.Open(a.SMTPPasswordEnc, store.AccountSecretContext(a.UserID, store.ColumnSMTPPassword))
	if err != nil {
		return nil, fmt.Errorf("account: open SMTP password of %s: %w", a.ID, err)
	}
	acct.Password, acct.SMTPPassword = string(imapPW), string(smtpPW)
	return acct, nil
}
