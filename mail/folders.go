package mail

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Role is a folder's special use.
type Role string

// Folder roles, found by SPECIAL-USE attribute first, then by name.
const (
	RoleNone    Role = ""
	RoleInbox   Role = "inbox"
	RoleSent    Role = "sent"
	RoleDrafts  Role = "drafts"
	RoleTrash   Role = "trash"
	RoleJunk    Role = "junk"
	RoleArchive Role = "archive"
	RoleAll     Role = "all"
	RoleFlagged Role = "flagged"
)

var roleAttrs = map[imap.MailboxAttr]Role{
	imap.MailboxAttrSent: RoleSent, imap.MailboxAttrDrafts: RoleDrafts, imap.MailboxAttrTrash: RoleTrash,
	imap.MailboxAttrJunk: RoleJunk, imap.MailboxAttrArchive: RoleArchive, imap.MailboxAttrAll: RoleAll,
	imap.MailboxAttrFlagged: RoleFlagged,
}

// roleNames are common and localized names (lower case, last hierarchy
// level) for servers without SPECIAL-USE.
var roleNames = map[string]Role{
	"sent": RoleSent, "sent items": RoleSent, "sent messages": RoleSent, "sent mail": RoleSent,
	"gesendet": RoleSent, "gesendete elemente": RoleSent, "envoyés": RoleSent, "éléments envoyés": RoleSent,
	"enviados": RoleSent, "inviata": RoleSent, "posta inviata": RoleSent, "verzonden": RoleSent,
	"drafts": RoleDrafts, "draft": RoleDrafts, "entwürfe": RoleDrafts, "brouillons": RoleDrafts, "borradores": RoleDrafts,
	"bozze": RoleDrafts, "concepten": RoleDrafts,
	"trash": RoleTrash, "deleted items": RoleTrash, "deleted messages": RoleTrash, "bin": RoleTrash,
	"papierkorb": RoleTrash, "gelöschte elemente": RoleTrash, "corbeille": RoleTrash, "papelera": RoleTrash,
	"cestino": RoleTrash, "prullenbak": RoleTrash,
	"junk": RoleJunk, "spam": RoleJunk, "junk e-mail": RoleJunk, "junk email": RoleJunk, "bulk mail": RoleJunk,
	"courrier indésirable": RoleJunk, "indésirables": RoleJunk,
	"archive": RoleArchive, "archives": RoleArchive, "archiv": RoleArchive, "all mail": RoleAll,
}

// Folder describes one mailbox.
type Folder struct {
	Name       string // full name, hierarchy levels joined by Delimiter
	Delimiter  string
	Role       Role
	Attributes []string
	Selectable bool
	Messages   int // -1 when unknown (not selectable)
	Unread     int // -1 when unknown
}

// ListFolders returns every folder with its role and its message and
// unread counts (LIST-STATUS when offered, else STATUS per folder).
func (e *Engine) ListFolders(ctx context.Context, acct *Account) ([]Folder, error) {
	var out []Folder
	err := e.Read(ctx, acct, func(c *Conn) (err error) {
		out, err = c.listFolders(true)
		return err
	})
	return out, err
}

// listFolders lists all folders, with counts when counts is set.
func (c *Conn) listFolders(counts bool) ([]Folder, error) {
	opts := &imap.ListOptions{}
	if c.has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	statusOpts := &imap.StatusOptions{NumMessages: true, NumUnseen: true}
	listStatus := counts && c.has(imap.CapListStatus)
	if listStatus {
		opts.ReturnStatus = statusOpts
	}
	var data []*imap.ListData
	if err := c.do("list folders", func() (err error) {
		data, err = c.client.List("", "*", opts).Collect()
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Folder, 0, len(data))
	for _, d := range data {
		f := Folder{Name: d.Mailbox, Selectable: true, Messages: -1, Unread: -1}
		if d.Delim != 0 {
			f.Delimiter = string(d.Delim)
		}
		for _, a := range d.Attrs {
			f.Attributes = append(f.Attributes, string(a))
			if strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) || strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)) {
				f.Selectable = false
			}
		}
		f.Role = folderRole(d)
		if d.Status != nil {
			f.Messages, f.Unread = int(deref(d.Status.NumMessages)), int(deref(d.Status.NumUnseen))
		}
		out = append(out, f)
	}
	if counts && !listStatus {
		for i := range out {
			if !out[i].Selectable {
				continue
			}
			var st *imap.StatusData
			if err := c.do("status "+out[i].Name, func() (err error) {
				st, err = c.client.Status(out[i].Name, statusOpts).Wait()
				return err
			}); err != nil {
				return nil, err
			}
			out[i].Messages, out[i].Unread = int(deref(st.NumMessages)), int(deref(st.NumUnseen))
		}
	}
	return out, nil
}

func deref(p *uint32) uint32 {
	if p == nil {
		return 0
	}
	return *p
}

// folderRole finds the role by attribute, then by the last level's name.
func folderRole(d *imap.ListData) Role {
	if strings.EqualFold(d.Mailbox, "INBOX") {
		return RoleInbox
	}
	for _, a := range d.Attrs {
		for attr, role := range roleAttrs {
			if strings.EqualFold(string(a), string(attr)) {
				return role
			}
		}
	}
	name := d.Mailbox
	if d.Delim != 0 {
		name = name[strings.LastIndexByte(name, byte(d.Delim))+1:]
	}
	return roleNames[strings.ToLower(name)]
}

