package mcp

import (
	"log/slog"
	"strings"
	"testing"
)

// TestEveryToolHasASummary: no tool falls back to the generic summary,
// and none repeats a body, a search text or an attachment.
func TestEveryToolHasASummary(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	args := map[string]any{"folder": "Work", "uid": float64(7), "uids": []any{float64(1), float64(2)}, "destination": "Archive",
		"name": "New", "new_name": "Renamed", "part": "2", "subject": "Budget", "to": []any{"ann@example.org"},
		"body_text": "SECRET body", "body_html": "<p>SECRET</p>", "body": "SECRET search", "text": "SECRET text",
		"attachments": []any{map[string]any{"filename": "a.pdf", "content_base64": "U0VDUkVU"}}, "add": []any{"$Work"}}
	for _, tool := range s.Tools() {
		got := summarize(tool.Def.Name, args)
		if strings.HasPrefix(got, "called ") || strings.Contains(got, "SECRET") || got == "" {
			t.Errorf("%s: summary %q", tool.Def.Name, got)
		}
	}
}
