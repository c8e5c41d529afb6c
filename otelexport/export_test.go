package otelexport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/neullabs/ringlet/audit"
)

// logSink keeps exported log records.
type logSink struct {
	mu   sync.Mutex
	got  []sdklog.Record
	errs error
}

func (s *logSink) Export(_ context.Context, recs []sdklog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range recs {
		s.got = append(s.got, recs[i].Clone())
	}
	return s.errs
}
func (*logSink) Shutdown(context.Context) error   { return nil }
func (*logSink) ForceFlush(context.Context) error { return nil }

const (
	traceA = "0af7651916cd43dd8448eb211c80319c"
	chatA  = "b7ad6b7169203331"
	useA   = "00f067aa0ba902b7"
	callA  = "1111111111111111"
	hookA  = "2222222222222222"
)

// turn is the records of one agent turn: a provider request whose answer
// asked for a tool, the MCP call of that tool, and its hook decision.
func turn(canary string) []audit.Record {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return []audit.Record{
		{Seq: 1, Time: t0, Kind: audit.KindProviderRequest, Profile: "work", Session: "s1", Target: "/v1/messages", Decision: audit.Allow, Status: 200,
			Duration: time.Second, TokensIn: 29, TokensOut: 13, TraceID: traceA, SpanID: chatA,
			Detail: audit.DetailJSON(map[string]any{"provider": "anthropic", "model": "claude-test", "complete": true, "error": canary,
				"tool_uses": []audit.TraceToolUse{{ID: "toolu_1", Name: "mcp__ringlet__up__echo", InputDigest: "sha256:abc", SpanID: useA}}})},
		{Seq: 2, Time: t0.Add(2 * time.Second), Kind: audit.KindToolCall, Profile: "work", Session: "s1", Target: "up__echo", Decision: audit.Allow,
			TraceID: traceA, SpanID: callA, ParentSpanID: useA, Link: audit.LinkCarried,
			Detail: audit.DetailJSON(map[string]any{"via": "mcp", "hooks": 1, "reason": canary})},
		{Seq: 3, Time: t0.Add(2 * time.Second), Kind: audit.KindHookDecision, Profile: "work", Session: "s1", Target: "up__echo", Decision: audit.Deny,
			TraceID: traceA, SpanID: hookA, ParentSpanID: callA, Link: audit.LinkCarried,
			Detail: audit.DetailJSON(map[string]any{"hook": "h_1", "exit_code": 2, "stderr": canary})},
	}
}

// keptSpans is an in-memory exporter that keeps its spans at Shutdown.
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

func newTest(t *testing.T, content string) (*Exporter, *tracetest.InMemoryExporter, *logSink) {
	t.Helper()
	spans, logs := tracetest.NewInMemoryExporter(), &logSink{}
	e, err := New(Options{Spans: keptSpans{spans}, Logs: logs, Content: content, Version: "v9",
		Cost: func(p, m string, in, out, _, _ int64) (float64, bool) {
			return float64(in+out) / 1000, p == "anthropic"
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e, spans, logs
}

func attrs(kvs []attribute.KeyValue) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

func TestSpansFromRecords(t *testing.T) {
	e, spans, logs := newTest(t, ContentDigests)
	e.Export(turn("x"))
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = s
	}
	type want struct {
		name, span, parent string
		attrs              map[string]any
	}
	for _, w := range []want{
		{"chat claude-test", chatA, "", map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
			"gen_ai.request.model": "claude-test", "gen_ai.response.model": "claude-test", "gen_ai.usage.input_tokens": int64(29),
			"gen_ai.usage.output_tokens": int64(13), "ringlet.cost_usd": 0.042, "ringlet.audit.seq": int64(1)}},
		{"execute_tool mcp__ringlet__up__echo", useA, chatA, map[string]any{"gen_ai.operation.name": "execute_tool",
			"gen_ai.tool.name": "mcp__ringlet__up__echo", "gen_ai.tool.call.id": "toolu_1", "ringlet.tool.input_digest": "sha256:abc"}},
		{"tools/call up__echo", callA, useA, map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.call.id": "toolu_1",
			"ringlet.link": "carried", "ringlet.detail.via": "mcp"}},
		{"hook up__echo", hookA, callA, map[string]any{"ringlet.decision": "deny", "ringlet.detail.hook": "h_1", "ringlet.detail.exit_code": 2.0}},
	} {
		s, ok := byName[w.name]
		if !ok {
			t.Fatalf("no span %q; got %v", w.name, byName)
		}
		if got := s.SpanContext.TraceID().String(); got != traceA {
			t.Errorf("%s: trace %s, want %s", w.name, got, traceA)
		}
		if got := s.SpanContext.SpanID().String(); got != w.span {
			t.Errorf("%s: span %s, want %s", w.name, got, w.span)
		}
		if got := s.Parent.SpanID().String(); w.parent != "" && got != w.parent || w.parent == "" && s.Parent.IsValid() {
			t.Errorf("%s: parent %s, want %q", w.name, got, w.parent)
		}
		a := attrs(s.Attributes)
		for k, v := range w.attrs {
			if got := a[k].AsInterface(); fmt.Sprint(got) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", w.name, k, got, v)
			}
		}
		res := attrs(s.Resource.Attributes())
		if res["service.name"].AsString() != "ringlet" || res["service.version"].AsString() != "v9" {
			t.Errorf("%s: resource %v", w.name, res)
		}
	}
	if s := byName["chat claude-test"]; s.EndTime.Sub(s.StartTime) != time.Second {
		t.Errorf("chat span lasts %s, want 1s", s.EndTime.Sub(s.StartTime))
	}
	if got := len(logs.got); got != 3 {
		t.Fatalf("got %d log records, want 3", got)
	}
	for _, l := range logs.got {
		if l.TraceID().String() != traceA || !l.SpanID().IsValid() {
			t.Errorf("log %s: trace %s span %s", l.EventName(), l.TraceID(), l.SpanID())
		}
	}
	if got := logs.got[2].SpanID().String(); got != hookA {
		t.Errorf("hook log's span %s, want %s", got, hookA)
	}
}

