package mail

import (
	"slices"
	"testing"
)

// TestOperationsOnMissingUIDs: deleting, moving, copying or flagging a UID
// that does not exist is an error that changes nothing, not a success.
func TestOperationsOnMissingUIDs(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "bob")
	folder, _ := seedFolder(t, rig, "bob", "missing", 3)
	dest := uniqueFolder("dest")
	ctx := testCtx(t)
	if err := e.CreateFolder(ctx, acct, dest); err != nil {
		t.Fatal(err)
	}
	page, err := e.ListMessages(ctx, acct, folder, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	real, ghost := page.Messages[0].UID, uint32(999999)
	for name, op := range map[string]func() error{
		"delete":    func() error { return e.Delete(ctx, acct, folder, []uint32{real, ghost}, true) },
		"move":      func() error { return e.Move(ctx, acct, folder, []uint32{ghost}, dest) },
		"copy":      func() error { return e.Copy(ctx, acct, folder, []uint32{real, ghost}, dest) },
		"set flags": func() error { return e.SetFlags(ctx, acct, folder, []uint32{real, ghost}, []string{`\Flagged`}, nil) },
	} {
		if err := op(); KindOf(err) != KindNotFound {
			t.Errorf("%s of a missing UID: %v, want KindNotFound", name, err)
		}
	}
	after, err := e.ListMessages(ctx, acct, folder, ListOptions{})
	if err != nil || after.Total != 3 {
		t.Fatalf("folder changed: %+v, %v", after, err)
	}
	for i, m := range after.Messages {
		if !slices.Equal(m.Flags, page.Messages[i].Flags) {
			t.Fatalf("flags of %d changed: %v -> %v", m.UID, page.Messages[i].Flags, m.Flags)
		}
	}
	if d, err := e.ListMessages(ctx, acct, dest, ListOptions{}); err != nil || d.Total != 0 {
		t.Fatalf("destination got messages: %+v, %v", d, err)
	}
}
