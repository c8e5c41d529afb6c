package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/test/bench/benchnet"
	"github.com/neullabs/ringlet/token"
)

// BenchmarkMCPToolCall measures tools/call of an echo tool on an mcp-go
// server over streamable HTTP, directly, through a bare
// httputil.ReverseProxy, through the durable-record floor (that proxy
// committing a SQLite row before forwarding and one before answering)
// and through Ringlet's /mcp (auth, audit log and metrics on), side by side
// in the same run: the p50 latency at concurrency 1, the
// throughput at concurrency 32 and the CPU per call each proxy adds
// there, the same calls in a profile whose hooks match other tools, and
// the cost of one /bin/true pre-tool-use hook. Targets: Ringlet's added
// p50 at most 1.5x the bare proxy's; at least 35% of direct throughput
// at 32; hooks that do not match the tool within 10% of no hooks.
func BenchmarkMCPToolCall(b *testing.B) {
	upstream := server.NewMCPServer("echo", "1", server.WithToolCapabilities(false))
	upstream.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(string(req.Params.RawArguments)), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(upstream))
	b.Cleanup(func() { up.CloseClientConnections(); up.Close() })
	upURL, _ := url.Parse(up.URL)
	bareProxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) }})
	b.Cleanup(func() { bareProxy.CloseClientConnections(); bareProxy.Close() })
	// The durable-record floor: the bare proxy committing one SQLite row
	// before forwarding and one before answering, the two records Ringlet
	// makes durable per call.
	floor, err := benchnet.NewMCPFloor(upURL, filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	floorProxy := httptest.NewServer(floor)
	b.Cleanup(func() { floorProxy.CloseClientConnections(); floorProxy.Close(); floor.Close() })

	s, ts, hooks := benchRinglet(b, up.URL+"/mcp")
	// Profile hooked has the same server and hooks for other tools only,
	// of both events, as a profile guarding its shell and file writes has.
	for _, h := range []hook.Hook{{Event: hook.PreToolUse, Match: "^shell__", Shell: "/bin/false"}, {Event: hook.PreToolUse, Match: "write_file$|edit_file$", Shell: "/bin/false"},
		{Event: hook.PostToolUse, Match: "^fetch__", Shell: "/bin/false"}} {
		h.Profile = "hooked"
		if _, err := hooks.Add(h); err != nil {
			b.Fatal(err)
		}
	}
	benchnet.Settle(b, s.opts.CatalogDir)
	_, tok, err := s.sessions.start(context.Background(), "work", 0, audit.ActorAdmin)
	if err != nil {
		b.Fatal(err)
	}
	_, hookedTok, err := s.sessions.start(context.Background(), "hooked", 0, audit.ActorAdmin)
	if err != nil {
		b.Fatal(err)
	}
	direct := benchClients(b, up.URL+"/mcp", "", 32)
	bare := benchClients(b, bareProxy.URL+"/mcp", "", 32)
	floored := benchClients(b, floorProxy.URL+"/mcp", "", 32)
	ringlet := benchClients(b, ts.URL+"/mcp", tok, 32)
	hooked := benchClients(b, ts.URL+"/mcp", hookedTok, 1)
	var failed atomic.Int64
	call := func(c *client.Client, tool string) {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = tool, map[string]any{"text": "hello"}
		if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
			failed.Add(1)
		}
	}
	// Throughput first: its seconds also age the hooks file past the
	// window in which a just-written file is read on every call. Each
	// target runs 2 s in all, in four rounds of 500 ms, so that drift in
	// the machine hits all alike, and the process's CPU time of each
	// target's calls is summed (the clients' and the upstream's too: the
	// direct calls' is what a proxy's is compared less).
	type run struct {
		calls float64
		cpu   time.Duration
	}
	var dRun, bRun, fRun, rRun run
	phase := func(r *run, clients []*client.Client, tool string) {
		const d = 500 * time.Millisecond
		before := processCPU(b)
		r.calls += throughput(d, clients, func(c *client.Client) { call(c, tool) }) * d.Seconds()
		r.cpu += processCPU(b) - before
	}
	for range 4 {
		phase(&dRun, direct, "echo")
		phase(&bRun, bare, "echo")
		phase(&fRun, floored, "echo")
		phase(&rRun, ringlet, "up__echo")
	}
	dTP, bTP, fTP, rTP := dRun.calls/2, bRun.calls/2, fRun.calls/2, rRun.calls/2
	// CPU per call added to the direct call's, in µs.
	addedCPU := func(r run) float64 {
		return float64(r.cpu.Nanoseconds())/1000/r.calls - float64(dRun.cpu.Nanoseconds())/1000/dRun.calls
	}
	n := max(b.N, 400)
	// Alternate in rounds so drift in the machine hits all alike.
	var d1, b1, f1, r1, k1, o1 []time.Duration
	for round := 0; round < n; round += 50 {
		d1 = append(d1, latencies(50, func() { call(direct[0], "echo") })...)
		b1 = append(b1, latencies(50, func() { call(bare[0], "echo") })...)
		f1 = append(f1, latencies(50, func() { call(floored[0], "echo") })...)
		r1 = append(r1, latencies(50, func() { call(ringlet[0], "up__echo") })...)
		k1 = append(k1, latencies(50, func() { call(hooked[0], "up__echo") })...)
		// The same calls with correlation off: what tracing costs.
		s.rec.traces.off.Store(true)
		o1 = append(o1, latencies(50, func() { call(ringlet[0], "up__echo") })...)
		s.rec.traces.off.Store(false)
	}
	if _, err := hooks.Add(hook.Hook{Profile: "work", Event: hook.PreToolUse, Shell: "/bin/true"}); err != nil {
		b.Fatal(err)
	}
	h1 := latencies(n/4, func() { call(ringlet[0], "up__echo") })

	if n := failed.Load(); n > 0 {
		b.Fatalf("%d calls failed", n)
	}
	dp, bp, fp, rp, kp, hp, op := medianOf(d1), medianOf(b1), medianOf(f1), medianOf(r1), medianOf(k1), medianOf(h1), medianOf(o1)
	b.ReportMetric(float64(rp)/float64(op), "tracing-on/off-p50")
	b.ReportMetric(float64(dp.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64((bp - dp).Microseconds()), "bare-added-p50-µs")
	b.ReportMetric(float64((rp - dp).Microseconds()), "added-p50-µs")
	b.ReportMetric(float64(rp-dp)/float64(bp-dp), "added-ratio-to-bare")
	b.ReportMetric(float64((fp - dp).Microseconds()), "floor-added-p50-µs")
	b.ReportMetric(float64(rp-dp)/float64(fp-dp), "added-ratio-to-floor")
	b.ReportMetric(dTP, "direct-c32-calls/s")
	b.ReportMetric(rTP, "ringlet-c32-calls/s")
	b.ReportMetric(bTP/dTP, "bare-c32-share")
	b.ReportMetric(fTP/dTP, "floor-c32-share")
	b.ReportMetric(rTP/dTP, "c32-share")
	b.ReportMetric(addedCPU(bRun), "bare-c32-cpu-added-µs")
	b.ReportMetric(addedCPU(fRun), "floor-c32-cpu-added-µs")
	b.ReportMetric(addedCPU(rRun), "c32-cpu-added-µs")
	b.ReportMetric(addedCPU(rRun)/addedCPU(bRun), "c32-cpu-ratio-to-bare")
	b.ReportMetric(addedCPU(rRun)/addedCPU(fRun), "c32-cpu-ratio-to-floor")
	b.ReportMetric(float64(kp)/float64(rp), "unmatched-hooks-ratio")
	b.ReportMetric(float64((hp - rp).Microseconds()), "hook-added-p50-µs")
	b.ReportMetric(0, "ns/op")
	b.Logf("p50 at concurrency 1: direct %s, bare proxy +%s, durable-record floor +%s, ringlet +%s (%.2fx the bare proxy's, %.2fx the floor's), with hooks for other tools %s (%.3fx); at 32: direct %.0f calls/s, bare %.0f%%, floor %.0f%%, ringlet %.0f%% (CPU per call added: bare %.0f µs, floor %.0f µs, ringlet %.0f µs); one /bin/true hook adds %s",
		dp, bp-dp, fp-dp, rp-dp, float64(rp-dp)/float64(bp-dp), float64(rp-dp)/float64(fp-dp), kp, float64(kp)/float64(rp), dTP, 100*bTP/dTP, 100*fTP/dTP, 100*rTP/dTP, addedCPU(bRun), addedCPU(fRun), addedCPU(rRun), hp-rp)
}

