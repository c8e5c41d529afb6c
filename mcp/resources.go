package mcp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// Kinds of Access.
const (
	AccessResource = "resource" // resources/read
	AccessPrompt   = "prompt"   // prompts/get
)

// Access is a session reading an upstream's resource or getting one of
// its prompts: what the profile's policy judges and the audit records.
type Access struct {
	Kind   string // AccessResource or AccessPrompt
	Server string // the upstream server
	// Name is what the session asked for: the exposed URI
	// (<server>+<uri>) or prompt name (<server>__<prompt>).
	Name string
	// Input is what is sent to the server: {"uri": ...} or {"name": ...,
	// "arguments": ...}, in its final form.
	Input json.RawMessage
	// Method is what was refused when it is not the read or get itself:
	// completion/complete, resources/subscribe.
	Method string
}

// AccessVerdict is the outcome of vetting an Access.
type AccessVerdict struct {
	Allow  bool
	Reason string
	// Done is told how an allowed access went: the server's answer (its
	// JSON, redacted) or its error. It writes the access's record and may
	// withhold the answer (a post-tool-use hook, or a record that cannot
	// be written). Required when Allow: an access that cannot be recorded
	// is refused.
	Done func(ctx context.Context, output json.RawMessage, err error) Verdict
}

// uriSep joins a server's name to an upstream URI: <server>+<uri>. A
// server name holds no '+', so the first one always ends it, and what
// follows is the server's own URI, unchanged: a server cannot name
// another's resources. The result is still a URI (a scheme may hold '+').
const uriSep = "+"

// maxURI bounds an upstream's resource URI or URI template.
const maxURI = 8192

// exposedURI is how a session sees an upstream resource URI (or URI
// template).
func exposedURI(srv, uri string) (string, error) {
	if uri == "" || len(uri) > maxURI {
		return "", fmt.Errorf("the resource URI %q is empty or longer than %d bytes", uri, maxURI)
	}
	if strings.IndexFunc(uri, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", fmt.Errorf("the resource URI %q holds a space or control character", uri)
	}
	return srv + uriSep + uri, nil
}

// upstreamURI is the server's own URI of an exposed one of srv.
func upstreamURI(srv, exposed string) (string, bool) {
	return strings.CutPrefix(exposed, srv+uriSep)
}

// published is what publish serves besides tools, and the servers whose
// resources are served.
type publishedCatalog struct {
	resources []server.ServerResource
	templates []server.ServerResourceTemplate
	prompts   []server.ServerPrompt
	// key is a digest of the lists, to tell sessions only of changes.
	key string
	// offersResources, offersPrompts and subscribe say what the served
	// servers declared: the capabilities a session is told of.
	offersResources, offersPrompts, subscribe bool
	// servers maps each server whose resources are served to whether it
	// takes subscriptions.
	servers map[string]bool
	// promptOf maps each served prompt to its server and own name.
	promptOf map[string]promptRef
	// completions: a served server offers completion/complete.
	completions bool
}

type promptRef struct{ server, own string }

// catalogView is what publish serves of a server's catalog: its stored
// definition (whose prompt and resource rules, and switches, say which
// items are enabled), the profile's default, and the items hidden until
// approved.
type catalogView struct {
	cfg    mcpserver.Config
	def    string
	hidden map[mcpserver.ItemKey]string
}

