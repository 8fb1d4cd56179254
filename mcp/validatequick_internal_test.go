package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestQuickSchemaAgreesWithValidator: over random arguments for every
// tool, near each bound and of every type, the quick check never affirms
// what the full validator refuses, and it affirms nearly all that the
// validator accepts (so that the fast path is the one taken).
func TestQuickSchemaAgreesWithValidator(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, tool := range s.Tools() {
		ts := s.valid[tool.Def.Name]
		if ts.quick.opaque {
			t.Errorf("%s: the input schema has no quick form", tool.Def.Name)
			continue
		}
		raw, err := inputSchema(tool.Def)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		valid, affirmed := 0, 0
		for range 3000 {
			text, err := json.Marshal(randomValue(r, doc.(map[string]any), 0))
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			fullOK := ts.full.Validate(v) == nil
			quickOK := ts.quick.affirms(v)
			if quickOK && !fullOK {
				t.Fatalf("%s: quick check affirms what the validator refuses: %s", tool.Def.Name, text)
			}
			if fullOK && plainNumbers(v) && !(tool.Def.Name == "get_attachment" && strings.Contains(string(text), "max_size_mb")) {
				valid++
				if quickOK {
					affirmed++
				}
			}
		}
		// Numbers written as decimals or exponents, and the one
		// property with a fractional bound, are left to the validator.
		if valid < 50 || affirmed != valid {
			t.Errorf("%s: of %d valid arguments with integers the quick check affirmed %d", tool.Def.Name, valid, affirmed)
		}
	}
}

// plainNumbers reports whether every number in v is written as an
// integer.
func plainNumbers(v any) bool {
	switch x := v.(type) {
	case json.Number:
		_, ok := integer(x)
		return ok
	case []any:
		for _, e := range x {
			if !plainNumbers(e) {
				return false
			}
		}
	case map[string]any:
		for _, e := range x {
			if !plainNumbers(e) {
				return false
			}
		}
	}
	return true
}

// randomValue returns a value for schema: mostly one near its bounds,
// sometimes of another type or breaking a bound.
func randomValue(r *rand.Rand, schema map[string]any, depth int) any {
	if r.IntN(25) == 0 || depth > 4 {
		return []any{nil, true, json.Number("3"), "x", []any{}, map[string]any{}}[r.IntN(6)]
	}
	bound := func(key string, def int64) int64 {
		if n, ok := integer(schema[key]); ok {
			return n
		}
		return def
	}
	near := func(lo, hi int64) int64 {
		switch r.IntN(4) {
		case 0:
			return lo + int64(r.IntN(3)) - 1
		case 1:
			return hi + int64(r.IntN(3)) - 1
		}
		return lo + r.Int64N(max(1, min(hi, lo+1000)-lo+1))
	}
	switch schema["type"] {
	case "string":
		if enum, ok := schema["enum"].([]any); ok && r.IntN(4) != 0 {
			return enum[r.IntN(len(enum))]
		}
		n := near(bound("minLength", 0), min(bound("maxLength", 40), 3000))
		var b strings.Builder
		for range max(0, n) {
			b.WriteString([]string{"a", "é", "💌", " ", "\x00"}[r.IntN(5)])
		}
		return b.String()
	case "number", "integer":
		lo, hi := bound("minimum", -50), bound("maximum", 1<<40)
		n := near(lo, hi)
		switch r.IntN(8) {
		case 0:
			return json.Number(fmt.Sprintf("%d.5", n))
		case 1:
			return json.Number(fmt.Sprintf("%d.0", n))
		case 2:
			return json.Number(fmt.Sprintf("%de0", n))
		case 3:
			return json.Number([]string{"1e400", "-1e400", "99999999999999999999", "-0", "1E2", "0.0000001"}[r.IntN(6)])
		}
		return json.Number(fmt.Sprint(n))
	case "boolean":
		return r.IntN(2) == 0
	case "array":
		items, _ := schema["items"].(map[string]any)
		n := near(bound("minItems", 0), min(bound("maxItems", 5), 12))
		out := []any{}
		for range max(0, n) {
			out = append(out, randomValue(r, items, depth+1))
		}
		return out
	case "object":
		props, _ := schema["properties"].(map[string]any)
		out := map[string]any{}
		for name, p := range props {
			if r.IntN(3) != 0 {
				out[name] = randomValue(r, p.(map[string]any), depth+1)
			}
		}
		if req, ok := schema["required"].([]any); ok && r.IntN(6) != 0 {
			for _, name := range req {
				if _, ok := out[name.(string)]; !ok {
					out[name.(string)] = randomValue(r, props[name.(string)].(map[string]any), depth+1)
				}
			}
		}
		if r.IntN(10) == 0 {
			out["unknown_argument"] = "x"
		}
		return out
	}
	return nil
}
