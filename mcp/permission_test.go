package mcp_test

import (
	"context"
	"strings"
	"testing"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mcp"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// minimalArgs gives every required argument of a tool a value its
// schema accepts and that changes nothing: UIDs and folders that do not
// exist.
func minimalArgs(tool mcp.Tool) map[string]any {
	args := map[string]any{}
	for _, name := range tool.Def.InputSchema.Required {
		prop, _ := tool.Def.InputSchema.Properties[name].(map[string]any)
		switch prop["type"] {
		case "number", "integer":
			args[name] = 999999
		case "boolean":
			args[name] = true
		case "array":
			if items, _ := prop["items"].(map[string]any); items["type"] == "integer" {
				args[name] = []any{999999}
			} else {
				args[name] = []any{"x@example.org"}
			}
		default:
			args[name] = "No-such-folder-for-permissions"
			if enum, ok := prop["enum"].([]string); ok {
				args[name] = enum[0]
			}
		}
	}
	return args
}

// TestPermissionLevels: every tool is refused, with the level and where
// to change it, when the account's permission level does not allow its
// scope, whatever the token's scopes; and allowed (past the permission
// check) when it does.
func TestPermissionLevels(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "permissions", "mail.read mail.modify mail.send")
	id := addRigAccount(t, h, rig, keys, u, "carol")
	c := h.client(t, tok)
	ctx := context.Background()
	allowed := map[string][]string{store.PermissionRead: {oauth.ScopeRead}, store.PermissionOrganize: {oauth.ScopeRead, oauth.ScopeModify},
		store.PermissionFull: {oauth.ScopeRead, oauth.ScopeModify, oauth.ScopeSend}}
	for _, level := range []string{store.PermissionRead, store.PermissionOrganize, store.PermissionFull} {
		a, err := h.st.GetAccount(ctx, u.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		a.PermissionLevel = level
		if err := h.st.UpdateAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		accounts := structured[mcp.AccountList](t, c, "list_accounts", map[string]any{})
		if accounts.Accounts[0].Permission != level {
			t.Fatalf("list_accounts says %q, want %q", accounts.Accounts[0].Permission, level)
		}
		for _, tool := range h.srv.Tools() {
			if _, ok := tool.Def.InputSchema.Properties["account_id"]; !ok {
				continue // list_accounts; cancel_send and get_send_status act on what was already sent or queued
			}
			args := minimalArgs(tool)
			for name, v := range map[string]any{"account_id": id, "folder": "No-such-folder-for-permissions"} {
				if _, ok := tool.Def.InputSchema.Properties[name]; ok {
					args[name] = v
				}
			}
			res := call(t, c, tool.Def.Name, args)
			text := ""
			if res.IsError {
				text = res.Content[0].(mcplib.TextContent).Text
			}
			refused := strings.Contains(text, "for AI clients in imap-mcp")
			want := true
			for _, s := range allowed[level] {
				want = want && s != tool.Scope
			}
			if refused != want {
				t.Errorf("level %s, %s (%s): refused=%v, want %v: %s", level, tool.Def.Name, tool.Scope, refused, want, text)
			}
			if refused && (!strings.Contains(text, `"carol"`) || !strings.Contains(text, "/accounts/"+id+"/edit")) {
				t.Errorf("%s: the refusal does not say which account and where to change it: %s", tool.Def.Name, text)
			}
		}
	}
}
