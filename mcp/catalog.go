package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// Limits of an upstream's resources and prompts.
const (
	maxResources = 1000 // resources, templates and prompts of one upstream, each
	// maxAnswer bounds one resources/read or prompts/get answer, as the
	// message limit bounds a tool's result.
	maxAnswer = maxLine
)

// catalog is what an upstream offers besides tools, as it listed it (with
// its credentials redacted): the resources, resource templates and
// prompts, and whether it takes resource subscriptions.
type catalog struct {
	resources []mcpgo.Resource
	templates []mcpgo.ResourceTemplate
	prompts   []mcpgo.Prompt
	// offers says which it declared (resources, prompts), even with
	// none listed yet; subscribe that it takes resources/subscribe.
	offersResources, offersPrompts, subscribe bool
	// completions: it offers completion/complete.
	completions bool
	// known: a run listed it (an empty catalog of a server not running
	// is not known, and is neither pinned nor compared with its pin).
	known bool
}

// listCatalog lists the resources, templates and prompts of a server
// that declared them. A server whose listing fails keeps its tools: what
// it could not list is absent, and the failure is logged.
func (u *upstream) listCatalog(ctx context.Context, c *conn, caps mcpgo.ServerCapabilities) catalog {
	cat := catalog{completions: caps.Completions != nil, known: true}
	warn := func(what string, err error) {
		u.hub.srv.log.Warn("MCP server "+what+" could not be listed", "profile", u.hub.profile, "server", u.cfg.Name, "err", u.redact(err.Error()))
	}
	if caps.Resources != nil {
		cat.offersResources, cat.subscribe = true, caps.Resources.Subscribe
		if err := listInto(ctx, u, c, string(mcpgo.MethodResourcesList), "resources", &cat.resources); err != nil {
			warn("resources", err)
		}
		if err := listInto(ctx, u, c, string(mcpgo.MethodResourcesTemplatesList), "resourceTemplates", &cat.templates); err != nil {
			warn("resource templates", err)
		}
	}
	if caps.Prompts != nil {
		cat.offersPrompts = true
		if err := listInto(ctx, u, c, string(mcpgo.MethodPromptsList), "prompts", &cat.prompts); err != nil {
			warn("prompts", err)
		}
	}
	return cat
}

// listInto reads every page of a list method into out: each item redacted,
// then decoded. On an error out is left empty.
func listInto[T any](ctx context.Context, u *upstream, c *conn, method, key string, out *[]T) error {
	*out = nil
	var items []T
	cursor := ""
	for range maxListPages {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		resp, err := c.tr.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcpgo.JSONRPC_VERSION,
			ID: mcpgo.NewRequestId("ringlet-" + strconv.FormatInt(u.ids.Add(1), 10)), Method: method, Params: params})
		if err != nil {
			return err
		}
		if resp.Error != nil {
			return fmt.Errorf("error %d: %s", resp.Error.Code, u.redact(resp.Error.Message))
		}
		var page struct {
			NextCursor string `json:"nextCursor"`
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(resp.Result, &raw); err != nil {
			return fmt.Errorf("invalid %s answer: %w", method, err)
		}
		if err := json.Unmarshal(resp.Result, &page); err != nil {
			return fmt.Errorf("invalid %s answer: %w", method, err)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(raw[key], &list); err != nil && len(raw[key]) > 0 {
			return fmt.Errorf("invalid %s answer: %w", method, err)
		}
		for _, r := range list {
			// What a server says about a resource or prompt reaches the
			// model, like a tool's description.
			clean, err := u.redactJSON(r)
			if err != nil {
				return fmt.Errorf("invalid %s item: %w", method, err)
			}
			var item T
			if err := json.Unmarshal(clean, &item); err != nil {
				return fmt.Errorf("invalid %s item: %w", method, err)
			}
			items = append(items, item)
		}
		if len(items) > maxResources {
			return fmt.Errorf("the server lists more than %d %s", maxResources, key)
		}
		if page.NextCursor == "" {
			*out = items
			return nil
		}
		cursor = page.NextCursor
	}
	return fmt.Errorf("%s did not end within %d pages", method, maxListPages)
}

