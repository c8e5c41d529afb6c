package gateway

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/agentconfig"
	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/provider"
)

// traces puts a session's records in causal traces (docs/audit.md,
// "Traces"): one per agent turn, from a provider request through the
// tool calls its answer asked for (by their ids on the wire), the hook
// decisions and MCP calls for them, to the next request that carries
// their results. It is memory only: what a record needs is written into
// the record (its trace, span and parent ids, chained like its other
// fields).
type traces struct {
	off atomic.Bool // correlation off: benchmarks compare with it
	mu  sync.Mutex
	// bySession is keyed by session id; a session's state is dropped at
	// its session.end.
	bySession map[string]*sessionTraces
	// hooked reports whether a profile's agent is expected to ask
	// Ringlet's hooks before each tool call: a Claude Code profile with
	// pre-tool-use hooks. strict reports the profile's strict hooks.
	hooked func(alias, agent string) bool
	strict func(alias string) bool
	bypass *prometheus.CounterVec
}

// maxToolUses bounds the tool calls a session's traces remember; the
// oldest go first.
const maxTracedUses = 512

// mcpLinkWindow is how long after its answer a tool_use can be the one
// an MCP call with no id is inferred to be.
const mcpLinkWindow = 10 * time.Minute

type sessionTraces struct {
	// trace and span are the session's current turn: its last provider
	// request's (empty before the first).
	trace, span string
	uses        map[string]*tracedUse
	order       []string
	// profile and agent are the session's, from its requests.
	profile, agent string
}

// tracedUse is a tool call a provider answered with.
type tracedUse struct {
	audit.TraceToolUse
	trace string
	at    time.Time
	// hooked: a PreToolUse check with its id allowed it; checked: one
	// came at all. called: an MCP call was linked to it.
	hooked, checked, called bool
}

// spanCtx is where the records of one action go: the record of kind
// owner takes span, under parent; every other record written with the
// context gets a span of its own under span.
type spanCtx struct {
	trace, span, parent, link string
	owner                     string
	// use is the id of the tool call an agent's pre-tool-use check was
	// matched to (agentCheck).
	use string
}

type spanKey struct{}

func withSpan(ctx context.Context, sp spanCtx) context.Context {
	if sp.trace == "" {
		return ctx
	}
	return context.WithValue(ctx, spanKey{}, sp)
}

// spanOf is the action span of ctx, if any.
func spanOf(ctx context.Context) (spanCtx, bool) {
	sp, ok := ctx.Value(spanKey{}).(spanCtx)
	return sp, ok
}

// ownedBy is ctx with its span taken by the record of kind (a refusal
// that stands in for the call's own record).
func ownedBy(ctx context.Context, kind string) context.Context {
	sp, ok := spanOf(ctx)
	if !ok {
		return ctx
	}
	sp.owner = kind
	return context.WithValue(ctx, spanKey{}, sp)
}

func newTraces(bypass *prometheus.CounterVec) *traces {
	return &traces{bySession: map[string]*sessionTraces{}, bypass: bypass,
		hooked: func(string, string) bool { return false }, strict: func(string) bool { return false }}
}

func (t *traces) state(session string) *sessionTraces {
	st := t.bySession[session]
	if st == nil {
		st = &sessionTraces{uses: map[string]*tracedUse{}}
		t.bySession[session] = st
	}
	return st
}

