package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
)

// faultyAuditor keeps records in memory and refuses them all while down,
// as an audit log on a full disk does; Writable says so too. While
// failKind is set it refuses only records of that kind.
type faultyAuditor struct {
	mu       sync.Mutex
	down     bool
	failKind string
	recs     []audit.Record
}

var errAuditDown = errors.New("the disk holding the audit log is full; free space to resume")

func (a *faultyAuditor) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down || a.failKind != "" && r.Kind == a.failKind {
		return audit.Record{}, &audit.UnavailableError{Reason: errAuditDown}
	}
	a.recs = append(a.recs, r)
	return r, nil
}

// kinds is the kinds of the records kept, in order, comma-separated.
func (a *faultyAuditor) kinds() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var k []string
	for _, r := range a.recs {
		k = append(k, r.Kind)
	}
	return strings.Join(k, ",")
}

func (a *faultyAuditor) Writable() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return &audit.UnavailableError{Reason: errAuditDown}
	}
	return nil
}

func (a *faultyAuditor) setDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

func (a *faultyAuditor) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recs)
}

// auditFailWorld is a daemon with a profile (work) whose provider is a
// counting upstream, a hook, an MCP server entry and a live session.
type auditFailWorld struct {
	s         *Server
	ts        *httptest.Server
	aud       *faultyAuditor
	keys      *keystore.Store
	profiles  *profile.Store
	hooks     *hook.Store
	configDir string
	upstream  atomic.Int64 // requests the provider saw
	sessID    string
	sessTok   string
	hookID    string
	tokenFile string
}

// worldOptions change what newAuditFailWorld builds.
type worldOptions struct {
	upstream    http.HandlerFunc // the provider; default: a plain JSON answer
	idleTimeout time.Duration    // Options.ProxyIdleTimeout
}

