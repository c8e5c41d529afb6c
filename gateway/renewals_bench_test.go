package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
)

// BenchmarkSessionRenewal measures an authenticated request of a durable
// session ('profiles env') that renews it, so that the session store
// hears of the renewal (a file written and synced to disk), through the
// daemon's whole handler chain: with the renewal written off the
// request's path (renewals), and, as the baseline in the same run, with
// the same writer run on the request's path, as renewals were written
// before. The two take turns in blocks; it reports each one's median per
// request and their ratio.
func BenchmarkSessionRenewal(b *testing.B) {
	type world struct {
		w    *slWorld
		sess *session
		req  func() *http.Request
		took []time.Duration
	}
	mk := func(inline bool) *world {
		w := newSlWorld(b, newSlDirs(b), &hkAuditor{}, time.Time{})
		if inline {
			w.s.sessions.renewals.spawn = func(f func()) { f() }
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "http://"+testHost+"/api/sessions", strings.NewReader(`{"profile":"work"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("start a session: got %d %s", rec.Code, rec.Body)
		}
		var st api.SessionStarted
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			b.Fatal(err)
		}
		sess := w.s.sessions.get(st.ID)
		if sess == nil || !sess.durable || sess.idle <= 0 {
			b.Fatalf("session %q: want a durable session with an idle timeout", st.ID)
		}
		return &world{w: w, sess: sess, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://"+testHost+"/session", nil)
			r.Header.Set("Authorization", "Bearer "+st.Token)
			return r
		}}
	}
	run := func(x *world, n int, keep bool) {
		for range n {
			// Its renewal is due: the store has not heard of it for
			// longer than saveGrain.
			x.sess.saved.Store(0)
			r := x.req()
			rec := httptest.NewRecorder()
			start := time.Now()
			x.w.h.ServeHTTP(rec, r)
			d := time.Since(start)
			if rec.Code != http.StatusOK {
				b.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			if keep {
				x.took = append(x.took, d)
			}
		}
		// The writer's last write is not the next block's to share the
		// disk with.
		x.w.s.sessions.renewals.wait()
	}
	before, after := mk(true), mk(false)
	run(before, 10, false)
	run(after, 10, false)
	b.ResetTimer()
	const block = 16
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		run(before, n, true)
		run(after, n, true)
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds()) / 1e3
	}
	bp, ap := p50(before.took), p50(after.took)
	b.ReportMetric(bp, "on-path-p50-µs/req")
	b.ReportMetric(ap, "off-path-p50-µs/req")
	b.ReportMetric(ap/bp, "off-vs-on-ratio")
	b.ReportMetric(0, "ns/op")
}
