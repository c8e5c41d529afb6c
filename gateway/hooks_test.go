package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/token"
)

// hkAuditor is an in-memory audit log that can be made to fail the way
// the real one does when the disk is full.
type hkAuditor struct {
	mu   sync.Mutex
	recs []audit.Record
	fail atomic.Bool
}

func (a *hkAuditor) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	if a.fail.Load() {
		return audit.Record{}, fmt.Errorf("%w: write audit.db: no space left on device", audit.ErrUnavailable)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return r, nil
}

// kind returns the records of the given kind.
func (a *hkAuditor) kind(k string) []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Record
	for _, r := range a.recs {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// hkWorld is a daemon with two claude profiles (work, other) on a
// loopback provider, a key for each, and a hook store.
type hkWorld struct {
	s     *Server
	h     http.Handler
	hooks *hook.Store
	audit *hkAuditor
	home  string // the work profile's hook HOME
}

func newHookWorld(t *testing.T) *hkWorld {
	t.Helper()
	configDir, dataDir := t.TempDir(), t.TempDir()
	cat, err := profile.LoadCatalog(configDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "local", BaseURL: "http://127.0.0.1:9", Format: "anthropic", Auth: profile.AuthXAPIKey}); err != nil {
		t.Fatalf("AddProvider: %v", err)
	}
	profiles := profile.NewStore(configDir, dataDir)
	keys, err := keystore.Open(keystore.Options{Dir: configDir, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{"work", "other"} {
		if _, err := profiles.Create(cat, profile.Profile{Alias: alias, Agent: "claude", Provider: "local"}); err != nil {
			t.Fatalf("Create %s: %v", alias, err)
		}
		if _, err := keys.Set(credentials.Ref{Provider: "local", Alias: alias}, credentials.NewSecret("sk-ant-test-"+alias)); err != nil {
			t.Fatalf("set key: %v", err)
		}
	}
	w := &hkWorld{hooks: hook.NewStore(configDir), audit: &hkAuditor{}, home: profiles.HookHome("work")}
	w.s, err = New(withParts(t, Options{
		Token: token.FromString(testToken), TokenFile: filepath.Join(configDir, "http_token"),
		Profiles: profiles, CatalogDir: configDir, Keys: keys, Launch: launch.New(launch.Options{}), Hooks: w.hooks, Audit: w.audit,
	}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w.s.port.Store(testPort)
	t.Cleanup(w.s.life.stop)
	w.h = w.s.Handler()
	return w
}

// do sends a request with tok (none when empty) and a JSON body (none
// when empty).
func (w *hkWorld) do(t *testing.T, tok, method, path, body string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, "http://"+testHost+path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return serve(t, w.h, r)
}

// session starts a session for alias and returns its id and token.
func (w *hkWorld) session(t *testing.T, alias string) (id, tok string) {
	t.Helper()
	sess, tok, err := w.s.sessions.start(t.Context(), alias, 0, audit.ActorAdmin)
	if err != nil {
		t.Fatalf("startSession: %v", err)
	}
	return sess.ID, tok
}

// addHook stores a hook directly, as `hooks add` would.
func (w *hkWorld) addHook(t *testing.T, profile, shell, match string) hook.Hook {
	t.Helper()
	h, err := w.hooks.Add(hook.Hook{Profile: profile, Event: hook.PreToolUse, Shell: shell, Match: match})
	if err != nil {
		t.Fatalf("add hook: %v", err)
	}
	return h
}

// decode reads a JSON body into v after checking the status.
func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status: got %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// guardShell is the README's example hook: deny anything with rm -rf.
const guardShell = `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf"`

func TestHookRESTAdd(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"valid", `{"profile":"work","event":"pre-tool-use","shell":"true"}`, 201, ""},
		{"valid with match and timeout", `{"profile":"work","event":"post-tool-use","shell":"true","match":"^Bash$","timeout":"5s"}`, 201, ""},
		{"bad event", `{"profile":"work","event":"bogus","shell":"true"}`, 400, "invalid_hook"},
		{"no event", `{"profile":"work","shell":"true"}`, 400, "invalid_hook"},
		{"empty shell", `{"profile":"work","event":"pre-tool-use","shell":"  "}`, 400, "invalid_hook"},
		{"NUL in shell", `{"profile":"work","event":"pre-tool-use","shell":"true\u0000"}`, 400, "invalid_hook"},
		{"bad regexp", `{"profile":"work","event":"pre-tool-use","shell":"true","match":"("}`, 400, "invalid_hook"},
		{"timeout not a duration", `{"profile":"work","event":"pre-tool-use","shell":"true","timeout":"soon"}`, 400, "invalid_hook"},
		{"timeout too short", `{"profile":"work","event":"pre-tool-use","shell":"true","timeout":"10ms"}`, 400, "invalid_hook"},
		{"timeout too long", `{"profile":"work","event":"pre-tool-use","shell":"true","timeout":"1h"}`, 400, "invalid_hook"},
		{"negative timeout", `{"profile":"work","event":"pre-tool-use","shell":"true","timeout":"-1s"}`, 400, "invalid_hook"},
		{"unknown profile", `{"profile":"nobody","event":"pre-tool-use","shell":"true"}`, 404, "not_found"},
		{"invalid profile name", `{"profile":"../work","event":"pre-tool-use","shell":"true"}`, 400, "invalid_profile"},
		{"no profile", `{"event":"pre-tool-use","shell":"true"}`, 400, "invalid_profile"},
		{"unknown field", `{"profile":"work","event":"pre-tool-use","shell":"true","id":"h_1"}`, 400, "bad_request"},
		{"not JSON", `{"profile":`, 400, "bad_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := w.do(t, testToken, "POST", "/api/hooks", c.body)
			if c.code != "" {
				assertError(t, resp, c.status, c.code)
				return
			}
			var h hook.Hook
			decode(t, resp, c.status, &h)
			if !strings.HasPrefix(h.ID, "h_") || h.Profile != "work" || h.Shell != "true" || h.Created.IsZero() {
				t.Errorf("added hook: got %+v, want an id, profile work, the shell and a creation time", h)
			}
			if h.Timeout < 100*time.Millisecond {
				t.Errorf("timeout: got %v, want a valid timeout", h.Timeout)
			}
		})
	}
	list, err := w.hooks.List("work")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Timeout != hook.DefaultTimeout || list[1].Timeout != 5*time.Second || list[1].Match != "^Bash$" {
		t.Errorf("stored hooks: got %+v, want the two valid ones (default timeout, then 5s with ^Bash$)", list)
	}
	if got := len(w.audit.kind(audit.KindHookAdd)); got != 2 {
		t.Errorf("hook.add records: got %d, want 2 (one per hook added, none for refusals)", got)
	}
}

func TestHookRESTListRemoveImportExport(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	a := w.addHook(t, "work", "exit 0", "")
	b := w.addHook(t, "work", guardShell, "^Bash$")

	var list struct{ Hooks []hook.Hook }
	decode(t, w.do(t, testToken, "GET", "/api/hooks?profile=work", ""), 200, &list)
	if len(list.Hooks) != 2 || list.Hooks[0].ID != a.ID || list.Hooks[1].ID != b.ID {
		t.Fatalf("list: got %+v, want hooks %s and %s in order", list.Hooks, a.ID, b.ID)
	}
	decode(t, w.do(t, testToken, "GET", "/api/hooks?profile=other", ""), 200, &list)
	if list.Hooks == nil || len(list.Hooks) != 0 {
		t.Errorf("list of a profile without hooks: got %#v, want an empty array", list.Hooks)
	}

	// Export is a plain array that import takes back.
	resp := w.do(t, testToken, "GET", "/api/hooks/work/export", "")
	exported := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(exported, "[") {
		t.Fatalf("export: got %d %s, want 200 and a JSON array", resp.StatusCode, exported)
	}
	var imported struct{ Hooks []hook.Hook }
	decode(t, w.do(t, testToken, "POST", "/api/hooks/other/import", exported), 201, &imported)
	if len(imported.Hooks) != 2 {
		t.Fatalf("import: got %d hooks, want 2", len(imported.Hooks))
	}
	for i, h := range imported.Hooks {
		if h.Profile != "other" || h.ID == a.ID || h.ID == b.ID {
			t.Errorf("imported hook %d: got profile %q id %q, want profile other and a new id", i, h.Profile, h.ID)
		}
	}
	if imported.Hooks[1].Shell != guardShell || imported.Hooks[1].Match != "^Bash$" {
		t.Errorf("imported hook: got %+v, want shell and match kept", imported.Hooks[1])
	}

	// All or none.
	before, _ := w.hooks.List("other")
	assertError(t, w.do(t, testToken, "POST", "/api/hooks/other/import", `[{"event":"pre-tool-use","shell":"true"},{"event":"pre-tool-use","shell":"true","match":"("}]`), 400, "invalid_hook")
	assertError(t, w.do(t, testToken, "POST", "/api/hooks/other/import", `[{"event":"pre-tool-use","shell":"true","extra":1}]`), 400, "bad_request")
	assertError(t, w.do(t, testToken, "POST", "/api/hooks/other/import", `{"hooks":[]}`), 400, "bad_request")
	if after, _ := w.hooks.List("other"); len(after) != len(before) {
		t.Errorf("hooks after refused imports: got %d, want %d", len(after), len(before))
	}

	var removed hook.Hook
	decode(t, w.do(t, testToken, "DELETE", "/api/hooks/work/"+a.ID, ""), 200, &removed)
	if removed.ID != a.ID {
		t.Errorf("remove: got %+v, want hook %s", removed, a.ID)
	}
	assertError(t, w.do(t, testToken, "DELETE", "/api/hooks/work/"+a.ID, ""), 404, "not_found")
	assertError(t, w.do(t, testToken, "DELETE", "/api/hooks/other/"+b.ID, ""), 404, "not_found")
	decode(t, w.do(t, testToken, "GET", "/api/hooks?profile=work", ""), 200, &list)
	if len(list.Hooks) != 1 || list.Hooks[0].ID != b.ID {
		t.Errorf("list after remove: got %+v, want only %s", list.Hooks, b.ID)
	}
	// Each attempt is recorded before it is made; one that fails is
	// followed by an error record, so the log never claims a removal
	// that did not happen.
	var attempts, failed []string
	for _, r := range w.audit.kind(audit.KindHookRemove) {
		switch r.Decision {
		case audit.Allow:
			attempts = append(attempts, r.Profile+"/"+r.Target)
		case audit.Error:
			failed = append(failed, r.Profile+"/"+r.Target)
		}
	}
	if want := []string{"work/" + a.ID, "work/" + a.ID, "other/" + b.ID}; !slices.Equal(attempts, want) {
		t.Errorf("hook.remove attempts: got %v, want %v", attempts, want)
	}
	if want := []string{"work/" + a.ID, "other/" + b.ID}; !slices.Equal(failed, want) {
		t.Errorf("hook.remove failures: got %v, want %v", failed, want)
	}

	for _, c := range []struct{ method, path, body, code string }{
		{"GET", "/api/hooks?profile=nobody", "", "not_found"},
		{"GET", "/api/hooks", "", "invalid_profile"},
		{"GET", "/api/hooks?profile=Work!", "", "invalid_profile"},
		{"DELETE", "/api/hooks/nobody/" + b.ID, "", "not_found"},
		{"GET", "/api/hooks/nobody/export", "", "not_found"},
		{"POST", "/api/hooks/nobody/import", "[]", "not_found"},
	} {
		status := 404
		if c.code == "invalid_profile" {
			status = 400
		}
		assertError(t, w.do(t, testToken, c.method, c.path, c.body), status, c.code)
	}
}

// check posts a hook check with tok and returns the decision.
func (w *hkWorld) check(t *testing.T, tok, tool, input string) hook.Decision {
	t.Helper()
	var raw json.RawMessage // none: null, as Claude Code's absent tool_input
	if input != "" {
		raw = json.RawMessage(input)
	}
	body, err := json.Marshal(api.HookCheck{ToolName: tool, ToolInput: raw})
	if err != nil {
		t.Fatal(err)
	}
	var d hook.Decision
	decode(t, w.do(t, tok, "POST", "/session/hooks/check", string(body)), 200, &d)
	return d
}

func TestHookCheck(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	guard := w.addHook(t, "work", guardShell, "^Bash$")
	w.addHook(t, "other", "echo other profile hook >&2; exit 1", "")
	sessID, tok := w.session(t, "work")

	cases := []struct {
		name   string
		tool   string
		input  string
		allow  bool
		ranRun int // hook.decision records this check adds
	}{
		{"harmless Bash", "Bash", `{"command":"ls -la"}`, true, 1},
		{"rm -rf", "Bash", `{"command":"rm -rf /tmp/x"}`, false, 1},
		{"rm -rf in another tool", "Write", `{"content":"rm -rf /"}`, true, 0},
		{"no input", "Bash", ``, true, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(w.audit.kind(audit.KindHookDecision))
			d := w.check(t, tok, c.tool, c.input)
			if d.Allow != c.allow {
				t.Fatalf("Allow: got %v (reason %q), want %v", d.Allow, d.Reason, c.allow)
			}
			if !c.allow && (d.HookID != guard.ID || d.ExitCode != 1 || d.Reason == "") {
				t.Errorf("denial: got %+v, want hook %s, exit 1 and a reason", d, guard.ID)
			}
			decisions := w.audit.kind(audit.KindHookDecision)[before:]
			if len(decisions) != c.ranRun {
				t.Fatalf("hook.decision records: got %d, want %d", len(decisions), c.ranRun)
			}
			want := audit.Allow
			if !c.allow {
				want = audit.Deny
			}
			for _, r := range decisions {
				if r.Profile != "work" || r.Session != sessID || r.Target != c.tool || r.Decision != want {
					t.Errorf("hook.decision: got %+v, want profile work, session %s, target %s, decision %s", r, sessID, c.tool, want)
				}
			}
			calls := w.audit.kind(audit.KindToolCall)
			last := calls[len(calls)-1]
			if last.Profile != "work" || last.Session != sessID || last.Target != c.tool || last.Decision != want {
				t.Errorf("tool.call: got %+v, want profile work, session %s, target %s, decision %s", last, sessID, c.tool, want)
			}
		})
	}

	// Events.
	resp := w.do(t, tok, "POST", "/session/hooks/check", `{"event":"post-tool-use","tool_name":"Bash","tool_input":{"command":"rm -rf /"}}`)
	var d hook.Decision
	decode(t, resp, 200, &d)
	if !d.Allow {
		t.Errorf("post-tool-use with only a pre-tool-use hook: got deny (%q), want allow", d.Reason)
	}
	assertError(t, w.do(t, tok, "POST", "/session/hooks/check", `{"event":"bogus","tool_name":"Bash"}`), 400, "bad_request")
	assertError(t, w.do(t, tok, "POST", "/session/hooks/check", `{"tool_name":"Bash","extra":true}`), 400, "bad_request")
	assertError(t, w.do(t, tok, "POST", "/session/hooks/check", ``), 400, "bad_request")

	// The other profile's session sees the other profile's hooks.
	_, otherTok := w.session(t, "other")
	if d := w.check(t, otherTok, "Bash", `{"command":"ls"}`); d.Allow || !strings.HasPrefix(d.Reason, "other profile hook [refused by Ringlet hook ") {
		t.Errorf("other profile: got allow %v reason %q, want its own hook's denial", d.Allow, d.Reason)
	}
}

