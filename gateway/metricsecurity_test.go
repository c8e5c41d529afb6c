package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
)

// TestBoundedLabel: past its cap a label's new values are "other"; the
// values it kept stay theirs; a value is valid UTF-8 and clipped.
func TestBoundedLabel(t *testing.T) {
	t.Parallel()
	b := newBoundedLabel(3)
	for i, c := range []struct{ in, want string }{
		{"a", "a"}, {"b", "b"}, {"a", "a"}, {"c", "c"}, {"d", otherLabelValue}, {"b", "b"}, {"", otherLabelValue},
	} {
		if got := b.value(c.in); got != c.want {
			t.Errorf("value %d (%q): got %q, want %q", i, c.in, got, c.want)
		}
	}
	long := newBoundedLabel(3).value(strings.Repeat("é", 100) + "\xff")
	if len(long) > maxLabelValue {
		t.Errorf("long value: got %d bytes, want at most %d", len(long), maxLabelValue)
	}
	if got := newBoundedLabel(3).value("x\xffy"); got != "x\uFFFDy" {
		t.Errorf("invalid UTF-8: got %q, want it replaced", got)
	}
}

// TestEgressRefusedCountedAndRecorded: on a session socket a CONNECT to a
// host the profile does not allow and a plain-HTTP proxy request are
// refused with a reason that says how to change it, recorded as
// sandbox.violation and counted; the hosts a sandbox tries are bounded
// in the metric's labels.
func TestEgressRefusedCountedAndRecorded(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	sess, _, err := w.s.sessions.start(t.Context(), "work", 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	sock := w.s.socketHandler(sess)
	do := func(r *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		sock.ServeHTTP(rec, r)
		return rec
	}
	connect := httptest.NewRequest(http.MethodConnect, "evil.example:443", nil)
	connect.Host = "evil.example:443"
	if rec := do(connect); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--allow-host evil.example") {
		t.Errorf("CONNECT evil.example:443: got %d %s, want 403 saying how to allow it", rec.Code, rec.Body)
	}
	plain := httptest.NewRequest(http.MethodGet, "http://plain.example/x?secret=1", nil)
	if rec := do(plain); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "only by HTTPS") {
		t.Errorf("GET http://plain.example/x: got %d %s, want 403 saying the sandbox reaches other hosts only by HTTPS", rec.Code, rec.Body)
	}
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindSandboxViolation}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range recs {
		got[r.Target] = r.Decision == audit.Deny && r.Session == sess.ID && strings.Contains(string(r.Detail), `"change"`)
		if strings.Contains(string(r.Detail), "secret") {
			t.Errorf("sandbox.violation of %s: detail %s holds the request's query", r.Target, r.Detail)
		}
	}
	if !got["evil.example:443"] || !got["plain.example:80"] {
		t.Errorf("sandbox.violation records: got %v, want evil.example:443 and plain.example:80 refused, each saying how to change it", got)
	}
	m := w.s.metrics.security
	if v := testutil.ToFloat64(m.egress.WithLabelValues("work", otherLabelValue, "refused")); v != 2 {
		t.Errorf("ringlet_sandbox_egress_total{host=other,refused}: got %v, want 2 (evil.example and plain.example: a refused host is no label)", v)
	}
	if body := metricsText(t, m.egress); strings.Contains(body, "evil.example") {
		t.Errorf("ringlet_sandbox_egress_total has a refused host as a label:\n%s", body)
	}
	if v := testutil.ToFloat64(m.violations.WithLabelValues("work", "plain_http")); v != 1 {
		t.Errorf("ringlet_sandbox_violations_total{kind=plain_http}: got %v, want 1", v)
	}
	for i := range 2 * boundedValues {
		host := fmt.Sprintf("h%d.example:443", i)
		r := httptest.NewRequest(http.MethodConnect, host, nil)
		r.Host = host
		do(r)
	}
	if n := testutil.CollectAndCount(m.egress); n != 1 {
		t.Errorf("ringlet_sandbox_egress_total series after %d refused hosts: got %d, want 1 (other)", 2*boundedValues+2, n)
	}
	if v := testutil.ToFloat64(m.egress.WithLabelValues("work", otherLabelValue, "refused")); v != 2*boundedValues+2 {
		t.Errorf("refused hosts: got %v counted as other, want %d", v, 2*boundedValues+2)
	}
}