// itemStatus is the state of one item of srv in view: hidden until
// approved, disabled, or visible (to be checked further by the caller).
func (h *hub) itemStatus(srv string, view catalogView, kind, name, exposed, description string) mcpserver.ItemStatus {
	st := mcpserver.ItemStatus{Kind: kind, ToolStatus: mcpserver.ToolStatus{Name: name, Exposed: exposed, Description: mcpserver.FirstLine(description)}}
	st.Enabled, st.By, st.Rule = view.cfg.ItemEnabled(kind, name, view.def)
	switch {
	case view.hidden[mcpserver.ItemKey{Kind: kind, Name: name}] != "":
		st.State, st.Change = mcpserver.ToolChanged, view.hidden[mcpserver.ItemKey{Kind: kind, Name: name}]
		st.Reason = itemPendingReason(cmp.Or(exposed, name), st.Change, h.profile, srv)
	case !st.Enabled:
		st.State = mcpserver.ToolDisabled
		st.Reason = itemDisabledReason(h.profile, srv, kind, name, cmp.Or(exposed, name), st.By, st.Rule)
	default:
		st.State = mcpserver.ToolVisible
	}
	return st
}

// itemPendingReason says why an item is hidden until approved.
func itemPendingReason(exposed, change, profile, srv string) string {
	why := map[string]string{
		mcpserver.ChangeAdded:    "new since the server was approved",
		mcpserver.ChangeChanged:  "changed since it was approved",
		mcpserver.ChangeIdentity: "the server's program or tools changed since they were approved",
	}[change]
	return fmt.Sprintf("%s is not offered: %s; hidden until 'ringlet mcp approve %s %s'", exposed, cmp.Or(why, change), profile, srv)
}

// itemDisabledReason is what a session is told of a disabled prompt,
// resource or resource template, with the command that enables it.
func itemDisabledReason(profile, srv, kind, name, exposed, by, rule string) string {
	what, flag, item := "prompts", "--prompts", "--enable-prompt"
	if kind != mcpserver.KindPrompt {
		what, flag, item = "resources", "--resources", "--enable-resource"
	}
	enable := fmt.Sprintf("'ringlet mcp tools %s %s %s %s'", profile, srv, item, shellWord(name))
	switch by {
	case mcpserver.ByRule:
		return fmt.Sprintf("%s is not offered: it is disabled by the rule %q; the user can enable it with %s", exposed, rule, enable)
	case mcpserver.BySwitch:
		return fmt.Sprintf("%s is not offered: the %s of MCP server %s are disabled with '%s off'; the user can enable them with 'ringlet mcp tools %s %s %s on', or this one with %s", exposed, what, srv, flag, profile, srv, flag, enable)
	}
	return fmt.Sprintf("%s is not offered: the %s of MCP server %s are disabled by the profile's default (mcp tools default none); the user can enable them with 'ringlet mcp tools %s %s %s on', or this one with %s", exposed, what, srv, profile, srv, flag, enable)
}

