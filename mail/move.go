package mail

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// ErrNoTrash is wrapped by Delete when the account has no Trash folder
// and permanent deletion was not asked for.
var ErrNoTrash = errors.New("no Trash folder")

// Move moves uids from folder to dest: MOVE when offered, else COPY,
// STORE \Deleted and UID EXPUNGE of exactly those UIDs (UIDPLUS). A
// server with neither is refused (KindUnsupported) rather than risking a
// plain EXPUNGE that would remove other deleted messages.
func (e *Engine) Move(ctx context.Context, acct *Account, folder string, uids []uint32, dest string) error {
	if len(uids) == 0 {
		return invalid("move", "no UIDs given")
	}
	return e.Do(ctx, acct, func(c *Conn) error {
		if err := c.folderExists("move", dest); err != nil {
			return err
		}
		if err := c.selectPresent("move", folder, uids); err != nil {
			return err
		}
		_, err := c.move(uidSet(uids), dest)
		return err
	})
}

// Copy copies uids from folder to dest.
func (e *Engine) Copy(ctx context.Context, acct *Account, folder string, uids []uint32, dest string) error {
	if len(uids) == 0 {
		return invalid("copy", "no UIDs given")
	}
	return e.Do(ctx, acct, func(c *Conn) error {
		if err := c.folderExists("copy", dest); err != nil {
			return err
		}
		if err := c.selectPresent("copy", folder, uids); err != nil {
			return err
		}
		return c.do("copy", func() error { _, err := c.client.Copy(uidSet(uids), dest).Wait(); return err })
	})
}

// selectPresent selects folder and returns KindNotFound, changing
// nothing, unless every one of uids is a message there: an operation on a
// UID that does not exist must not report success.
func (c *Conn) selectPresent(op, folder string, uids []uint32) error {
	if _, err := c.selectFolder(folder); err != nil {
		return err
	}
	found, err := c.search(SearchQuery{}, &imap.SearchCriteria{UID: []imap.UIDSet{uidSet(uids)}})
	if err != nil {
		return err
	}
	slices.Sort(found)
	var missing []string
	for _, u := range uids {
		if _, ok := slices.BinarySearch(found, imap.UID(u)); !ok {
			missing = append(missing, strconv.FormatUint(uint64(u), 10))
		}
	}
	if len(missing) > 0 {
		return notFound(op, "no message with UID %s in %q; nothing was changed (take UIDs from list_messages)",
			strings.Join(missing[:min(len(missing), 10)], ", "), folder)
	}
	return nil
}

// move moves set from the selected folder to dest and returns the UIDs
// the messages got there (empty if the server did not say).
func (c *Conn) move(set imap.UIDSet, dest string) (imap.UIDSet, error) {
	var moved imap.UIDSet
	if c.has(imap.CapMove) {
		err := c.do("move", func() error {
			data, err := c.client.Move(set, dest).Wait()
			if data != nil {
				moved, _ = data.DestUIDs.(imap.UIDSet)
			}
			return err
		})
		return moved, err
	}
	if !c.has(imap.CapUIDPlus) {
		return nil, &Error{Kind: KindUnsupported, Op: "move", Addr: c.addr,
			Err: errors.New("server offers neither MOVE nor UIDPLUS; moving would need an EXPUNGE that could remove other messages")}
	}
	if err := c.do("copy", func() error {
		data, err := c.client.Copy(set, dest).Wait()
		if data != nil {
			moved = data.DestUIDs
		}
		return err
	}); err != nil {
		return nil, err
	}
	return moved, c.expunge(set)
}

// expunge marks set \Deleted and removes exactly set with UID EXPUNGE.
func (c *Conn) expunge(set imap.UIDSet) error {
	if !c.has(imap.CapUIDPlus) {
		return &Error{Kind: KindUnsupported, Op: "expunge", Addr: c.addr,
			Err: errors.New("server lacks UIDPLUS; a plain EXPUNGE could remove other messages")}
	}
	if err := c.store(set, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted}); err != nil {
		return err
	}
	return c.do("uid expunge", func() error { return c.client.UIDExpunge(set).Close() })
}

// Delete moves uids from folder to Trash, or removes them for good when
// permanent is set (UID EXPUNGE of exactly those UIDs). Without a Trash
// folder a non-permanent delete is refused with ErrNoTrash
// (KindUnsupported) instead of expunging; deleting from Trash itself
// needs permanent (KindInvalid otherwise). On Gmail, moving to
// [Gmail]/Trash removes every label, which is what Gmail's own delete
// does.
func (e *Engine) Delete(ctx context.Context, acct *Account, folder string, uids []uint32, permanent bool) error {
	if len(uids) == 0 {
		return invalid("delete", "no UIDs given")
	}
	return e.Do(ctx, acct, func(c *Conn) error {
		if err := c.selectPresent("delete", folder, uids); err != nil {
			return err
		}
		return c.delete(folder, uidSet(uids), permanent)
	})
}

func (c *Conn) delete(folder string, set imap.UIDSet, permanent bool) error {
	trash, err := c.roleFolder(RoleTrash)
	if err != nil {
		return err
	}
	if permanent {
		return c.deletePermanently(folder, trash, set)
	}
	switch {
	case trash == "":
		return &Error{Kind: KindUnsupported, Op: "delete", Addr: c.addr,
			Err: fmt.Errorf("%w: the account has no Trash folder; delete permanently to remove the messages for good", ErrNoTrash)}
	case strings.EqualFold(trash, folder):
		return invalid("delete", "the messages are already in Trash; delete permanently to remove them for good")
	}
	if _, err := c.selectFolder(folder); err != nil {
		return err
	}
	_, err = c.move(set, trash)
	return err
}

// deletePermanently expunges set from folder. On Gmail, expunging from a
// label only removes that label (the message stays in All Mail), so the
// messages are moved to Trash and expunged there, as Gmail's own
// "delete forever" does.
func (c *Conn) deletePermanently(folder, trash string, set imap.UIDSet) error {
	if _, err := c.selectFolder(folder); err != nil {
		return err
	}
	if !c.has(capGmail) || trash == "" || strings.EqualFold(folder, trash) {
		return c.expunge(set)
	}
	moved, err := c.move(set, trash)
	if err != nil {
		return err
	}
	if len(moved) == 0 {
		return &Error{Kind: KindOther, Op: "delete", Addr: c.addr, Err: errors.New("server did not report the UIDs in Trash; the messages are in Trash, not yet deleted")}
	}
	if _, err := c.selectFolder(trash); err != nil {
		return err
	}
	return c.expunge(moved)
}
