package oauth

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/store"
	"github.com/imap-mcp/imap-mcp/views"
)

// PageFunc fills the layout of an HTML page for the signed-in user (nil
// when nobody is signed in) with the CSRF token of its forms.
type PageFunc func(title string, user *store.User, csrf string) views.Page

// authRequest is a validated authorization request.
type authRequest struct {
	client        client
	redirectURI   string
	state         string
	scope         string
	resource      string
	codeChallenge string
}

// pageError is an authorization error that must not redirect (RFC 6749
// §4.1.2.1): the client or its redirect URI cannot be trusted.
type pageError struct {
	message string
	status  int // 0: 400
}

// redirectError is an OAuth error code and description; only the
// person's denial is sent back to the client's redirect URI.
type redirectError struct{ code, description string }

var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// parseAuthorize validates an authorization request in the order RFC 6749
// requires: client and redirect URI first, then the rest. Both kinds of
// error are shown as a page: before the person decides, nothing is sent
// to the redirect URI.
func (s *Server) parseAuthorize(ctx context.Context, v url.Values) (authRequest, *pageError, *redirectError) {
	id := v.Get("client_id")
	if id == "" {
		return authRequest{}, &pageError{message: "The request names no client (client_id is missing)."}, nil
	}
	c, err := s.lookupClient(ctx, id)
	var cimdErr *CIMDError
	switch {
	case errors.As(err, &cimdErr):
		return authRequest{}, &pageError{message: "The application's metadata document was refused: " + cimdErr.Reason + "."}, nil
	case errors.Is(err, errUnknownClient):
		return authRequest{}, &pageError{message: "This application is not registered here, or its registration expired."}, nil
	case err != nil:
		s.o.Logger.Error("authorize: look up client", "err", err)
		return authRequest{}, &pageError{message: "The application could not be looked up. Try again in a moment.", status: http.StatusServiceUnavailable}, nil
	}
	redirect, ok := c.matchRedirect(v.Get("redirect_uri"))
	if !ok {
		return authRequest{}, &pageError{message: "The redirect address does not match the ones this application registered."}, nil
	}
	req := authRequest{client: c, redirectURI: redirect, state: v.Get("state"), scope: normalizeScope(v.Get("scope")),
		resource: s.o.Resource, codeChallenge: v.Get("code_challenge")}
	switch {
	case v.Get("response_type") != "code":
		return req, nil, &redirectError{"unsupported_response_type", "response_type must be code"}
	case req.codeChallenge == "":
		return req, nil, &redirectError{"invalid_request", "code_challenge is required (PKCE with S256)"}
	case v.Get("code_challenge_method") != "S256":
		return req, nil, &redirectError{"invalid_request", "code_challenge_method must be S256"}
	case !pkceChallenge.MatchString(req.codeChallenge):
		return req, nil, &redirectError{"invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"}
	}
	if r := v.Get("resource"); r != "" {
		if !slices.Contains(s.resources(), r) {
			return req, nil, &redirectError{"invalid_target", "resource must be " + s.o.Resource}
		}
		req.resource = r
	}
	return req, nil, nil
}

// authorize shows the consent page, after sign-in.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	req, u, ok := s.signedInRequest(w, r, r.URL.Query())
	if !ok {
		return
	}
	csrf := s.csrfToken(w, r)
	redirect, _ := url.Parse(req.redirectURI)
	p := views.ConsentPage{
		Page:         s.o.Page("Allow access", &u, csrf),
		ClientName:   req.client.name(),
		RedirectHost: redirectTarget(redirect),
		Modify:       strings.Contains(req.scope, ScopeModify),
		Send:         strings.Contains(req.scope, ScopeSend),
	}
	if req.client.MetadataURL != "" {
		p.ClientID = req.client.ID
	}
	for _, k := range []string{"client_id", "redirect_uri", "state", "scope", "resource", "response_type", "code_challenge", "code_challenge_method"} {
		if v := r.URL.Query().Get(k); v != "" {
			p.Hidden = append(p.Hidden, views.Field{Name: k, Value: v})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, views.Consent(p))
}

// redirectTarget names where the browser goes after consent: the host,
// or for a native app's own scheme the scheme too (cursor://…).
func redirectTarget(u *url.URL) string {
	if u.Scheme == "http" || u.Scheme == "https" {
		return u.Host
	}
	return u.Scheme + "://" + u.Host
}