// roleFolder returns the folder with role, or "" if there is none. An
// attribute match wins over a name match.
func (c *Conn) roleFolder(role Role) (string, error) {
	if c.roles == nil {
		folders, err := c.listFolders(false)
		if err != nil {
			return "", err
		}
		c.roles = map[Role]string{}
		byAttr := map[Role]bool{}
		for _, f := range folders {
			attr := slices.ContainsFunc(f.Attributes, func(a string) bool { return roleAttrs[imap.MailboxAttr(a)] == f.Role })
			if f.Role != RoleNone && f.Selectable && (c.roles[f.Role] == "" || (attr && !byAttr[f.Role])) {
				c.roles[f.Role], byAttr[f.Role] = f.Name, attr
			}
		}
	}
	return c.roles[role], nil
}

// CreateFolder creates name and any missing parent levels (separated by
// the server's hierarchy delimiter), so every level is a real folder. An
// existing folder yields KindInvalid.
func (e *Engine) CreateFolder(ctx context.Context, acct *Account, name string) error {
	if err := checkFolderName("create folder", name); err != nil {
		return err
	}
	return e.Do(ctx, acct, func(c *Conn) error {
		delim, err := c.delimiter()
		if err != nil {
			return err
		}
		if delim != "" {
			levels := strings.Split(name, delim)
			for i := 1; i < len(levels); i++ {
				parent := strings.Join(levels[:i], delim)
				err := c.do("create folder "+parent, func() error { return c.client.Create(parent, nil).Wait() })
				var imapErr *imap.Error
				if err != nil && !(errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists) {
					return err
				}
			}
		}
		return c.do("create folder "+name, func() error { return c.client.Create(name, nil).Wait() })
	})
}

// delimiter returns the hierarchy delimiter of the personal namespace.
func (c *Conn) delimiter() (string, error) {
	var data []*imap.ListData
	if err := c.do("list delimiter", func() (err error) {
		data, err = c.client.List("", "", nil).Collect()
		return err
	}); err != nil {
		return "", err
	}
	if len(data) == 0 || data[0].Delim == 0 {
		return "", nil
	}
	return string(data[0].Delim), nil
}

// RenameFolder renames (or moves under another parent) folder from to
// to. INBOX cannot be renamed.
func (e *Engine) RenameFolder(ctx context.Context, acct *Account, from, to string) error {
	if err := checkFolderName("rename folder", to); err != nil {
		return err
	}
	return e.Do(ctx, acct, func(c *Conn) error {
		if err := c.ordinaryFolder("rename folder", from); err != nil {
			return err
		}
		if err := c.leave(from); err != nil {
			return err
		}
		return c.do("rename folder "+from, func() error { return c.client.Rename(from, to, nil).Wait() })
	})
}

// DeleteFolder deletes an existing folder. INBOX and special-use folders
// (Sent, Drafts, Trash, Junk, Archive, …) are refused with KindInvalid; a
// missing folder yields KindNotFound.
func (e *Engine) DeleteFolder(ctx context.Context, acct *Account, name string) error {
	return e.Do(ctx, acct, func(c *Conn) error {
		if err := c.ordinaryFolder("delete folder", name); err != nil {
			return err
		}
		if err := c.leave(name); err != nil {
			return err
		}
		return c.do("delete folder "+name, func() error { return c.client.Delete(name).Wait() })
	})
}

// ordinaryFolder returns KindNotFound unless name exists, and KindInvalid
// for INBOX and special-use folders, which are never renamed or deleted.
func (c *Conn) ordinaryFolder(op, name string) error {
	if strings.EqualFold(name, "INBOX") {
		return invalid(op, "INBOX cannot be renamed or deleted")
	}
	folders, err := c.listFolders(false)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(folders, func(f Folder) bool { return f.Name == name })
	switch {
	case i < 0:
		return notFound(op, "folder %q does not exist", name)
	case folders[i].Role != RoleNone:
		return invalid(op, "%q is the %s folder; special-use folders cannot be renamed or deleted", name, folders[i].Role)
	}
	return nil
}

// leave unselects folder when the connection has it selected: a server
// may drop a connection whose selected folder is deleted or renamed
// (Dovecot: "Selected mailbox was deleted, have to disconnect").
func (c *Conn) leave(folder string) error {
	selected := c.selected
	if mbox := c.client.Mailbox(); mbox != nil {
		selected = mbox.Name
	}
	c.Forget()
	if selected != folder {
		return nil
	}
	if c.has(imap.CapUnselect) {
		return c.do("unselect", func() error { return c.client.Unselect().Wait() })
	}
	// CLOSE would expunge; selecting INBOX read-only leaves the folder.
	return c.do("examine INBOX", func() error {
		_, err := c.client.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
}

// folderExists returns KindNotFound unless name is listed.
func (c *Conn) folderExists(op, name string) error {
	var data []*imap.ListData
	if err := c.do("list "+name, func() (err error) {
		data, err = c.client.List("", name, nil).Collect()
		return err
	}); err != nil {
		return err
	}
	if len(data) == 0 {
		return notFound(op, "folder %q does not exist", name)
	}
	return nil
}

// checkFolderName refuses empty names and control characters.
func checkFolderName(op, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid(op, "folder name is empty")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid(op, "folder name contains control characters")
	}
	return nil
}
