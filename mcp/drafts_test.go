package mcp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/mcp"
)

func TestDraftTools(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "drafter", "mail.read mail.modify mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	bob := addRigAccount(t, h, rig, keys, u, "bob")
	bobAddr, _ := rig.User("bob")
	c := h.client(t, tok)
	subject := "Offsite agenda " + time.Now().Format("150405.000")

	d := structured[mcp.DraftResult](t, c, "create_draft", map[string]any{"account_id": alice, "to": []string{bobAddr.Email},
		"subject": subject, "body_text": "Draft one."})
	if d.Folder != "Drafts" || d.UID == 0 {
		t.Fatalf("create_draft = %+v", d)
	}
	listed := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "folder": d.Folder, "subject": subject})
	if listed.Total != 1 || listed.Messages[0].UID != d.UID {
		t.Fatalf("Drafts lists %+v", listed)
	}
	body := structured[mcp.MessageDetail](t, c, "get_message", map[string]any{"account_id": alice, "folder": d.Folder, "uid": d.UID})
	if !strings.Contains(body.Body, "Draft one.") || !strings.Contains(body.Body, "alice") { // the signature, as it would be sent
		t.Fatalf("draft body %q", body.Body)
	}

	up := structured[mcp.DraftResult](t, c, "update_draft", map[string]any{"account_id": alice, "uid": d.UID, "to": []string{bobAddr.Email},
		"subject": subject, "body_text": "Draft two, final."})
	if up.Replaced != d.UID || up.UID == d.UID || up.Warning != "" {
		t.Fatalf("update_draft = %+v", up)
	}
	if msg := toolError(t, c, "get_message", map[string]any{"account_id": alice, "folder": "Drafts", "uid": d.UID}); !strings.Contains(msg, "not found") {
		t.Fatalf("the replaced draft is still there: %s", msg)
	}

	res := call(t, c, "send_draft", map[string]any{"account_id": alice, "uid": up.UID})
	if res.IsError {
		t.Fatal(res.Content[0].(mcplib.TextContent).Text)
	}
	var got mcp.MessagePage
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": bob, "subject": subject}); got.Total == 1 {
			break
		}
	}
	if got.Total != 1 {
		t.Fatal("bob never got the sent draft")
	}
	if p := structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": alice, "folder": "Drafts", "subject": subject}); p.Total != 0 {
		t.Fatalf("the sent draft is still in Drafts: %+v", p)
	}

	// A reply draft keeps the thread.
	rd := structured[mcp.DraftResult](t, c, "create_draft", map[string]any{"account_id": bob, "reply_to_uid": got.Messages[0].UID, "body_text": "Count me in."})
	reply := structured[mcp.MessageDetail](t, c, "get_message", map[string]any{"account_id": bob, "folder": rd.Folder, "uid": rd.UID})
	if reply.Subject != "Re: "+subject || len(reply.To) != 1 || !strings.Contains(reply.To[0], "alice@") || !strings.Contains(reply.Body, "Count me in.") ||
		!strings.Contains(reply.Body, "> Draft two, final.") {
		t.Fatalf("reply draft: %+v", reply)
	}

	// Clear errors, nothing changed.
	if msg := toolError(t, c, "create_draft", map[string]any{"account_id": alice}); !strings.Contains(msg, "empty") {
		t.Fatalf("empty draft: %s", msg)
	}
	if msg := toolError(t, c, "send_draft", map[string]any{"account_id": alice, "uid": 999999}); !strings.Contains(msg, "not found") {
		t.Fatalf("missing draft: %s", msg)
	}
	if msg := toolError(t, c, "update_draft", map[string]any{"account_id": alice, "uid": 999999, "body_text": "x"}); !strings.Contains(msg, "not found") {
		t.Fatalf("updating a missing draft: %s", msg)
	}

	// Drafting needs mail.modify, sending a draft mail.send.
	modTok, _ := h.tokenFor(t, u, "drafter-modify", "mail.read mail.modify")
	tools, err := h.client(t, modTok).ListTools(context.Background(), mcplib.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
	}
	if !names["create_draft"] || !names["update_draft"] || names["send_draft"] {
		t.Fatalf("mail.modify token sees %v", names)
	}
}
