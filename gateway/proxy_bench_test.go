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
	"slices"
	"strings"
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
	log, err := auditlog.Open(auditlog.Options{Path: dir + "/audit.db"})
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

// BenchmarkProxyLatency: one client, non-streaming ~1 KB POSTs, straight
// to the upstream, through a bare ReverseProxy, and through Ringlet,
// interleaved. Target: Ringlet's added p50 at most 1.3x the bare proxy's.
func BenchmarkProxyLatency(b *testing.B) {
	bs := newBenchSetup(b, 0)
	b.ResetTimer()
	lat, err := bs.bench.LatencyP50(1, b.N, []string{bs.direct, bs.bare, bs.ringlet})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	benchnet.ReportLatency(b, lat)
}

// BenchmarkProxyThroughput: 32 concurrent clients for each target in turn.
// Target: Ringlet keeps at least 30% of direct throughput.
func BenchmarkProxyThroughput(b *testing.B) {
	bs := newBenchSetup(b, 0)
	rate := func(base string) float64 {
		const workers = 32
		r, err := bs.bench.Rate(base, workers, max(b.N/workers, 1))
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	b.ResetTimer()
	d, bare, r := rate(bs.direct), rate(bs.bare), rate(bs.ringlet)
	b.StopTimer()
	benchnet.ReportRates(b, d, bare, r)
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
