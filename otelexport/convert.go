package otelexport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/neullabs/ringlet/audit"
)

// plainDetail are the detail fields whose strings are exported in the
// digests mode: names, kinds and digests that the gateway writes, never
// text an agent, a tool or a provider chose (an error message, a hook's
// stderr, a reason quoting input). Numbers and booleans are always
// exported; any other string only in the full mode, and the detail's
// SHA-256 and size always.
var plainDetail = map[string]bool{
	"provider": true, "model": true, "method": true, "via": true, "event": true,
	"hook": true, "hook_id": true, "server": true, "tool": true, "tool_use_id": true,
	"host": true, "seen_by": true, "network": true, "mode": true, "scope": true,
	"limit": true, "budget": true, "input_digest": true, "agent": true,
}

// build turns one record into its log record and, when it has a span,
// its span (and a provider request's tool calls into theirs).
func (e *Exporter) build(r *audit.Record) {
	attrs := e.recordAttrs(r)
	var sc trace.SpanContext
	if c := e.open.take(r); c != nil {
		// An MCP call's result: its numbers go on the call's span, which
		// ends now; its log record is in that span.
		c.finish(r)
		e.log(r, c.sp.SpanContext(), attrs)
		return
	}
	if tid, sid, ok := ids(r.TraceID, r.SpanID); ok {
		sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		e.span(r, sc, attrs)
	}
	e.log(r, sc, attrs)
}

// ids parses a record's trace and span ids. They are the sizes
// OpenTelemetry uses (16 and 8 bytes, as 32 and 16 hex digits), so they
// are taken as they are.
func ids(traceID, spanID string) (trace.TraceID, trace.SpanID, bool) {
	tid, err1 := trace.TraceIDFromHex(traceID)
	sid, err2 := trace.SpanIDFromHex(spanID)
	return tid, sid, err1 == nil && err2 == nil
}

// detail is what the export reads of a record's detail.
type detail struct {
	Provider string               `json:"provider"`
	Model    string               `json:"model"`
	Via      string               `json:"via"`
	ToolUses []audit.TraceToolUse `json:"tool_uses"`
	ToolUse  string               `json:"tool_use_id"`
}

func (e *Exporter) span(r *audit.Record, sc trace.SpanContext, attrs []attribute.KeyValue) {
	var d detail
	_ = json.Unmarshal(r.Detail, &d) // a detail that is not the gateway's names nothing
	end := r.Time
	start := end.Add(-r.Duration)
	name := r.Kind
	if r.Target != "" {
		name += " " + r.Target
	}
	kind := trace.SpanKindInternal
	switch r.Kind {
	case audit.KindProviderRequest:
		name, kind = "chat "+d.Model, trace.SpanKindClient
		attrs = append(attrs,
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", d.Provider),
			attribute.String("gen_ai.request.model", d.Model),
			attribute.String("gen_ai.response.model", d.Model),
			attribute.Int64("gen_ai.usage.input_tokens", r.TokensIn),
			attribute.Int64("gen_ai.usage.output_tokens", r.TokensOut),
			attribute.Int64("http.response.status_code", r.Status))
		if r.TokensCacheRead > 0 {
			attrs = append(attrs, attribute.Int64("gen_ai.usage.cache_read.input_tokens", r.TokensCacheRead))
		}
		if r.TokensCacheWrite > 0 {
			attrs = append(attrs, attribute.Int64("gen_ai.usage.cache_creation.input_tokens", r.TokensCacheWrite))
		}
		if e.opts.Cost != nil {
			if usd, ok := e.opts.Cost(d.Provider, d.Model, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite); ok {
				attrs = append(attrs, attribute.Float64("ringlet.cost_usd", usd))
			}
		}
	case audit.KindToolCall:
		attrs = append(attrs, attribute.String("gen_ai.tool.name", r.Target))
		if d.Via == "mcp" {
			name, kind = "tools/call "+r.Target, trace.SpanKindServer
			attrs = append(attrs, attribute.String("mcp.method.name", "tools/call"))
		}
		if id := d.ToolUse; id != "" {
			attrs = append(attrs, attribute.String("gen_ai.tool.call.id", id))
		} else if id := e.uses.ids[r.ParentSpanID]; id != "" {
			attrs = append(attrs, attribute.String("gen_ai.tool.call.id", id))
		}
	case audit.KindHookDecision:
		name = "hook " + r.Target
	}
	e.ids.set(sc.TraceID(), sc.SpanID())
	ctx := parentCtx(sc.TraceID(), r.ParentSpanID)
	_, sp := e.tracer.Start(ctx, name, trace.WithTimestamp(start), trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	if r.Decision == audit.Deny || r.Decision == audit.Error {
		sp.SetStatus(codes.Error, r.Decision)
	}
	if r.Kind == audit.KindToolCall && d.Via == "mcp" && r.Decision == audit.Allow {
		// It ends with its tool.result (openCalls).
		e.open.add(r.SpanID, sp, end)
	} else {
		sp.End(trace.WithTimestamp(end))
	}
	// The tool calls the answer asked for: the agent runs each, under
	// the request; their hook checks and MCP calls are their children.
	// The span marks the answer's end: when the tool ran shows in them.
	for _, u := range d.ToolUses {
		tid, sid, ok := ids(r.TraceID, u.SpanID)
		if !ok {
			continue
		}
		e.uses.add(u.SpanID, u.ID)
		ua := []attribute.KeyValue{
			attribute.String("gen_ai.operation.name", "execute_tool"),
			attribute.String("gen_ai.tool.name", u.Name),
			attribute.String("gen_ai.tool.call.id", u.ID),
			attribute.String("gen_ai.tool.type", "function"),
			attribute.String("ringlet.session", r.Session),
			attribute.String("ringlet.profile", r.Profile),
		}
		if u.InputDigest != "" {
			ua = append(ua, attribute.String("ringlet.tool.input_digest", u.InputDigest))
		}
		e.ids.set(tid, sid)
		_, tsp := e.tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "execute_tool "+u.Name,
			trace.WithTimestamp(end), trace.WithAttributes(ua...))
		tsp.End(trace.WithTimestamp(end))
	}
}