// dump is every exported span and log record as text.
func dump(spans *tracetest.InMemoryExporter, logs *logSink) string {
	var b strings.Builder
	for _, s := range spans.GetSpans() {
		fmt.Fprintln(&b, s.Name)
		for _, a := range s.Attributes {
			fmt.Fprintln(&b, a.Key, a.Value.String())
		}
	}
	for _, l := range logs.got {
		fmt.Fprintln(&b, l.Body().String())
		l.WalkAttributes(func(a attribute.KeyValue) bool {
			fmt.Fprintln(&b, a.Key, a.Value.String())
			return true
		})
	}
	return b.String()
}

func TestDigestsNotContent(t *testing.T) {
	const canary = "CANARY-prompt-7f3e9a"
	for _, tt := range []struct {
		content string
		shown   bool
	}{{ContentDigests, false}, {ContentFull, true}} {
		t.Run(tt.content, func(t *testing.T) {
			e, spans, logs := newTest(t, tt.content)
			recs := turn(canary)
			e.Export(recs)
			if err := e.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			out := dump(spans, logs)
			if got := strings.Contains(out, canary); got != tt.shown {
				t.Errorf("canary exported: %v, want %v\n%s", got, tt.shown, out)
			}
			var d map[string]any
			_ = json.Unmarshal(recs[2].Detail, &d)
			if !strings.Contains(out, "ringlet.detail.sha256") || !strings.Contains(out, fmt.Sprintf("ringlet.detail.size %d", len(recs[2].Detail))) {
				t.Errorf("no digest or size of the detail:\n%s", out)
			}
		})
	}
}

// blocking is a span exporter that holds each export until released.
type blocking struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blocking) ExportSpans(ctx context.Context, s []sdktrace.ReadOnlySpan) error {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.n += len(s)
	b.mu.Unlock()
	return nil
}
func (*blocking) Shutdown(context.Context) error { return nil }

