// Package oauth is the OAuth 2.1 authorization server for MCP clients
// (metadata, dynamic registration, client metadata documents, authorization
// with PKCE and consent, tokens with rotation, revocation) and the resource
// server check that guards /api/mcp.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imap-mcp/imap-mcp/auth"
	"github.com/imap-mcp/imap-mcp/store"
)

// Scopes.
const (
	ScopeRead   = "mail.read"   // reading tools
	ScopeModify = "mail.modify" // flags, move, copy, delete, folders, drafts
	ScopeSend   = "mail.send"   // send and reply
)

// AllScopes lists every scope in display order.
var AllScopes = []string{ScopeRead, ScopeModify, ScopeSend}

// Default lifetimes.
const (
	DefaultAccessTTL    = time.Hour
	DefaultRefreshTTL   = 30 * 24 * time.Hour
	DefaultCodeTTL      = 10 * time.Minute
	DefaultRefreshGrace = 60 * time.Second
	// DefaultClientTTL is how long a registration lives without consent.
	DefaultClientTTL = 24 * time.Hour
)

// Store is what the authorization server needs from the store.
type Store interface {
	CreateClient(ctx context.Context, c *store.OAuthClient) error
	GetClient(ctx context.Context, id string) (store.OAuthClient, error)
	UpsertMetadataClient(ctx context.Context, c *store.OAuthClient) error
	CreateGrant(ctx context.Context, userID, clientID, scope string) (store.Grant, error)
	CreateAuthCode(ctx context.Context, c store.AuthCode) error
	ConsumeAuthCode(ctx context.Context, codeHash string) (store.AuthCode, error)
	CreateToken(ctx context.Context, t *store.Token) error
	LookupAccessToken(ctx context.Context, accessHash string) (store.AccessGrant, error)
	LookupRefreshToken(ctx context.Context, refreshHash string) (store.RefreshGrant, error)
	RotateToken(ctx context.Context, oldID string, next *store.Token) error
	RevokeGrantByID(ctx context.Context, grantID string) error
	RevokeToken(ctx context.Context, clientID, tokenHash string) error
	RevokeGrantOfUsedCode(ctx context.Context, codeHash string) (bool, error)
	TouchToken(ctx context.Context, tokenID, grantID, clientID string) error
}

// Options configure the server. Zero durations take the defaults.
type Options struct {
	// Issuer is APP_URL; Resource is APP_URL/api/mcp, the canonical MCP
	// URL. APP_URL/mcp is served too, as a resource of its own.
	Issuer, Resource string
	Store            Store
	Auth             auth.Authenticator
	CSRF             *auth.CSRF
	SecureCookies    bool
	Logger           *slog.Logger
	// Page renders the layout of HTML pages (consent, errors).
	Page PageFunc

	AccessTTL, RefreshTTL, CodeTTL, RefreshGrace, ClientTTL time.Duration

	// CIMD fetches client metadata documents; nil uses a guarded client.
	CIMD *CIMDFetcher
}

// Server is the authorization server and resource-server guard.
type Server struct {
	o        Options
	register *limiter
}

// New returns the server.
func New(o Options) *Server {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.AccessTTL, DefaultAccessTTL)
	def(&o.RefreshTTL, DefaultRefreshTTL)
	def(&o.CodeTTL, DefaultCodeTTL)
	def(&o.RefreshGrace, DefaultRefreshGrace)
	def(&o.ClientTTL, DefaultClientTTL)
	if o.CIMD == nil {
		o.CIMD = NewCIMDFetcher(CIMDOptions{})
	}
	return &Server{o: o, register: newLimiter(20, time.Hour)}
}

// Mux is where routes are registered (an *http.ServeMux or package
// server's Server).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Routes registers the metadata and OAuth endpoints, with the root
// aliases some clients fall back to.
func (s *Server) Routes(m Mux) {
	m.Handle("GET /.well-known/oauth-authorization-server", cors(http.HandlerFunc(s.serverMetadata)))
	m.Handle("GET /.well-known/openid-configuration", cors(http.HandlerFunc(s.serverMetadata)))
	m.Handle("GET /.well-known/oauth-protected-resource", cors(http.HandlerFunc(s.resourceMetadata)))
	m.Handle("GET /.well-known/oauth-protected-resource/api/mcp", cors(http.HandlerFunc(s.resourceMetadata)))
	m.Handle("GET /.well-known/oauth-protected-resource/mcp", cors(http.HandlerFunc(s.resourceMetadata)))
	for _, prefix := range []string{"/api/oauth", ""} {
		m.Handle("POST "+prefix+"/register", cors(http.HandlerFunc(s.handleRegister)))
		m.Handle("GET "+prefix+"/authorize", http.HandlerFunc(s.authorize))
		m.Handle("POST "+prefix+"/authorize", http.HandlerFunc(s.consent))
		m.Handle("POST "+prefix+"/token", cors(http.HandlerFunc(s.token)))
		m.Handle("POST "+prefix+"/revoke", cors(http.HandlerFunc(s.revoke)))
	}
	for _, p := range []string{"/.well-known/", "/api/oauth/", "/register", "/token", "/revoke"} {
		m.Handle("OPTIONS "+p, cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})))
	}
}

// MCPPaths are the paths the MCP endpoint answers on, canonical first.
// Each is its own resource: a token is good only where it was asked for,
// because clients check that the metadata names the URL they use.
var MCPPaths = []string{"/api/mcp", "/mcp"}

// resources lists the resource identifiers of MCPPaths.
func (s *Server) resources() []string {
	return []string{s.o.Resource, s.o.Issuer + "/mcp"}
}

// resourceFor is the resource an MCP request path is, the canonical one
// for anything else.
func (s *Server) resourceFor(path string) string {
	if path == "/mcp" || path == "/.well-known/oauth-protected-resource/mcp" {
		return s.o.Issuer + "/mcp"
	}
	return s.o.Resource
}

// cors opens an endpoint to browser-based clients; none of these
// endpoints reads cookies.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
		h.Set("Access-Control-Max-Age", "86400")
		next.ServeHTTP(w, r)
	})
}

// normalizeScope keeps known scopes in canonical order, without
// duplicates; none requested means all.
func normalizeScope(requested string) string {
	fields := strings.Fields(requested)
	var out []string
	for _, s := range AllScopes {
		if slices.Contains(fields, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = []string{ScopeRead} // asking for nothing we know of earns the least
	}
	return strings.Join(out, " ")
}

// maxClientName bounds a client's name, in bytes.
const maxClientName = 200

// clientName makes a client's self-chosen name fit to store and show:
// valid UTF-8 without control characters, at most maxClientName bytes,
// cut at a character boundary.
func clientName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > maxClientName {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

// newSecret returns 32 random bytes, base64url, with a readable prefix.
func newSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// hash is how codes, tokens and client secrets are stored: SHA-256, hex.
func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is an RFC 6749 error response body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeError(w http.ResponseWriter, code int, err, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, oauthError{Error: err, Description: desc})
}