// TestHookCheckRunsInProfileHome checks the hook runs in the profile's
// hook HOME (never an agent's) with the session's identity and an
// environment of Ringlet's choosing.
func TestHookCheckRunsInProfileHome(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	w.addHook(t, "work", `printf '%s %s %s %s' "$HOME" "$PWD" "$RINGLET_PROFILE" "$RINGLET_SESSION" > seen; env | cut -d= -f1 | sort > env`, "")
	sessID, tok := w.session(t, "work")
	if d := w.check(t, tok, "Bash", `{}`); !d.Allow {
		t.Fatalf("Allow: got false (%q), want true", d.Reason)
	}
	data, err := os.ReadFile(filepath.Join(w.home, "seen"))
	if err != nil {
		t.Fatalf("the hook did not run in the profile's HOME: %v", err)
	}
	if want := w.home + " " + w.home + " work " + sessID; string(data) != want {
		t.Errorf("hook saw: got %q, want %q", data, want)
	}
	env, err := os.ReadFile(filepath.Join(w.home, "env"))
	if err != nil {
		t.Fatal(err)
	}
	// sh adds PWD (and may add OLDPWD, SHLVL); everything else is Ringlet's.
	for _, name := range strings.Fields(string(env)) {
		switch name {
		case "PATH", "LANG", "HOME", "PWD", "OLDPWD", "SHLVL", "RINGLET_EVENT", "RINGLET_PROFILE", "RINGLET_SESSION", "RINGLET_TOOL_NAME", "RINGLET_TOOL_INPUT":
		default:
			t.Errorf("hook environment: got %s, want only Ringlet's variables", name)
		}
	}
	for _, agentHome := range []string{w.s.opts.Profiles.Home("work"), w.s.opts.Profiles.UnsandboxedHome("work")} {
		if _, err := os.Stat(filepath.Join(agentHome, "seen")); err == nil {
			t.Errorf("the hook ran in an agent's HOME %s", agentHome)
		}
	}
}