// benchRinglet is a daemon with profiles work and hooked whose MCP server
// "up" is url, with the audit log on and no hook.
func benchRinglet(b testing.TB, url string) (*Server, *httptest.Server, *hook.Store) {
	b.Helper()
	configDir, dataDir := b.TempDir(), b.TempDir()
	cat, err := profile.LoadCatalog(configDir)
	if err != nil {
		b.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "local", BaseURL: "http://127.0.0.1:9", Format: "anthropic", Auth: profile.AuthXAPIKey}); err != nil {
		b.Fatal(err)
	}
	profiles := profile.NewStore(configDir, dataDir)
	keys, err := keystore.Open(keystore.Options{Dir: configDir, Backend: credentials.BackendFile})
	if err != nil {
		b.Fatal(err)
	}
	store := mcp.NewStore(configDir)
	for _, alias := range []string{"work", "hooked"} {
		if _, err := profiles.Create(cat, profile.Profile{Alias: alias, Agent: "generic", Provider: "local", Command: []string{"true"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := keys.Set(credentials.Ref{Provider: "local", Alias: alias}, credentials.NewSecret("sk-bench")); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Add(alias, mcpserver.Config{Name: "up", URL: url}); err != nil {
			b.Fatal(err)
		}
	}
	// Committed records go where the daemon sends them (PublishRecords).
	var published atomic.Pointer[Server]
	log, err := auditlog.Open(auditlog.Options{Path: filepath.Join(b.TempDir(), "audit.db"), OnCommit: func(recs []audit.Record) {
		if s := published.Load(); s != nil {
			s.PublishRecords(recs)
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { log.Close() })
	hooks := hook.NewStore(configDir)
	s, err := New(withParts(b, Options{Token: token.FromString(testToken), TokenFile: filepath.Join(configDir, "http_token"),
		Profiles: profiles, CatalogDir: configDir, Keys: keys, Launch: launch.New(launch.Options{}), Hooks: hooks, Audit: log, AuditPath: log.Path(),
		Collectors: log.Metrics().Collectors(), MCPStore: store}))
	if err != nil {
		b.Fatal(err)
	}
	published.Store(s)
	ts := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	s.port.Store(int64(p))
	ts.Config.Handler = s.Handler()
	ts.Start()
	b.Cleanup(func() {
		s.life.stop()
		s.mcp.srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return s, ts, hooks
}

// benchClients are n initialized mcp-go clients of url, each with its own
// MCP session and connections.
func benchClients(b testing.TB, url, tok string, n int) []*client.Client {
	b.Helper()
	var out []*client.Client
	for range n {
		opts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}})}
		if tok != "" {
			opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
		}
		c, err := client.NewStreamableHttpClient(url, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		init := mcpgo.InitializeRequest{}
		init.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
		init.Params.ClientInfo = mcpgo.Implementation{Name: "bench", Version: "1"}
		if _, err := c.Initialize(context.Background(), init); err != nil {
			b.Fatalf("initialize %s: %v", url, err)
		}
		if _, err := c.ListTools(context.Background(), mcpgo.ListToolsRequest{}); err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func latencies(n int, f func()) []time.Duration {
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		f()
		out = append(out, time.Since(start))
	}
	return out
}

func medianOf(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// throughput runs f on every client concurrently for d and returns calls
// per second.
func throughput(d time.Duration, clients []*client.Client, f func(*client.Client)) float64 {
	var calls atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				f(c)
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(calls.Load()) / d.Seconds()
}