// pinned is the catalog as a pin holds it: prompts by name, resources by
// URI, templates by URI template (what a resource holds is not pinned).
func (cat catalog) pinned() (prompts, resources, templates map[string]mcpserver.PinnedItem) {
	prompts = make(map[string]mcpserver.PinnedItem, len(cat.prompts))
	for _, p := range cat.prompts {
		var args json.RawMessage
		if len(p.Arguments) > 0 {
			args, _ = json.Marshal(p.Arguments) // strings and bools only
		}
		prompts[p.Name] = mcpserver.PinnedItem{Title: p.Title, Description: p.Description, Arguments: args}
	}
	resources = make(map[string]mcpserver.PinnedItem, len(cat.resources))
	for _, r := range cat.resources {
		resources[r.URI] = mcpserver.PinnedItem{Name: r.Name, Title: r.Title, Description: r.Description, MIMEType: r.MIMEType}
	}
	templates = make(map[string]mcpserver.PinnedItem, len(cat.templates))
	for _, t := range cat.templates {
		if t.URITemplate == nil || t.URITemplate.Template == nil {
			continue // never served (addCatalog)
		}
		templates[t.URITemplate.Raw()] = mcpserver.PinnedItem{Name: t.Name, Title: t.Title, Description: t.Description, MIMEType: t.MIMEType}
	}
	return prompts, resources, templates
}

// relistCatalog re-reads what c offers after the server said its
// resources or prompts changed.
func (u *upstream) relistCatalog(c *conn) {
	srv := u.hub.srv
	srv.spawn(func() {
		ctx, cancel := context.WithTimeout(srv.ctx, srv.opts.StartTimeout)
		defer cancel()
		u.mu.Lock()
		caps := c.caps
		u.mu.Unlock()
		seq := u.lists.Add(1)
		cat := u.listCatalog(ctx, c, caps)
		u.mu.Lock()
		// Not when another run started, or a listing that started later
		// has already answered (upstream.lists).
		current := u.conn == c && seq > u.catalogListed
		if current {
			u.catalog, u.obs, u.catalogListed = cat, nil, seq
		}
		u.mu.Unlock()
		if current {
			u.hub.publish()
		}
	})
}

// upstreamError is an error the server answered (not one of reaching it).
type upstreamError struct {
	code int
	msg  string
}

func (e *upstreamError) Error() string { return e.msg }

// request sends one request (resources/read, prompts/get, ...) to the
// server, starting it if needed, and returns its result with the
// server's credentials redacted. It ends a run that does not answer in
// time, as a tool call does.
// ok says whether what is asked is served of the run judged (see
// upstream.admit).
func (u *upstream) request(ctx context.Context, method string, params any, ok func(*judgement) bool) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, u.cfg.Timeout, errCallTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if err := u.ensure(ctx, true); err != nil {
			if context.Cause(ctx) == errCallTimeout {
				return nil, fmt.Errorf("the server did not start within %s", u.cfg.Timeout)
			}
			return nil, err
		}
		u.mu.Lock()
		c := u.conn
		u.mu.Unlock()
		if c == nil {
			return nil, errors.New("the server is not running")
		}
		if err := u.admit(c, ok); err != nil {
			return nil, err
		}
		resp, err := c.tr.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcpgo.JSONRPC_VERSION,
			ID: mcpgo.NewRequestId("ringlet-" + strconv.FormatInt(u.ids.Add(1), 10)), Method: method, Params: params})
		if err != nil {
			if retry, err := u.requestFailed(ctx, c, err, attempt, method, ""); !retry {
				return nil, err
			}
			continue
		}
		if resp.Error != nil {
			return nil, &upstreamError{code: resp.Error.Code, msg: u.redact(resp.Error.Message)}
		}
		if len(resp.Result) > maxAnswer {
			return nil, fmt.Errorf("the server's answer is larger than the %d-byte limit; withheld", maxAnswer)
		}
		clean, err := u.redactJSON(resp.Result)
		if err != nil {
			return nil, fmt.Errorf("the server's answer could not be checked for its credentials; withheld: %w", err)
		}
		return clean, nil
	}
}
