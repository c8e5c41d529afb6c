package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/otelexport"
)

// switchedExport passes records to the exporter while on.
type switchedExport struct {
	on atomic.Bool
	e  *otelexport.Exporter
}

func (s *switchedExport) Export(recs []audit.Record) {
	if s.on.Load() {
		s.e.Export(recs)
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
	var got atomic.Int64
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
	sw := &switchedExport{e: e}
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
	if err := e.Shutdown(b.Context()); err != nil || got.Load() == 0 {
		b.Fatalf("nothing reached the collector (%v)", err)
	}
	pOn, pOff := medianOf(onL), medianOf(offL)
	b.ReportMetric(us(pOff), "off-p50-µs")
	b.ReportMetric(us(pOn), "on-p50-µs")
	b.ReportMetric(float64(pOn)/float64(pOff), "on/off-p50")
	b.ReportMetric(0, "ns/op")
}