func newAuditFailWorld(t *testing.T, opts ...func(*worldOptions)) *auditFailWorld {
	t.Helper()
	var o worldOptions
	for _, f := range opts {
		f(&o)
	}
	if o.upstream == nil {
		o.upstream = func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			io.WriteString(rw, `{"type":"message","model":"m","usage":{"input_tokens":1,"output_tokens":1}}`)
		}
	}
	w := &auditFailWorld{aud: &faultyAuditor{}}
	up := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.upstream.Add(1)
		o.upstream(rw, r)
	}))
	t.Cleanup(up.Close)
	w.configDir = t.TempDir()
	dataDir := t.TempDir()
	cat, err := profile.LoadCatalog(w.configDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "up", BaseURL: up.URL, Format: "anthropic", Auth: profile.AuthXAPIKey}); err != nil {
		t.Fatal(err)
	}
	w.profiles = profile.NewStore(w.configDir, dataDir)
	if w.keys, err = keystore.Open(keystore.Options{Dir: w.configDir, Backend: credentials.BackendFile}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.profiles.Create(cat, profile.Profile{Alias: "work", Agent: "generic", Provider: "up", Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.keys.Set(credentials.Ref{Provider: "up", Alias: "work"}, credentials.NewSecret("sk-key-of-work")); err != nil {
		t.Fatal(err)
	}
	w.hooks = hook.NewStore(w.configDir)
	h, err := w.hooks.Add(hook.Hook{Profile: "work", Event: hook.PreToolUse, Shell: "true"})
	if err != nil {
		t.Fatal(err)
	}
	w.hookID = h.ID
	w.tokenFile = filepath.Join(t.TempDir(), "http_token")
	if err := os.WriteFile(w.tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.s, w.ts = newLiveServer(t, Options{
		Profiles: w.profiles, CatalogDir: w.configDir, Keys: w.keys, Launch: launch.New(launch.Options{}), Hooks: w.hooks, Audit: w.aud, AuditWritable: w.aud.Writable,
		MCPStore: mcp.NewStore(w.configDir), MCPPath: "/usr/bin:/bin", TokenFile: w.tokenFile, ProxyIdleTimeout: o.idleTimeout,
	})
	t.Cleanup(func() { w.s.mcp.srv.Close() })
	sess, tok, err := w.s.sessions.start(t.Context(), "work", 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	w.sessID, w.sessTok = sess.ID, tok
	return w
}

func (w *auditFailWorld) do(t *testing.T, method, path, tok, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, w.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// TestEveryActionRefusedWhenAuditFails drives every kind of action with
// the audit log unwritable (issue #11 item 5): each is refused with a JSON
// error that names the cause, and nothing happens. Session revoke used to
// answer 200 without its session.end record.
func TestEveryActionRefusedWhenAuditFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		method, path string
		session      bool // with the session token, not the admin token
		body         func(w *auditFailWorld) string
		unchanged    func(t *testing.T, w *auditFailWorld) // the action did not happen
	}{
		{"credential set", "PUT", "/api/keychain/x/y", false, func(*auditFailWorld) string { return `{"key":"sk-new-key"}` }, func(t *testing.T, w *auditFailWorld) {
			if _, err := w.keys.Get(credentials.Ref{Provider: "x", Alias: "y"}); !errors.Is(err, credentials.ErrNotFound) {
				t.Errorf("key x/y: got %v, want not stored", err)
			}
		}},
		{"credential remove", "DELETE", "/api/keychain/up/work", false, nil, func(t *testing.T, w *auditFailWorld) {
			if _, err := w.keys.Get(credentials.Ref{Provider: "up", Alias: "work"}); err != nil {
				t.Errorf("key up/work: got %v, want it still stored", err)
			}
			w.sessionLive(t)
		}},
		{"profile create", "POST", "/api/profiles", false, func(*auditFailWorld) string {
			return `{"alias":"new","agent":"generic","provider":"up","command":["true"]}`
		}, func(t *testing.T, w *auditFailWorld) {
			if _, err := w.profiles.Get("new"); err == nil {
				t.Error("profile new: created, want not")
			}
		}},
		{"profile update", "PATCH", "/api/profiles/work", false, func(*auditFailWorld) string { return `{"model":"other-model"}` }, func(t *testing.T, w *auditFailWorld) {
			if p, _ := w.profiles.Get("work"); p.Model == "other-model" {
				t.Error("profile work: model changed, want unchanged")
			}
		}},
		{"profile delete", "DELETE", "/api/profiles/work?purge_key=true", false, nil, func(t *testing.T, w *auditFailWorld) {
			if _, err := w.profiles.Get("work"); err != nil {
				t.Errorf("profile work: %v, want it still there", err)
			}
			w.sessionLive(t)
		}},
		{"provider add", "POST", "/api/providers", false, func(*auditFailWorld) string {
			return `{"id":"other","base_url":"https://api.example.com","format":"anthropic","auth":"x-api-key"}`
		}, func(t *testing.T, w *auditFailWorld) {
			cat, _ := profile.LoadCatalog(w.configDir)
			if _, err := cat.Provider("other"); err == nil {
				t.Error("provider other: added, want not")
			}
		}},
		{"session start", "POST", "/api/sessions", false, func(*auditFailWorld) string { return `{"profile":"work"}` }, func(t *testing.T, w *auditFailWorld) {
			if n := w.s.sessions.count(); n != 1 {
				t.Errorf("live sessions: got %d, want the 1 started before", n)
			}
		}},
		{"session revoke", "DELETE", "/api/sessions/{id}", false, nil, func(t *testing.T, w *auditFailWorld) {
			w.sessionLive(t)
		}},
		{"session plan", "POST", "/api/sessions/{id}/plan", false, nil, func(t *testing.T, w *auditFailWorld) {
			if sess := w.s.sessions.get(w.sessID); sess.takePlan() == nil {
				t.Error("the session's plan: handed out, want it kept for the launcher")
			}
		}},
		{"terminal start", "POST", "/api/sessions/{id}/terminal", false, func(*auditFailWorld) string {
			return `{"cols":80,"rows":24}`
		}, func(t *testing.T, w *auditFailWorld) {
			w.s.terminals.mu.Lock()
			n := len(w.s.terminals.byID)
			w.s.terminals.mu.Unlock()
			if n != 0 {
				t.Errorf("terminals: got %d, want none started", n)
			}
		}},
		{"token rotate", "POST", "/api/daemon/rotate-token", false, nil, func(t *testing.T, w *auditFailWorld) {
			if data, _ := os.ReadFile(w.tokenFile); strings.TrimSpace(string(data)) != testToken {
				t.Error("token file: rotated, want unchanged")
			}
		}},
		{"hook add", "POST", "/api/hooks", false, func(*auditFailWorld) string {
			return `{"profile":"work","event":"pre-tool-use","shell":"false"}`
		}, func(t *testing.T, w *auditFailWorld) { w.hookCount(t, 1) }},
		{"hook remove", "DELETE", "/api/hooks/work/{hook}", false, nil, func(t *testing.T, w *auditFailWorld) { w.hookCount(t, 1) }},
		{"hook import", "POST", "/api/hooks/work/import", false, func(*auditFailWorld) string {
			return `[{"event":"pre-tool-use","shell":"false"}]`
		}, func(t *testing.T, w *auditFailWorld) { w.hookCount(t, 1) }},
		{"mcp add", "POST", "/api/mcp/servers", false, func(*auditFailWorld) string {
			return `{"profile":"work","name":"docs","url":"https://mcp.example.com/mcp"}`
		}, func(t *testing.T, w *auditFailWorld) {
			if list, _ := w.s.mcp.srv.Servers("work"); len(list) != 0 {
				t.Errorf("MCP servers of work: got %d, want none", len(list))
			}
		}},
		{"mcp remove", "DELETE", "/api/mcp/servers/work/kept", false, nil, func(t *testing.T, w *auditFailWorld) {
			if list, _ := w.s.mcp.srv.Servers("work"); len(list) != 1 {
				t.Errorf("MCP servers of work: got %d, want the 1 added before", len(list))
			}
		}},
		{"prices import", "POST", "/api/prices/import?name=prices.json", false, func(*auditFailWorld) string {
			return `{"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}`
		}, func(t *testing.T, w *auditFailWorld) {
			if _, err := os.Stat(w.s.prices.file); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("imported prices: got %v, want none stored", err)
			}
		}},
		{"prices reset", "DELETE", "/api/prices/import", false, nil, func(t *testing.T, w *auditFailWorld) {
			if _, err := os.Stat(w.s.prices.file); err != nil {
				t.Errorf("imported prices: got %v, want them kept", err)
			}
		}},
		{"mcp set", "PATCH", "/api/mcp/servers/work/kept", false, func(*auditFailWorld) string { return `{"env":{"MODE":"changed"}}` }, func(t *testing.T, w *auditFailWorld) {
			if list, _ := w.s.mcp.srv.Servers("work"); len(list) != 1 || list[0].Env != nil {
				t.Errorf("MCP servers of work: got %+v, want kept unchanged", list)
			}
		}},
		{"provider request", "POST", "/proxy/v1/messages", true, func(*auditFailWorld) string { return `{"model":"m","messages":[]}` }, func(t *testing.T, w *auditFailWorld) {
			if n := w.upstream.Load(); n != 0 {
				t.Errorf("requests the provider saw: got %d, want 0", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newAuditFailWorld(t)
			if tt.name == "session plan" || tt.name == "terminal start" {
				// What 'profiles run' prepares with its session.
				sess := w.s.sessions.get(w.sessID)
				sess.plan = &launch.Plan{Argv: []string{"/bin/sh", "-c", "exit 0"}, Env: []string{}, Sandboxed: true, Summary: map[string]any{"sandbox": true}}
			}
			if tt.name == "prices reset" {
				if err := os.MkdirAll(filepath.Dir(w.s.prices.file), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(w.s.prices.file, []byte(`{"source":"x","format":"litellm","prices":[]}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.name == "mcp remove" {
				if _, err := w.s.mcp.srv.AddServer("work", mcpserver.Config{Name: "kept", URL: "https://mcp.example.com/mcp"}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.name == "mcp set" {
				if _, err := w.s.mcp.srv.AddServer("work", mcpserver.Config{Name: "kept", Command: []string{"true"}}); err != nil {
					t.Fatal(err)
				}
			}
			before := w.aud.count()
			path := strings.NewReplacer("{id}", w.sessID, "{hook}", w.hookID).Replace(tt.path)
			tok := testToken
			if tt.session {
				tok = w.sessTok
			}
			body := ""
			if tt.body != nil {
				body = tt.body(w)
			}
			w.aud.setDown(true)
			status, data := w.do(t, tt.method, path, tok, body)
			var e api.ErrorAnswer
			if err := json.Unmarshal(data, &e); status != http.StatusServiceUnavailable || err != nil || e.Error.Code != "audit_unavailable" || !strings.Contains(e.Error.Message, "disk holding the audit log is full") {
				t.Errorf("%s %s with the audit log down: got %d %s, want 503 audit_unavailable naming the cause", tt.method, path, status, data)
			}
			if tt.unchanged != nil {
				tt.unchanged(t, w)
			}
			w.aud.setDown(false)
			if n := w.aud.count(); n != before {
				t.Errorf("records: got %d new, want none", n-before)
			}
		})
	}
}

func (w *auditFailWorld) sessionLive(t *testing.T) {
	t.Helper()
	if sess := w.s.sessions.lookup(w.sessTok); sess == nil || sess.ctx.Err() != nil {
		t.Errorf("session %s: ended, want it live (its end could not be recorded)", w.sessID)
	}
}

func (w *auditFailWorld) hookCount(t *testing.T, n int) {
	t.Helper()
	if hs, _ := w.hooks.List("work"); len(hs) != n {
		t.Errorf("hooks of work: got %d, want %d", len(hs), n)
	}
}

// TestHookCheckDeniesWhenAuditFails: a hook check whose records cannot be
// written denies the tool call.
func TestHookCheckDeniesWhenAuditFails(t *testing.T) {
	t.Parallel()
	w := newAuditFailWorld(t)
	w.aud.setDown(true)
	status, data := w.do(t, "POST", "/session/hooks/check", w.sessTok, `{"event":"pre-tool-use","tool_name":"Bash","tool_input":{"command":"ls"}}`)
	var d hook.Decision
	if err := json.Unmarshal(data, &d); status != http.StatusOK || err != nil || d.Allow || !strings.Contains(d.Reason, "audit log") {
		t.Errorf("hook check with the audit log down: got %d %s, want a denial naming the audit log", status, data)
	}
}

// TestForcedSessionEndsRecordedLater: a session the daemon must end (its
// key removed, its agent exited) ends even when the audit log cannot be
// written; its session.end record is written once it can.
func TestForcedSessionEndsRecordedLater(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, reason string
		end          func(t *testing.T, w *auditFailWorld)
	}{
		{"key removed", "key removed", func(t *testing.T, w *auditFailWorld) {
			w.s.sessions.endUsing(t.Context(), credentials.Ref{Provider: "up", Alias: "work"}, "key removed")
		}},
		{"agent exited", "agent exited with code 3", func(t *testing.T, w *auditFailWorld) {
			if status, data := w.do(t, "DELETE", "/api/sessions/"+w.sessID+"?reason=exited&exit_code=3", testToken, ""); status != http.StatusOK {
				t.Errorf("the CLI's end of a session whose agent exited: got %d %s, want 200", status, data)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newAuditFailWorld(t)
			w.aud.setDown(true)
			tt.end(t, w)
			if sess := w.s.sessions.lookup(w.sessTok); sess != nil {
				t.Fatal("session: still live, want ended")
			}
			before := w.aud.count()
			w.aud.setDown(false)
			// Any record that goes through writes the ones that waited first.
			if err := w.s.rec.record(t.Context(), audit.Record{Kind: audit.KindTokenRotate, Actor: audit.ActorAdmin, Decision: audit.Allow}); err != nil {
				t.Fatal(err)
			}
			w.aud.mu.Lock()
			recs := append([]audit.Record(nil), w.aud.recs[before:]...)
			w.aud.mu.Unlock()
			if len(recs) != 2 || recs[0].Kind != audit.KindSessionEnd || recs[0].Session != w.sessID || !strings.Contains(string(recs[0].Detail), tt.reason) || recs[1].Kind != audit.KindTokenRotate {
				t.Errorf("records once the log is writable: got %+v, want the session.end of %s (%s), then the new one", recs, w.sessID, tt.reason)
			}
		})
	}
}

// TestPlainAnswerRecordFails503: when the record of a plain answer cannot
// be written (the log failed after the pre-forward check), the client gets
// a 503 with a JSON error, not a connection dropped mid-answer (issue #11
// item 6).
func TestPlainAnswerRecordFails503(t *testing.T) {
	t.Parallel()
	w := newAuditFailWorld(t)
	w.s.proxy.o.Writable = nil // the check before forwarding passed
	w.aud.setDown(true)
	req, err := http.NewRequestWithContext(t.Context(), "POST", w.ts.URL+"/proxy/v1/messages", strings.NewReader(`{"model":"m","messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", w.sessTok)
	resp, err := w.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("POST /proxy/v1/messages: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the answer: %v (want a whole 503 answer, not a cut connection)", err)
	}
	var e api.ErrorAnswer
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(data, &e) != nil || e.Error.Code != "audit_unavailable" || !strings.Contains(e.Error.Message, "disk holding the audit log is full") {
		t.Errorf("answer whose record failed: got %d %s, want 503 audit_unavailable naming the cause", resp.StatusCode, data)
	}
	if strings.Contains(string(data), "input_tokens") {
		t.Errorf("answer whose record failed: got the provider's answer %s, want none of it", data)
	}
}

// TestProxyAbortReasons: a stream cut by proxy.idle_timeout, by the
// client leaving, or by its session ending is recorded as such, not as
// "context canceled" for all three.
func TestProxyAbortReasons(t *testing.T) {
	t.Parallel()
	stall := func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(rw, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n")
		rw.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	tests := []struct {
		name string
		cut  func(w *auditFailWorld, cancel context.CancelFunc)
		want string
	}{
		{"idle timeout", func(*auditFailWorld, context.CancelFunc) {}, "sent nothing for 300ms"},
		{"client left", func(_ *auditFailWorld, cancel context.CancelFunc) { cancel() }, "client went away"},
		{"session revoked", func(w *auditFailWorld, _ context.CancelFunc) {
			w.s.sessions.end(context.Background(), w.sessID, "revoked", audit.ActorAdmin)
		}, "session ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idle := time.Hour
			if tt.name == "idle timeout" {
				idle = 300 * time.Millisecond
			}
			w := newAuditFailWorld(t, func(o *worldOptions) { o.upstream, o.idleTimeout = stall, idle })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", w.ts.URL+"/proxy/v1/messages", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Api-Key", w.sessTok)
			resp, err := w.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// The first event has arrived: the stream is open.
			if _, err := resp.Body.Read(make([]byte, 64)); err != nil {
				t.Fatalf("first bytes of the stream: %v", err)
			}
			tt.cut(w, cancel)
			io.Copy(io.Discard, resp.Body)
			var rec audit.Record
			deadline := time.Now().Add(10 * time.Second)
			for rec.Kind == "" {
				w.aud.mu.Lock()
				for _, r := range w.aud.recs {
					if r.Kind == audit.KindProviderRequest {
						rec = r
					}
				}
				w.aud.mu.Unlock()
				if time.Now().After(deadline) {
					t.Fatal("no provider.request record")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.Contains(string(rec.Detail), tt.want) || strings.Contains(string(rec.Detail), "context canceled") {
				t.Errorf("record of the cut stream: got detail %s, want it to say %q and not \"context canceled\"", rec.Detail, tt.want)
			}
		})
	}
}

// TestProxyClientHangsUpAfterTheEnd: a client that hangs up as soon as it
// has the answer's last event (Codex does, on response.completed) while
// the provider still holds its connection open left a complete answer:
// recorded as complete, not as cut short by the client.
func TestProxyClientHangsUpAfterTheEnd(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		events   string
		complete bool
	}{
		{"after message_stop", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":2}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true},
		{"before it", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			upstream := func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(rw, tt.events)
				rw.(http.Flusher).Flush()
				<-r.Context().Done() // the provider never closes first
			}
			w := newAuditFailWorld(t, func(o *worldOptions) { o.upstream, o.idleTimeout = upstream, time.Hour })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", w.ts.URL+"/proxy/v1/messages", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Api-Key", w.sessTok)
			resp, err := w.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := make([]byte, 0, len(tt.events))
			buf := make([]byte, 4096)
			for len(got) < len(tt.events) {
				n, err := resp.Body.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					t.Fatalf("read the stream: %v after %q", err, got)
				}
			}
			cancel() // the client hangs up
			var rec audit.Record
			deadline := time.Now().Add(10 * time.Second)
			for rec.Kind == "" {
				w.aud.mu.Lock()
				for _, r := range w.aud.recs {
					if r.Kind == audit.KindProviderRequest {
						rec = r
					}
				}
				w.aud.mu.Unlock()
				if time.Now().After(deadline) {
					t.Fatal("no provider.request record")
				}
				time.Sleep(5 * time.Millisecond)
			}
			complete := strings.Contains(string(rec.Detail), `"complete":true`)
			if complete != tt.complete || (rec.Decision == audit.Allow) != tt.complete {
				t.Errorf("record: decision %s, detail %s; want complete %v", rec.Decision, rec.Detail, tt.complete)
			}
		})
	}
}

// kindRefuser passes records to the audit log except, while refuse is
// set, those of that kind, which it refuses as a full disk would.
type kindRefuser struct {
	Auditor
	refuse atomic.Pointer[string]
}

func (k *kindRefuser) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if kind := k.refuse.Load(); kind != nil && r.Kind == *kind {
		return audit.Record{}, &audit.UnavailableError{Reason: errAuditDown}
	}
	return k.Auditor.Append(ctx, r)
}

// TestToolResultWithheldWhenAuditFails: an upstream's answer to a tool
// call whose tool.result record cannot be written never reaches the
// agent (fail closed, as for every record): the agent gets an error that
// says why, and the next call, once the log takes records again, is
// answered and recorded.
func TestToolResultWithheldWhenAuditFails(t *testing.T) {
	bin := buildTestServer(t)
	var k kindRefuser
	w := newMCPWorldWith(t, func(o *Options) {
		k.Auditor = o.Audit
		o.Audit = &k
	})
	w.addUp(t, bin)
	id, tok := w.session(t, "work")
	c := w.connect(t, tok)
	const canary = "ringlet-canary-result-7f3a"
	kind := audit.KindToolResult
	k.refuse.Store(&kind)
	req := mcpgo.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "up__echo", map[string]any{"text": canary}
	res, err := c.CallTool(t.Context(), req)
	var got string
	if res != nil {
		raw, _ := json.Marshal(res)
		got = string(raw)
	}
	if err == nil && (res == nil || !res.IsError) {
		t.Fatalf("tools/call with tool.result refused: got %s, want an error", got)
	}
	if strings.Contains(got, canary) || err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("the upstream's answer reached the agent although its record was refused: %s %v", got, err)
	}
	msg := got
	if err != nil {
		msg = err.Error()
	}
	t.Logf("refused: %s", msg)
	if !strings.Contains(msg, "audit") {
		t.Errorf("refusal %q: want it to say the audit log could not record", msg)
	}
	// The log takes records again: the same call is answered and both of
	// its records are there.
	k.refuse.Store(nil)
	if text, isErr := callTool(t, c, "up__echo", map[string]any{"text": canary}); isErr || !strings.Contains(text, canary) {
		t.Errorf("tools/call after the log recovered: got %v %q", isErr, text)
	}
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Session: id, Kinds: []string{audit.KindToolCall, audit.KindToolResult}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind+":"+string(r.Decision))
	}
	// Newest first: the second call has both records; the refused call's
	// tool.call was written before the upstream ran, its tool.result is
	// missing.
	if want := "tool.result:allow,tool.call:allow,tool.call:allow"; strings.Join(kinds, ",") != want {
		t.Errorf("records: %s, want %s", strings.Join(kinds, ","), want)
	}
}