// TestHookNamingAgentWritable: a hook whose command names a path the
// profile's agents can write is refused when added or imported, and
// refused at run time when the profile comes to cover it later.
func TestHookNamingAgentWritable(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	agentHome := w.s.opts.Profiles.Home("work")
	for _, body := range []string{
		`{"profile":"work","event":"pre-tool-use","shell":"python3 ` + agentHome + `/check.py"}`,
		`{"profile":"work","event":"pre-tool-use","shell":"sh '` + w.s.opts.Profiles.UnsandboxedHome("work") + `/x.sh'"}`,
	} {
		assertError(t, w.do(t, testToken, "POST", "/api/hooks", body), 400, "invalid_hook")
	}
	assertError(t, w.do(t, testToken, "POST", "/api/hooks/work/import", `[{"event":"pre-tool-use","shell":"cat `+agentHome+`/policy"}]`), 400, "invalid_hook")

	// A workspace set after the hook was added.
	ws := t.TempDir()
	w.addHook(t, "work", "cat "+ws+"/policy.txt >/dev/null 2>&1; exit 0", "")
	_, tok := w.session(t, "work")
	if d := w.check(t, tok, "Bash", `{}`); !d.Allow {
		t.Fatalf("before the workspace: got a denial (%q), want allow", d.Reason)
	}
	cat, err := profile.LoadCatalog(w.s.opts.CatalogDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.opts.Profiles.Update(cat, "work", func(p *profile.Profile) { p.Workspace = ws }); err != nil {
		t.Fatal(err)
	}
	if d := w.check(t, tok, "Bash", `{}`); d.Allow || !strings.Contains(d.Reason, "agents can write") {
		t.Errorf("after the workspace: got allow %v (%q), want a refusal naming the workspace", d.Allow, d.Reason)
	}
}

func TestHookCheckAuth(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	w.addHook(t, "work", "true", "")
	sessID, tok := w.session(t, "work")
	body := `{"tool_name":"Bash","tool_input":{}}`

	cases := []struct {
		name, method, path, tok, body string
	}{
		{"check without a token", "POST", "/session/hooks/check", "", body},
		{"check with the admin token", "POST", "/session/hooks/check", testToken, body},
		{"check with an unknown session token", "POST", "/session/hooks/check", api.SessionTokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", body},
		{"check with a session token's prefix only", "POST", "/session/hooks/check", api.SessionTokenPrefix, body},
		{"hooks API with the session token", "GET", "/api/hooks?profile=work", tok, ""},
		{"hook add with the session token", "POST", "/api/hooks", tok, `{"profile":"work","event":"pre-tool-use","shell":"true"}`},
		{"hook export with the session token", "GET", "/api/hooks/work/export", tok, ""},
		{"sessions API with the session token", "GET", "/api/sessions", tok, ""},
		{"version with the session token", "GET", "/api/version", tok, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertError(t, w.do(t, c.tok, c.method, c.path, c.body), 401, "unauthorized")
		})
	}
	if got, _ := w.hooks.List("work"); len(got) != 1 {
		t.Errorf("hooks after refused requests: got %d, want 1", len(got))
	}
	if got := len(w.audit.kind(audit.KindAuthFailure)); got < len(cases) {
		t.Errorf("auth.failure records: got %d, want at least %d", got, len(cases))
	}

	// The session's token works until the session is revoked.
	if d := w.check(t, tok, "Bash", `{}`); !d.Allow {
		t.Fatalf("check with the session token: got deny (%q), want allow", d.Reason)
	}
	if _, ok := w.s.sessions.end(t.Context(), sessID, "revoked", audit.ActorAdmin); !ok {
		t.Fatal("endSession: session not found")
	}
	assertError(t, w.do(t, tok, "POST", "/session/hooks/check", body), 401, "unauthorized")
}

// TestHookCheckAuditUnavailable refuses every tool call while the audit
// log cannot be written, even one all hooks allow.
func TestHookCheckAuditUnavailable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		hooks []string
	}{
		{"no hooks", nil},
		{"allowing hook", []string{"exit 0"}},
		{"two allowing hooks", []string{"true", "exit 0"}},
		{"denying hook", []string{"exit 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newHookWorld(t)
			for _, sh := range c.hooks {
				w.addHook(t, "work", sh, "")
			}
			_, tok := w.session(t, "work") // needs a working log
			w.audit.fail.Store(true)
			d := w.check(t, tok, "Bash", `{"command":"ls"}`)
			if d.Allow {
				t.Fatalf("Allow: got true, want false while the audit log cannot be written")
			}
			if !strings.Contains(d.Reason, "audit log") {
				t.Errorf("Reason: got %q, want it to mention the audit log", d.Reason)
			}
			// Writable again: the next call goes through normally.
			w.audit.fail.Store(false)
			d = w.check(t, tok, "Bash", `{"command":"ls"}`)
			wantAllow := len(c.hooks) == 0 || c.hooks[0] != "exit 1"
			if d.Allow != wantAllow {
				t.Errorf("after the log recovers: got allow %v (%q), want %v", d.Allow, d.Reason, wantAllow)
			}
		})
	}
}

