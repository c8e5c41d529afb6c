package gateway

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/version"
)

// metrics holds the daemon's Prometheus collectors in a registry of its
// own, so tests can build many servers in one process.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	inFlight     prometheus.Gauge
	authFailures *prometheus.CounterVec
	guardDenials *prometheus.CounterVec
	rotations    prometheus.Counter
	streams      prometheus.Gauge
	sessions     prometheus.Gauge

	providerRequests *prometheus.CounterVec
	providerSeconds  *prometheus.HistogramVec
	providerTTFB     *prometheus.HistogramVec
	tokens           *prometheus.CounterVec

	sessionsKilled *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	hookBypass     *prometheus.CounterVec

	security *securityMetrics
}

var authFailureReasons = []string{"missing", "malformed", "invalid", "query_token", "invalid_session", "login_code"}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_http_requests_total",
			Help: "HTTP requests answered by the daemon, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringlet_http_request_duration_seconds",
			Help:    "Time from request start until the handler returned, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringlet_http_requests_in_flight",
			Help: "HTTP requests being served, WebSocket and streaming connections included.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_auth_failures_total",
			Help: "Requests refused for missing or wrong credentials, by reason.",
		}, []string{"reason"}),
		guardDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_http_forbidden_total",
			Help: "Requests refused before authentication for a foreign Host or a cross-site Origin, by reason.",
		}, []string{"reason"}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringlet_token_rotations_total",
			Help: "Times the admin token was rotated while the daemon ran.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringlet_event_streams",
			Help: "Open /api/events WebSocket connections.",
		}),
	}
	m.sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringlet_sessions", Help: "Live agent sessions."})
	m.providerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringlet_provider_requests_total", Help: "Requests forwarded to providers, by provider, status and model.",
	}, []string{"provider", "code", "model"})
	latency := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m.providerSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ringlet_provider_request_duration_seconds", Help: "Time from forwarding a provider request to the end of its answer.", Buckets: latency,
	}, []string{"provider"})
	m.providerTTFB = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ringlet_provider_time_to_first_byte_seconds", Help: "Time from forwarding a provider request to the first byte of its answer.", Buckets: latency,
	}, []string{"provider"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringlet_provider_tokens_total", Help: "Tokens reported by providers, by profile, model and type (input, output, cache_read, cache_write).",
	}, []string{"profile", "model", "type"})
	m.sessionsKilled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringlet_sessions_killed_total", Help: "Sessions killed (the kill switch), by who killed them: cli, api, mcp, budget or dashboard.",
	}, []string{"by"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringlet_rate_limited_total", Help: "Requests and tool calls refused by a rate limit, by profile, scope (session or profile) and limit (requests, tokens, tool_calls).",
	}, []string{"profile", "scope", "limit"})
	m.hookBypass = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringlet_hook_bypass_total", Help: "Tool calls that did not pass the agent's pre-tool-use check (hook.bypass records), by where it showed (mcp, provider, session.end) and decision (allow: flagged; deny: strict hooks).",
	}, []string{"seen_by", "decision"})
	for _, w := range []string{"mcp", "provider", "session.end"} {
		m.hookBypass.WithLabelValues(w, audit.Allow)
	}
	m.hookBypass.WithLabelValues("mcp", audit.Deny)
	for _, by := range []string{"cli", "api", "mcp", "budget", KilledByDashboard} {
		m.sessionsKilled.WithLabelValues(by)
	}
	for _, r := range authFailureReasons {
		m.authFailures.WithLabelValues(r)
	}
	for _, r := range []string{"host", "origin"} {
		m.guardDenials.WithLabelValues(r)
	}
	v := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ringlet_build_info",
		Help:        "Always 1; the labels describe the running build.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Short(), "goversion": v.GoVersion},
	})
	build.Set(1)
	m.security = newSecurityMetrics()
	m.reg.MustRegister(m.security.collectors()...)
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.authFailures, m.guardDenials, m.rotations, m.streams, build,
		m.sessions, m.providerRequests, m.providerSeconds, m.providerTTFB, m.tokens, m.sessionsKilled, m.rateLimited, m.hookBypass,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil, Registry: m.reg})
}

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// middleware counts and times every request. Labels are the chi route
// pattern, never the raw path, so an attacker cannot blow up the number of
// series by requesting random URLs.
func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		ww := recordStatus(w, r.ProtoMajor)
		defer func() {
			m.inFlight.Dec()
			route := "none"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			method := r.Method
			if !knownMethods[method] {
				method = "other"
			}
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(route, method, statusLabel(code)).Inc()
			m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}