// consent records the person's decision and sends the browser back to the
// client with a code or access_denied.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if !s.o.CSRF.Check(cookie(r, auth.CSRFCookie), r.PostForm.Get(auth.CSRFField), r.Header.Get) {
		s.errorPageStatus(w, r, http.StatusForbidden, "This form expired or did not come from this site. Start the connection again from your application.")
		return
	}
	req, u, ok := s.signedInRequest(w, r, r.PostForm)
	if !ok {
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		s.redirectError(w, r, req, &redirectError{"access_denied", "the person denied access"})
		return
	}
	granted := []string{ScopeRead}
	requested := strings.Fields(req.scope)
	if slices.Contains(requested, ScopeModify) && r.PostForm.Get("allow_modify") != "" {
		granted = append(granted, ScopeModify)
	}
	if slices.Contains(requested, ScopeSend) && r.PostForm.Get("allow_send") != "" {
		granted = append(granted, ScopeSend)
	}
	scope := strings.Join(granted, " ")
	g, err := s.o.Store.CreateGrant(r.Context(), u.ID, req.client.ID, scope)
	if err != nil {
		s.o.Logger.Error("consent: create grant", "err", err)
		s.errorPageStatus(w, r, http.StatusServiceUnavailable, "Your decision could not be saved. Try again.")
		return
	}
	code := newSecret("imcp_code_")
	err = s.o.Store.CreateAuthCode(r.Context(), store.AuthCode{CodeHash: hash(code), ClientID: req.client.ID, UserID: u.ID,
		GrantID: g.ID, RedirectURI: req.redirectURI, CodeChallenge: req.codeChallenge, Scope: scope, Resource: req.resource,
		ExpiresAt: time.Now().Add(s.o.CodeTTL)})
	if err != nil {
		s.o.Logger.Error("consent: create code", "err", err)
		s.errorPageStatus(w, r, http.StatusServiceUnavailable, "Your decision could not be saved. Try again.")
		return
	}
	s.o.Logger.Info("oauth grant", "client", req.client.ID, "scope", scope)
	http.Redirect(w, r, s.withParams(req.redirectURI, "code", code, "state", req.state, "iss", s.o.Issuer), http.StatusSeeOther)
}

// signedInRequest validates the authorization request in v and finds the
// signed-in person; otherwise it answers (error page, redirect to the
// client, or to sign-in) and returns false.
func (s *Server) signedInRequest(w http.ResponseWriter, r *http.Request, v url.Values) (authRequest, store.User, bool) {
	req, perr, rerr := s.parseAuthorize(r.Context(), v)
	if perr != nil {
		s.errorPageStatus(w, r, cmp.Or(perr.status, http.StatusBadRequest), perr.message)
		return req, store.User{}, false
	}
	if rerr != nil {
		// Before the person has decided, the redirect URI is only the
		// client's word (anyone can register one): show the error here
		// rather than send the browser there (RFC 9700 §4.11.2).
		s.errorPage(w, r, "The application sent an invalid request: "+rerr.description+".")
		return req, store.User{}, false
	}
	u, ok := s.user(w, r)
	return req, u, ok
}

// user returns the signed-in person or sends the browser to sign in and
// back here (a consent POST goes back to the GET of the same request).
func (s *Server) user(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	u, state, err := s.o.Auth.Resolve(r.Context(), cookies(r))
	if err != nil {
		s.o.Logger.Error("authorize: resolve user", "err", err)
		s.errorPageStatus(w, r, http.StatusServiceUnavailable, "Sign-in could not be checked. Try again.")
		return store.User{}, false
	}
	if state == auth.SignedIn {
		return u, true
	}
	back := r.URL.Path
	if r.Method == http.MethodPost {
		q := url.Values{}
		for k, v := range r.PostForm {
			if k != auth.CSRFField && k != "decision" && !strings.HasPrefix(k, "allow_") {
				q[k] = v
			}
		}
		back += "?" + q.Encode()
	} else if r.URL.RawQuery != "" {
		back += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, "/sign-in?redirect_url="+url.QueryEscape(back), http.StatusSeeOther)
	return store.User{}, false
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, e *redirectError) {
	http.Redirect(w, r, s.withParams(req.redirectURI, "error", e.code, "error_description", e.description,
		"state", req.state, "iss", s.o.Issuer), http.StatusSeeOther)
}

// withParams adds query parameters (pairs; empty values skipped) to uri.
func (s *Server) withParams(uri string, kv ...string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, msg string) {
	s.errorPageStatus(w, r, http.StatusBadRequest, msg)
}

func (s *Server) errorPageStatus(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, views.OAuthErrorPage(s.o.Page("Connection refused", nil, ""), msg))
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := c.Render(r.Context(), w); err != nil {
		s.o.Logger.Error("render", "err", err)
	}
}

// csrfToken returns the token for the request's CSRF cookie, setting a new
// cookie when there is none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := cookie(r, auth.CSRFCookie)
	if v == "" {
		v = s.o.CSRF.NewCookieValue()
		http.SetCookie(w, &http.Cookie{Name: auth.CSRFCookie, Value: v, Path: "/", HttpOnly: true,
			Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode})
	}
	return s.o.CSRF.Token(v)
}

func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func cookies(r *http.Request) auth.Cookies {
	out := auth.Cookies{}
	for _, c := range r.Cookies() {
		out[c.Name] = c.Value
	}
	return out
}