// parentCtx is the context a span starts in: under its parent span, or
// the root of trace tid.
func parentCtx(tid trace.TraceID, parent string) context.Context {
	ctx := context.Background()
	if pid, err := trace.SpanIDFromHex(parent); err == nil {
		return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: pid, TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	return ctx
}

// recordAttrs are the attributes of a record's span and log record.
func (e *Exporter) recordAttrs(r *audit.Record) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 16)
	a = append(a, attribute.Int64("ringlet.audit.seq", r.Seq), attribute.String("ringlet.audit.kind", r.Kind))
	str := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	num := func(k string, v int64) {
		if v != 0 {
			a = append(a, attribute.Int64(k, v))
		}
	}
	str("ringlet.profile", r.Profile)
	str("ringlet.session", r.Session)
	str("ringlet.actor", r.Actor)
	str("ringlet.target", r.Target)
	str("ringlet.decision", r.Decision)
	str("ringlet.link", r.Link)
	str("ringlet.audit.hash", r.Hash)
	num("ringlet.status", r.Status)
	num("ringlet.duration_ns", int64(r.Duration))
	num("ringlet.bytes_in", r.BytesIn)
	num("ringlet.bytes_out", r.BytesOut)
	if len(r.Detail) == 0 {
		return a
	}
	sum := sha256.Sum256(r.Detail)
	a = append(a, attribute.String("ringlet.detail.sha256", hex.EncodeToString(sum[:])), attribute.Int("ringlet.detail.size", len(r.Detail)))
	if e.opts.Content == ContentFull {
		return append(a, attribute.String("ringlet.detail", string(r.Detail)))
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(r.Detail, &fields) != nil {
		return a
	}
	for k, raw := range fields {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		switch v := v.(type) {
		case float64:
			a = append(a, attribute.Float64("ringlet.detail."+k, v))
		case bool:
			a = append(a, attribute.Bool("ringlet.detail."+k, v))
		case string:
			if plainDetail[k] {
				a = append(a, attribute.String("ringlet.detail."+k, v))
			}
		}
	}
	return a
}

// log emits r as a log record, in its span when it has one.
func (e *Exporter) log(r *audit.Record, sc trace.SpanContext, attrs []attribute.KeyValue) {
	var rec otellog.Record
	rec.SetTimestamp(r.Time)
	rec.SetObservedTimestamp(time.Now())
	rec.SetEventName("ringlet.audit." + r.Kind)
	sev, text := otellog.SeverityInfo, "INFO"
	if r.Decision == audit.Deny || r.Decision == audit.Error {
		sev, text = otellog.SeverityWarn, "WARN"
	}
	rec.SetSeverity(sev)
	rec.SetSeverityText(text)
	body := r.Kind
	if r.Target != "" {
		body += " " + r.Target
	}
	if r.Decision != "" {
		body += " " + r.Decision
	}
	rec.SetBody(attribute.StringValue(body))
	rec.AddAttributes(attrs...)
	ctx := context.Background()
	if sc.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	e.logger.Emit(ctx, rec)
}

