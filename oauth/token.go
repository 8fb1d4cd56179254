package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
)

// tokenResponse is the RFC 6749 §5.1 response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// token serves the authorization_code and refresh_token grants.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.exchangeCode(w, r, c)
	case "refresh_token":
		s.refresh(w, r, c)
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "use authorization_code or refresh_token")
	}
}

// clientRequest prepares a token or revocation response (never cached),
// reads the form and authenticates the client; on failure it has answered.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request) (client, bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return client{}, false
	}
	return s.authenticateClient(w, r)
}

// authenticateClient identifies the client by HTTP Basic or form
// parameters and checks its secret when it has one. Failures answer 401
// invalid_client.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request) (client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id) // RFC 6749 §2.3.1 form-encodes both
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	fail := func(desc string) (client, bool) {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="imap-mcp"`)
		}
		writeError(w, http.StatusUnauthorized, "invalid_client", desc)
		return client{}, false
	}
	if id == "" {
		return fail("client authentication is required (client_id)")
	}
	c, err := s.lookupClient(r.Context(), id)
	if err != nil {
		var cimdErr *CIMDError
		if errors.As(err, &cimdErr) {
			return fail(cimdErr.Error())
		}
		if !errors.Is(err, errUnknownClient) {
			// A store that cannot answer says nothing about the client:
			// "register again" would make clients throw their tokens away.
			s.serverError(w, "token: look up client", err)
			return client{}, false
		}
		return fail("unknown or expired client: register again")
	}
	if c.TokenEndpointAuthMethod != "none" && !c.secretMatches(secret) {
		return fail("the client secret is missing or wrong")
	}
	return c, true
}

func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request, c client) {
	f := r.PostForm
	code, err := s.o.Store.ConsumeAuthCode(r.Context(), hash(f.Get("code")))
	if errors.Is(err, store.ErrNotFound) {
		if replayed, rerr := s.o.Store.RevokeGrantOfUsedCode(r.Context(), hash(f.Get("code"))); rerr != nil {
			s.serverError(w, "token: revoke replayed code", rerr)
			return
		} else if replayed {
			s.o.Logger.Warn("oauth: authorization code used twice; its grant is revoked", "client", c.ID)
		}
	}
	if !s.found(w, err, "the code is invalid, expired or already used") {
		return
	}
	switch {
	case code.ClientID != c.ID:
		writeError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
		return
	case f.Get("redirect_uri") != "" && f.Get("redirect_uri") != code.RedirectURI:
		writeError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request")
		return
	case !pkceVerifier.MatchString(f.Get("code_verifier")):
		writeError(w, http.StatusBadRequest, "invalid_grant", "code_verifier is missing or malformed (43-128 characters)")
		return
	case !pkceMatches(f.Get("code_verifier"), code.CodeChallenge):
		writeError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	case f.Get("resource") != "" && f.Get("resource") != code.Resource:
		writeError(w, http.StatusBadRequest, "invalid_target", "resource must be "+code.Resource)
		return
	}
	s.issue(w, r, code.GrantID, code.Scope, code.Resource, "")
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request, c client) {
	f := r.PostForm
	old, err := s.o.Store.LookupRefreshToken(r.Context(), hash(f.Get("refresh_token")))
	if !s.found(w, err, "unknown refresh token") {
		return
	}
	now := time.Now()
	switch {
	case old.ClientID != c.ID:
		writeError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
		return
	case old.RevokedAt != nil || old.GrantRevokedAt != nil:
		writeError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was revoked")
		return
	case now.After(old.RefreshExpiresAt):
		writeError(w, http.StatusBadRequest, "invalid_grant", "the refresh token expired: authorize again")
		return
	case old.RotatedAt != nil && now.Sub(*old.RotatedAt) > s.o.RefreshGrace:
		// Reuse after rotation: the token leaked. End the whole grant.
		if err := s.o.Store.RevokeGrantByID(r.Context(), old.GrantID); err != nil {
			s.serverError(w, "token: revoke reused grant", err)
			return
		}
		s.o.Logger.Warn("refresh token reused after rotation: grant revoked", "client", c.ID, "grant", old.GrantID)
		writeError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was already used; access was revoked: authorize again")
		return
	case f.Get("resource") != "" && f.Get("resource") != old.Resource:
		writeError(w, http.StatusBadRequest, "invalid_target", "resource must be "+old.Resource)
		return
	}
	scope := old.Scope
	if req := f.Get("scope"); req != "" {
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(strings.Fields(old.Scope), sc) {
				writeError(w, http.StatusBadRequest, "invalid_scope", "a refresh may only narrow the scope: "+sc+" was not granted")
				return
			}
		}
		scope = normalizeScopeWithin(req, old.Scope)
	}
	s.issue(w, r, old.GrantID, scope, old.Resource, old.ID)
}

// normalizeScopeWithin orders the requested scopes canonically; they are
// already known to lie within granted.
func normalizeScopeWithin(requested, granted string) string {
	var out []string
	for _, sc := range AllScopes {
		if slices.Contains(strings.Fields(requested), sc) && slices.Contains(strings.Fields(granted), sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " ")
}

// issue creates a token pair for the grant (rotating rotatedFrom, if set)
// and writes the token response.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, grantID, scope, resource, rotatedFrom string) {
	access, refresh := newSecret("imcp_at_"), newSecret("imcp_rt_")
	now := time.Now()
	t := &store.Token{GrantID: grantID, AccessTokenHash: hash(access), RefreshTokenHash: hash(refresh), Scope: scope,
		Resource: resource, AccessExpiresAt: now.Add(s.o.AccessTTL), RefreshExpiresAt: now.Add(s.o.RefreshTTL)}
	var err error
	if rotatedFrom == "" {
		err = s.o.Store.CreateToken(r.Context(), t)
	} else {
		err = s.o.Store.RotateToken(r.Context(), rotatedFrom, t)
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusBadRequest, "invalid_grant", "the grant was revoked")
		return
	}
	if err != nil {
		s.serverError(w, "token: store token", err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: access, TokenType: "Bearer",
		ExpiresIn: int64(s.o.AccessTTL.Seconds()), RefreshToken: refresh, Scope: scope})
}

// revoke is RFC 7009: the client revokes one of its tokens; unknown tokens
// are not an error.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "token is missing")
		return
	}
	if err := s.o.Store.RevokeToken(r.Context(), c.ID, hash(tok)); err != nil {
		s.serverError(w, "revoke", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// found answers invalid_grant (with missing) for ErrNotFound and 503 for
// other errors; it reports whether err is nil.
func (s *Server) found(w http.ResponseWriter, err error, missing string) bool {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusBadRequest, "invalid_grant", missing)
	case err != nil:
		s.serverError(w, "token", err)
	}
	return err == nil
}

// serverError answers a failure of the store (or another part the client
// cannot fix) with 503 temporarily_unavailable and Retry-After, never with
// an error that would make the client drop its tokens or registration.
func (s *Server) serverError(w http.ResponseWriter, what string, err error) {
	s.o.Logger.Error(what, "err", err)
	w.Header().Set("Retry-After", retryAfter)
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the server cannot complete the request now; try again shortly")
}

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "5"

// pkceMatches checks S256: base64url(SHA-256(verifier)) == challenge.
func pkceMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}
