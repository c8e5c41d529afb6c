package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/neullabs/ringlet/token"
)

// BenchmarkMiddlewareChain measures what the daemon's middleware (recover,
// metrics, idle tracking, Host/Origin guard, token check) adds to one
// authenticated GET, against the same handler behind a bare
// http.ServeMux, in the same run. It reports both and the difference as
// added-ns/req.
func BenchmarkMiddlewareChain(b *testing.B) {
	tok, err := token.Generate()
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(withParts(b, Options{Token: tok, TokenFile: b.TempDir() + "/http_token"}))
	if err != nil {
		b.Fatal(err)
	}
	s.port.Store(8765)
	chain := s.Handler()

	bare := http.NewServeMux()
	bare.HandleFunc("GET /api/version", s.handleVersion)

	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8765/api/version", nil)
		r.Header.Set("Authorization", "Bearer "+tok.Value())
		return r
	}
	run := func(h http.Handler, n int) time.Duration {
		r := newReq()
		start := time.Now()
		for range n {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("got status %d, want 200", w.Code)
			}
		}
		return time.Since(start)
	}
	// Warm both paths so neither pays first-use costs inside the timing.
	run(chain, 100)
	run(bare, 100)
	b.ResetTimer()
	// Interleave in blocks so both see the same machine conditions.
	var tBare, tChain time.Duration
	const block = 256
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		tBare += run(bare, n)
		tChain += run(chain, n)
	}
	b.StopTimer()
	bareNs := float64(tBare.Nanoseconds()) / float64(b.N)
	chainNs := float64(tChain.Nanoseconds()) / float64(b.N)
	b.ReportMetric(bareNs, "bare-ns/req")
	b.ReportMetric(chainNs, "ringlet-ns/req")
	b.ReportMetric(chainNs-bareNs, "added-ns/req")
	b.ReportMetric(chainNs/bareNs, "ratio")
}
