package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
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
	"github.com/neullabs/ringlet/token"
)

// BenchmarkMCPToolCall measures tools/call of an echo tool on an mcp-go
// server over streamable HTTP, directly and through Ringlet's /mcp (auth,
// audit log and metrics on, no hook), side by side in the same run: the
// p50 latency at concurrency 1, the throughput at concurrency 32, and the
// cost of one /bin/true pre-tool-use hook.
func BenchmarkMCPToolCall(b *testing.B) {
	upstream := server.NewMCPServer("echo", "1", server.WithToolCapabilities(false))
	upstream.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(string(req.Params.RawArguments)), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(upstream))
	b.Cleanup(func() { up.CloseClientConnections(); up.Close() })

	s, ts, hooks := benchRinglet(b, up.URL+"/mcp")
	_, tok, err := s.sessions.start(context.Background(), "work", 0, audit.ActorAdmin)
	if err != nil {
		b.Fatal(err)
	}
	direct := benchClients(b, up.URL+"/mcp", "", 32)
	ringlet := benchClients(b, ts.URL+"/mcp", tok, 32)
	var failed atomic.Int64
	call := func(c *client.Client, tool string) {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = tool, map[string]any{"text": "hello"}
		if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
			failed.Add(1)
		}
	}
	n := max(b.N, 400)
	// Alternate in rounds so drift in the machine hits both alike.
	var d1, r1 []time.Duration
	for round := 0; round < n; round += 50 {
		d1 = append(d1, latencies(50, func() { call(direct[0], "echo") })...)
		r1 = append(r1, latencies(50, func() { call(ringlet[0], "up__echo") })...)
	}
	dTP := throughput(2*time.Second, direct, func(c *client.Client) { call(c, "echo") })
	rTP := throughput(2*time.Second, ringlet, func(c *client.Client) { call(c, "up__echo") })
	if _, err := hooks.Add(hook.Hook{Profile: "work", Event: hook.PreToolUse, Shell: "/bin/true"}); err != nil {
		b.Fatal(err)
	}
	h1 := latencies(n/4, func() { call(ringlet[0], "up__echo") })

	if n := failed.Load(); n > 0 {
		b.Fatalf("%d calls failed", n)
	}
	dp, rp, hp := medianOf(d1), medianOf(r1), medianOf(h1)
	b.ReportMetric(float64(dp.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(rp.Microseconds()), "ringlet-p50-µs")
	b.ReportMetric(float64((rp - dp).Microseconds()), "added-p50-µs")
	b.ReportMetric(dTP, "direct-c32-calls/s")
	b.ReportMetric(rTP, "ringlet-c32-calls/s")
	b.ReportMetric(100*rTP/dTP, "c32-%-of-direct")
	b.ReportMetric(float64((hp - rp).Microseconds()), "hook-added-p50-µs")
	b.Logf("p50 at concurrency 1: direct %s, through ringlet %s (+%s); at 32: direct %.0f calls/s, ringlet %.0f (%.0f%%); one /bin/true hook adds %s",
		dp, rp, rp-dp, dTP, rTP, 100*rTP/dTP, hp-rp)
}

// benchRinglet is a daemon with profile work whose MCP server "up" is url,
// with the audit log on and no hook.
func benchRinglet(b *testing.B, url string) (*Server, *httptest.Server, *hook.Store) {
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
	if _, err := profiles.Create(cat, profile.Profile{Alias: "work", Agent: "generic", Provider: "local", Command: []string{"true"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := keys.Set(credentials.Ref{Provider: "local", Alias: "work"}, credentials.NewSecret("sk-bench")); err != nil {
		b.Fatal(err)
	}
	store := mcp.NewStore(configDir)
	if _, err := store.Add("work", mcpserver.Config{Name: "up", URL: url}); err != nil {
		b.Fatal(err)
	}
	log, err := auditlog.Open(auditlog.Options{Path: filepath.Join(b.TempDir(), "audit.db")})
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
func benchClients(b *testing.B, url, tok string, n int) []*client.Client {
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
