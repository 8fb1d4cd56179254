// Package clerktest is a local stand-in for Clerk's Backend API (/v1/jwks
// and /v1/users/{id}) that signs RS256 session tokens the way Clerk does.
package clerktest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
)

// Fixed values of the fake instance.
const (
	SecretKey      = "sk_test_fake"
	PublishableKey = "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k" // Frontend API clerk.example.com
	FrontendAPI    = "clerk.example.com"
	Issuer         = "https://clerk.example.com"
)

// Server is the fake Backend API. BackendURL is what clerk-sdk-go takes.
type Server struct {
	*httptest.Server
	BackendURL string
	// AZP is the authorized party put in tokens by default.
	AZP string
	// JWKSCalls and UsersCalls count requests.
	JWKSCalls, UsersCalls atomic.Int32

	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	kid  string
}

// Claims are the session token claims; tests change them before signing.
type Claims struct {
	josejwt.Claims
	SessionID string `json:"sid"`
	AZP       string `json:"azp,omitempty"`
}

// New starts a fake whose tokens name azp as their authorized party.
func New(t testing.TB, azp string) *Server {
	s := &Server{AZP: azp, keys: map[string]*rsa.PrivateKey{}}
	s.Rotate(t, "ins_key_1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jwks", s.jwks)
	mux.HandleFunc("GET /v1/users/{id}", s.user)
	s.Server = httptest.NewServer(mux)
	s.BackendURL = s.URL + "/v1"
	t.Cleanup(s.Close)
	return s
}

// Rotate adds a signing key kid and makes it the one new tokens use.
func (s *Server) Rotate(t testing.TB, kid string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[kid] = key
	s.kid = kid
}

// KeyID is the kid of the current signing key.
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kid
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.JWKSCalls.Add(1)
	if r.Header.Get("Authorization") != "Bearer "+SecretKey {
		http.Error(w, `{"errors":[{"code":"authentication_invalid"}]}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []jose.JSONWebKey
	for kid, k := range s.keys {
		keys = append(keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	s.UsersCalls.Add(1)
	id := r.PathValue("id")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": id, "object": "user", "primary_email_address_id": "idn_2",
		"email_addresses": []any{
			map[string]any{"id": "idn_1", "object": "email_address", "email_address": "old-" + id + "@example.com"},
			map[string]any{"id": "idn_2", "object": "email_address", "email_address": id + "@example.com"},
		},
	})
}

// Token signs a session token for user_alice with the current key; mutate
// changes the claims first. A kid that the fake never created signs with
// a throwaway key.
func (s *Server) Token(t testing.TB, kid string, mutate func(*Claims)) string {
	now := time.Now()
	c := Claims{Claims: josejwt.Claims{Subject: "user_alice", Issuer: Issuer,
		IssuedAt: josejwt.NewNumericDate(now), NotBefore: josejwt.NewNumericDate(now.Add(-time.Second)),
		Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}, SessionID: "sess_1", AZP: s.AZP}
	if mutate != nil {
		mutate(&c)
	}
	if kid == "" {
		kid = s.KeyID()
	}
	s.mu.Lock()
	key, ok := s.keys[kid]
	s.mu.Unlock()
	if !ok {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(sig).Claims(c).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
