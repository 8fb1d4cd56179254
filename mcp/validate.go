package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	mcplib "github.com/mark3labs/mcp-go/mcp"
)

// validator checks tool arguments against each tool's input schema, so
// that the limits a schema advertises are enforced, and says what is wrong
// in words a model can act on ("limit must be at most 100, not 1000").
type validator map[string]toolSchema

// toolSchema is a tool's compiled input schema, and its quick form.
type toolSchema struct {
	full  *jsonschema.Schema
	quick *quickSchema
}

// newValidator compiles the input schema of every tool.
func newValidator(tools []Tool) (validator, error) {
	v := validator{}
	for _, t := range tools {
		raw, err := inputSchema(t.Def)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("mcp: input schema of %s: %w", t.Def.Name, err)
		}
		c := jsonschema.NewCompiler()
		url := "mem:///tools/" + t.Def.Name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("mcp: input schema of %s: %w", t.Def.Name, err)
		}
		full, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("mcp: input schema of %s: %w", t.Def.Name, err)
		}
		v[t.Def.Name] = toolSchema{full: full, quick: compileQuick(doc)}
	}
	return v, nil
}

// inputSchema returns the JSON of t's input schema, raw or built.
func inputSchema(t mcplib.Tool) ([]byte, error) {
	if len(t.RawInputSchema) > 0 {
		return t.RawInputSchema, nil
	}
	return json.Marshal(t.InputSchema)
}

// check returns a tool error when req's arguments break its tool's
// schema, and the arguments as decoded to check them (numbers as
// json.Number), refused or not; args is nil when the tool has no schema
// or the arguments are not an object.
func (v validator) check(req mcplib.CallToolRequest) (args map[string]any, bad *mcplib.CallToolResult) {
	schema, ok := v[req.Params.Name]
	if !ok {
		return nil, nil
	}
	// The bytes the handler decodes are the ones checked; a call built in
	// process has only the decoded map.
	raw := []byte(req.Params.RawArguments)
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		args := req.Params.Arguments
		if args == nil {
			args = map[string]any{}
		}
		var err error
		if raw, err = json.Marshal(args); err != nil {
			return nil, mcplib.NewToolResultError("The arguments are not a JSON object.")
		}
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, mcplib.NewToolResultError("The arguments are not a JSON object.")
	}
	args, _ = value.(map[string]any)
	if schema.quick.affirms(value) {
		return args, nil
	}
	err = schema.full.Validate(value)
	if err == nil {
		return args, nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return args, mcplib.NewToolResultError("The arguments could not be checked against the tool's input schema: " + err.Error())
	}
	var msgs []string
	all := leaves(verr)
	for _, leaf := range all[:min(len(all), maxProblems)] {
		msgs = append(msgs, describe(leaf))
	}
	if len(all) > maxProblems {
		msgs = append(msgs, fmt.Sprintf("and %d more problems", len(all)-maxProblems))
	}
	return args, mcplib.NewToolResultError(fmt.Sprintf("Invalid arguments for %s: %s. Fix them and call again.", req.Params.Name, strings.Join(msgs, "; ")))
}

// maxProblems bounds the problems one answer lists: a huge array of bad
// items must not make an answer as large.
const maxProblems = 10

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

var english = message.NewPrinter(language.English)

// describe says what one schema violation means.
func describe(e *jsonschema.ValidationError) string {
	name := strings.Join(e.InstanceLocation, ".")
	if name == "" {
		name = "the arguments"
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return "missing required argument " + strings.Join(k.Missing, ", ")
	case *kind.AdditionalProperties:
		if len(e.InstanceLocation) > 0 {
			return name + " has unknown member " + strings.Join(k.Properties, ", ")
		}
		return "unknown argument " + strings.Join(k.Properties, ", ")
	case *kind.Type:
		return fmt.Sprintf("%s must be %s, not %s", name, strings.Join(k.Want, " or "), k.Got)
	case *kind.Maximum:
		return fmt.Sprintf("%s must be at most %s, not %s", name, k.Want.RatString(), k.Got.RatString())
	case *kind.Minimum:
		return fmt.Sprintf("%s must be at least %s, not %s", name, k.Want.RatString(), k.Got.RatString())
	case *kind.MaxLength:
		return fmt.Sprintf("%s must be at most %d characters long, not %d", name, k.Want, k.Got)
	case *kind.MinLength:
		return fmt.Sprintf("%s must be at least %d characters long", name, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("%s may hold at most %d items, not %d", name, k.Want, k.Got)
	case *kind.MinItems:
		return fmt.Sprintf("%s must hold at least %d item(s)", name, k.Want)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return fmt.Sprintf("%s must be one of %s", name, strings.Join(want, ", "))
	}
	return name + ": " + e.ErrorKind.LocalizedString(english)
}
