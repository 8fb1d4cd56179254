package oauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
)

// registration is the part of an RFC 7591 request we use; unknown fields
// are ignored.
type registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
}

// registered is the RFC 7591 response; it never contains null.
type registered struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
}

const maxRegistrationBytes = 16 << 10

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.register.allow(clientAddr(r)) {
		w.Header().Set("Retry-After", "3600")
		writeError(w, http.StatusTooManyRequests, "slow_down", "too many registrations from this address; try again later")
		return
	}
	var req registration
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBytes))
	if err != nil || json.Unmarshal(body, &req) != nil {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata (RFC 7591)")
		return
	}
	if len(req.RedirectURIs) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris must list at least one URI")
		return
	}
	for _, u := range req.RedirectURIs {
		if err := validRedirectURI(u); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_redirect_uri", err.Error())
			return
		}
	}
	method := req.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic" // RFC 7591 §2
	}
	if !slices.Contains(authMethods, method) {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("token_endpoint_auth_method must be one of %v", authMethods))
		return
	}
	grants := req.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range grants {
		if g != "authorization_code" && g != "refresh_token" {
			writeError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("grant type %q is not supported: use authorization_code and refresh_token", g))
			return
		}
	}
	for _, t := range req.ResponseTypes {
		if t != "code" {
			writeError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("response type %q is not supported: use code", t))
			return
		}
	}
	req.ClientName = clientName(req.ClientName)

	uris, _ := json.Marshal(req.RedirectURIs)
	expires := time.Now().Add(s.o.ClientTTL)
	c := &store.OAuthClient{ID: newSecret("imcp_c_"), ClientName: req.ClientName, RedirectURIs: string(uris),
		TokenEndpointAuthMethod: method, ExpiresAt: &expires}
	resp := registered{ClientID: c.ID, RedirectURIs: req.RedirectURIs, ClientName: req.ClientName,
		TokenEndpointAuthMethod: method, GrantTypes: grants, ResponseTypes: []string{"code"}, Scope: normalizeScope(req.Scope)}
	if method != "none" {
		resp.ClientSecret = newSecret("imcp_s_")
		c.ClientSecretHash = hash(resp.ClientSecret)
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	if err := s.o.Store.CreateClient(r.Context(), c); err != nil {
		s.serverError(w, "register client", err)
		return
	}
	resp.ClientIDIssuedAt = c.CreatedAt.Unix()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}
