package mcp

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"unicode"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Tool search: with it on for a profile, its sessions are served two
// meta-tools instead of every upstream tool, so that a large tool set
// does not fill the agent's context. search_tools ranks the served tools
// (enabled, approved) for a query with BM25; call_tool calls one of them
// through the very handler tools/call would use, so the policy (hooks,
// audit, redaction) is the same.
const (
	searchToolName = "search_tools"
	callToolName   = "call_tool"
	// searchDefault and searchMax bound the tools one search returns.
	searchDefault = 10
	searchMax     = 50
)

// BM25's usual constants.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// searchIndex is the served tools of a profile, indexed for search.
type searchIndex struct {
	tools  []server.ServerTool
	byName map[string]int
	// docs are each tool's term counts and length; df how many tools
	// hold each term.
	docs []map[string]int
	lens []int
	avg  float64
	df   map[string]int
}

// newSearchIndex indexes tools by their name (split at '_', '-', '.'
// and case changes), title and description.
func newSearchIndex(tools []server.ServerTool) *searchIndex {
	ix := &searchIndex{tools: tools, byName: make(map[string]int, len(tools)), df: map[string]int{}}
	total := 0
	for i, t := range tools {
		ix.byName[t.Tool.Name] = i
		counts := map[string]int{}
		n := 0
		// The name weighs more than the prose: its terms count twice.
		for _, term := range terms(t.Tool.Name) {
			counts[term] += 2
			n += 2
		}
		for _, term := range terms(t.Tool.Title + " " + t.Tool.Description) {
			counts[term]++
			n++
		}
		for term := range counts {
			ix.df[term]++
		}
		ix.docs = append(ix.docs, counts)
		ix.lens = append(ix.lens, n)
		total += n
	}
	if len(tools) > 0 {
		ix.avg = float64(total) / float64(len(tools))
	}
	return ix
}

// terms splits s into lower-case words of letters and digits, splitting
// camelCase too, with a plural's final s dropped (issues is issue).
func terms(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			w := strings.ToLower(string(cur))
			if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
				w = w[:len(w)-1]
			}
			out = append(out, w)
			cur = cur[:0]
		}
	}
	var prev rune
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if unicode.IsUpper(r) && unicode.IsLower(prev) {
				flush()
			}
			cur = append(cur, r)
		default:
			flush()
		}
		prev = r
	}
	flush()
	return out
}

// search returns up to limit tools ranked for query, best first; ties
// keep the served order. A query with no term that any tool holds finds
// nothing.
func (ix *searchIndex) search(query string, limit int) []server.ServerTool {
	q := terms(query)
	type hit struct {
		i     int
		score float64
	}
	var hits []hit
	n := float64(len(ix.tools))
	for i, doc := range ix.docs {
		score := 0.0
		for _, term := range q {
			tf := float64(doc[term])
			if tf == 0 {
				continue
			}
			df := float64(ix.df[term])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			score += idf * tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*float64(ix.lens[i])/ix.avg))
		}
		if score > 0 {
			hits = append(hits, hit{i, score})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	out := make([]server.ServerTool, 0, min(limit, len(hits)))
	for _, h := range hits[:min(limit, len(hits))] {
		out = append(out, ix.tools[h.i])
	}
	return out
}

// searchTools are the meta-tools served in search mode.
func (h *hub) searchTools() []server.ServerTool {
	return []server.ServerTool{
		{Tool: mcpgo.NewTool(searchToolName,
			mcpgo.WithDescription("Find the tools of this profile's MCP servers that fit a task: give a few keywords, get the best matching tools with their names, descriptions and input schemas. Then run one with call_tool. The servers' tools are not listed otherwise."),
			mcpgo.WithString("query", mcpgo.Required(), mcpgo.Description("Keywords describing what the tool should do, e.g. 'read file' or 'create github issue'."), mcpgo.MinLength(1), mcpgo.MaxLength(1000)),
			mcpgo.WithInteger("limit", mcpgo.Description("Most tools to return, default 10."), mcpgo.Min(1), mcpgo.Max(searchMax)),
			annotate("Search MCP tools", true, false, true), strict()),
			Handler: h.handleSearch},
		{Tool: mcpgo.NewTool(callToolName,
			mcpgo.WithDescription("Call a tool that search_tools found, by its name (<server>__<tool>), with its arguments as its input schema says."),
			mcpgo.WithString("name", mcpgo.Required(), mcpgo.Description("The tool's name as search_tools gave it."), mcpgo.MinLength(1), mcpgo.MaxLength(128)),
			mcpgo.WithObject("arguments", mcpgo.Description("The tool's arguments.")),
			annotate("Call an MCP tool", false, true, false), strict()),
			Handler: h.handleCallTool},
	}
}

func (h *hub) index() *searchIndex {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.search == nil {
		return newSearchIndex(nil)
	}
	return h.search
}

func (h *hub) handleSearch(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	h.ensureOnce(ctx)
	var a struct {
		Query string `json:"query"`
		Limit int    `json:"limit"`
	}
	if err := decodeStrict(req, &a); err != nil {
		return mcpgo.NewToolResultError("invalid arguments: " + err.Error()), nil
	}
	if a.Limit <= 0 {
		a.Limit = searchDefault
	}
	a.Limit = min(a.Limit, searchMax)
	type found struct {
		Name        string          `json:"name"`
		Title       string          `json:"title,omitempty"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	out := struct {
		Tools []found `json:"tools"`
	}{Tools: []found{}}
	for _, t := range h.index().search(a.Query, a.Limit) {
		schema := t.Tool.RawInputSchema
		if len(schema) == 0 {
			schema, _ = json.Marshal(t.Tool.InputSchema)
		}
		out.Tools = append(out.Tools, found{Name: t.Tool.Name, Title: t.Tool.Title, Description: t.Tool.Description, InputSchema: schema})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return mcpgo.NewToolResultError("the tools found could not be encoded"), nil
	}
	res := mcpgo.NewToolResultText(string(b))
	res.StructuredContent = json.RawMessage(b)
	return res, nil
}

// handleCallTool runs a served tool through its own handler: the hooks
// judge it under its own name, as a tools/call of it.
func (h *hub) handleCallTool(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	h.ensureOnce(ctx)
	var a struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := decodeStrict(req, &a); err != nil {
		return mcpgo.NewToolResultError("invalid arguments: " + err.Error()), nil
	}
	ix := h.index()
	i, ok := ix.byName[a.Name]
	if !ok {
		// Refused as a tools/call of it would be: disabled, or hidden
		// until approved.
		reason, refused := h.disabled(ctx, a.Name)
		unapproved := false
		if !refused {
			reason, refused = h.pending(a.Name)
			unapproved = refused
		}
		if refused {
			auditRefused(ctx, CallerFrom(ctx), a.Name, a.Arguments, reason, unapproved)
			return mcpgo.NewToolResultError(reason), nil
		}
		return mcpgo.NewToolResultError("no tool " + a.Name + " is served; search_tools finds them"), nil
	}
	inner := req
	inner.Params.Name = a.Name
	inner.Params.Arguments = nil
	inner.Params.RawArguments = a.Arguments
	return ix.tools[i].Handler(ctx, inner)
}

// decodeStrict decodes a meta-tool's arguments, refusing unknown ones.
func decodeStrict(req mcpgo.CallToolRequest, v any) error {
	raw, err := finalArgs(req.Params.RawArguments)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
