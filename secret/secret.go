// Package secret seals credentials at rest and derives the signing keys of
// the process from one master key.
//
// A sealed value is base64(version ‖ nonce ‖ ciphertext ‖ tag) with AES-256-GCM
// and a random 12-byte nonce, so the master key can be rotated.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the master key length in bytes.
const KeySize = 32

// Sealed value versions: 1 is bound to nothing (still opened, and sealed
// again as 2 by rotate-key); 2 carries the place it belongs to (its
// context) as AES-GCM additional data.
const (
	version1 byte = 1
	version2 byte = 2
)

// ErrWrongKey means a sealed value was made with another master key or was
// altered. Its text is what an operator sees at start.
var ErrWrongKey = errors.New("MCP_MASTER_KEY does not open the stored secrets")

// ErrMalformed means a value is not a sealed value of a known version.
var ErrMalformed = errors.New("secret: malformed sealed value")

// Keys holds the sealing cipher and the sub-keys derived from one master key.
type Keys struct {
	aead       cipher.AEAD
	attachment []byte
	cookie     []byte
}

// New derives all keys from a master key of KeySize bytes.
func New(master []byte) (*Keys, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("secret: master key is %d bytes, want %d", len(master), KeySize)
	}
	sealKey := derive(master, "imap-mcp seal v1")
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Keys{
		aead:       aead,
		attachment: derive(master, "imap-mcp attachment-url v1"),
		cookie:     derive(master, "imap-mcp cookie v1"),
	}, nil
}

// Generate returns a new random master key.
func Generate() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}

// derive expands one purpose-bound 32-byte key from the master key (HKDF-SHA256).
func derive(master []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, master, nil, purpose, 32)
	if err != nil {
		panic("secret: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	return k
}

// Seal encrypts plaintext into a printable sealed value for the place
// named by context (for a stored password, its table, owner and column):
// it opens only with the same context.
func (k *Keys) Seal(plaintext []byte, context string) string {
	out := make([]byte, 1, 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = version2
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	out = k.aead.Seal(out, nonce, plaintext, append([]byte{version2}, context...))
	// Encoded straight into the string's bytes: a sealed message of many
	// megabytes is not held twice more as text.
	var b strings.Builder
	b.Grow(base64.StdEncoding.EncodedLen(len(out)))
	w := base64.NewEncoder(base64.StdEncoding, &b)
	_, _ = w.Write(out) // a strings.Builder does not fail
	_ = w.Close()
	return b.String()
}

// Open decrypts a value made by Seal with the same context. It returns
// ErrWrongKey when the value was sealed with another key or for another
// context (copied from another row or column), or altered, and
// ErrMalformed when it is not a sealed value at all.
func (k *Keys) Open(sealed, context string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < 1+k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrMalformed
	}
	var ad []byte
	switch raw[0] {
	case version1:
		ad = raw[:1]
	case version2:
		ad = append([]byte{version2}, context...)
	default:
		return nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, raw[0])
	}
	n := 1 + k.aead.NonceSize()
	pt, err := k.aead.Open(raw[n:n], raw[1:n], raw[n:], ad) // in place: raw is ours
	if err != nil {
		return nil, ErrWrongKey
	}
	return pt, nil
}

// AttachmentKey is the HMAC key for signed attachment URLs.
func (k *Keys) AttachmentKey() []byte { return k.attachment }

// CookieKey is the HMAC key for signed cookies.
func (k *Keys) CookieKey() []byte { return k.cookie }
