package mcp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/oauth"
)

// AccountInfo describes one mail account to a model.
type AccountInfo struct {
	AccountID    string `json:"account_id" jsonschema:"Opaque id to pass as account_id to other tools"`
	Label        string `json:"label"`
	Email        string `json:"email"`
	DisplayName  string `json:"display_name,omitempty"`
	IsDefault    bool   `json:"is_default" jsonschema:"Used when a tool call omits account_id"`
	HasSignature bool   `json:"has_signature" jsonschema:"send_message and reply_message append it unless include_signature is false"`
	IMAP         string `json:"imap" jsonschema:"host:port of the IMAP server"`
	SMTP         string `json:"smtp" jsonschema:"host:port of the SMTP server"`
	Status       string `json:"status" jsonschema:"ok, failing or untested: the last connection test from the web UI; needs_sign_in: the provider withdrew the account's sign-in and the user must press Reconnect on it in the web UI (Accounts)"`
	Permission   string `json:"permission" jsonschema:"What the user lets AI clients do with this account: read (read only), organize (read and change, no sending) or full"`
}

// AccountList is the result of list_accounts.
type AccountList struct {
	Accounts []AccountInfo `json:"accounts"`
}

func (s *Server) accountTools() []Tool {
	return []Tool{{
		Scope: oauth.ScopeRead,
		Def: mcplib.NewTool("list_accounts",
			mcplib.WithTitleAnnotation("List mail accounts"),
			mcplib.WithDescription("Lists the email accounts this user connected, with the account_id each other tool takes. "+
				"The default account (is_default) is used when a tool call omits account_id. has_signature tells whether "+
				"sent mail gets a signature appended. Call this first when you do not know the account ids."),
			mcplib.WithReadOnlyHintAnnotation(true),
			mcplib.WithDestructiveHintAnnotation(false),
			mcplib.WithIdempotentHintAnnotation(true),
			mcplib.WithOpenWorldHintAnnotation(false),
			mcplib.WithSchemaAdditionalProperties(false),
			mcplib.WithOutputSchema[AccountList](),
		),
		Handler: s.listAccounts,
	}}
}

func (s *Server) listAccounts(ctx context.Context, _ mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
	p, _ := oauth.PrincipalFrom(ctx)
	accounts, err := s.o.Store.ListAccounts(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	out := AccountList{Accounts: []AccountInfo{}}
	var lines []string
	for _, a := range accounts {
		info := AccountInfo{AccountID: a.ID, Label: a.Label, Email: a.Email, DisplayName: a.DisplayName, IsDefault: a.IsDefault,
			HasSignature: strings.TrimSpace(a.SignatureHTML) != "",
			IMAP:         net.JoinHostPort(a.IMAPHost, strconv.Itoa(a.IMAPPort)), SMTP: net.JoinHostPort(a.SMTPHost, strconv.Itoa(a.SMTPPort)),
			Status: a.TestStatus(), Permission: a.PermissionLevel}
		if a.NeedsReauth {
			info.Status = "needs_sign_in"
		}
		out.Accounts = append(out.Accounts, info)
		def := ""
		if a.IsDefault {
			def = " (default)"
		}
		lines = append(lines, fmt.Sprintf("- %s <%s>%s account_id=%s status=%s permission=%s signature=%v", a.Label, a.Email, def, a.ID, info.Status,
			info.Permission, info.HasSignature))
	}
	text := "No mail account is connected. Ask the user to add one in the imap-mcp web UI (Accounts)."
	if len(lines) > 0 {
		text = fmt.Sprintf("%d account(s):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	return mcplib.NewToolResultStructured(out, text), nil
}
