package secret

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
)

// TestVersion1StillOpens: values sealed before sealing was bound to a
// context (version 1) open with any context, until rotate-key seals them
// again as version 2.
func TestVersion1StillOpens(t *testing.T) {
	k, err := New(Generate())
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	v1 := k.aead.Seal(append([]byte{version1}, nonce...), nonce, []byte("old password"), []byte{version1})
	pt, err := k.Open(base64.StdEncoding.EncodeToString(v1), "mail_accounts/u1/imap_password_enc")
	if err != nil || string(pt) != "old password" {
		t.Fatalf("version 1 value: %q, %v", pt, err)
	}
}
