package mcp

import (
	"context"
	"errors"
	"fmt"

	mcplib "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// toolErr is a problem the model or the person can fix; it becomes a tool
// result with isError, never a protocol error.
type toolErr struct{ msg string }

func (e *toolErr) Error() string { return e.msg }

func fail(format string, args ...any) error { return &toolErr{fmt.Sprintf(format, args...)} }

// account loads the caller's account id (the default one when id is
// empty) with its passwords opened, for one call.
func (s *Server) account(ctx context.Context, id string) (*mail.Account, error) {
	p, _ := oauth.PrincipalFrom(ctx)
	var a store.MailAccount
	if id == "" {
		list, err := s.o.Store.ListAccounts(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		for _, x := range list {
			if x.IsDefault {
				a = x
			}
		}
		if a.ID == "" {
			return nil, fail("No mail account is connected. Ask the user to add one in the imap-mcp web UI (Accounts).")
		}
	} else {
		var err error
		a, err = s.o.Store.GetAccount(ctx, p.UserID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail("Unknown account_id %q. Call list_accounts for the ids of this user's accounts.", id)
		}
		if err != nil {
			return nil, err
		}
	}
	ci := callInfoFrom(ctx)
	ci.stored = a
	if err := s.permitted(ctx, a); err != nil {
		return nil, err
	}
	return account.Open(a, s.o.Secrets, s.o.OAuth)
}

// permissionNames are the permission levels as the account page names
// them.
var permissionNames = map[string]string{store.PermissionRead: "read only", store.PermissionOrganize: "read and organize", store.PermissionFull: "full"}

// levelAllows reports whether an account's permission level allows a
// tool of scope.
func levelAllows(level, scope string) bool {
	switch scope {
	case oauth.ScopeRead, "":
		return true
	case oauth.ScopeModify:
		return level == store.PermissionOrganize || level == store.PermissionFull
	}
	return level == store.PermissionFull
}

// permitted refuses a call that the account's permission level, set by
// its owner, does not allow, whatever the token's scopes.
func (s *Server) permitted(ctx context.Context, a store.MailAccount) error {
	scope := callInfoFrom(ctx).scope
	if levelAllows(a.PermissionLevel, scope) {
		return nil
	}
	what := map[string]string{oauth.ScopeModify: "change mail (flags, folders, moves, deletes, drafts)", oauth.ScopeSend: "send mail"}[scope]
	return fail("The user set the account %q to %q for AI clients in imap-mcp, which does not let this tool %s. Only the user can change it: "+
		"%s/accounts/%s/edit, under \"What AI clients may do with this account\".", a.Label, permissionNames[a.PermissionLevel], what, s.o.AppURL, a.ID)
}

// result turns a handler's outcome into a tool result: structured content
// with its text copy, or a tool error for problems the caller can fix
// (ours and the mail engine's), or a Go error for bugs.
func result(structured any, text string, err error, acct *mail.Account) (*mcplib.CallToolResult, error) {
	if err == nil {
		return mcplib.NewToolResultStructured(structured, text), nil
	}
	if msg, ok := errorText(err, acct); ok {
		return mcplib.NewToolResultError(msg), nil
	}
	return nil, err
}

// errorText is what a model is told of err, when err is ours or the
// mail engine's; false for anything else (a bug, the database).
func errorText(err error, acct *mail.Account) (string, bool) {
	var te *toolErr
	if errors.As(err, &te) {
		return te.msg, true
	}
	var me *mail.Error
	if errors.As(err, &me) {
		msg := fmt.Sprintf("The mail server operation failed (%s).", me.Kind)
		if hint := mail.Hint(err, acct); hint != "" {
			msg += " " + hint
		}
		if me.Err != nil && (me.Kind == mail.KindInvalid || me.Kind == mail.KindNotFound || me.Kind == mail.KindUnsupported) {
			msg += " Detail: " + me.Err.Error()
		}
		return msg, true
	}
	return "", false
}

// hints builds the explicit annotations every tool carries.
func hints(title string, readOnly, destructive, idempotent, openWorld bool) []mcplib.ToolOption {
	return []mcplib.ToolOption{
		mcplib.WithTitleAnnotation(title),
		mcplib.WithReadOnlyHintAnnotation(readOnly),
		mcplib.WithDestructiveHintAnnotation(destructive),
		mcplib.WithIdempotentHintAnnotation(idempotent),
		mcplib.WithOpenWorldHintAnnotation(openWorld),
	}
}

// Shared argument definitions.
var (
	argAccount = mcplib.WithString("account_id", mcplib.MaxLength(64),
		mcplib.Description("Account to use, from list_accounts. Omit for the default account."))
	argFolder = mcplib.WithString("folder", mcplib.MaxLength(512), mcplib.DefaultString("INBOX"),
		mcplib.Description("Folder (mailbox) name as list_folders returns it, e.g. INBOX or Archive/2024. Default INBOX."))
	argUID = mcplib.WithNumber("uid", mcplib.Required(), mcplib.Min(1), mcplib.Max(4294967295),
		mcplib.Description("Message UID in the folder, from list_messages or search_messages."))
	argUIDs = mcplib.WithArray("uids", mcplib.Required(), mcplib.MinItems(1), mcplib.MaxItems(500),
		mcplib.Items(map[string]any{"type": "integer", "minimum": 1}),
		mcplib.Description("Message UIDs in the folder (1 to 500)."))
)

// tool assembles a tool definition: name, description, annotations,
// arguments and the output type.
func tool[Out any](name, description string, ann []mcplib.ToolOption, args ...mcplib.ToolOption) mcplib.Tool {
	opts := append([]mcplib.ToolOption{mcplib.WithDescription(description)}, ann...)
	opts = append(opts, args...)
	// Unknown arguments are refused: Go's JSON decoding matches field
	// names case-insensitively, so an unlisted "MAX_CHARS" would
	// otherwise reach the handler past the schema's limits.
	opts = append(opts, mcplib.WithSchemaAdditionalProperties(false), mcplib.WithOutputSchema[Out]())
	return mcplib.NewTool(name, opts...)
}

// bind decodes the call's arguments into args.
func bind(req mcplib.CallToolRequest, args any) error {
	if err := req.BindArguments(args); err != nil {
		return fail("The arguments do not match the tool's input schema: %v", err)
	}
	return nil
}

// folderOr returns the folder argument or INBOX.
func folderOr(f string) string {
	if f == "" {
		return "INBOX"
	}
	return f
}

// accountArg is the account_id argument every mail tool takes.
type accountArg struct {
	AccountID string `json:"account_id"`
}

func (a accountArg) accountID() string { return a.AccountID }

// accountNamer is an argument struct that names an account.
type accountNamer interface{ accountID() string }

// op is a mail tool's work: it returns the structured result and its text
// copy.
type op[A accountNamer] func(ctx context.Context, acct *mail.Account, args A) (any, string, error)

// handle binds the arguments into A, loads the account they name and runs
// f, turning the outcome into a tool result.
func handle[A accountNamer](s *Server, f op[A]) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
		var args A
		if err := bind(req, &args); err != nil {
			return result(nil, "", err, nil)
		}
		acct, err := s.account(ctx, args.accountID())
		if err != nil {
			return result(nil, "", err, nil)
		}
		out, text, err := f(ctx, acct, args)
		return result(out, text, err, acct)
	}
}
