package mail

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestFoldersLifecycle(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	ctx := testCtx(t)
	seeded, _ := seedFolder(t, rig, "carol", "counted", 30)

	folders, err := e.ListFolders(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[Role]string{}
	for _, f := range folders {
		roles[f.Role] = f.Name
		if f.Name == seeded && (f.Messages != 30 || f.Unread < 1 || f.Unread >= 30) {
			t.Errorf("counts of %s: %d/%d", f.Name, f.Messages, f.Unread)
		}
	}
	for role, name := range map[Role]string{RoleInbox: "INBOX", RoleSent: "Sent", RoleDrafts: "Drafts", RoleTrash: "Trash", RoleJunk: "Junk", RoleArchive: "Archive"} {
		if roles[role] != name {
			t.Errorf("role %s = %q, want %q", role, roles[role], name)
		}
	}

	parent := uniqueFolder("proj")
	child := parent + "/2026/Q1"
	if err := e.CreateFolder(ctx, acct, child); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateFolder(ctx, acct, child); KindOf(err) != KindInvalid {
		t.Fatalf("duplicate create: %v", err)
	}
	other := uniqueFolder("other")
	if err := e.CreateFolder(ctx, acct, other); err != nil {
		t.Fatal(err)
	}
	moved := other + "/Q1"
	if err := e.RenameFolder(ctx, acct, child, moved); err != nil {
		t.Fatal(err)
	}
	names := folderNames(t, e, acct)
	if !slices.Contains(names, moved) || slices.Contains(names, child) || !slices.Contains(names, parent+"/2026") {
		t.Fatalf("after rename: %v", names)
	}
	if err := e.RenameFolder(ctx, acct, "Nope-"+parent, "x"); KindOf(err) != KindNotFound {
		t.Fatalf("rename missing: %v", err)
	}
	for _, name := range []string{"INBOX", "Sent", "Trash", "Archive", "Drafts"} {
		if err := e.DeleteFolder(ctx, acct, name); KindOf(err) != KindInvalid {
			t.Errorf("delete %s: %v", name, err)
		}
		if err := e.RenameFolder(ctx, acct, name, uniqueFolder("renamed")); KindOf(err) != KindInvalid {
			t.Errorf("rename %s: %v", name, err)
		}
	}
	if err := e.DeleteFolder(ctx, acct, "Nope-"+parent); KindOf(err) != KindNotFound {
		t.Fatalf("delete missing: %v", err)
	}
	if err := e.DeleteFolder(ctx, acct, moved); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(folderNames(t, e, acct), moved) {
		t.Fatal("folder still listed after delete")
	}
	if err := e.CreateFolder(ctx, acct, "bad\r\nname"); KindOf(err) != KindInvalid {
		t.Fatalf("control chars: %v", err)
	}
}

func folderNames(t *testing.T, e *Engine, acct *Account) []string {
	t.Helper()
	folders, err := e.ListFolders(testCtx(t), acct)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range folders {
		names = append(names, f.Name)
	}
	return names
}

func TestFlagsMoveCopyDelete(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "bob")
	ctx := testCtx(t)
	src, _ := seedFolder(t, rig, "bob", "src", 20)
	dst := uniqueFolder("dst")
	if err := e.CreateFolder(ctx, acct, dst); err != nil {
		t.Fatal(err)
	}
	page, err := e.ListMessages(ctx, acct, src, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uids := []uint32{page.Messages[0].UID, page.Messages[1].UID, page.Messages[2].UID}

	if err := e.SetFlags(ctx, acct, src, uids, []string{"\\Seen", "flagged", "$Work"}, nil); err != nil {
		t.Fatal(err)
	}
	flagsOf := func(folder string, uid uint32) []string {
		m, err := e.GetMessage(ctx, acct, folder, uid, GetOptions{MaxChars: 1})
		if err != nil {
			t.Fatal(err)
		}
		return m.Flags
	}
	if f := flagsOf(src, uids[1]); !slices.Contains(f, FlagSeen) || !slices.Contains(f, FlagFlagged) || !slices.Contains(f, "$Work") {
		t.Fatalf("flags after add: %v", f)
	}
	if err := e.SetFlags(ctx, acct, src, uids, nil, []string{FlagSeen, "$Work"}); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf(src, uids[2]); slices.Contains(f, FlagSeen) || slices.Contains(f, "$Work") || !slices.Contains(f, FlagFlagged) {
		t.Fatalf("flags after remove: %v", f)
	}
	if err := e.SetFlags(ctx, acct, src, uids, []string{`\Deleted`}, nil); KindOf(err) != KindInvalid {
		t.Fatalf("\\Deleted accepted: %v", err)
	}

	// Another message marked \Deleted must survive every operation below:
	// nothing may run a bare EXPUNGE.
	bystander := page.Messages[5].UID
	markDeleted(t, e, acct, src, bystander)

	if err := e.Copy(ctx, acct, src, uids[:1], dst); err != nil {
		t.Fatal(err)
	}
	if err := e.Move(ctx, acct, src, uids[1:2], dst); err != nil {
		t.Fatal(err)
	}
	if err := e.Move(ctx, acct, src, uids[1:2], "Missing-"+dst); KindOf(err) != KindNotFound {
		t.Fatalf("move to missing folder: %v", err)
	}
	if err := e.Delete(ctx, acct, src, uids[2:3], false); err != nil {
		t.Fatal(err)
	}
	totals := func(folder string) int {
		p, err := e.ListMessages(ctx, acct, folder, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Total
	}
	if got := totals(src); got != 18 {
		t.Fatalf("source has %d, want 18", got)
	}
	if got := totals(dst); got != 2 {
		t.Fatalf("destination has %d, want 2", got)
	}
	if err := e.Delete(ctx, acct, src, []uint32{page.Messages[3].UID}, true); err != nil {
		t.Fatal(err)
	}
	if got := totals(src); got != 17 {
		t.Fatalf("after permanent delete source has %d, want 17 (bystander kept)", got)
	}
	if err := e.Delete(ctx, acct, "Trash", []uint32{1}, false); KindOf(err) != KindInvalid {
		t.Fatalf("delete from Trash without permanent: %v", err)
	}
}

// markDeleted sets \Deleted on uid directly, as another client would.
func markDeleted(t *testing.T, e *Engine, acct *Account, folder string, uid uint32) {
	t.Helper()
	if err := e.Do(testCtx(t), acct, func(c *Conn) error {
		if _, err := c.selectFolder(folder); err != nil {
			return err
		}
		return c.store(uidSet([]uint32{uid}), imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted})
	}); err != nil {
		t.Fatal(err)
	}
}

func TestMoveFallbacksAndMissingTrash(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "bob")
	acct.ID = "move-fallbacks"
	ctx := testCtx(t)
	src, _ := seedFolder(t, rig, "bob", "fallback", 10)
	dst := uniqueFolder("fallback-dst")
	if err := e.CreateFolder(ctx, acct, dst); err != nil {
		t.Fatal(err)
	}
	page, err := e.ListMessages(ctx, acct, src, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bystander := page.Messages[9].UID
	markDeleted(t, e, acct, src, bystander)
	// withCaps runs fn on a connection that pretends to lack caps; the
	// connection is discarded afterwards.
	withCaps := func(drop []imap.Cap, fn func(c *Conn) error) error {
		return e.Do(ctx, acct, func(c *Conn) error {
			c.broken = true
			c.caps = maps.Clone(c.caps)
			for _, cp := range drop {
				delete(c.caps, cp)
			}
			return fn(c)
		})
	}
	err = withCaps([]imap.Cap{imap.CapMove}, func(c *Conn) error {
		if _, err := c.selectFolder(src); err != nil {
			return err
		}
		moved, err := c.move(uidSet([]uint32{page.Messages[0].UID, page.Messages[1].UID}), dst)
		if nums, _ := moved.Nums(); err == nil && len(nums) != 2 {
			t.Errorf("COPYUID gave %v", moved)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = withCaps([]imap.Cap{imap.CapMove, imap.CapUIDPlus}, func(c *Conn) error {
		if _, err := c.selectFolder(src); err != nil {
			return err
		}
		_, err := c.move(uidSet([]uint32{page.Messages[2].UID}), dst)
		return err
	})
	if KindOf(err) != KindUnsupported {
		t.Fatalf("move without MOVE and UIDPLUS: %v", err)
	}
	err = withCaps(nil, func(c *Conn) error {
		c.roles = map[Role]string{}
		return c.delete(src, uidSet([]uint32{page.Messages[3].UID}), false)
	})
	if KindOf(err) != KindUnsupported || !errors.Is(err, ErrNoTrash) || !strings.Contains(Hint(err, acct), "no Trash") {
		t.Fatalf("delete without Trash: %v", err)
	}
	for folder, want := range map[string]int{src: 8, dst: 2} {
		p, err := e.ListMessages(ctx, acct, folder, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != want {
			t.Errorf("%s holds %d, want %d (the \\Deleted bystander must stay)", folder, p.Total, want)
		}
	}
}

// TestDeleteTheSelectedFolder: listing a folder and then deleting or
// renaming it (a natural sequence for an agent) leaves the pooled
// connection working; Dovecot drops a connection whose selected folder
// is deleted.
func TestDeleteTheSelectedFolder(t *testing.T) {
	t.Parallel()
	e, rig := testEngine(t, Config{MaxConns: 1})
	acct := rigAccount(t, rig, "bob")
	ctx := testCtx(t)
	for _, op := range []string{"delete", "rename"} {
		folder, _ := seedFolder(t, rig, "bob", "sel-"+op, 3)
		if _, err := e.ListMessages(ctx, acct, folder, ListOptions{}); err != nil {
			t.Fatal(err)
		}
		var err error
		if op == "delete" {
			err = e.DeleteFolder(ctx, acct, folder)
		} else {
			err = e.RenameFolder(ctx, acct, folder, folder+"-renamed")
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		for range 3 {
			if _, err := e.ListFolders(ctx, acct); err != nil {
				t.Fatalf("after %s of the selected folder: %v", op, err)
			}
			if _, err := e.ListMessages(ctx, acct, "INBOX", ListOptions{Limit: 1}); err != nil {
				t.Fatalf("after %s of the selected folder: %v", op, err)
			}
		}
	}
}
