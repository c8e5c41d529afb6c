package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// maxCompletions is MCP's bound on the values of one completion.
const maxCompletions = 100

// completer answers completion/complete for the arguments of the served
// prompts and resource templates by asking the server that offers them,
// under its own names. A completion is a suggestion, not a read: it is
// neither hooked nor audited, but it is answered only for what a served
// server listed, and has the server's credentials redacted.
type completer struct{ h *hub }

func (c completer) CompletePromptArgument(ctx context.Context, name string, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	c.h.mu.Lock()
	p := c.h.catalog
	c.h.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("prompt %q not found", name)
	}
	for _, pr := range p.prompts {
		if pr.Prompt.Name == name {
			ref := p.promptOf[name]
			return c.complete(ctx, ref.server, map[string]any{"type": "ref/prompt", "name": ref.own}, arg, cctx)
		}
	}
	return nil, fmt.Errorf("prompt %q not found", name)
}

func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	c.h.mu.Lock()
	p := c.h.catalog
	c.h.mu.Unlock()
	if p != nil {
		for _, t := range p.templates {
			if t.Template.URITemplate != nil && t.Template.URITemplate.Raw() == uri {
				for srv := range p.servers {
					if own, ok := upstreamURI(srv, uri); ok {
						return c.complete(ctx, srv, map[string]any{"type": "ref/resource", "uri": own}, arg, cctx)
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("resource template %q not found", uri)
}

// complete asks server srv; one that offers no completions has none.
func (c completer) complete(ctx context.Context, srv string, ref map[string]any, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	caller := CallerFrom(ctx)
	if caller == nil || caller.scope() != c.h.ep.scope {
		return nil, fmt.Errorf("%s belongs to another profile", srv)
	}
	u := c.h.upstream(srv)
	if u == nil {
		return nil, fmt.Errorf("no MCP server %s", srv)
	}
	u.mu.Lock()
	offers := u.conn != nil && u.conn.caps.Completions != nil
	u.mu.Unlock()
	if !offers {
		return &mcpgo.Completion{Values: []string{}}, nil
	}
	params := map[string]any{"ref": ref, "argument": arg}
	if len(cctx.Arguments) > 0 {
		params["context"] = cctx
	}
	// Completion of what a judged run serves: a prompt, or a template.
	served := func(j *judgement) bool {
		if ref["type"] == "ref/prompt" {
			name, _ := ref["name"].(string)
			return j.prompts[name]
		}
		uri, _ := ref["uri"].(string)
		return slices.ContainsFunc(j.templates, func(t *mcpgo.URITemplate) bool { return t.Raw() == uri })
	}
	raw, err := u.request(ctx, string(mcpgo.MethodCompletionComplete), params, served)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", srv, u.redact(err.Error()))
	}
	var res struct {
		Completion mcpgo.Completion `json:"completion"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%s: its answer is not a completion/complete result: %v", srv, err)
	}
	if len(res.Completion.Values) > maxCompletions {
		res.Completion.Values, res.Completion.HasMore = res.Completion.Values[:maxCompletions], true
	}
	return &res.Completion, nil
}
