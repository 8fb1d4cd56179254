package mail

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Standard flags callers may set; any other name is a keyword.
const (
	FlagSeen     = `\Seen`
	FlagFlagged  = `\Flagged`
	FlagAnswered = `\Answered`
)

// SetFlags adds and removes flags (\Seen, \Flagged, \Answered or
// keywords) on uids in folder in one STORE each. \Deleted and \Draft are
// refused: deleting goes through Delete.
func (e *Engine) SetFlags(ctx context.Context, acct *Account, folder string, uids []uint32, add, remove []string) error {
	if len(uids) == 0 {
		return invalid("set flags", "no UIDs given")
	}
	addFlags, err := checkFlags(add)
	if err != nil {
		return err
	}
	removeFlags, err := checkFlags(remove)
	if err != nil {
		return err
	}
	return e.Do(ctx, acct, func(c *Conn) error {
		if err := c.selectPresent("set flags", folder, uids); err != nil {
			return err
		}
		set := uidSet(uids)
		if err := c.store(set, imap.StoreFlagsAdd, addFlags); err != nil {
			return err
		}
		return c.store(set, imap.StoreFlagsDel, removeFlags)
	})
}

// store changes flags on set in the selected folder; no flags is a no-op.
func (c *Conn) store(set imap.UIDSet, op imap.StoreFlagsOp, flags []imap.Flag) error {
	if len(flags) == 0 {
		return nil
	}
	return c.do("store flags", func() error {
		return c.client.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close()
	})
}

// checkFlags validates flag names and canonicalizes system flags.
func checkFlags(names []string) ([]imap.Flag, error) {
	out := make([]imap.Flag, 0, len(names))
	for _, n := range names {
		switch strings.ToLower(n) {
		case `\seen`, "seen":
			out = append(out, imap.FlagSeen)
		case `\flagged`, "flagged":
			out = append(out, imap.FlagFlagged)
		case `\answered`, "answered":
			out = append(out, imap.FlagAnswered)
		case `\draft`, "draft":
			out = append(out, imap.FlagDraft)
		default:
			if n == "" || strings.ContainsAny(n, "\\ ()[]{}%*\"\r\n") || strings.ContainsFunc(n, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				return nil, invalid("set flags", "%q is not a flag or keyword this tool can set", n)
			}
			out = append(out, imap.Flag(n))
		}
	}
	return out, nil
}

func uidSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set
}
