package oauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imap-mcp/imap-mcp/netguard"
)

// Client ID Metadata Document limits.
const (
	CIMDMaxBytes = 5 << 10
	CIMDTimeout  = 5 * time.Second
	// CIMDMaxAge caps how long a document is cached, whatever its headers say.
	CIMDMaxAge = 24 * time.Hour
	// cimdDefaultAge applies when the response has no max-age.
	cimdDefaultAge = 10 * time.Minute
	// cimdCacheMax bounds the cached documents.
	cimdCacheMax = 1000
)

// ClientMetadata is the part of a Client ID Metadata Document we use.
type ClientMetadata struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
}

// CIMDError says why a client metadata document was refused; its text is
// safe to show.
type CIMDError struct{ Reason string }

func (e *CIMDError) Error() string { return "client metadata document: " + e.Reason }

// CIMDOptions configure fetching. Zero values are the safe defaults.
type CIMDOptions struct {
	// AllowPrivate lets documents come from loopback and private addresses.
	AllowPrivate bool
	// RootCAs replaces the system roots (tests).
	RootCAs *x509.CertPool
	// Timeout bounds a whole fetch; zero means CIMDTimeout.
	Timeout time.Duration
}

// CIMDFetcher fetches and caches client metadata documents, refusing
// private addresses, slow servers and large documents.
type CIMDFetcher struct {
	client  *http.Client
	timeout time.Duration
	mu      sync.Mutex
	cache   map[string]cimdEntry
	// Fetches happen before anyone signs in: bound how often each host,
	// and all hosts together, can make this server fetch.
	perHost, all *limiter
	inFlight     chan struct{}
}

// Bounds of outbound metadata fetches.
const (
	cimdFetchesPerHost = 10 // per minute
	cimdFetchesAll     = 60 // per minute
	cimdConcurrent     = 4
)

type cimdEntry struct {
	doc     ClientMetadata
	expires time.Time
}

// NewCIMDFetcher returns a fetcher.
func NewCIMDFetcher(o CIMDOptions) *CIMDFetcher {
	if o.Timeout == 0 {
		o.Timeout = CIMDTimeout
	}
	tr := &http.Transport{
		DialContext:           netguard.Dialer(o.Timeout, o.AllowPrivate).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConns:          10,
		IdleConnTimeout:       time.Minute,
	}
	return &CIMDFetcher{
		client: &http.Client{Transport: tr, Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout:  o.Timeout,
		cache:    map[string]cimdEntry{},
		perHost:  newLimiter(cimdFetchesPerHost, time.Minute),
		all:      newLimiter(cimdFetchesAll, time.Minute),
		inFlight: make(chan struct{}, cimdConcurrent),
	}
}

// Fetch returns the validated document at id, from cache while fresh.
func (f *CIMDFetcher) Fetch(ctx context.Context, id string) (ClientMetadata, error) {
	f.mu.Lock()
	e, ok := f.cache[id]
	f.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.doc, nil
	}
	if u, err := url.Parse(id); err == nil && (!f.perHost.allow(u.Hostname()) || !f.all.allow("")) {
		return ClientMetadata{}, &CIMDError{"too many metadata documents were fetched in the last minute; try again in a minute"}
	}
	select {
	case f.inFlight <- struct{}{}:
		defer func() { <-f.inFlight }()
	case <-ctx.Done():
		return ClientMetadata{}, ctx.Err()
	}
	doc, age, err := f.fetch(ctx, id)
	if err != nil {
		return ClientMetadata{}, err
	}
	if age > 0 {
		f.mu.Lock()
		if len(f.cache) >= cimdCacheMax { // forget expired documents so the cache stays small
			now := time.Now()
			for k, e := range f.cache {
				if now.After(e.expires) {
					delete(f.cache, k)
				}
			}
		}
		if len(f.cache) < cimdCacheMax {
			f.cache[id] = cimdEntry{doc: doc, expires: time.Now().Add(age)}
		}
		f.mu.Unlock()
	}
	return doc, nil
}

func (f *CIMDFetcher) fetch(ctx context.Context, id string) (ClientMetadata, time.Duration, error) {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" ||
		strings.Trim(u.Path, "/") == "" || strings.Contains(id, "#") {
		return ClientMetadata{}, 0, &CIMDError{"client_id must be an https URL with a path, no fragment and no credentials"}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return ClientMetadata{}, 0, &CIMDError{"client_id is not a valid URL"}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if errors.Is(err, netguard.ErrForbiddenAddress) {
		return ClientMetadata{}, 0, &CIMDError{"its host resolves to a private or local address"}
	}
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return ClientMetadata{}, 0, &CIMDError{fmt.Sprintf("could not be fetched within %s", f.timeout)}
		}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return ClientMetadata{}, 0, &CIMDError{"its host name does not resolve"}
		}
		return ClientMetadata{}, 0, &CIMDError{"its server could not be reached (connection refused, reset or a TLS failure)"}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ClientMetadata{}, 0, &CIMDError{fmt.Sprintf("fetching it answered %s", resp.Status)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, CIMDMaxBytes+1))
	if err != nil {
		return ClientMetadata{}, 0, &CIMDError{fmt.Sprintf("could not be read within %s", f.timeout)}
	}
	if len(body) > CIMDMaxBytes {
		return ClientMetadata{}, 0, &CIMDError{fmt.Sprintf("is larger than %d bytes", CIMDMaxBytes)}
	}
	var doc ClientMetadata
	if err := json.Unmarshal(body, &doc); err != nil {
		return ClientMetadata{}, 0, &CIMDError{"is not a JSON object"}
	}
	if doc.ClientID != id {
		return ClientMetadata{}, 0, &CIMDError{"its client_id does not equal the URL it was fetched from"}
	}
	if len(doc.RedirectURIs) == 0 {
		return ClientMetadata{}, 0, &CIMDError{"it lists no redirect_uris"}
	}
	for _, r := range doc.RedirectURIs {
		if err := validRedirectURI(r); err != nil {
			return ClientMetadata{}, 0, &CIMDError{err.Error()}
		}
	}
	if m := doc.TokenEndpointAuthMethod; m != "" && m != "none" {
		return ClientMetadata{}, 0, &CIMDError{fmt.Sprintf("token_endpoint_auth_method %q is not supported: metadata-document clients are public (none)", m)}
	}
	doc.ClientName = clientName(doc.ClientName)
	return doc, cacheAge(resp.Header.Get("Cache-Control")), nil
}

// cacheAge reads max-age from Cache-Control: 0 for no-store or no-cache,
// the default when absent, never more than CIMDMaxAge.
func cacheAge(cc string) time.Duration {
	age := cimdDefaultAge
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && n >= 0 {
				age = time.Duration(n) * time.Second
			}
		}
	}
	return min(age, CIMDMaxAge)
}
