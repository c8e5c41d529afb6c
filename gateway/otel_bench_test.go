package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/otelexport"
)

// switchedExport passes records to the exporter while on.
type switchedExport struct {
	on  atomic.Bool
	e   *otelexport.Exporter
	got *atomic.Int64 // requests the collector received
}

func (s *switchedExport) Export(recs []audit.Record) {
	if s.on.Load() {
		s.e.Export(recs)
	}
}

// newSwitchedExport is an exporter (off until switched on) to a local
// OTLP/HTTP collector that counts what reaches it.
func newSwitchedExport(b *testing.B) *switchedExport {
	got := new(atomic.Int64)
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(col.Close)
	u, _ := url.Parse(col.URL)
	spans, logs, err := otelexport.NewOTLP(b.Context(), otelexport.Collector{Endpoint: u, Protocol: otelexport.ProtocolHTTP})
	if err != nil {
		b.Fatal(err)
	}
	e, err := otelexport.New(otelexport.Options{Spans: spans, Logs: logs})
	if err != nil {
		b.Fatal(err)
	}
	return &switchedExport{e: e, got: got}
}

// shutdown flushes the exporter and fails unless something reached the
// collector.
func (s *switchedExport) shutdown(b *testing.B) {
	if err := s.e.Shutdown(b.Context()); err != nil || s.got.Load() == 0 {
		b.Fatalf("nothing reached the collector (%v)", err)
	}
}

// BenchmarkProxyOTelExport: the cost of OpenTelemetry export on the
// provider proxy. One client sends the benchmark's requests through one
// daemon (audit log, traces and metrics on) with the export of its
// records to a local OTLP/HTTP collector on and off, alternating in
// rounds of 50. Reported: p50 of each and the ratio on/off. Target: at
// most 1.05.
func BenchmarkProxyOTelExport(b *testing.B) {
	n := max(b.N, 400)
	bs := newBenchSetup(b, 0)
	sw := newSwitchedExport(b)
	bs.srv.rec.export = sw
	post := func() {
		if err := bs.bench.Post(bs.ringlet); err != nil {
			b.Fatal(err)
		}
	}
	for range 20 { // warm both ways
		sw.on.Store(false)
		post()
		sw.on.Store(true)
		post()
	}
	var onL, offL []time.Duration
	b.ResetTimer()
	for round := 0; round < n; round += 50 {
		sw.on.Store(false)
		offL = append(offL, latencies(50, post)...)
		sw.on.Store(true)
		onL = append(onL, latencies(50, post)...)
	}
	b.StopTimer()
	sw.shutdown(b)
	pOn, pOff := medianOf(onL), medianOf(offL)
	b.ReportMetric(us(pOff), "off-p50-µs")
	b.ReportMetric(us(pOn), "on-p50-µs")
	b.ReportMetric(float64(pOn)/float64(pOff), "on/off-p50")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMCPOTelExport: the cost of OpenTelemetry export, and of the
// tool.result record, on MCP tools/call. One client calls an echo tool
// through one daemon's /mcp (audit log, traces and metrics on) in rounds
// of 50, alternating: export to a local OTLP/HTTP collector off, on, and
// off without tool.result records. Reported: p50 of each, the ratio
// export on/off (target at most 1.05) and tool.result's added p50.
func BenchmarkMCPOTelExport(b *testing.B) {
	upstream := server.NewMCPServer("echo", "1", server.WithToolCapabilities(false))
	upstream.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(string(req.Params.RawArguments)), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(upstream))
	b.Cleanup(func() { up.CloseClientConnections(); up.Close() })
	s, ts, _ := benchRinglet(b, up.URL+"/mcp")
	_, tok, err := s.sessions.start(context.Background(), "work", 0, audit.ActorAdmin)
	if err != nil {
		b.Fatal(err)
	}
	c := benchClients(b, ts.URL+"/mcp", tok, 1)[0]
	sw := newSwitchedExport(b)
	s.rec.export = sw
	var failed atomic.Int64
	call := func() {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "up__echo", map[string]any{"text": "hello"}
		if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
			failed.Add(1)
		}
	}
	for range 20 { // warm every way
		sw.on.Store(false)
		call()
		sw.on.Store(true)
		call()
	}
	n := max(b.N, 400)
	var onL, offL, noResL []time.Duration
	b.ResetTimer()
	for round := 0; round < n; round += 50 {
		sw.on.Store(false)
		offL = append(offL, latencies(50, call)...)
		sw.on.Store(true)
		onL = append(onL, latencies(50, call)...)
		sw.on.Store(false)
		s.rec.noResults.Store(true)
		noResL = append(noResL, latencies(50, call)...)
		s.rec.noResults.Store(false)
	}
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d calls failed", n)
	}
	sw.shutdown(b)
	pOn, pOff, pNoRes := medianOf(onL), medianOf(offL), medianOf(noResL)
	b.ReportMetric(us(pOff), "off-p50-µs")
	b.ReportMetric(us(pOn), "on-p50-µs")
	b.ReportMetric(float64(pOn)/float64(pOff), "on/off-p50")
	b.ReportMetric(us(pOff-pNoRes), "result-record-added-p50-µs")
	b.ReportMetric(float64(pOff)/float64(pNoRes), "result-record-ratio")
	b.ReportMetric(0, "ns/op")
}
