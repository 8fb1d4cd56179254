package mcp_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/internal/mailrig"
	"github.com/imap-mcp/imap-mcp/mcp"
)

func TestListNewMessages(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tokA, u := h.token(t, "newmail", "mail.read mail.modify")
	carol := addRigAccount(t, h, rig, keys, u, "carol")
	bob := addRigAccount(t, h, rig, keys, u, "bob")
	folder := "New-" + strings.ReplaceAll(t.Name(), "/", "-")
	if _, err := rig.Seed("carol", folder, 8, mailrig.SeedOptions{Seed: 3}); err != nil {
		t.Fatal(err)
	}
	a := h.client(t, tokA)
	args := map[string]any{"account_id": carol, "folders": []string{folder}}

	first := structured[mcp.NewMailResult](t, a, "list_new_messages", args)
	if len(first.Folders) != 1 || first.Folders[0].Status != "first_look" || len(first.Folders[0].Messages) != 5 || first.Folders[0].NewTotal != 0 {
		t.Fatalf("first look: %+v", first)
	}
	none := structured[mcp.NewMailResult](t, a, "list_new_messages", args)
	if f := none.Folders[0]; f.Status != "since_last_look" || f.NewTotal != 0 || len(f.Messages) != 0 {
		t.Fatalf("second look without news: %+v", f)
	}

	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for i := range 3 {
		if _, err := app.Append(folder, []byte(fmt.Sprintf("From: Ann <ann@example.org>\r\nSubject: arrival %d\r\nMessage-ID: <arrival-%d-%s@example.org>\r\n\r\nhi\r\n", i, i, folder))); err != nil {
			t.Fatal(err)
		}
	}
	older := first.Folders[0].Messages[4].UID
	structured[mcp.Done](t, a, "flag_messages", map[string]any{"account_id": carol, "folder": folder, "uids": []uint32{older}})

	// A second client of the same person has its own mark: a first look.
	tokB, _ := h.tokenFor(t, u, "newmail-second", "mail.read")
	b := h.client(t, tokB)
	if f := structured[mcp.NewMailResult](t, b, "list_new_messages", args).Folders[0]; f.Status != "first_look" || f.Messages[0].Subject != "arrival 2" {
		t.Fatalf("second client's first look: %+v", f)
	}

	res := call(t, a, "list_new_messages", map[string]any{"account_id": carol, "folders": []string{folder}, "limit": 2})
	if res.IsError {
		t.Fatal(res.Content[0].(mcplib.TextContent).Text)
	}
	var got mcp.NewMailResult
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	f := got.Folders[0]
	if f.NewTotal != 3 || len(f.Messages) != 2 || f.Messages[0].Subject != "arrival 2" || f.Messages[1].Subject != "arrival 1" {
		t.Fatalf("after three arrivals: %+v", f)
	}
	if f.FlagChangesTotal != 1 || f.FlagChanges[0].UID != older {
		t.Fatalf("flag change of uid %d not reported: %+v", older, f)
	}
	text := res.Content[0].(mcplib.TextContent).Text
	for _, want := range []string{"3 new since the last look; showing 2", "arrival 2", "1 older new message(s) are not shown", "Flags changed elsewhere on 1", "<untrusted-email-list"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if f := structured[mcp.NewMailResult](t, a, "list_new_messages", args).Folders[0]; f.NewTotal != 0 || f.FlagChangesTotal != 0 {
		t.Fatalf("the mark did not move: %+v", f)
	}

	// The folder recreated on the server: the mark is reset, and said so.
	structured[mcp.Done](t, a, "delete_folder", map[string]any{"account_id": carol, "folder": folder})
	app2, err := rig.Appender("carol") // the first one remembers the folder as created
	if err != nil {
		t.Fatal(err)
	}
	defer app2.Close()
	if _, err := app2.Append(folder, []byte("From: ann@example.org\r\nSubject: reborn\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if f := structured[mcp.NewMailResult](t, a, "list_new_messages", args).Folders[0]; f.Status != "reset" || len(f.Messages) != 1 {
		t.Fatalf("after the folder was recreated: %+v", f)
	}

	// Without arguments: the INBOX of every account; a missing folder is
	// reported in its entry, the others still answer.
	all := structured[mcp.NewMailResult](t, a, "list_new_messages", map[string]any{})
	accounts := map[string]bool{}
	for _, f := range all.Folders {
		accounts[f.AccountID] = f.Folder == "INBOX" && f.Status != "error"
	}
	if len(all.Folders) != 2 || !accounts[carol] || !accounts[bob] {
		t.Fatalf("every INBOX: %+v", all.Folders)
	}
	mixed := structured[mcp.NewMailResult](t, a, "list_new_messages", map[string]any{"account_id": carol, "folders": []string{"No-such-folder", "INBOX"}})
	if mixed.Folders[0].Status != "error" || !strings.Contains(mixed.Folders[0].Error, "does not exist") || mixed.Folders[1].Status == "error" {
		t.Fatalf("a missing folder: %+v", mixed.Folders)
	}
	if msg := toolError(t, a, "list_new_messages", map[string]any{"folders": []string{"INBOX", "INBOX"}}); !strings.Contains(msg, "distinct") {
		t.Fatalf("duplicate folders: %s", msg)
	}
}
