package mcp

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	mcplib "github.com/mark3labs/mcp-go/mcp"
)

// TestEveryObjectSchemaIsClosed: every object in every tool's input
// schema refuses unknown members. encoding/json matches member names
// regardless of case, so an open object would let "FILENAME" bypass the
// limits the schema sets on "filename".
func TestEveryObjectSchemaIsClosed(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	var walk func(tool, path string, v any)
	walk = func(tool, path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if m["type"] == "object" && m["additionalProperties"] != false {
			t.Errorf("%s: the object at %s takes unknown members", tool, path)
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for name, p := range props {
				walk(tool, path+"."+name, p)
			}
		}
		walk(tool, path+"[]", m["items"])
	}
	for _, tool := range s.Tools() {
		raw, err := inputSchema(tool.Def)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		walk(tool.Def.Name, "arguments", doc)
	}

	var req mcplib.CallToolRequest
	req.Params.Name = "send_message"
	req.Params.RawArguments = json.RawMessage(`{"to":["a@example.org"],"subject":"s","attachments":[{"filename":"a.txt","content_base64":"","FILENAME":"` +
		strings.Repeat("x", 1000) + `"}]}`)
	if _, bad := s.valid.check(req); bad == nil || !strings.Contains(bad.Content[0].(mcplib.TextContent).Text, "attachments.0 has unknown member FILENAME") {
		t.Errorf("an attachment's FILENAME member: %+v", bad)
	}
}
