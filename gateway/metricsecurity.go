package gateway

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values an agent, an MCP server or a hook writer chooses (tool
// names, hosts a sandbox tries, hook ids) are bounded: the first
// boundedValues distinct values of a label keep their names, the rest
// are counted as "other", so no one can grow the daemon's series without
// end. An agent does not choose which keep their names: a tool is named
// only when the profile's servers list it (known), a host only when the
// profile allows it, each bounded per profile; anything else is "other"
// from the start.
const (
	boundedValues   = 100
	maxLabelValue   = 80
	otherLabelValue = "other"
)

// boundedLabel folds the values of one label past its cap into "other".
type boundedLabel struct {
	mu   sync.Mutex
	seen map[string]struct{}
	max  int
}

func newBoundedLabel(max int) *boundedLabel {
	return &boundedLabel{seen: map[string]struct{}{}, max: max}
}

// value is v as a label value: valid UTF-8, clipped, and "other" once
// the label has its cap of other values.
func (b *boundedLabel) value(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) > maxLabelValue {
		cut := maxLabelValue
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	if v == "" {
		v = "none"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return otherLabelValue
	}
	b.seen[v] = struct{}{}
	return v
}

// securityMetrics are the series a reviewer alerts on: MCP tool calls and
// their decisions, hook decisions and latency, pinning changes, sandbox
// egress and violations.
type securityMetrics struct {
	mcpCalls      *prometheus.CounterVec
	hookDecisions *prometheus.CounterVec
	hookSeconds   *prometheus.HistogramVec
	pinChanges    *prometheus.CounterVec
	egress        *prometheus.CounterVec
	violations    *prometheus.CounterVec

	profiles, servers, hooks *boundedLabel

	// known reports whether a tool (<server>__<tool>) is one the
	// profile's servers list; nil: none is.
	known func(profile, name string) bool

	mu           sync.Mutex
	tools, hosts map[string]*boundedLabel // per profile
}

// perProfile is profile's bounded label in m, made on first use.
func (m *securityMetrics) perProfile(labels map[string]*boundedLabel, profile string, max int) *boundedLabel {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := labels[profile]
	if b == nil {
		b = newBoundedLabel(max)
		labels[profile] = b
	}
	return b
}

func newSecurityMetrics() *securityMetrics {
	return &securityMetrics{
		mcpCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_mcp_tool_calls_total",
			Help: "MCP tool calls through the gateway, by profile, server, tool and decision (allow, deny by a hook, budget, strict: not passed by a PreToolUse check under strict hooks, rate_limited, refused: disabled or awaiting approval).",
		}, []string{"profile", "server", "tool", "decision"}),
		hookDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_hook_decisions_total",
			Help: "Hook runs, by profile, hook id, event (pre-tool-use, post-tool-use) and decision (allow, deny).",
		}, []string{"profile", "hook", "event", "decision"}),
		hookSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringlet_hook_duration_seconds",
			Help:    "Time a hook ran, by profile and event.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"profile", "event"}),
		pinChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_mcp_pin_changes_total",
			Help: "MCP pinning events, by profile, server and change (pinned: pinned without an approval; changed: serving what was not approved, hidden until approved).",
		}, []string{"profile", "server", "change"}),
		egress: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_sandbox_egress_total",
			Help: "Attempts of a sandbox to reach a host besides its provider, by profile, host (host:port) and decision (allowed, refused).",
		}, []string{"profile", "host", "decision"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_sandbox_violations_total",
			Help: "What a sandbox attempted and was refused, by profile and kind (egress: a host its profile does not allow; plain_http: a plain-HTTP proxy request).",
		}, []string{"profile", "kind"}),
		profiles: newBoundedLabel(boundedValues),
		servers:  newBoundedLabel(boundedValues),
		hooks:    newBoundedLabel(boundedValues),
		tools:    map[string]*boundedLabel{},
		hosts:    map[string]*boundedLabel{},
	}
}

func (m *securityMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.mcpCalls, m.hookDecisions, m.hookSeconds, m.pinChanges, m.egress, m.violations}
}

// mcpCall counts a tool call named <server>__<tool>: server and tool are
// "other" unless the profile's servers list it.
func (m *securityMetrics) mcpCall(profile, name, decision string) {
	server, tool := otherLabelValue, otherLabelValue
	if m.known != nil && m.known(profile, name) {
		server, tool, _ = strings.Cut(name, "__")
		server = m.servers.value(server)
		tool = m.perProfile(m.tools, profile, 2*boundedValues).value(tool)
	}
	m.mcpCalls.WithLabelValues(m.profiles.value(profile), server, tool, decision).Inc()
}

func (m *securityMetrics) hookRan(profile, hookID, event string, allow bool, d time.Duration) {
	decision := "allow"
	if !allow {
		decision = "deny"
	}
	p := m.profiles.value(profile)
	m.hookDecisions.WithLabelValues(p, m.hooks.value(hookID), event, decision).Inc()
	m.hookSeconds.WithLabelValues(p, event).Observe(d.Seconds())
}

func (m *securityMetrics) pinChange(profile, server, change string) {
	m.pinChanges.WithLabelValues(m.profiles.value(profile), m.servers.value(server), change).Inc()
}

// egressTried counts a sandbox's attempt to reach host; a refused one is
// also a violation of the given kind, and its host is "other" (the
// sandbox.violation record names it): only the profile's allowed hosts
// are labels.
func (m *securityMetrics) egressTried(profile, host string, allowed bool, kind string) {
	p := m.profiles.value(profile)
	if allowed {
		m.egress.WithLabelValues(p, m.perProfile(m.hosts, profile, boundedValues).value(host), "allowed").Inc()
		return
	}
	m.egress.WithLabelValues(p, otherLabelValue, "refused").Inc()
	m.violations.WithLabelValues(p, kind).Inc()
}
