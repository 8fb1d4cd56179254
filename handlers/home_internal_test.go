package handlers

import (
	"strings"
	"testing"
)

func TestReachability(t *testing.T) {
	for url, want := range map[string]string{
		"https://mail-mcp.example.com/api/mcp": "",
		"http://localhost:3000/api/mcp":        "Claude.ai cannot",
		"http://127.0.0.1:3000/api/mcp":        "Claude.ai cannot",
		"http://192.168.1.20:3000/api/mcp":     "Claude.ai cannot",
		"http://homeserver.lan:3000/api/mcp":   "Claude.ai cannot",
		"http://nas:3000/api/mcp":              "Claude.ai cannot",
		"https://nas.local/api/mcp":            "Claude.ai cannot",
		"http://mail-mcp.example.com/api/mcp":  "only connects to https",
	} {
		got := reachability(url)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", url, got, want)
		}
	}
}