func TestDropWhenExporterBlocks(t *testing.T) {
	b := &blocking{entered: make(chan struct{}, 16), release: make(chan struct{})}
	e, err := New(Options{Spans: b, Logs: &logSink{}, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	rec := turn("x")[1]
	e.Export([]audit.Record{rec})
	<-b.entered // the worker is stuck in the collector
	done := make(chan struct{})
	go func() {
		// Export never waits, whatever the collector does.
		for range 7 {
			e.Export([]audit.Record{rec})
		}
		close(done)
	}()
	<-done
	if got := testutil.ToFloat64(e.dropped.WithLabelValues("queue_full")); got != 3 {
		t.Errorf("dropped %v, want 3 (7 records, room for 4)", got)
	}
	close(b.release)
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.n != 5 {
		t.Errorf("exported %d spans, want 5", b.n)
	}
	e.Export([]audit.Record{rec})
	if got := testutil.ToFloat64(e.dropped.WithLabelValues("queue_full")); got != 4 {
		t.Errorf("after shutdown: dropped %v, want 4", got)
	}
}

func TestShutdownDeadline(t *testing.T) {
	b := &blocking{entered: make(chan struct{}, 16), release: make(chan struct{})}
	e, err := New(Options{Spans: b, Logs: &logSink{}, Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	rec := turn("x")[1]
	e.Export([]audit.Record{rec, rec})
	<-b.entered
	e.Export([]audit.Record{rec, rec, rec})
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the deadline has passed: nothing more is waited for
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The batch in flight (the first two at least) and all still queued
	// were lost.
	if got := testutil.ToFloat64(e.dropped.WithLabelValues("export_failed")); got != 5 {
		t.Errorf("export_failed %v, want 5", got)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no exporters: no error")
	}
	if _, err := New(Options{Spans: tracetest.NewInMemoryExporter(), Logs: &logSink{}, Content: "all"}); err == nil {
		t.Error("content all: no error")
	}
}

// TestOTLPHTTPHeaders: the OTLP/HTTP exporters send to the endpoint's
// /v1/traces and /v1/logs, under its path, with the configured headers.
func TestOTLPHTTPHeaders(t *testing.T) {
	type hit struct{ path, auth string }
	hits := make(chan hit, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- hit{r.URL.Path, r.Header.Get("Authorization")}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/otlp/")
	if err != nil {
		t.Fatal(err)
	}
	spans, logs, err := NewOTLP(t.Context(), Collector{Endpoint: u, Protocol: ProtocolHTTP, Headers: map[string]string{"Authorization": "Bearer s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Spans: spans, Logs: logs})
	if err != nil {
		t.Fatal(err)
	}
	e.Export(turn("x")[:1])
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(hits)
	got := map[string]string{}
	for h := range hits {
		got[h.path] = h.auth
	}
	for _, p := range []string{"/otlp/v1/traces", "/otlp/v1/logs"} {
		if got[p] != "Bearer s3cret" {
			t.Errorf("%s: Authorization %q, want the header (got %v)", p, got[p], got)
		}
	}
}

func TestNewOTLPUnknownProtocol(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:4318")
	if _, _, err := NewOTLP(t.Context(), Collector{Endpoint: u, Protocol: "udp"}); err == nil {
		t.Error("protocol udp: no error")
	}
}

// A tools/call span ends with its tool.result: it lasts until the result
// and carries its size and status; an error answer is error.type.
func TestToolCallSpanCarriesItsResult(t *testing.T) {
	e, spans, logs := newTest(t, ContentDigests)
	recs := turn("x")[:2]
	t0 := recs[1].Time
	res := audit.Record{Seq: 3, Time: t0.Add(3 * time.Second), Kind: audit.KindToolResult, Profile: "work", Session: "s1", Target: "up__echo",
		Decision: audit.Error, BytesOut: 1234, Duration: 3 * time.Second, TraceID: traceA, SpanID: "3333333333333333", ParentSpanID: callA,
		Link: audit.LinkCarried, Detail: audit.DetailJSON(map[string]any{"via": "mcp", "status": "rpc_error", "code": -32603})}
	// A second call that is denied ends at once; a third's result never
	// comes: it ends at shutdown, as unknown.
	denied := recs[1]
	denied.Seq, denied.SpanID, denied.Decision, denied.Target = 4, "4444444444444444", audit.Deny, "up__other"
	lost := recs[1]
	lost.Seq, lost.SpanID, lost.Target = 5, "5555555555555555", "up__lost"
	e.Export(append(recs, res, denied, lost))
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = s
	}
	s, ok := byName["tools/call up__echo"]
	if !ok {
		t.Fatalf("no tools/call span: %v", byName)
	}
	a := attrs(s.Attributes)
	for k, v := range map[string]any{"ringlet.result.bytes": int64(1234), "ringlet.result.status": "rpc_error", "error.type": "-32603",
		"rpc.jsonrpc.error_code": int64(-32603)} {
		if got := a[k].AsInterface(); fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if s.Status.Code.String() != "Error" || s.EndTime.Sub(s.StartTime) != 3*time.Second {
		t.Errorf("span status %v, lasts %s; want Error, 3s", s.Status, s.EndTime.Sub(s.StartTime))
	}
	if _, ok := byName["tool.result up__echo"]; ok {
		t.Error("the result got a span of its own")
	}
	if d := byName["tools/call up__other"]; d.Name == "" || attrs(d.Attributes)["ringlet.result.status"].AsString() != "" {
		t.Errorf("denied call: %+v", d)
	}
	if l := byName["tools/call up__lost"]; attrs(l.Attributes)["ringlet.result.status"].AsString() != "unknown" {
		t.Errorf("call without result: %v", l.Attributes)
	}
	var resultLog bool
	for _, l := range logs.got {
		if l.EventName() == "ringlet.audit.tool.result" {
			resultLog = l.SpanID().String() == callA
		}
	}
	if !resultLog {
		t.Error("the tool.result log record is not in its call's span")
	}
}
