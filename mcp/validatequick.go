package mcp

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// quickSchema is the part of JSON Schema our tools' input schemas use,
// checked without the general validator's machinery (which turns every
// number into a big.Rat through fmt). It only ever affirms: when it
// cannot tell that arguments are valid, the full validator checks them
// and words the problems, so quickSchema decides no refusal and no
// message. A schema with any other keyword, or a bound that is not an
// integer, is opaque: it affirms nothing.
type quickSchema struct {
	opaque             bool
	typ                string // "" for any
	props              map[string]*quickSchema
	required           []string
	closed             bool // additionalProperties: false
	min, max           *int64
	minLen, maxLen     int // -1 when absent, like the item bounds
	minItems, maxItems int
	enum               []string // nil when absent
	items              *quickSchema
}

// opaque affirms nothing.
var opaque = &quickSchema{opaque: true}

// compileQuick returns the quickSchema of doc, a schema as
// jsonschema.UnmarshalJSON decodes it: opaque where doc uses more of
// JSON Schema than quickSchema knows.
func compileQuick(doc any) *quickSchema {
	m, ok := doc.(map[string]any)
	if !ok {
		return opaque
	}
	q := &quickSchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	for k, v := range m {
		switch k {
		case "description", "default", "title", "examples": // annotations
		case "type":
			t, ok := v.(string)
			if !ok || !slices.Contains([]string{"string", "number", "integer", "boolean", "array", "object"}, t) {
				return opaque
			}
			q.typ = t
		case "properties":
			ps, ok := v.(map[string]any)
			if !ok {
				return opaque
			}
			q.props = make(map[string]*quickSchema, len(ps))
			for name, p := range ps {
				q.props[name] = compileQuick(p)
			}
		case "required", "enum":
			list, ok := v.([]any)
			if !ok {
				return opaque
			}
			names := make([]string, 0, len(list))
			for _, e := range list {
				s, ok := e.(string)
				if !ok {
					return opaque
				}
				names = append(names, s)
			}
			if k == "required" {
				q.required = names
			} else {
				q.enum = names
			}
		case "additionalProperties":
			b, ok := v.(bool)
			if !ok {
				return opaque
			}
			q.closed = !b
		case "items":
			q.items = compileQuick(v)
		case "minimum", "maximum":
			n, ok := integer(v)
			if !ok {
				return opaque
			}
			if k == "minimum" {
				q.min = &n
			} else {
				q.max = &n
			}
		case "minLength", "maxLength", "minItems", "maxItems":
			n, ok := integer(v)
			if !ok || n < 0 || n > 1<<40 {
				return opaque
			}
			switch k {
			case "minLength":
				q.minLen = int(n)
			case "maxLength":
				q.maxLen = int(n)
			case "minItems":
				q.minItems = int(n)
			default:
				q.maxItems = int(n)
			}
		default:
			return opaque
		}
	}
	return q
}

// integer returns v as an int64 when it is a JSON number written as a
// plain integer that fits one.
func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// affirms reports whether v, decoded as jsonschema.UnmarshalJSON does
// (numbers as json.Number), is valid against q; false means only that
// the full validator must tell.
func (q *quickSchema) affirms(v any) bool {
	if q.opaque {
		return false
	}
	switch q.typ {
	case "string", "boolean", "array", "object", "number":
		if typeName(v) != q.typ {
			return false
		}
	case "integer":
		if _, ok := integer(v); !ok {
			return false
		}
	}
	switch x := v.(type) {
	case string:
		if q.enum != nil && !slices.Contains(q.enum, x) {
			return false
		}
		if q.minLen >= 0 || q.maxLen >= 0 {
			n := utf8.RuneCountInString(x)
			if n < q.minLen || q.maxLen >= 0 && n > q.maxLen {
				return false
			}
		}
		return true
	case json.Number:
		if q.min == nil && q.max == nil {
			return q.enum == nil
		}
		n, ok := integer(x)
		return ok && q.enum == nil && (q.min == nil || n >= *q.min) && (q.max == nil || n <= *q.max)
	case []any:
		if q.enum != nil || len(x) < q.minItems || q.maxItems >= 0 && len(x) > q.maxItems {
			return false
		}
		if q.items != nil {
			for _, e := range x {
				if !q.items.affirms(e) {
					return false
				}
			}
		}
		return true
	case map[string]any:
		if q.enum != nil {
			return false
		}
		for _, name := range q.required {
			if _, ok := x[name]; !ok {
				return false
			}
		}
		for name, e := range x {
			p, ok := q.props[name]
			if !ok && q.closed || ok && !p.affirms(e) {
				return false
			}
		}
		return true
	}
	return q.enum == nil // null or boolean
}

// typeName is the JSON type of v as jsonschema.UnmarshalJSON decodes it.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}