// shellWord quotes s for a POSIX shell when it holds more than letters,
// digits and _.-:/@%+=, (in double quotes, as the command that holds it
// is quoted in single ones, unless s holds what they would expand).
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-:/@%+=,", r)))
	}) < 0 {
		return s
	}
	if !strings.ContainsAny(s, "$`\\\"!") {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// heldItems are the items of a catalog none of which is served: the
// server is not trusted with the model's context (a tool or its program
// changed since approved), each with that reason.
func (h *hub) heldItems(srv string, cat catalog, change string) []mcpserver.ItemStatus {
	var out []mcpserver.ItemStatus
	add := func(kind, name, desc string) {
		out = append(out, mcpserver.ItemStatus{Kind: kind, ToolStatus: mcpserver.ToolStatus{Name: name, Description: mcpserver.FirstLine(desc),
			State: mcpserver.ToolChanged, Change: change, Reason: itemPendingReason(name, change, h.profile, srv)}})
	}
	for _, pr := range cat.prompts {
		add(mcpserver.KindPrompt, pr.Name, pr.Description)
	}
	for _, r := range cat.resources {
		add(mcpserver.KindResource, r.URI, r.Description)
	}
	for _, t := range cat.templates {
		if t.URITemplate != nil && t.URITemplate.Template != nil {
			add(mcpserver.KindTemplate, t.URITemplate.Raw(), t.Description)
		}
	}
	return out
}

// addCatalog adds the resources, templates and prompts of u to p, as
// view allows, records in j what it served, and returns each with its
// state. Invalid ones are left out and logged.
func (h *hub) addCatalog(p *publishedCatalog, u *upstream, cat catalog, view catalogView, j *judgement) []mcpserver.ItemStatus {
	srv := u.cfg.Name
	j.resourceRules = mcpserver.Config{ResourceRules: view.cfg.ResourceRules}
	var items []mcpserver.ItemStatus
	skip := func(what string, err error) {
		h.srv.log.Warn("MCP server "+what+" left out", "profile", h.profile, "server", srv, "err", err)
	}
	// A server's resources (prompts) are offered when switched on, or
	// when one of them is served (enabled by a rule of its own).
	resourcesOn, _ := view.cfg.CatalogEnabled(mcpserver.KindResource, view.def)
	promptsOn, _ := view.cfg.CatalogEnabled(mcpserver.KindPrompt, view.def)
	servedResources, servedPrompts := false, false
	seen := map[string]bool{}
	for _, r := range cat.resources {
		uri, err := exposedURI(srv, r.URI)
		if err == nil && seen[uri] {
			err = errors.New("the server lists " + r.URI + " twice")
		}
		if err != nil {
			skip("resource", err)
			items = append(items, mcpserver.ItemStatus{Kind: mcpserver.KindResource, ToolStatus: mcpserver.ToolStatus{Name: r.URI, State: mcpserver.ToolInvalid, Reason: err.Error()}})
			continue
		}
		seen[uri] = true
		st := h.itemStatus(srv, view, mcpserver.KindResource, r.URI, uri, r.Description)
		items = append(items, st)
		if st.State != mcpserver.ToolVisible {
			continue
		}
		servedResources = true
		j.resources[r.URI] = true
		r.URI, r.Name = uri, srv+"__"+r.Name
		p.resources = append(p.resources, server.ServerResource{Resource: r, Handler: h.readResource(u)})
	}
	for _, t := range cat.templates {
		if t.URITemplate == nil || t.URITemplate.Template == nil {
			skip("resource template", errors.New("it has no uriTemplate"))
			continue
		}
		raw := t.URITemplate.Raw()
		uri, err := exposedURI(srv, raw)
		tmpl := &mcpgo.URITemplate{}
		if err == nil {
			quoted, _ := json.Marshal(uri)
			err = tmpl.UnmarshalJSON(quoted)
		}
		if err != nil {
			skip("resource template", err)
			items = append(items, mcpserver.ItemStatus{Kind: mcpserver.KindTemplate, ToolStatus: mcpserver.ToolStatus{Name: raw, State: mcpserver.ToolInvalid, Reason: err.Error()}})
			continue
		}
		st := h.itemStatus(srv, view, mcpserver.KindTemplate, raw, uri, t.Description)
		items = append(items, st)
		if st.State != mcpserver.ToolVisible {
			continue
		}
		servedResources = true
		j.templates = append(j.templates, t.URITemplate)
		t.URITemplate, t.Name = tmpl, srv+"__"+t.Name
		p.templates = append(p.templates, server.ServerResourceTemplate{Template: t, Handler: server.ResourceTemplateHandlerFunc(h.readResource(u))})
	}
	names := map[string]bool{}
	for _, pr := range cat.prompts {
		name, err := exposedName(srv, pr.Name)
		if err == nil && names[name] {
			err = errors.New("the server lists the prompt " + pr.Name + " twice")
		}
		if err != nil {
			skip("prompt", err)
			items = append(items, mcpserver.ItemStatus{Kind: mcpserver.KindPrompt, ToolStatus: mcpserver.ToolStatus{Name: pr.Name, State: mcpserver.ToolInvalid, Reason: err.Error()}})
			continue
		}
		names[name] = true
		st := h.itemStatus(srv, view, mcpserver.KindPrompt, pr.Name, name, pr.Description)
		items = append(items, st)
		if st.State != mcpserver.ToolVisible {
			continue
		}
		servedPrompts = true
		own := pr.Name
		j.prompts[own] = true
		p.promptOf[name] = promptRef{server: srv, own: own}
		pr.Name = name
		p.prompts = append(p.prompts, server.ServerPrompt{Prompt: pr, Handler: h.getPrompt(u, own)})
	}
	offersResources := cat.offersResources && (resourcesOn || servedResources)
	offersPrompts := cat.offersPrompts && (promptsOn || servedPrompts)
	if offersResources {
		p.offersResources = true
		p.subscribe = p.subscribe || cat.subscribe
		p.servers[srv] = cat.subscribe
	}
	p.offersPrompts = p.offersPrompts || offersPrompts
	p.completions = p.completions || (cat.completions && (offersResources || offersPrompts))
	return items
}

// serveCatalog hands p to mcp-go when it differs from what is served;
// mcp-go tells the sessions the lists changed.
func (h *hub) serveCatalog(p *publishedCatalog) {
	var key strings.Builder
	for _, r := range p.resources {
		b, _ := json.Marshal(r.Resource)
		key.Write(b)
	}
	key.WriteByte(0)
	for _, t := range p.templates {
		b, _ := json.Marshal(t.Template)
		key.Write(b)
	}
	key.WriteByte(0)
	for _, pr := range p.prompts {
		b, _ := json.Marshal(pr.Prompt)
		key.Write(b)
	}
	p.key = key.String()
	h.mu.Lock()
	old := h.catalog
	h.catalog = p
	h.mu.Unlock()
	if old != nil && old.key == p.key {
		return
	}
	// Each of these tells the sessions its list changed, so only those
	// that did are set.
	if old == nil || !sameResources(old.resources, p.resources) {
		h.ep.mcp.SetResources(p.resources...)
	}
	if old == nil || !sameTemplates(old.templates, p.templates) {
		h.ep.mcp.SetResourceTemplates(p.templates...)
	}
	if old == nil || !samePrompts(old.prompts, p.prompts) {
		h.ep.mcp.SetPrompts(p.prompts...)
	}
}

func sameResources(a, b []server.ServerResource) bool {
	return sameJSON(len(a), len(b), func(i int) (any, any) { return a[i].Resource, b[i].Resource })
}

func sameTemplates(a, b []server.ServerResourceTemplate) bool {
	return sameJSON(len(a), len(b), func(i int) (any, any) { return a[i].Template, b[i].Template })
}

func samePrompts(a, b []server.ServerPrompt) bool {
	return sameJSON(len(a), len(b), func(i int) (any, any) { return a[i].Prompt, b[i].Prompt })
}

func sameJSON(la, lb int, at func(int) (any, any)) bool {
	if la != lb {
		return false
	}
	for i := range la {
		x, y := at(i)
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		if string(bx) != string(by) {
			return false
		}
	}
	return true
}

// initWait bounds how long initialize waits for the upstreams to start.
const initWait = 10 * time.Second

// capabilities adjusts what initialize tells a session: resources and
// prompts only when a served upstream offers them, subscriptions only
// when one takes them. While a server is still starting what it offers
// is not known, and both are told (a session is told only once).
func (h *hub) capabilities(res *mcpgo.InitializeResult) {
	h.mu.Lock()
	p := h.catalog
	h.mu.Unlock()
	if p == nil {
		p = &publishedCatalog{}
	}
	unknown := false
	for _, u := range h.upstreams() {
		if state, _, _, _ := u.snapshot(); state == StateIdle || state == StateStarting {
			unknown = true
		}
	}
	if !p.offersResources && !unknown {
		res.Capabilities.Resources = nil
	} else if res.Capabilities.Resources != nil {
		res.Capabilities.Resources.Subscribe = p.subscribe
	}
	if !p.offersPrompts && !unknown {
		res.Capabilities.Prompts = nil
	}
	if !p.completions && !unknown {
		res.Capabilities.Completions = nil
	}
}

// readResource is the handler of an upstream's resources and templates.
func (h *hub) readResource(u *upstream) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
		srv := u.cfg.Name
		uri, ok := upstreamURI(srv, req.Params.URI)
		if !ok {
			return nil, fmt.Errorf("%s is not a resource of %s", req.Params.URI, srv)
		}
		served := func(j *judgement) bool {
			if r, ok := j.resourceRules.ResourceRuleOf(uri); ok && !r.Enabled {
				return false
			}
			return j.resources[uri] || slices.ContainsFunc(j.templates, func(t *mcpgo.URITemplate) bool { return t.Regexp().MatchString(uri) })
		}
		raw, err := h.access(ctx, u, Access{Kind: AccessResource, Server: srv, Name: req.Params.URI}, string(mcpgo.MethodResourcesRead), map[string]any{"uri": uri}, served)
		if err != nil {
			return nil, err
		}
		res, err := mcpgo.ParseReadResourceResult(&raw)
		if err != nil {
			return nil, fmt.Errorf("%s: its answer is not a resources/read result: %v", srv, err)
		}
		// The contents name the URIs the session knows.
		for i, c := range res.Contents {
			switch c := c.(type) {
			case mcpgo.TextResourceContents:
				c.URI = srv + uriSep + c.URI
				res.Contents[i] = c
			case mcpgo.BlobResourceContents:
				c.URI = srv + uriSep + c.URI
				res.Contents[i] = c
			}
		}
		return res.Contents, nil
	}
}