// TestMCPAndHookSeries: a tool call through /mcp is counted by profile,
// server, tool and decision, and each hook run by its id and decision,
// with its time.
func TestMCPAndHookSeries(t *testing.T) {
	t.Parallel()
	upstream := server.NewMCPServer("echo", "1", server.WithToolCapabilities(false))
	for _, name := range []string{"echo", "danger"} {
		upstream.AddTool(mcpgo.NewTool(name, mcpgo.WithString("text")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultText("ok"), nil
		})
	}
	up := httptest.NewServer(server.NewStreamableHTTPServer(upstream))
	t.Cleanup(func() { up.CloseClientConnections(); up.Close() })
	s, ts, hooks := benchRinglet(t, up.URL+"/mcp")
	guard, err := hooks.Add(hook.Hook{Profile: "work", Event: hook.PreToolUse, Match: "__danger$", Shell: "echo no danger >&2; exit 1"})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := s.sessions.start(t.Context(), "work", 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	c := benchClients(t, ts.URL+"/mcp", tok, 1)[0]
	for _, name := range []string{"up__echo", "up__danger", "up__echo"} {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, map[string]any{"text": "hi"}
		if _, err := c.CallTool(t.Context(), req); err != nil {
			t.Fatalf("tools/call %s: %v", name, err)
		}
	}
	m := s.metrics.security
	for _, c := range []struct {
		tool, decision string
		want           float64
	}{{"echo", "allow", 2}, {"danger", "deny", 1}, {"danger", "allow", 0}} {
		if got := testutil.ToFloat64(m.mcpCalls.WithLabelValues("work", "up", c.tool, c.decision)); got != c.want {
			t.Errorf("ringlet_mcp_tool_calls_total{work,up,%s,%s}: got %v, want %v", c.tool, c.decision, got, c.want)
		}
	}
	// A call past the profile's rate limit is counted as rate_limited.
	resp, err := ts.Client().Do(func() *http.Request {
		r, _ := http.NewRequest(http.MethodPatch, ts.URL+"/api/profiles/work/ratelimits", strings.NewReader(`{"session_tool_calls":1}`))
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Content-Type", "application/json")
		return r
	}())
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set the rate limit: %v %v", resp, err)
	}
	resp.Body.Close()
	for range 2 {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "up__echo", map[string]any{"text": "hi"}
		_, _ = c.CallTool(t.Context(), req) // the second is refused
	}
	if got := testutil.ToFloat64(m.mcpCalls.WithLabelValues("work", "up", "echo", "rate_limited")); got != 1 {
		t.Errorf("ringlet_mcp_tool_calls_total{work,up,echo,rate_limited}: got %v, want 1", got)
	}
	// A name no server of the profile lists is "other": an agent cannot
	// take the labels' places with made-up tools.
	for _, name := range []string{"up__junk", "junkserver__x", "nounderscores"} {
		req := mcpgo.CallToolRequest{}
		req.Params.Name = name
		_, _ = c.CallTool(t.Context(), req) // refused by the rate limit
	}
	if got := testutil.ToFloat64(m.mcpCalls.WithLabelValues("work", otherLabelValue, otherLabelValue, "rate_limited")); got != 3 {
		t.Errorf("ringlet_mcp_tool_calls_total{work,other,other,rate_limited}: got %v, want 3 (the unknown tools)", got)
	}
	if body := metricsText(t, m.mcpCalls); strings.Contains(body, "junk") || strings.Contains(body, "nounderscores") {
		t.Errorf("ringlet_mcp_tool_calls_total has a made-up tool's name as a label:\n%s", body)
	}
	if got := testutil.ToFloat64(m.hookDecisions.WithLabelValues("work", guard.ID, hook.PreToolUse, "deny")); got != 1 {
		t.Errorf("ringlet_hook_decisions_total{work,%s,pre-tool-use,deny}: got %v, want 1", guard.ID, got)
	}
	if n := testutil.CollectAndCount(m.hookSeconds); n != 1 {
		t.Errorf("ringlet_hook_duration_seconds series: got %d, want 1 (work, pre-tool-use)", n)
	}
	if problems, err := testutil.CollectAndLint(m.mcpCalls); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestProxyRequestForTheForwarder: an absolute-form request for the
// forwarder's own address (a client that sends even its NO_PROXY
// requests to the proxy) is served as any, not refused as egress.
func TestProxyRequestForTheForwarder(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	sess, tok, err := w.s.sessions.start(t.Context(), "work", 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8765/session", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	w.s.socketHandler(sess).ServeHTTP(rec, r)
	if rec.Code == http.StatusForbidden || strings.Contains(rec.Body.String(), "egress_denied") {
		t.Errorf("GET http://127.0.0.1:8765/session through the proxy: got %d %s, want it served", rec.Code, rec.Body)
	}
	if n := testutil.ToFloat64(w.s.metrics.security.violations.WithLabelValues("work", "plain_http")); n != 0 {
		t.Errorf("violations: got %v, want none", n)
	}
}

// metricsText is c's series in the text format.
func metricsText(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				b.WriteString(l.GetName() + "=" + l.GetValue() + " ")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
