package mcp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/internal/dbtest"
	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

const issuer = "https://mail-mcp.example.com"

type harness struct {
	url string
	st  *store.Store
	srv *mcp.Server
}

// newHarness serves the MCP handler behind the real bearer check.
func newHarness(t testing.TB, o mcp.Options) *harness {
	st := dbtest.SQLiteStore(t)
	st.KeepHotReads() // as the server does
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	o.Store = st
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Version = "test"
	o.AppURL = ts.URL
	srv := mcp.New(o)
	t.Cleanup(srv.Close)
	as := oauth.New(oauth.Options{Issuer: issuer, Resource: issuer + "/api/mcp", Store: st, Logger: o.Logger})
	mux.Handle("/api/mcp", as.Bearer(srv.Handler()))
	mux.Handle("GET /api/attachments/{token}", srv.AttachmentHandler())
	return &harness{url: ts.URL + "/api/mcp", st: st, srv: srv}
}

// token creates a user (by Clerk id), a client, a grant with scope and an
// access token, the way consent and /token would, and returns the token
// and the user.
func (h *harness) token(t testing.TB, clerkID, scope string) (string, store.User) {
	ctx := context.Background()
	u, err := h.st.UpsertClerkUser(ctx, clerkID, clerkID+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return h.tokenFor(t, u, clerkID, scope)
}

// tokenFor is token for an existing user and another client of theirs,
// named name.
func (h *harness) tokenFor(t testing.TB, u store.User, name, scope string) (string, store.User) {
	ctx := context.Background()
	cid := "client-" + name + "-" + scope
	if err := h.st.CreateClient(ctx, &store.OAuthClient{ID: cid, RedirectURIs: `["http://localhost/cb"]`, TokenEndpointAuthMethod: "none"}); err != nil {
		t.Fatal(err)
	}
	g, err := h.st.CreateGrant(ctx, u.ID, cid, scope)
	if err != nil {
		t.Fatal(err)
	}
	tok := "at-" + cid
	sum := sha256.Sum256([]byte(tok))
	err = h.st.CreateToken(ctx, &store.Token{GrantID: g.ID, AccessTokenHash: hex.EncodeToString(sum[:]), RefreshTokenHash: "r-" + cid,
		Scope: scope, Resource: issuer + "/api/mcp", AccessExpiresAt: time.Now().Add(time.Hour), RefreshExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok, u
}

// client connects an mcp-go client with a bearer token and initializes it.
func (h *harness) client(t testing.TB, token string) *client.Client {
	c, err := client.NewStreamableHttpClient(h.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcplib.InitializeRequest{Params: mcplib.InitializeParams{
		ProtocolVersion: mcplib.LATEST_PROTOCOL_VERSION, ClientInfo: mcplib.Implementation{Name: "test", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	return c
}

func call(t *testing.T, c *client.Client, name string, args map[string]any) *mcplib.CallToolResult {
	t.Helper()
	res, err := c.CallTool(context.Background(), mcplib.CallToolRequest{Params: mcplib.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}
