package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// otelcolOnce builds tools/otelcol once per test run, unless
// RINGLET_OTELCOL names a built one (the Makefile's test target does).
var otelcolOnce = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("RINGLET_OTELCOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("RINGLET_OTELCOL: %w", err)
		}
		return p, nil
	}
	dir, err := os.MkdirTemp("", "ringlet-otelcol-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "otelcol")
	cmd := exec.Command("go", "-C", "../tools/otelcol", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build tools/otelcol: %v\n%s", err, out)
	}
	return bin, nil
})

// requireOtelcol is the OpenTelemetry Collector's binary.
func requireOtelcol(t *testing.T) string {
	t.Helper()
	bin, err := otelcolOnce()
	if err != nil {
		skipUnlessCI(t, "the OpenTelemetry Collector (tools/otelcol) could not be built: "+err.Error())
	}
	return bin
}

// otlpSink receives what the collector exports (OTLP/HTTP, JSON).
type otlpSink struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}")) // an empty partial-success answer
}

func (s *otlpSink) all() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Join(s.bodies, []byte("\n"))
}

// otlpSpan is a span as OTLP/JSON has it.
type otlpSpan struct {
	TraceID      string `json:"traceId"`
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId"`
	Name         string `json:"name"`
	Attributes   []struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	} `json:"attributes"`
}

func (s otlpSpan) attr(k string) string {
	for _, a := range s.Attributes {
		if a.Key == k {
			for _, v := range a.Value {
				return fmt.Sprint(v)
			}
		}
	}
	return ""
}

// spans is every span the sink received, and how many log records.
func (s *otlpSink) spans(t *testing.T) (spans []otlpSpan, logs int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bodies {
		var m struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []otlpSpan `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []json.RawMessage `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("the collector's export: %v: %s", err, b)
		}
		for _, rs := range m.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
		for _, rl := range m.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				logs += len(sl.LogRecords)
			}
		}
	}
	return spans, logs
}

// collector is a running OpenTelemetry Collector: OTLP in over gRPC and
// HTTP on free ports, out to sink.
type collector struct {
	*portServer
	grpc, http string // host:port
}

