package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	textmessage "golang.org/x/text/message"
)

// englishPrinter renders the validator's messages.
var englishPrinter = textmessage.NewPrinter(language.English)

// validated wraps each tool's handler so that its arguments are checked
// against its input schema first. mcp-go's own check (WithInputSchemaValidation)
// tells a model "<root>: &{Missing:[alias]}"; this one says
// "arguments: missing property 'alias'", one problem per line part.
// Each schema is compiled on its tool's first call, not when the daemon
// starts: compiling them all took about 14% of the daemon's start-up CPU.
// TestToolSchemasCompile compiles every one.
func validated(tools []server.ServerTool) []server.ServerTool {
	out := make([]server.ServerTool, len(tools))
	for i, t := range tools {
		schema := sync.OnceValues(func() (*jsonschema.Schema, error) { return compileSchema(t.Tool) })
		next := t.Handler
		out[i] = server.ServerTool{Tool: t.Tool, Handler: func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			sch, err := schema()
			if err != nil {
				// Ringlet's own schema is broken: no call goes unchecked.
				return nil, err
			}
			raw, _ := req.GetRawArguments().(json.RawMessage)
			if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
				raw = json.RawMessage("{}")
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				return mcpgo.NewToolResultError("invalid arguments: not a JSON object"), nil
			}
			if err := sch.Validate(v); err != nil {
				return mcpgo.NewToolResultError("invalid arguments: " + describeSchemaError(err)), nil
			}
			return next(ctx, req)
		}}
	}
	return out
}

// compileSchema compiles a tool's input schema.
func compileSchema(t mcpgo.Tool) (*jsonschema.Schema, error) {
	doc, err := json.Marshal(t.InputSchema)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", t.Name, err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", t.Name, err)
	}
	c := jsonschema.NewCompiler()
	loc := "ringlet:///tools/" + t.Name
	if err := c.AddResource(loc, schemaDoc); err != nil {
		return nil, fmt.Errorf("tool %s: %w", t.Name, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", t.Name, err)
	}
	return sch, nil
}

// describeSchemaError is every leaf problem of a validation error as
// "<where>: <what>", joined with "; ".
func describeSchemaError(err error) string {
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return err.Error()
	}
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		where := "arguments"
		if len(e.InstanceLocation) > 0 {
			where = strings.Join(e.InstanceLocation, ".")
		}
		parts = append(parts, where+": "+e.ErrorKind.LocalizedString(englishPrinter))
	}
	walk(verr)
	return strings.Join(parts, "; ")
}
