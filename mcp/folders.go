package mcp

import (
	"context"
	"fmt"
	"strings"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
)

// FolderInfo is one folder of list_folders.
type FolderInfo struct {
	Name     string `json:"name" jsonschema:"Full name to pass as folder"`
	Role     string `json:"role,omitempty" jsonschema:"Special use: inbox, sent, drafts, trash, junk, archive, all or flagged"`
	Messages int    `json:"messages" jsonschema:"Message count; -1 when the folder cannot hold messages"`
	Unread   int    `json:"unread" jsonschema:"Unread count; -1 when unknown"`
}

// FolderList is the result of list_folders.
type FolderList struct {
	Folders []FolderInfo `json:"folders"`
}

// Done is the result of tools that change something.
type Done struct {
	Done string `json:"done" jsonschema:"What was done, in words"`
}

type folderName struct {
	accountArg
	Folder  string `json:"folder"`
	Name    string `json:"name"`
	NewName string `json:"new_name"`
}

func (s *Server) folderTools() []Tool {
	return []Tool{
		{Scope: oauth.ScopeRead, Handler: handle(s, s.listFolders), Def: tool[FolderList]("list_folders",
			"Lists the folders of an account with their special use (inbox, sent, trash, archive, ...), message count and unread count. "+
				"Use the names it returns as the folder argument of other tools.",
			hints("List folders", true, false, true, false), argAccount)},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.createFolder), Def: tool[Done]("create_folder",
			"Creates a folder. Use the hierarchy delimiter list_folders shows (usually / or .) for a subfolder, e.g. Projects/2025.",
			hints("Create folder", false, false, false, false), argAccount,
			mcplib.WithString("name", mcplib.Required(), mcplib.MinLength(1), mcplib.MaxLength(512), mcplib.Description("Full name of the new folder.")))},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.renameFolder), Def: tool[Done]("rename_folder",
			"Renames or moves a folder (a new parent in the name moves it). INBOX and special-use folders cannot be renamed.",
			hints("Rename folder", false, false, false, false), argAccount,
			mcplib.WithString("folder", mcplib.Required(), mcplib.MaxLength(512), mcplib.Description("Current full name.")),
			mcplib.WithString("new_name", mcplib.Required(), mcplib.MinLength(1), mcplib.MaxLength(512), mcplib.Description("New full name.")))},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.deleteFolder), Def: tool[Done]("delete_folder",
			"Deletes a folder and every message in it, permanently. INBOX and special-use folders (Sent, Trash, ...) are refused. "+
				"Confirm with the user first.",
			hints("Delete folder", false, true, false, false), argAccount,
			mcplib.WithString("folder", mcplib.Required(), mcplib.MaxLength(512), mcplib.Description("Full name of the folder to delete.")))},
	}
}

func (s *Server) listFolders(ctx context.Context, acct *mail.Account, _ folderName) (any, string, error) {
	folders, err := s.o.Mail.ListFolders(ctx, acct)
	if err != nil {
		return nil, "", err
	}
	out := FolderList{Folders: []FolderInfo{}}
	var lines []string
	for _, f := range folders {
		out.Folders = append(out.Folders, FolderInfo{Name: f.Name, Role: string(f.Role), Messages: f.Messages, Unread: f.Unread})
		role := ""
		if f.Role != "" {
			role = " [" + string(f.Role) + "]"
		}
		lines = append(lines, fmt.Sprintf("- %s%s: %d messages, %d unread", displayFolder(f.Name), role, f.Messages, f.Unread))
	}
	return out, strings.Join(lines, "\n"), nil
}

func (s *Server) createFolder(ctx context.Context, acct *mail.Account, a folderName) (any, string, error) {
	return done(fmt.Sprintf("Created folder %q.", a.Name), s.o.Mail.CreateFolder(ctx, acct, a.Name))
}

func (s *Server) renameFolder(ctx context.Context, acct *mail.Account, a folderName) (any, string, error) {
	return done(fmt.Sprintf("Renamed folder %q to %q.", a.Folder, a.NewName), s.o.Mail.RenameFolder(ctx, acct, a.Folder, a.NewName))
}

func (s *Server) deleteFolder(ctx context.Context, acct *mail.Account, a folderName) (any, string, error) {
	return done(fmt.Sprintf("Deleted folder %q and its messages.", a.Folder), s.o.Mail.DeleteFolder(ctx, acct, a.Folder))
}

// done is the outcome of a change: what happened, or err.
func done(what string, err error) (any, string, error) {
	if err != nil {
		return nil, "", err
	}
	return Done{Done: what}, what, nil
}
