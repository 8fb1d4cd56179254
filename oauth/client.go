package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
)

// client is a registered or metadata-document client, resolved.
type client struct {
	store.OAuthClient
	redirects []string
}

var errUnknownClient = errors.New("unknown or expired client")

// lookupClient finds a client by id: an https URL is a Client ID Metadata
// Document fetched (and cached) now; anything else a registration.
func (s *Server) lookupClient(ctx context.Context, id string) (client, error) {
	if strings.HasPrefix(id, "https://") {
		doc, err := s.o.CIMD.Fetch(ctx, id)
		if err != nil {
			return client{}, err
		}
		uris, _ := json.Marshal(doc.RedirectURIs)
		expires := time.Now().Add(s.o.ClientTTL) // kept past that only once a person consents
		c := store.OAuthClient{ID: id, ClientName: doc.ClientName, RedirectURIs: string(uris),
			TokenEndpointAuthMethod: "none", MetadataURL: id, ExpiresAt: &expires}
		if err := s.o.Store.UpsertMetadataClient(ctx, &c); err != nil {
			return client{}, err
		}
		return client{OAuthClient: c, redirects: doc.RedirectURIs}, nil
	}
	c, err := s.o.Store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return client{}, errUnknownClient
	}
	if err != nil {
		return client{}, err
	}
	var uris []string
	if err := json.Unmarshal([]byte(c.RedirectURIs), &uris); err != nil {
		return client{}, fmt.Errorf("oauth: client %s redirect_uris: %w", id, err)
	}
	return client{OAuthClient: c, redirects: uris}, nil
}

// name is what people see on the consent page.
func (c client) name() string {
	if c.ClientName != "" {
		return c.ClientName
	}
	return "An unnamed application"
}

// secretMatches compares a presented secret with the stored hash in
// constant time.
func (c client) secretMatches(secret string) bool {
	return c.ClientSecretHash != "" && subtle.ConstantTimeCompare([]byte(hash(secret)), []byte(c.ClientSecretHash)) == 1
}

// matchRedirect returns the registered redirect URI that uri selects:
// an exact match, or a loopback URI that differs only in its port
// (RFC 8252 §7.3). An empty uri selects the only registered one.
func (c client) matchRedirect(uri string) (string, bool) {
	if uri == "" {
		if len(c.redirects) == 1 {
			return c.redirects[0], true
		}
		return "", false
	}
	if slices.Contains(c.redirects, uri) {
		return uri, true
	}
	got, err := url.Parse(uri)
	if err != nil || got.Scheme != "http" || !isLoopback(got.Hostname()) {
		return "", false
	}
	for _, reg := range c.redirects {
		r, err := url.Parse(reg)
		if err == nil && r.Scheme == "http" && r.Hostname() == got.Hostname() && r.Path == got.Path && r.RawQuery == got.RawQuery {
			return uri, true
		}
	}
	return "", false
}

// validRedirectURI: https anywhere, or http on a loopback host; absolute,
// no fragment, no credentials.
func validRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", uri)
	}
	if u.Fragment != "" || strings.Contains(uri, "#") {
		return fmt.Errorf("%q has a fragment", uri)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials", uri)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%q uses http on a non-loopback host: use https", uri)
	}
	return fmt.Errorf("%q: only https or loopback http redirect URIs are allowed", uri)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