// stamp gives r its trace fields, unless it has them: from the action
// in ctx, else the session's current turn (inferred), else a trace of
// its own. At a session's end it returns the hook.bypass records of the
// tool calls that never reached a hook, to be written first.
func (t *traces) stamp(ctx context.Context, r *audit.Record) []audit.Record {
	if t == nil || t.off.Load() || r.TraceID != "" {
		return nil
	}
	if sp, ok := ctx.Value(spanKey{}).(spanCtx); ok {
		r.TraceID = sp.trace
		if r.Kind == sp.owner {
			r.SpanID, r.ParentSpanID, r.Link = sp.span, sp.parent, sp.link
		} else {
			r.SpanID, r.ParentSpanID, r.Link = audit.NewSpanID(), sp.span, audit.LinkCarried
		}
		return nil
	}
	if r.Session == "" {
		return nil
	}
	t.mu.Lock()
	st := t.state(r.Session)
	r.SpanID = audit.NewSpanID()
	if st.trace == "" {
		// Before the session's first provider request: its own trace.
		st.trace = audit.NewTraceID()
		r.TraceID = st.trace
	} else {
		r.TraceID, r.Link = st.trace, audit.LinkInferred
		r.ParentSpanID = st.span
		// Something the sandbox did while a tool call was outstanding
		// (egress, a violation) is that call's doing.
		if u := st.latestOpen(r.Time); u != nil && (r.Kind == audit.KindSandboxEgress || r.Kind == audit.KindSandboxViolation) {
			r.TraceID, r.ParentSpanID = u.trace, u.SpanID
		}
	}
	if r.Kind != audit.KindSessionEnd {
		t.mu.Unlock()
		return nil
	}
	var open []*tracedUse
	for _, id := range st.order {
		if u := st.uses[id]; u != nil && !u.checked {
			open = append(open, u)
		}
	}
	profile, agent := st.profile, st.agent
	delete(t.bySession, r.Session)
	t.mu.Unlock()
	// The hooks are read outside the lock every session shares.
	if len(open) == 0 || agent == "" || !t.hooked(profile, agent) {
		return nil
	}
	out := make([]audit.Record, 0, len(open))
	for _, u := range open {
		out = append(out, t.bypassRecord(r.Profile, r.Session, u, "session.end", audit.Allow))
	}
	return out
}

// latestOpen is the session's latest tool call whose result has not come
// back, within mcpLinkWindow of now.
func (st *sessionTraces) latestOpen(now time.Time) *tracedUse {
	if now.IsZero() {
		now = time.Now()
	}
	for i := len(st.order) - 1; i >= 0; i-- {
		if u := st.uses[st.order[i]]; u != nil && now.Sub(u.at) < mcpLinkWindow {
			return u
		}
	}
	return nil
}

// reqTrace is one provider request's place in its session's traces, and
// the tool calls its answer asks for.
type reqTrace struct {
	t                         *traces
	session                   string
	trace, span, parent, link string
	uses                      []audit.TraceToolUse
}

