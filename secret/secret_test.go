package secret_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imap-mcp/imap-mcp/secret"
)

func mustKeys(t *testing.T, master []byte) *secret.Keys {
	t.Helper()
	k, err := secret.New(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	master := secret.Generate()
	k := mustKeys(t, master)
	const where = "mail_accounts/u1/imap_password_enc"
	sealed := k.Seal([]byte("app password"), where)
	if sealed == k.Seal([]byte("app password"), where) {
		t.Fatal("two seals of the same value are equal: nonce not random")
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	if raw[0] != 2 || len(raw) != 1+12+len("app password")+16 {
		t.Fatalf("layout: version %d, %d bytes", raw[0], len(raw))
	}
	pt, err := mustKeys(t, master).Open(sealed, where)
	if err != nil || string(pt) != "app password" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	// Bound to its place: copied to another owner's row or column, it
	// does not open.
	for _, other := range []string{"mail_accounts/u2/imap_password_enc", "mail_accounts/u1/smtp_password_enc", ""} {
		if _, err := k.Open(sealed, other); !errors.Is(err, secret.ErrWrongKey) {
			t.Fatalf("opened for %q: err = %v, want ErrWrongKey", other, err)
		}
	}

	if _, err := mustKeys(t, secret.Generate()).Open(sealed, where); !errors.Is(err, secret.ErrWrongKey) {
		t.Fatalf("other key: err = %v, want ErrWrongKey", err)
	}
	if secret.ErrWrongKey.Error() != "MCP_MASTER_KEY does not open the stored secrets" {
		t.Fatalf("ErrWrongKey text = %q", secret.ErrWrongKey)
	}
	tampered := bytes.Clone(raw)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Open(base64.StdEncoding.EncodeToString(tampered), where); !errors.Is(err, secret.ErrWrongKey) {
		t.Fatalf("tampered: err = %v, want ErrWrongKey", err)
	}
	future := bytes.Clone(raw)
	future[0] = 3
	if _, err := k.Open(base64.StdEncoding.EncodeToString(future), where); !errors.Is(err, secret.ErrMalformed) {
		t.Fatalf("unknown version: err = %v, want ErrMalformed", err)
	}
	for _, bad := range []string{"", "plaintext password", "AQ=="} {
		if _, err := k.Open(bad, where); !errors.Is(err, secret.ErrMalformed) {
			t.Fatalf("Open(%q): err = %v, want ErrMalformed", bad, err)
		}
	}
	if _, err := secret.New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}

func TestSubKeysAreDistinctAndStable(t *testing.T) {
	master := secret.Generate()
	a, b := mustKeys(t, master), mustKeys(t, master)
	if !bytes.Equal(a.AttachmentKey(), b.AttachmentKey()) || !bytes.Equal(a.CookieKey(), b.CookieKey()) {
		t.Fatal("sub-keys differ for the same master key")
	}
	if bytes.Equal(a.AttachmentKey(), a.CookieKey()) || bytes.Equal(a.CookieKey(), master) || len(a.CookieKey()) != 32 {
		t.Fatal("sub-keys are not distinct 32-byte keys")
	}
	if bytes.Equal(a.CookieKey(), mustKeys(t, secret.Generate()).CookieKey()) {
		t.Fatal("different master keys give the same cookie key")
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	created := make([]bool, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			keys[i], created[i], err = secret.LoadOrCreateFile(path)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) || len(keys[i]) != secret.KeySize {
			t.Fatalf("racing starts got different keys")
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d callers report creating the key, want 1", n)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}

	next := secret.Generate()
	if err := secret.WriteFile(path, next); err != nil {
		t.Fatal(err)
	}
	got, created1, err := secret.LoadOrCreateFile(path)
	if err != nil || created1 || !bytes.Equal(got, next) {
		t.Fatalf("after WriteFile: %v created=%v", err, created1)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %d entries", len(entries))
	}

	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secret.LoadOrCreateFile(path); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}