// getPrompt is the handler of one upstream prompt.
func (h *hub) getPrompt(u *upstream, prompt string) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
		params := map[string]any{"name": prompt}
		if len(req.Params.Arguments) > 0 {
			params["arguments"] = req.Params.Arguments
		}
		raw, err := h.access(ctx, u, Access{Kind: AccessPrompt, Server: u.cfg.Name, Name: req.Params.Name}, string(mcpgo.MethodPromptsGet), params,
			func(j *judgement) bool { return j.prompts[prompt] })
		if err != nil {
			return nil, err
		}
		res, err := mcpgo.ParseGetPromptResult(&raw)
		if err != nil {
			return nil, fmt.Errorf("%s: its answer is not a prompts/get result: %v", u.cfg.Name, err)
		}
		return res, nil
	}
}

// access runs a resources/read or prompts/get through the profile's
// policy, as a tool call is: the caller's Access vets it (hooks, audit)
// before a byte reaches the server, and is told how it went (the record,
// with the answer's size) before the answer reaches the session.
func (h *hub) access(ctx context.Context, u *upstream, a Access, method string, params map[string]any, served func(*judgement) bool) (json.RawMessage, error) {
	c := CallerFrom(ctx)
	if c == nil || c.scope() != h.ep.scope || c.Access == nil {
		return nil, fmt.Errorf("%s belongs to another profile", a.Name)
	}
	input, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("%s: the request could not be encoded: %v", a.Name, err)
	}
	a.Input = input
	v := c.Access(ctx, a)
	if !v.Allow {
		reason := v.Reason
		if reason == "" {
			reason = "a Ringlet hook refused this " + a.Kind
		}
		return nil, errors.New(reason)
	}
	if v.Done == nil {
		return nil, fmt.Errorf("%s: it could not be recorded in the audit log; refused", a.Name)
	}
	raw, err := u.request(ctx, method, json.RawMessage(input), served)
	if err != nil {
		err = fmt.Errorf("%s: %s", a.Name, u.redact(err.Error()))
	}
	if done := v.Done(ctx, raw, err); !done.Allow {
		reason := done.Reason
		if reason == "" {
			reason = "a Ringlet post-tool-use hook withheld this " + a.Kind
		}
		return nil, errors.New(reason)
	}
	if err != nil {
		return nil, err
	}
	return raw, nil
}
