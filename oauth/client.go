package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
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

// validRedirectURI: https anywhere, http on a loopback host, or a native
// app's private-use scheme (RFC 8252 §7.1: cursor://…, vscode://…,
// com.example.app:/cb); absolute, no fragment, no credentials. Schemes a
// browser would act on itself (javascript:, data:, file:, …) are refused.
func validRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || !u.IsAbs() || u.Host == "" && (u.Scheme == "http" || u.Scheme == "https" || u.Path == "") {
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
	case privateUseScheme.MatchString(u.Scheme) && !slices.Contains(browserSchemes, u.Scheme):
		return nil
	}
	return fmt.Errorf("%q: use https, loopback http, or your application's own scheme", uri)
}

// privateUseScheme is the shape of a URI scheme (RFC 3986 §3.1).
var privateUseScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// browserSchemes are schemes that browsers or systems handle themselves;
// a redirect to one would run or show something, not return to an app.
var browserSchemes = []string{"javascript", "data", "vbscript", "file", "about", "blob", "filesystem", "view-source",
	"ftp", "ws", "wss", "mailto", "tel", "sms", "intent", "content", "jar", "chrome", "edge", "opera", "resource", "moz-extension"}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
