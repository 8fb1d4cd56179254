package mcp

import (
	"context"
	"fmt"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
)

type uidsArg struct {
	accountArg
	Folder      string   `json:"folder"`
	UIDs        []uint32 `json:"uids"`
	Add         []string `json:"add"`
	Remove      []string `json:"remove"`
	Destination string   `json:"destination"`
	Permanent   bool     `json:"permanent"`
}

var (
	argDestination = mcplib.WithString("destination", mcplib.Required(), mcplib.MinLength(1), mcplib.MaxLength(512),
		mcplib.Description("Folder to put the messages in, as list_folders names it."))
	flagItems = mcplib.Items(map[string]any{"type": "string", "maxLength": 64})
)

func (s *Server) organizeTools() []Tool {
	flagTool := func(name, title, description string, add, remove []string) Tool {
		return Tool{Scope: oauth.ScopeModify, Def: tool[Done](name, description, hints(title, false, false, true, false), argAccount, argFolder, argUIDs),
			Handler: handle(s, func(ctx context.Context, acct *mail.Account, a uidsArg) (any, string, error) {
				return s.setFlags(ctx, acct, a, add, remove)
			})}
	}
	return []Tool{
		flagTool("mark_read", "Mark read", "Marks messages as read (adds the \\Seen flag).", []string{`\Seen`}, nil),
		flagTool("mark_unread", "Mark unread", "Marks messages as unread (removes the \\Seen flag).", nil, []string{`\Seen`}),
		flagTool("flag_messages", "Flag messages", "Flags (stars) messages: adds the \\Flagged flag.", []string{`\Flagged`}, nil),
		flagTool("unflag_messages", "Unflag messages", "Removes the flag (star) from messages: removes \\Flagged.", nil, []string{`\Flagged`}),
		{Scope: oauth.ScopeModify, Handler: handle(s, func(ctx context.Context, acct *mail.Account, a uidsArg) (any, string, error) {
			return s.setFlags(ctx, acct, a, a.Add, a.Remove)
		}), Def: tool[Done]("set_flags",
			"Adds and removes flags on messages: system flags \\Seen, \\Flagged, \\Answered, \\Draft, or keywords such as $Important or a label of your own.",
			hints("Set flags", false, false, true, false), argAccount, argFolder, argUIDs,
			mcplib.WithArray("add", mcplib.MaxItems(20), flagItems, mcplib.Description("Flags to add.")),
			mcplib.WithArray("remove", mcplib.MaxItems(20), flagItems, mcplib.Description("Flags to remove.")))},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.move), Def: tool[Done]("move_messages",
			"Moves messages to another folder of the same account. Their UIDs change: list the destination to find them.",
			hints("Move messages", false, false, false, false), argAccount, argFolder, argUIDs, argDestination)},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.copy), Def: tool[Done]("copy_messages",
			"Copies messages to another folder of the same account; the originals stay.",
			hints("Copy messages", false, false, false, false), argAccount, argFolder, argUIDs, argDestination)},
		{Scope: oauth.ScopeModify, Handler: handle(s, s.delete), Def: tool[Done]("delete_messages",
			"Deletes messages: moves them to Trash, where they can be restored. With permanent: true they are erased for good "+
				"(only those messages: other messages marked deleted are untouched); confirm with the user first. "+
				"Accounts without a Trash folder refuse a non-permanent delete.",
			hints("Delete messages", false, true, false, false), argAccount, argFolder, argUIDs,
			mcplib.WithBoolean("permanent", mcplib.DefaultBool(false), mcplib.Description("Erase instead of moving to Trash. Default false.")))},
	}
}

func (s *Server) setFlags(ctx context.Context, acct *mail.Account, a uidsArg, add, remove []string) (any, string, error) {
	if len(add)+len(remove) == 0 {
		return nil, "", fail("Name at least one flag in add or remove.")
	}
	err := s.o.Mail.SetFlags(ctx, acct, folderOr(a.Folder), a.UIDs, add, remove)
	return done(fmt.Sprintf("Updated flags of %d message(s) in %s (added %v, removed %v).", len(a.UIDs), folderOr(a.Folder), add, remove), err)
}

func (s *Server) move(ctx context.Context, acct *mail.Account, a uidsArg) (any, string, error) {
	return done(fmt.Sprintf("Moved %d message(s) from %s to %s.", len(a.UIDs), folderOr(a.Folder), a.Destination),
		s.o.Mail.Move(ctx, acct, folderOr(a.Folder), a.UIDs, a.Destination))
}

func (s *Server) copy(ctx context.Context, acct *mail.Account, a uidsArg) (any, string, error) {
	return done(fmt.Sprintf("Copied %d message(s) from %s to %s.", len(a.UIDs), folderOr(a.Folder), a.Destination),
		s.o.Mail.Copy(ctx, acct, folderOr(a.Folder), a.UIDs, a.Destination))
}

func (s *Server) delete(ctx context.Context, acct *mail.Account, a uidsArg) (any, string, error) {
	what := fmt.Sprintf("Moved %d message(s) from %s to Trash.", len(a.UIDs), folderOr(a.Folder))
	if a.Permanent {
		what = fmt.Sprintf("Permanently deleted %d message(s) from %s.", len(a.UIDs), folderOr(a.Folder))
	}
	return done(what, s.o.Mail.Delete(ctx, acct, folderOr(a.Folder), a.UIDs, a.Permanent))
}
