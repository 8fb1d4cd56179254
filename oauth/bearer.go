package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/imap-mcp/imap-mcp/store"
)

// Principal is who an access token acts for.
type Principal struct {
	UserID, ClientID, GrantID string
	Scopes                    []string
}

// Has reports whether the token carries scope.
func (p Principal) Has(scope string) bool { return slices.Contains(p.Scopes, scope) }

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the bearer middleware put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// resourceMetadataURL is where clients of resource discover how to get a
// token for it.
func (s *Server) resourceMetadataURL(resource string) string {
	return s.o.Issuer + "/.well-known/oauth-protected-resource" + strings.TrimPrefix(resource, s.o.Issuer)
}

// Bearer guards the MCP endpoint: a valid, unexpired, unrevoked access
// token whose audience is this server, from an allowed origin. It answers
// 401 with the challenge that starts discovery (RFC 9728) otherwise.
func (s *Server) Bearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !s.originAllowed(origin) {
			writeError(w, http.StatusForbidden, "invalid_request", "requests from this Origin are not allowed")
			return
		}
		if origin != "" {
			mcpCORS(w.Header(), origin)
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		resource := s.resourceFor(r.URL.Path)
		scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" { // RFC 9110 §11.1: the scheme is case-insensitive
			s.challenge(w, resource, "", "")
			return
		}
		a, err := s.o.Store.LookupAccessToken(r.Context(), hash(strings.TrimSpace(tok)))
		if errors.Is(err, store.ErrNotFound) {
			s.challenge(w, resource, "invalid_token", "the access token is unknown, expired or revoked")
			return
		}
		if err != nil {
			s.serverError(w, "bearer: look up token", err)
			return
		}
		if a.Resource != resource {
			s.challenge(w, resource, "invalid_token", "the access token was issued for another resource")
			return
		}
		if err := s.o.Store.TouchToken(r.Context(), a.TokenID, a.GrantID, a.ClientID); err != nil {
			s.o.Logger.Warn("bearer: record token use", "err", err)
		}
		p := Principal{UserID: a.UserID, ClientID: a.ClientID, GrantID: a.GrantID, Scopes: strings.Fields(a.Scope)}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// challenge answers 401 with WWW-Authenticate naming the resource metadata
// and the scopes to ask for.
func (s *Server) challenge(w http.ResponseWriter, resource, code, desc string) {
	v := fmt.Sprintf(`Bearer resource_metadata=%q, scope=%q`, s.resourceMetadataURL(resource), strings.Join(AllScopes, " "))
	if code != "" {
		v += fmt.Sprintf(`, error=%q, error_description=%q`, code, desc)
	}
	w.Header().Set("WWW-Authenticate", v)
	if code == "" {
		code, desc = "invalid_token", "an access token is required"
	}
	writeError(w, http.StatusUnauthorized, code, desc)
}

// originAllowed accepts requests without Origin (server-side clients),
// from this server's own origin and from loopback (local tools such as
// the MCP Inspector); other browser origins are refused (DNS rebinding).
// mcpCORS lets a browser-based client on an allowed origin call the MCP
// endpoint and read the challenge and session headers. Tokens travel in
// the Authorization header, never in cookies.
func mcpCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version")
	h.Set("Access-Control-Max-Age", "86400")
}

func (s *Server) originAllowed(origin string) bool {
	if origin == "" || strings.EqualFold(origin, s.o.Issuer) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && isLoopback(u.Hostname())
}