// TestHookAdminAuditUnavailable refuses to add, import or remove hooks
// that cannot be audited.
func TestHookAdminAuditUnavailable(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	h := w.addHook(t, "work", "true", "")
	w.audit.fail.Store(true)
	assertError(t, w.do(t, testToken, "POST", "/api/hooks", `{"profile":"work","event":"pre-tool-use","shell":"exit 1"}`), 503, "audit_unavailable")
	assertError(t, w.do(t, testToken, "POST", "/api/hooks/work/import", `[{"event":"pre-tool-use","shell":"exit 1"}]`), 503, "audit_unavailable")
	assertError(t, w.do(t, testToken, "DELETE", "/api/hooks/work/"+h.ID, ""), 503, "audit_unavailable")
	if got, _ := w.hooks.List("work"); len(got) != 1 || got[0].ID != h.ID {
		t.Errorf("hooks after refused changes: got %+v, want only %s", got, h.ID)
	}
}

// TestHookCheckSeesChanges: the hooks kept in memory follow the file,
// whether the daemon changes it or someone edits it by hand.
func TestHookCheckSeesChanges(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	_, tok := w.session(t, "work")
	allowed := func(want bool, why string) {
		t.Helper()
		// Twice: the second check reads what the first kept, if anything.
		for range 2 {
			if d := w.check(t, tok, "Bash", `{"command":"ls"}`); d.Allow != want {
				t.Fatalf("%s: got allow %v (reason %q), want %v", why, d.Allow, d.Reason, want)
			}
		}
	}
	allowed(true, "no hooks")
	h := w.addHook(t, "work", "echo added >&2; exit 1", "^Bash$")
	allowed(false, "a hook added through the daemon")
	if _, err := w.hooks.Remove("work", h.ID); err != nil {
		t.Fatal(err)
	}
	allowed(true, "the hook removed through the daemon")
	// A hand edit: the file replaced with one that has a denying hook.
	path := w.hooks.Path("work")
	edited := `{"version": 1, "hooks": [{"id": "h_00000001", "profile": "work", "event": "pre-tool-use", "shell": "echo edited >&2; exit 1", "match": "^Bash$", "timeout_ns": 5000000000, "created": "2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	allowed(false, "a hook added by hand")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	allowed(true, "the hooks file removed by hand")
}
