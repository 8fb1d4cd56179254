package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// CSRF protects state-changing requests with a signed double-submit token:
// a random value in an HttpOnly cookie, and its HMAC in every form (field
// "_csrf") and HTMX request (header "X-Csrf-Token"). Nothing is kept on the
// server, so any instance can check any token.
type CSRF struct {
	key []byte
}

// CSRF cookie, form field and header names.
const (
	CSRFCookie = "imapmcp_csrf"
	CSRFField  = "_csrf"
	CSRFHeader = "X-Csrf-Token"
)

// NewCSRF uses key (an HKDF sub-key) to sign tokens.
func NewCSRF(key []byte) *CSRF { return &CSRF{key: key} }

// NewCookieValue returns a fresh random cookie value.
func (c *CSRF) NewCookieValue() string { return newToken() }

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