// maxOpenCalls bounds the MCP calls whose span waits for its result;
// openCallAge is how long one waits. Past either, the span ends without
// its result (ringlet.result.status "unknown").
const (
	maxOpenCalls = 1024
	openCallAge  = 15 * time.Minute
)

// openCalls are the spans of allowed MCP tools/calls, kept open until
// their tool.result record comes, so the span covers the upstream's work
// and carries what it answered. Only the worker uses them.
type openCalls struct {
	calls map[string]*openCall
	order []string
}

type openCall struct {
	sp trace.Span
	at time.Time // the tool.call record's time
}

func (o *openCalls) add(span string, sp trace.Span, at time.Time) {
	if o.calls == nil {
		o.calls = map[string]*openCall{}
	}
	if o.calls[span] != nil {
		o.end(span, time.Time{}) // the same span twice: the first ends
	}
	for len(o.order) >= maxOpenCalls {
		o.end(o.order[0], time.Time{})
	}
	o.calls[span] = &openCall{sp: sp, at: at}
	o.order = append(o.order, span)
}

// take is the open call r is the result of, removed, or nil.
func (o *openCalls) take(r *audit.Record) *openCall {
	if r.Kind != audit.KindToolResult || r.ParentSpanID == "" {
		return nil
	}
	c := o.calls[r.ParentSpanID]
	if c != nil {
		o.forget(r.ParentSpanID)
	}
	return c
}

func (o *openCalls) forget(span string) {
	delete(o.calls, span)
	if i := slices.Index(o.order, span); i >= 0 {
		o.order = slices.Delete(o.order, i, i+1)
	}
}

// end ends the span of a call whose result did not come (by now, or at
// shutdown when now is zero).
func (o *openCalls) end(span string, now time.Time) {
	c := o.calls[span]
	o.forget(span)
	if c == nil {
		return
	}
	c.sp.SetAttributes(attribute.String("ringlet.result.status", "unknown"))
	at := c.at
	if !now.IsZero() {
		at = now
	}
	c.sp.End(trace.WithTimestamp(at))
}

// expire ends the calls older than openCallAge; all of them with all.
func (o *openCalls) expire(now time.Time, all bool) {
	for len(o.order) > 0 {
		c := o.calls[o.order[0]]
		if c != nil && !all && now.Sub(c.at) < openCallAge {
			return
		}
		o.end(o.order[0], time.Time{})
	}
}

// finish puts a tool.result's numbers on its call's span and ends it:
// ringlet.result.bytes and .status, and for a failure error.type (the
// OpenTelemetry MCP conventions: "tool_error" for a result marked
// isError, the JSON-RPC error code for an error answer) with the span's
// status Error.
func (c *openCall) finish(r *audit.Record) {
	var d struct {
		Status string `json:"status"`
		Code   int64  `json:"code"`
	}
	_ = json.Unmarshal(r.Detail, &d) // a detail that is not the gateway's names nothing
	a := []attribute.KeyValue{attribute.Int64("ringlet.result.bytes", r.BytesOut), attribute.String("ringlet.result.status", d.Status),
		attribute.Int64("ringlet.result.duration_ns", int64(r.Duration))}
	errType := ""
	switch d.Status {
	case "ok":
	case "is_error":
		errType = "tool_error"
	case "rpc_error":
		errType = "rpc_error"
		if d.Code != 0 {
			errType = strconv.FormatInt(d.Code, 10)
			a = append(a, attribute.Int64("rpc.jsonrpc.error_code", d.Code))
		}
	default:
		errType = d.Status
	}
	if errType != "" {
		a = append(a, attribute.String("error.type", errType))
	}
	c.sp.SetAttributes(a...)
	if errType != "" {
		c.sp.SetStatus(codes.Error, errType)
	}
	end := r.Time
	if end.Before(c.at) {
		end = c.at
	}
	c.sp.End(trace.WithTimestamp(end))
}
