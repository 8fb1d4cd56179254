package auth

import (
	"context"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/clerktest"
	"github.com/imap-mcp/imap-mcp/store"
)

type memUsers struct{ n int }

func (m *memUsers) UpsertClerkUser(_ context.Context, id, email string) (store.User, error) {
	m.n++
	return store.User{ID: "u-" + id, Email: email}, nil
}

func TestClerkRefetchesKeysAfterRotation(t *testing.T) {
	const origin = "https://app.example.com"
	fake := clerktest.New(t, origin)
	users := &memUsers{}
	k := NewClerk(users, ClerkOptions{SecretKey: clerktest.SecretKey, AppOrigin: origin, BackendURL: fake.BackendURL})
	ctx := context.Background()

	u, state, err := k.Resolve(ctx, Cookies{"__session": fake.Token(t, "", nil)})
	if err != nil || state != SignedIn || u.Email != "user_alice@example.com" {
		t.Fatalf("Resolve = %+v, %v, %v", u, state, err)
	}
	fake.Rotate(t, "ins_key_2")
	rotated := fake.Token(t, "", nil)
	if _, state, _ := k.Resolve(ctx, Cookies{"__session": rotated}); state != SignedOut || fake.JWKSCalls.Load() != 1 {
		t.Fatalf("new kid right after a fetch: state %v, %d fetches; want signed out, 1 (rate-limited)", state, fake.JWKSCalls.Load())
	}
	k.keysMu.Lock()
	k.fetchedAt = time.Now().Add(-jwksRefetchEvery - time.Second)
	k.keysMu.Unlock()
	if _, state, err := k.Resolve(ctx, Cookies{"__session": rotated}); state != SignedIn || err != nil || fake.JWKSCalls.Load() != 2 {
		t.Fatalf("new kid later: state %v, err %v, %d fetches; want signed in after one refetch", state, err, fake.JWKSCalls.Load())
	}
	if users.n != 1 || fake.UsersCalls.Load() != 1 {
		t.Fatalf("user mapped %d times, fetched %d times; want 1 and 1 (cached)", users.n, fake.UsersCalls.Load())
	}
}