func startCollector(t *testing.T, sink *otlpSink) *collector {
	t.Helper()
	bin := requireOtelcol(t)
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	c := &collector{}
	onFreePorts(t, 2, func(ports []int) error {
		c.grpc, c.http = "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
		conf := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
exporters:
  otlphttp:
    endpoint: %s
    encoding: json
    compression: none
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
`, c.grpc, c.http, srv.URL)
		path := filepath.Join(t.TempDir(), "otelcol.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.portServer = startPortServer(t, exec.Command(bin, "--config", "file:"+path))
		// Its receivers listen once it says so; with a port taken it
		// says that and exits.
		return c.ready(60*time.Second, "address already in use", func(out string) bool { return strings.Contains(out, "Everything is ready") })
	})
	return c
}

// mustWait is waitFor, failing t with detail when the deadline passes.
func mustWait(t *testing.T, d time.Duration, what string, cond func() bool, detail func() string) {
	t.Helper()
	if !waitFor(d, cond) {
		t.Fatalf("waited %s for %s\n%s", d, what, detail())
	}
}

// TestOTelExportClaudeTurn: the real Claude Code in its sandbox calls an
// MCP tool through Ringlet, and the daemon exports the turn to a real
// OpenTelemetry Collector, over OTLP/HTTP and over gRPC. What the
// collector passes on holds the chat span, the execute_tool span of the
// tool the answer asked for, its MCP call and its hook decision in one
// trace, each under the span it came from, with the token counts; and
// neither the provider key, the prompt nor the tool's input. With the
// collector gone, the next turn still completes and the drops are counted.
func TestOTelExportClaudeTurn(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			sink := &otlpSink{}
			c := startCollector(t, sink)
			endpoint := "http://" + c.http
			if protocol == "grpc" {
				endpoint = "http://" + c.grpc
			}
			w, key, _ := sandboxWorldConfig(t, "otel.endpoint", endpoint, "otel.protocol", protocol)
			bin := buildMCPTestServer(t)
			mustRun(t, w.e, "mcp", "add", "box", "up", "--", bin)
			mustRun(t, w.e, "hooks", "add", "box", "--on", "pre-tool-use", "--shell", "exit 0")
			mustRun(t, w.e, "profiles", "run", "box", "--", "mcp", "add", "ringlet", "--", "ringlet", "mcp", "--stdio")
			mustRun(t, w.e, "profiles", "config", "approve", "box")
			prompt := proxyCanary("prompt")
			inputCanary := proxyCanary("input")
			cmd, name, input := "x", "mcp__ringlet__up__echo", `{"text":"`+inputCanary+`"}`
			w.fake.ToolUse.Store(&cmd)
			w.fake.ToolName.Store(&name)
			w.fake.ToolInput.Store(&input)
			if res := runBox(t, w, "-p", "echo "+prompt, "--output-format", "json", "--allowedTools", name); res.IsError {
				t.Fatalf("claude -p: got %+v", res)
			}

			var chat, use, call, hook otlpSpan
			dump := func() string {
				spans, logs := sink.spans(t)
				var b strings.Builder
				fmt.Fprintf(&b, "%d log records; spans:\n", logs)
				for _, s := range spans {
					fmt.Fprintf(&b, "  %s %s<-%s %s\n", s.TraceID, s.SpanID, s.ParentSpanID, s.Name)
				}
				return b.String() + "collector:\n" + c.out.String()
			}
			mustWait(t, 60*time.Second, "the turn's spans at the collector", func() bool {
				spans, _ := sink.spans(t)
				byID := map[string]otlpSpan{}
				for _, s := range spans {
					byID[s.TraceID+s.SpanID] = s
				}
				for _, s := range spans {
					if s.Name != "tools/call up__echo" {
						continue
					}
					u, ok := byID[s.TraceID+s.ParentSpanID]
					if !ok || u.Name != "execute_tool "+name {
						continue
					}
					ch, ok := byID[s.TraceID+u.ParentSpanID]
					if !ok || !strings.HasPrefix(ch.Name, "chat ") {
						continue
					}
					for _, h := range spans {
						if h.TraceID == s.TraceID && h.ParentSpanID == s.SpanID && strings.HasPrefix(h.Name, "hook ") {
							chat, use, call, hook = ch, u, s, h
							return true
						}
					}
				}
				return false
			}, dump)
			for _, c := range []struct{ what, got, want string }{
				{"chat gen_ai.operation.name", chat.attr("gen_ai.operation.name"), "chat"},
				{"chat gen_ai.provider.name", chat.attr("gen_ai.provider.name"), "fake"},
				{"execute_tool gen_ai.operation.name", use.attr("gen_ai.operation.name"), "execute_tool"},
				{"execute_tool gen_ai.tool.name", use.attr("gen_ai.tool.name"), name},
				{"tools/call gen_ai.tool.call.id", call.attr("gen_ai.tool.call.id"), use.attr("gen_ai.tool.call.id")},
				{"hook decision", hook.attr("ringlet.decision"), "allow"},
			} {
				if c.got != c.want || c.got == "" {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			for _, k := range []string{"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} {
				if n, err := strconv.Atoi(chat.attr(k)); err != nil || n <= 0 {
					t.Errorf("chat %s: got %q, want a count", k, chat.attr(k))
				}
			}
			if !strings.HasPrefix(use.attr("gen_ai.tool.call.id"), "toolu_") {
				t.Errorf("execute_tool gen_ai.tool.call.id: got %q", use.attr("gen_ai.tool.call.id"))
			}
			// The audit log says the same tree: the export is the audit trace.
			if out := mustRun(t, w.e, "audit", "query", "--trace", chat.TraceID, "--json"); !strings.Contains(out, hook.SpanID) {
				t.Errorf("the hook span %s is not an audit record of trace %s", hook.SpanID, chat.TraceID)
			}
			_, logs := sink.spans(t)
			if logs == 0 {
				t.Error("no audit record reached the collector as a log record")
			}
			out := sink.all()
			for what, secret := range map[string]string{"the provider key": key, "the prompt": prompt, "the tool's input": inputCanary} {
				if bytes.Contains(out, []byte(secret)) {
					t.Errorf("%s reached the collector", what)
				}
			}
			if protocol != "http" {
				return
			}

			// The collector is gone: the agent's turn is not held up, and
			// what could not be sent is counted.
			c.stop()
			before := otelDropped(t, w)
			if res := runBox(t, w, "-p", "echo again", "--output-format", "json", "--allowedTools", name); res.IsError {
				t.Fatalf("claude -p with the collector down: got %+v", res)
			}
			mustWait(t, 90*time.Second, "ringlet_otel_dropped_total to rise", func() bool { return otelDropped(t, w) > before }, func() string {
				_, _, body := w.d.MustGet(t, "/metrics", w.e.Token(), nil)
				return grepLines(string(body), "ringlet_otel")
			})
			// The metrics with the export's series pass promtool.
			_, _, body := w.d.MustGet(t, "/metrics", w.e.Token(), nil)
			promtoolCheck(t, body)
		})
	}
}

// otelDropped is the sum of ringlet_otel_dropped_total's series.
func otelDropped(t *testing.T, w *proxyWorld) float64 {
	t.Helper()
	status, _, body := w.d.MustGet(t, "/metrics", w.e.Token(), nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: got %d", status)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "ringlet_otel_dropped_total{") {
			continue
		}
		found = true
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("/metrics %s: %v", l, err)
		}
		sum += v
	}
	if !found {
		t.Fatalf("/metrics: no ringlet_otel_dropped_total")
	}
	return sum
}

// TestOTelHeadersFromKeychain: otel.headers names a stored credential;
// the daemon sends its value (after the scheme word) to the collector
// and writes it nowhere: not in the config file, its log or an error. A
// credential it cannot read stops it from starting, with one line that
// says what to do.
func TestOTelHeadersFromKeychain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	auth := make(chan string, 64)
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case auth <- r.URL.Path + " " + r.Header.Get("Authorization"):
		default:
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(col.Close)
	mustRun(t, e, "config", "set", "otel.endpoint", col.URL+"/otlp")
	mustRun(t, e, "config", "set", "otel.headers", "Authorization=Bearer otel/collector")
	_, stderr, code := e.Run("daemon", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	// In the foreground the daemon logs to stderr too; its error is the
	// line that ringlet prints.
	if code == 0 || !strings.Contains(stderr, "\nringlet: otel.headers: header Authorization names credential otel/collector, which could not be read; store it with 'ringlet keychain set otel collector' or unset otel.headers\n") {
		t.Fatalf("daemon with a missing header credential: exit %d, stderr %q; want one line naming the credential and what to do", code, stderr)
	}
	mustRun(t, e, "config", "unset", "otel.headers")
	d := e.StartDaemon()
	secret := proxyCanary("otel")
	if _, stderr, code := e.RunInput(secret, "keychain", "set", "otel", "collector"); code != 0 {
		t.Fatalf("keychain set: exit %d, %s", code, stderr)
	}
	d.Signal(syscall.SIGTERM)
	d.Wait()
	mustRun(t, e, "config", "set", "otel.headers", "Authorization=Bearer otel/collector")
	d = e.StartDaemon()
	want := "/otlp/v1/logs Bearer " + secret
	seen := []string{}
	mustWait(t, 30*time.Second, "the daemon.start record at the collector with the header", func() bool {
		select {
		case got := <-auth:
			seen = append(seen, got)
			return got == want
		default:
			return false
		}
	}, func() string { return fmt.Sprintf("%d requests, none with the header\n%s", len(seen), d.Stderr()) })
	d.Signal(syscall.SIGTERM)
	d.Wait()
	e.AssertNoSecret(secret)
}