// request places a provider request: in the trace of the tool calls
// whose results its body carries back (the first one found is its
// parent), or in a trace of its own. It also returns the hook.bypass
// records of those calls that never reached a hook the profile's agent
// should have asked. The request's place is kept in into when it is not
// nil (the proxy's per-request state, one allocation for all of it).
func (t *traces) request(into *reqTrace, sess *session, body []byte) (*reqTrace, []audit.Record) {
	if t == nil || t.off.Load() {
		return nil, nil
	}
	rt := into
	if rt == nil {
		rt = new(reqTrace)
	}
	*rt = reqTrace{t: t, session: sess.ID, span: audit.NewSpanID()}
	// The body is scanned, and the hooks read, outside the lock every
	// session shares; only when the session has tool calls outstanding.
	t.mu.Lock()
	st := t.state(sess.ID)
	st.profile, st.agent = sess.Profile.Alias, sess.Agent.ID
	open := len(st.uses) > 0
	t.mu.Unlock()
	var ids []string
	hooked := false
	if open {
		provider.ToolResultIDs(body, func(id string) bool {
			ids = append(ids, id)
			return true
		})
		hooked = len(ids) > 0 && t.hooked(sess.Profile.Alias, sess.Agent.ID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st = t.state(sess.ID)
	var bypass []audit.Record
	for _, id := range ids {
		u := st.uses[id]
		if u == nil {
			continue
		}
		if rt.trace == "" {
			rt.trace, rt.parent, rt.link = u.trace, u.SpanID, audit.LinkCarried
		}
		if hooked && !u.checked {
			bypass = append(bypass, t.bypassRecord(sess.Profile.Alias, sess.ID, u, "provider", audit.Allow))
		}
		st.forget(id)
	}
	if rt.trace == "" {
		rt.trace = audit.NewTraceID()
	}
	st.trace, st.span = rt.trace, rt.span
	return rt, bypass
}

func (st *sessionTraces) forget(id string) {
	delete(st.uses, id)
	for i, o := range st.order {
		if o == id {
			st.order = append(st.order[:i], st.order[i+1:]...)
			break
		}
	}
}

// add remembers a tool call of the request's answer (provider.Meter's
// Tools): before the client has the end of the answer, so the hook and
// MCP calls that follow find it.
func (rt *reqTrace) add(u provider.ToolUse) {
	tu := audit.TraceToolUse{ID: u.ID, Name: u.Name, InputDigest: u.InputDigest, SpanID: audit.NewSpanID()}
	rt.uses = append(rt.uses, tu)
	t := rt.t
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(rt.session)
	if _, dup := st.uses[u.ID]; dup {
		return
	}
	if len(st.order) >= maxTracedUses {
		delete(st.uses, st.order[0])
		st.order = st.order[1:]
	}
	st.uses[u.ID] = &tracedUse{TraceToolUse: tu, trace: rt.trace, at: time.Now()}
	st.order = append(st.order, u.ID)
}

// cut forgets the tool calls of an answer that did not end as its format
// says (cut at a budget's cap, interrupted, failed): the agent runs none
// of them, so none is a hook bypass. They stay in the request's record.
func (rt *reqTrace) cut() {
	if rt == nil || len(rt.uses) == 0 {
		return
	}
	t := rt.t
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.bySession[rt.session]
	if st == nil {
		return
	}
	for _, u := range rt.uses {
		if tu := st.uses[u.ID]; tu != nil && tu.SpanID == u.SpanID {
			st.forget(u.ID)
		}
	}
}

// stampRequest gives the provider.request record its place.
func (rt *reqTrace) stampRequest(r *audit.Record) {
	if rt == nil {
		return
	}
	r.TraceID, r.SpanID, r.ParentSpanID, r.Link = rt.trace, rt.span, rt.parent, rt.link
}

// agentCheck places an agent's hook check (Claude Code's PreToolUse, by
// the tool_use_id it carries): under its tool call, or under the
// session's current turn when the id is not one Ringlet saw or the check
// does not name that call (another tool, other input: inferred). A
// pre-tool-use check marks its call checked (hook.bypass is not raised
// for it), whether the hooks then allow it, deny it or Ringlet refuses
// it first (a rate limit, a budget); the span's use is then its id.
func (t *traces) agentCheck(sess *session, req api.HookCheck) spanCtx {
	if t == nil || t.off.Load() {
		return spanCtx{}
	}
	digest := ""
	if req.ToolUseID != "" {
		digest = provider.ArgsDigest(req.ToolInput) // outside the lock
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(sess.ID)
	sp := spanCtx{span: audit.NewSpanID(), owner: audit.KindToolCall}
	if u := st.uses[req.ToolUseID]; req.ToolUseID != "" && u != nil && checkNames(u, req.ToolName, digest) {
		if req.Event == hook.PreToolUse {
			u.checked = true
			sp.use = u.ID
		}
		sp.trace, sp.parent, sp.link = u.trace, u.SpanID, audit.LinkCarried
		return sp
	}
	if st.trace == "" {
		st.trace = audit.NewTraceID()
	}
	sp.trace, sp.parent, sp.link = st.trace, st.span, audit.LinkInferred
	return sp
}

// checkNames reports whether a hook check of tool with input of digest
// names the tool call u: the same tool (a tool of Ringlet's MCP gateway
// by its name or its mcp__ringlet__ form) and, when u's input was read,
// the same input.
func checkNames(u *tracedUse, tool, digest string) bool {
	gw := "mcp__" + agentconfig.Server + "__"
	if u.Name != tool && u.Name != gw+tool && gw+u.Name != tool {
		return false
	}
	return u.InputDigest == "" || u.InputDigest == digest
}

// agentAllowed marks the tool call a pre-tool-use check was matched to
// (sp.use, from agentCheck) as allowed by the profile's hooks, asked by
// the agent before it ran it.
func (t *traces) agentAllowed(sess *session, sp spanCtx) {
	if t == nil || t.off.Load() || sp.use == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if u := t.state(sess.ID).uses[sp.use]; u != nil {
		u.hooked = true
	}
}

// mcpLink is an MCP tools/call placed in its session's traces.
type mcpLink struct {
	sp spanCtx
	// use is the tool call it was linked to; nil when none was found.
	use *audit.TraceToolUse
	// allowed: that tool call was allowed by a PreToolUse check that
	// carried its id.
	allowed bool
}

// mcpCall places an MCP tools/call of tool (as the gateway serves it)
// with arguments args: under the tool call whose id it carries
// (toolUseID, from Claude Code's _meta), else the latest tool call of
// the session not yet linked, of a matching name and the same arguments
// digest, within mcpLinkWindow (inferred).
func (t *traces) mcpCall(sess *session, toolUseID, tool string, args []byte) mcpLink {
	if t == nil || t.off.Load() {
		return mcpLink{}
	}
	digest := ""
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(sess.ID)
	l := mcpLink{sp: spanCtx{span: audit.NewSpanID(), owner: audit.KindToolCall}}
	var u *tracedUse
	if toolUseID != "" {
		if u = st.uses[toolUseID]; u != nil {
			l.sp.link = audit.LinkCarried
		}
	}
	if u == nil {
		now := time.Now()
		for i := len(st.order) - 1; i >= 0; i-- {
			c := st.uses[st.order[i]]
			if c == nil || c.called || now.Sub(c.at) > mcpLinkWindow || !toolNameMatches(c.Name, tool) {
				continue
			}
			if digest == "" {
				digest = provider.ArgsDigest(args)
			}
			if c.InputDigest == digest {
				u = c
				l.sp.link = audit.LinkInferred
				break
			}
		}
	}
	if u == nil {
		if st.trace == "" {
			st.trace = audit.NewTraceID()
		}
		l.sp.trace, l.sp.parent, l.sp.link = st.trace, st.span, audit.LinkInferred
		return l
	}
	u.called = true
	l.sp.trace, l.sp.parent = u.trace, u.SpanID
	use := u.TraceToolUse
	l.use, l.allowed = &use, u.hooked
	return l
}

// toolNameMatches reports whether an agent's name for a tool (Claude
// Code's mcp__<server>__<tool>) names the tool the MCP gateway serves.
func toolNameMatches(agentName, tool string) bool {
	return agentName == tool || strings.HasSuffix(agentName, "__"+tool)
}

// bypassRecord is a hook.bypass record of u; where says how it showed:
// "mcp" (an MCP call), "provider" (its result came back in the next
// request), "session.end".
func (t *traces) bypassRecord(profile, session string, u *tracedUse, where, decision string) audit.Record {
	t.count(where, decision)
	return audit.Record{Kind: audit.KindHookBypass, Profile: profile, Session: session, Actor: audit.ActorDaemon, Target: u.Name, Decision: decision,
		TraceID: u.trace, SpanID: audit.NewSpanID(), ParentSpanID: u.SpanID, Link: audit.LinkCarried,
		Detail: audit.DetailJSON(map[string]any{"tool_use_id": u.ID, "seen_by": where,
			"reason": "the agent's answer asked for this tool call and no pre-tool-use check carrying its id reached Ringlet's hooks"})}
}

func (t *traces) count(where, decision string) {
	if t.bypass != nil {
		t.bypass.WithLabelValues(where, decision).Inc()
	}
}
