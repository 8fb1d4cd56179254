package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
)

// CSRF protects state-changing requests with a signed double-submit token:
// a random value in an HttpOnly cookie, and its HMAC in every form (field
// "_csrf") and HTMX request (header "X-Csrf-Token"). Nothing is kept on the
// server, so any instance can check any token.
type CSRF struct {
	key    []byte
	origin string
}

// CSRF cookie, form field and header names.
const (
	CSRFCookie = "imapmcp_csrf"
	CSRFField  = "_csrf"
	CSRFHeader = "X-Csrf-Token"
)

// NewCSRF uses key (an HKDF sub-key) to sign tokens; appOrigin is APP_URL,
// the only origin state-changing requests may come from.
func NewCSRF(key []byte, appOrigin string) *CSRF {
	return &CSRF{key: key, origin: strings.TrimSuffix(appOrigin, "/")}
}

// NewCookieValue returns a fresh random cookie value.
func (c *CSRF) NewCookieValue() string { return NewToken() }

// Token is the value forms and HTMX send back for this cookie value.
func (c *CSRF) Token(cookieValue string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("csrf:" + cookieValue))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Valid reports whether token belongs to cookieValue, in constant time.
func (c *CSRF) Valid(cookieValue, token string) bool {
	if cookieValue == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(c.Token(cookieValue)), []byte(token))
}

// Check reports whether a state-changing request may proceed: its token
// matches its CSRF cookie and the browser says it comes from this site.
// Sec-Fetch-Site decides where the browser sends it (pages here send no
// Referer and so an Origin of "null"); older browsers are judged by Origin
// or Referer. header returns a request header by name.
func (c *CSRF) Check(cookieValue, token string, header func(string) string) bool {
	if !c.Valid(cookieValue, token) {
		return false
	}
	if site := header("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	origin := header("Origin")
	if origin == "" || origin == "null" {
		ref, err := url.Parse(header("Referer"))
		if err != nil || ref.Host == "" {
			return origin == "" // neither header: a non-browser client holding a valid token
		}
		origin = ref.Scheme + "://" + ref.Host
	}
	return strings.EqualFold(origin, c.origin)
}
