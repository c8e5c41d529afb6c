package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/profile"
)

// BenchmarkNowPage measures one request for a page of the Now page (10
// rows, so that both render as many, and the summary of all, through
// the whole handler chain and the login) with 10 live sessions and with
// 1,000, interleaved in the same run, and reports their ratio: paged and summed by the daemon, the
// page costs about the same however many sessions are live. For
// reference it reports too what rendering every one of the 1,000 rows
// costs (what the page fetched before it was paged).
func BenchmarkNowPage(b *testing.B) {
	type world struct {
		s           *Server
		h           http.Handler
		cookie, key string
	}
	mk := func(n int) world {
		s, err := New(withParts(b, Options{}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.life.stop)
		b.Cleanup(s.mcp.srv.Close)
		s.port.Store(testPort)
		start := time.Now().Add(-time.Hour)
		for i := range n {
			alias := fmt.Sprintf("p%d", i%7)
			now := start.Add(time.Duration(i/2) * time.Second)
			id := fmt.Sprintf("s_%016x", i)
			sess := &session{ID: id, Profile: profile.Profile{Alias: alias, Agent: "claude", Provider: "local"}, Provider: profile.Provider{ID: "local"},
				hash: sha256.Sum256([]byte(id)), Created: now, Deadline: now.Add(24 * time.Hour), clock: s.sessions.clock, Sandboxed: i%3 == 0}
			sess.ctx, sess.cancel = context.WithCancelCause(context.Background())
			sess.acts.usd, sess.acts.priced, sess.acts.last, sess.acts.lastTime = 0.01, true, lastAction{kind: "provider.request", model: "m"}, now
			s.sessions.add(sess)
		}
		code, _ := s.logins.NewCode()
		cookie, key, _, err := s.logins.Exchange(code)
		if err != nil {
			b.Fatal(err)
		}
		return world{s: s, h: s.Handler(), cookie: cookie, key: key}
	}
	few, many := mk(10), mk(1000)
	page := func(w world, n int) time.Duration {
		start := time.Now()
		for range n {
			r := httptest.NewRequest(http.MethodGet, "http://"+testHost+"/ui/now/sessions?limit=10", nil)
			r.Header.Set("Cookie", dashboard.CookieName(testPort)+"="+w.cookie)
			r.Header.Set(dashboard.KeyHeader, w.key)
			rec := httptest.NewRecorder()
			w.h.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				b.Fatalf("got %d %s", rec.Code, rec.Body)
			}
		}
		return time.Since(start)
	}
	every := func(n int) time.Duration {
		start := time.Now()
		for range n {
			dashboard.RenderSessionRows(httptest.NewRecorder(), many.s.ui.now(context.Background(), nowQuery{limit: 1 << 30}))
		}
		return time.Since(start)
	}
	page(few, 20)
	page(many, 20)
	every(2)
	b.ResetTimer()
	var tFew, tMany, tEvery time.Duration
	const block = 32
	everyN := 0
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		tFew += page(few, n)
		tMany += page(many, n)
		if done%(block*8) == 0 {
			tEvery += every(1)
			everyN++
		}
	}
	b.StopTimer()
	fewNs := float64(tFew.Nanoseconds()) / float64(b.N)
	manyNs := float64(tMany.Nanoseconds()) / float64(b.N)
	b.ReportMetric(fewNs/1e3, "10-sessions-µs/page")
	b.ReportMetric(manyNs/1e3, "1000-sessions-µs/page")
	b.ReportMetric(manyNs/fewNs, "1000-vs-10-ratio")
	b.ReportMetric(float64(tEvery.Nanoseconds())/float64(everyN)/1e3, "every-1000-rows-µs")
	b.ReportMetric(0, "ns/op")
}
