package gateway

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProxyTracing: the cost of correlation on the provider proxy.
// One client sends the same requests through one daemon with traces on
// and off, alternating in rounds of 50 so drift in the machine hits both
// alike: the benchmark's plain text answer (benchnet), and a tool loop
// (each answer a tool_use, each request carrying the last one's
// tool_result back, the conversation growing). Reported: p50 of each and
// the ratio on/off. Target: at most 1.05.
func BenchmarkProxyTracing(b *testing.B) {
	n := max(b.N, 400)
	b.Run("text", func(b *testing.B) {
		bs := newBenchSetup(b, 0)
		post := func() {
			if err := bs.bench.Post(bs.ringlet); err != nil {
				b.Fatal(err)
			}
		}
		reportTracing(b, bs, n, post, post)
	})
	b.Run("tool-loop", func(b *testing.B) {
		var id atomic.Int64
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Reading it."},{"type":"tool_use","id":"toolu_bench%d","name":"mcp__ringlet__fs__read_file","input":{"path":"/src/main.go"}}],"stop_reason":"tool_use","usage":{"input_tokens":1200,"output_tokens":40}}`, id.Add(1))
		})
		bs := newBenchSetupWith(b, up)
		// The conversation so far: ~64 KiB of earlier turns, then the
		// result of the last tool_use.
		history := `{"role":"user","content":"` + benchPad(64<<10) + `"}`
		turn := func() {
			last := id.Load()
			body := fmt.Sprintf(`{"model":"claude-bench","max_tokens":100,"messages":[%s,{"role":"assistant","content":[{"type":"tool_use","id":"toolu_bench%d","name":"mcp__ringlet__fs__read_file","input":{"path":"/src/main.go"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_bench%d","content":"package main"}]}]}`, history, last, last)
			resp := bs.post(b, bs.ringlet, []byte(body))
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		reportTracing(b, bs, n, turn, turn)
	})
}

func benchPad(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// reportTracing measures n requests each way, alternating.
func reportTracing(b *testing.B, bs *benchSetup, n int, on, off func()) {
	t := bs.srv.rec.traces
	for range 20 { // warm both ways
		t.off.Store(true)
		off()
		t.off.Store(false)
		on()
	}
	var onL, offL []time.Duration
	b.ResetTimer()
	for round := 0; round < n; round += 50 {
		t.off.Store(true)
		offL = append(offL, latencies(50, off)...)
		t.off.Store(false)
		onL = append(onL, latencies(50, on)...)
	}
	b.StopTimer()
	pOn, pOff := medianOf(onL), medianOf(offL)
	b.ReportMetric(us(pOff), "off-p50-µs")
	b.ReportMetric(us(pOn), "on-p50-µs")
	b.ReportMetric(float64(pOn)/float64(pOff), "on/off-p50")
	b.ReportMetric(0, "ns/op")
}
