package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/test/bench/benchnet"
	"github.com/neullabs/ringlet/token"
)

type benchSetup struct {
	srv                   *Server
	direct, bare, ringlet string // base URLs
	token                 string // session token for ringlet
	client                *http.Client
	bench                 *benchnet.Client
}

func newBenchSetup(b testing.TB, sseGap time.Duration) *benchSetup {
	b.Helper()
	return newBenchSetupWith(b, benchnet.Upstream(sseGap))
}

// newBenchSetupWith is newBenchSetup with upstream as the provider.
func newBenchSetupWith(b testing.TB, upstream http.Handler) *benchSetup {
	b.Helper()
	return newProxySetup(b, upstream, "anthropic", profile.AuthXAPIKey)
}

// newProxySetup is newBenchSetupWith with a provider of the given wire
// format and auth scheme.
func newProxySetup(b testing.TB, upstream http.Handler, format, auth string) *benchSetup {
	b.Helper()
	dir := b.TempDir()
	up := httptest.NewServer(upstream)
	b.Cleanup(up.Close)

	// The bar: a bare ReverseProxy that only adds the key header.
	upURL, _ := url.Parse(up.URL)
	bare := httptest.NewServer(benchnet.Bare(upURL))
	b.Cleanup(bare.Close)

	// Ringlet with everything on: file credentials, audit, metrics, usage.
	keys, err := keystore.Open(keystore.Options{Dir: dir, Backend: credentials.BackendFile})
	if err != nil {
		b.Fatal(err)
	}
	cat, err := profile.LoadCatalog(dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "fake", BaseURL: up.URL, Format: format, Auth: auth}); err != nil {
		b.Fatal(err)
	}
	profiles := profile.NewStore(dir, dir)
	agent := "claude"
	if format == "openai" {
		agent = "codex"
	}
	if _, err := profiles.Create(cat, profile.Profile{Alias: "bench", Agent: agent, Provider: "fake"}); err != nil {
		b.Fatal(err)
	}
	if _, err := keys.Set(credentials.Ref{Provider: "fake", Alias: "bench"}, credentials.NewSecret(benchnet.Key)); err != nil {
		b.Fatal(err)
	}
	// Committed records go where the daemon sends them (PublishRecords).
	var published atomic.Pointer[Server]
	log, err := auditlog.Open(auditlog.Options{Path: dir + "/audit.db", OnCommit: func(recs []audit.Record) {
		if s := published.Load(); s != nil {
			s.PublishRecords(recs)
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { log.Close() })
	tok, _ := token.Generate()
	s, err := New(withParts(b, Options{Token: tok, TokenFile: dir + "/http_token", Keys: keys, Profiles: profiles, Launch: launch.New(launch.Options{}), CatalogDir: dir, Hooks: hook.NewStore(dir),
		Audit: log, AuditPath: log.Path(), AuditWritable: log.Writable, HMAC: audit.NewHMAC([]byte("k")), Collectors: log.Metrics().Collectors()}))
	if err != nil {
		b.Fatal(err)
	}
	published.Store(s)
	benchnet.Settle(b, dir)
	ln := httptest.NewUnstartedServer(nil)
	s.port.Store(int64(ln.Listener.Addr().(*net.TCPAddr).Port))
	ln.Config.Handler = s.Handler()
	ln.Start()
	b.Cleanup(ln.Close)
	_, sessTok, err := s.sessions.start(context.Background(), "bench", time.Hour, audit.ActorAdmin)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	return &benchSetup{srv: s, direct: up.URL, bare: bare.URL, ringlet: ln.URL + "/proxy", token: sessTok, client: hc,
		bench: &benchnet.Client{HTTP: hc, Upstream: up.URL, Token: sessTok}}
}

func (bs *benchSetup) post(b testing.TB, base string, body []byte) *http.Response {
	req, _ := http.NewRequest("POST", base+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if base == bs.direct {
		req.Header.Set("X-Api-Key", benchnet.Key)
	} else {
		req.Header.Set("X-Api-Key", bs.token)
	}
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := bs.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: got status %d (%s), want 200", base, resp.StatusCode, data)
	}
	return resp
}

func p50(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// withFloor starts the durable-record floor (benchnet.Floor) in front of
// the setup's upstream and returns its base URL.
func (bs *benchSetup) withFloor(b *testing.B) string {
	u, _ := url.Parse(bs.direct)
	f, err := benchnet.NewFloor(u, filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(f)
	b.Cleanup(func() { srv.Close(); f.Close() })
	return srv.URL
}

// BenchmarkProxyLatency: one client, non-streaming ~1 KB POSTs, straight
// to the upstream, through a bare ReverseProxy, through the
// durable-record floor, and through Ringlet, interleaved. Target:
// Ringlet's added p50 at most 1.3x the floor's.
func BenchmarkProxyLatency(b *testing.B) {
	bs := newBenchSetup(b, 0)
	floor := bs.withFloor(b)
	b.ResetTimer()
	lat, err := bs.bench.LatencyP50(1, b.N, []string{bs.direct, bs.bare, floor, bs.ringlet})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	benchnet.ReportLatency(b, lat)
}

// BenchmarkProxyThroughput: 32 concurrent clients for each target in
// turn, and the CPU time each run takes. All of it runs in this process,
// so a proxy's CPU per request is its run's less the direct run's (the
// client and the upstream). Targets: Ringlet's share of direct at least
// the bare proxy's, its CPU per request at most 1.5x the bare proxy's.
func BenchmarkProxyThroughput(b *testing.B) {
	bs := newBenchSetup(b, 0)
	floor := bs.withFloor(b)
	const workers = 32
	per := max(b.N/workers, 1)
	rate := func(base string) (float64, time.Duration) {
		before := processCPU(b)
		r, err := bs.bench.Rate(base, workers, per)
		if err != nil {
			b.Fatal(err)
		}
		return r, processCPU(b) - before
	}
	for _, t := range []string{bs.direct, bs.bare, floor, bs.ringlet} {
		rate(t) // warm: 32 connections each
	}
	b.ResetTimer()
	d, dCPU := rate(bs.direct)
	bare, bareCPU := rate(bs.bare)
	fl, floorCPU := rate(floor)
	r, rCPU := rate(bs.ringlet)
	b.StopTimer()
	benchnet.ReportRates(b, d, bare, fl, r)
	added := func(cpu time.Duration) float64 {
		return float64((cpu - dCPU).Nanoseconds()) / 1000 / float64(workers*per)
	}
	benchnet.ReportCPU(b, added(bareCPU), added(floorCPU), added(rCPU))
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProxySSE: a 200-event stream (1 ms apart) straight and through
// Ringlet. Targets: added time to first event at most 1 ms at p50; total
// stream time within 5% of direct.
func BenchmarkProxySSE(b *testing.B) {
	bs := newBenchSetup(b, time.Millisecond)
	body := benchnet.StreamBody
	run := func(base string) (first, total time.Duration) {
		start := time.Now()
		resp := bs.post(b, base, body)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		events := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				if events == 0 {
					first = time.Since(start)
				}
				events++
			}
		}
		if events != benchnet.StreamEvents {
			b.Fatalf("%s: got %d events, want %d", base, events, benchnet.StreamEvents)
		}
		return first, time.Since(start)
	}
	var df, dt, rf, rt []time.Duration
	b.ResetTimer()
	for range b.N {
		f, t := run(bs.direct)
		df, dt = append(df, f), append(dt, t)
		f, t = run(bs.ringlet)
		rf, rt = append(rf, f), append(rt, t)
	}
	b.StopTimer()
	b.ReportMetric(us(p50(rf)-p50(df)), "added-first-event-µs")
	b.ReportMetric(float64(p50(dt).Milliseconds()), "direct-stream-ms")
	b.ReportMetric(float64(p50(rt).Milliseconds()), "ringlet-stream-ms")
	b.ReportMetric(float64(p50(rt))/float64(p50(dt)), "stream-time-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkProxyAllocs: the heap allocations each proxy adds to one
// non-streaming request, counted from the runtime's totals over runs of
// one client straight to the upstream, through the bare proxy and
// through Ringlet (all in this process, so a proxy's share is its run's
// less the direct run's). Target: Ringlet's allocations per request
// halved from 72 of its own (166 in all) before the work of issue #18.
func BenchmarkProxyAllocs(b *testing.B) {
	bs := newBenchSetup(b, 0)
	run := func(base string) (allocs, bytes float64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range b.N {
			if err := bs.bench.Post(base); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / float64(b.N), float64(after.TotalAlloc-before.TotalAlloc) / float64(b.N)
	}
	for _, t := range []string{bs.direct, bs.bare, bs.ringlet} {
		if err := bs.bench.Post(t); err != nil { // warm: a connection each
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	dA, dB := run(bs.direct)
	bA, bB := run(bs.bare)
	rA, rB := run(bs.ringlet)
	b.StopTimer()
	b.ReportMetric(dA, "direct-allocs/req")
	b.ReportMetric(bA-dA, "bare-allocs/req")
	b.ReportMetric(rA-dA, "ringlet-allocs/req")
	b.ReportMetric((bB-dB)/1024, "bare-KiB/req")
	b.ReportMetric((rB-dB)/1024, "ringlet-KiB/req")
	b.ReportMetric((rA-dA)/(bA-dA), "allocs-to-bare")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkProxyRequestAllocs: one client's requests through Ringlet
// alone, with -benchmem's allocs/op and B/op of the whole request
// (client and upstream included, ~97 allocations of them; see
// BenchmarkProxyAllocs for Ringlet's share). Its -memprofile holds no
// other proxy's allocations, which is what the breakdown in
// docs/performance.md reads.
func BenchmarkProxyRequestAllocs(b *testing.B) {
	bs := newBenchSetup(b, 0)
	for range 50 { // warm: the connection, the session's shared state, the pools
		if err := bs.bench.Post(bs.ringlet); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := bs.bench.Post(bs.ringlet); err != nil {
			b.Fatal(err)
		}
	}
}
