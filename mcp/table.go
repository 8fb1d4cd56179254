package mcp

import (
	"fmt"
	"strings"
)

// ToolTable renders the README's tool table (Markdown) from the tools.
func ToolTable(tools []Tool) string {
	var b strings.Builder
	b.WriteString("| tool | scope | what it does |\n|---|---|---|\n")
	for _, t := range tools {
		desc, _, _ := strings.Cut(t.Def.Description, ". ")
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", t.Def.Name, t.Scope, strings.TrimSuffix(desc, "."))
	}
	return b.String()
}
