package mail

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/wneessen/go-mail/smtp"
)

// OAuth signs an account in with an OAuth 2.0 access token (SASL XOAUTH2
// or OAUTHBEARER) instead of a password.
type OAuth struct {
	// Token returns a current access token other than refused, the one
	// a server just refused ("" for none). An error that needs the person
	// to sign in again has KindReauth.
	Token func(ctx context.Context, refused string) (string, error)
	// Grant identifies the sign-in the tokens come from: a new sign-in
	// drops connections opened under the old one.
	Grant string
}

// OAuthProvider is a mail provider that signs accounts in with OAuth 2.0:
// where to send the person, which scopes to ask for and which servers take
// the tokens.
type OAuthProvider struct {
	Key  string // "google" or "microsoft"
	Name string // shown on the sign-in button: "Sign in with Google"
	// Preset is the key of the preset whose provider notes apply.
	Preset   string
	AuthURL  string
	TokenURL string
	// Issuers are the accepted ID token issuers; a trailing "*" matches
	// any suffix (Microsoft's issuer names the person's tenant).
	Issuers []string
	Scopes  []string
	// AuthParams are extra authorization request parameters.
	AuthParams map[string]string
	IMAP, SMTP Endpoint
}

// OAuthProviders returns the provider table. tenant is the Microsoft Entra
// tenant ("common", "organizations", "consumers" or a tenant id).
func OAuthProviders(tenant string) []OAuthProvider {
	ms := "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/"
	return []OAuthProvider{
		{Key: "google", Name: "Google", Preset: "gmail",
			AuthURL: "https://accounts.google.com/o/oauth2/v2/auth", TokenURL: "https://oauth2.googleapis.com/token",
			Issuers: []string{"https://accounts.google.com", "accounts.google.com"},
			Scopes:  []string{"https://mail.google.com/", "openid", "email"},
			// offline access and a fresh consent are what make Google
			// return a refresh token on every sign-in.
			AuthParams: map[string]string{"access_type": "offline", "prompt": "consent"},
			IMAP:       Endpoint{"imap.gmail.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.gmail.com", 465, TLSImplicit}},
		{Key: "microsoft", Name: "Microsoft", Preset: "outlook",
			AuthURL: ms + "authorize", TokenURL: ms + "token",
			Issuers: []string{"https://login.microsoftonline.com/*"},
			Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send",
				"offline_access", "openid", "email"},
			AuthParams: map[string]string{"prompt": "select_account"},
			IMAP:       Endpoint{"outlook.office365.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.office365.com", 587, TLSStartTLS}},
	}
}

// bearerToken asks acct for an access token other than refused, and marks
// a failure that is not the person's to fix as temporary.
func bearerToken(ctx context.Context, acct *Account, op, refused string) (string, error) {
	tok, err := acct.OAuth.Token(ctx, refused)
	if err == nil {
		return tok, nil
	}
	var e *Error
	if errors.As(err, &e) {
		return "", err
	}
	return "", &Error{Kind: KindTemporary, Op: op, Err: err}
}

// withToken runs open with acct's bearer token ("" for a password
// account) and, when the server refuses the token, once more with a
// renewed one.
func withToken[T any](ctx context.Context, acct *Account, proto string, open func(tok string) (T, error)) (T, error) {
	var zero T
	if acct.OAuth == nil {
		return open("")
	}
	tok, err := bearerToken(ctx, acct, proto+" oauth token", "")
	if err != nil {
		return zero, err
	}
	v, err := open(tok)
	if KindOf(err) != KindAuth {
		return v, err
	}
	if tok, err = bearerToken(ctx, acct, proto+" oauth token", tok); err != nil {
		return zero, err
	}
	return open(tok)
}

// imapAuthenticate signs client in as acct with tok: XOAUTH2 when the
// server offers it or offers neither, else OAUTHBEARER.
func imapAuthenticate(client *imapclient.Client, acct *Account, ep Endpoint, tok string) error {
	var mech sasl.Client = xoauth2{user: acct.Username, token: tok}
	caps := client.Caps()
	if !caps.Has(imap.AuthCap("XOAUTH2")) && caps.Has(imap.AuthCap(sasl.OAuthBearer)) {
		mech = oauthBearer{user: acct.Username, token: tok, host: ep.Host, port: ep.Port}
	}
	return client.Authenticate(mech)
}

// smtpOAuth returns the SMTP AUTH XOAUTH2 mechanism for acct with tok.
func smtpOAuth(acct *Account, tok string) smtp.Auth {
	user, _ := acct.smtpLogin()
	return smtp.XOAuth2Auth(user, tok)
}

// xoauth2 is the SASL XOAUTH2 client of Google and Microsoft. A server that
// refuses the token sends its error as a challenge and expects an empty
// response before it answers NO.
type xoauth2 struct{ user, token string }

func (x xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }

// oauthBearer is the RFC 7628 OAUTHBEARER client. After an error
// challenge it sends the single %x01 the RFC asks for, so the server ends
// the exchange with NO.
type oauthBearer struct {
	user, token, host string
	port              int
}

// gs2Name escapes an authorization identity for a GS2 header (RFC 5801).
var gs2Name = strings.NewReplacer("=", "=3D", ",", "=2C")

func (o oauthBearer) Start() (string, []byte, error) {
	ir := "n,a=" + gs2Name.Replace(o.user) + ",\x01host=" + o.host + "\x01port=" + strconv.Itoa(o.port) + "\x01auth=Bearer " + o.token + "\x01\x01"
	return sasl.OAuthBearer, []byte(ir), nil
}

func (o oauthBearer) Next([]byte) ([]byte, error) { return []byte{1}, nil }
