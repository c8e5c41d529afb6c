package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/sandbox"
)

// launchBody is a POST /api/sessions body that asks for a launch of
// profile work from dir.
func launchBody(t *testing.T, dir string, noSandbox bool) string {
	t.Helper()
	b, err := json.Marshal(api.SessionRequest{Profile: "work", Launch: &api.LaunchRequest{Dir: dir, Path: "/usr/bin:/bin", Home: "/home/me", Args: []string{"extra"}, NoSandbox: noSandbox}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLaunchPlanOnce: the daemon prepares a session's launch when the
// session starts and hands its plan out once, having recorded
// profile.launch with its summary first.
func TestLaunchPlanOnce(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	ws := t.TempDir()
	status, text := w.rest(t, testToken, "POST", "/api/sessions", launchBody(t, ws, true))
	var st api.SessionStarted
	if status != http.StatusCreated || json.Unmarshal([]byte(text), &st) != nil {
		t.Fatalf("POST /api/sessions with a launch: got %d %s, want 201", status, text)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "WITHOUT a sandbox") || st.Sandboxed {
		t.Errorf("got warnings %q, sandboxed %v; want the warning of a run without a sandbox", st.Warnings, st.Sandboxed)
	}
	status, text = w.rest(t, testToken, "POST", "/api/sessions/"+st.ID+"/plan", "")
	var plan api.LaunchPlan
	if status != http.StatusOK || json.Unmarshal([]byte(text), &plan) != nil {
		t.Fatalf("POST plan: got %d %s, want 200", status, text)
	}
	program, _ := exec.LookPath("true")
	if plan.Sandbox || plan.Dir != ws || len(plan.Argv) != 2 || filepath.Base(plan.Argv[0]) != "true" || plan.Argv[1] != "extra" {
		t.Errorf("plan: got %+v, want %s extra in %s without a sandbox", plan, program, ws)
	}
	if !slices.Contains(plan.Env, "HOME="+st.Home) || !slices.Contains(plan.Env, "ANTHROPIC_API_KEY="+st.Token) {
		t.Errorf("plan env: got %q, want the session's HOME and token", plan.Env)
	}
	if status, text := w.rest(t, testToken, "POST", "/api/sessions/"+st.ID+"/plan", ""); status != http.StatusConflict || !strings.Contains(text, "no_plan") {
		t.Errorf("POST plan again: got %d %s, want 409 no_plan", status, text)
	}
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Session: st.ID, Kinds: []string{audit.KindProfileLaunch}, Limit: 10})
	if err != nil || len(recs) != 1 {
		t.Fatalf("profile.launch records: got %d, %v; want 1", len(recs), err)
	}
	var d map[string]any
	if json.Unmarshal(recs[0].Detail, &d) != nil || d["sandbox"] != false || d["workspace"] != ws || d["command"] != plan.Argv[0] {
		t.Errorf("profile.launch detail: got %s, want sandbox false, the workspace and the program", recs[0].Detail)
	}
	// A remote terminal runs only a sandbox, and only a session's own
	// plan: one without a sandbox, or none at all, is refused.
	plain, _ := w.session(t, "work")
	for _, tc := range []struct {
		id     string
		status int
	}{{st.ID, http.StatusConflict}, {plain, http.StatusConflict}} {
		if status, text := w.rest(t, testToken, "POST", "/api/sessions/"+tc.id+"/terminal", `{"cols":80,"rows":24}`); status != tc.status || !strings.Contains(text, "no_plan") {
			t.Errorf("terminal of %s: got %d %s, want %d no_plan", tc.id, status, text, tc.status)
		}
	}
	_, text = w.rest(t, testToken, "POST", "/api/sessions", launchBody(t, ws, true))
	var st2 api.SessionStarted
	_ = json.Unmarshal([]byte(text), &st2)
	if status, text := w.rest(t, testToken, "POST", "/api/sessions/"+st2.ID+"/terminal", `{"cols":80,"rows":24}`); status != http.StatusBadRequest || !strings.Contains(text, "sandbox") {
		t.Errorf("terminal of a launch without a sandbox: got %d %s, want 400", status, text)
	}
	if status, text := w.rest(t, testToken, "POST", "/api/sessions/"+st2.ID+"/plan", ""); status != http.StatusOK {
		t.Errorf("plan after the refused terminal: got %d %s, want it still there", status, text)
	}
	// Old clients sent the command line; the daemon builds it now.
	if status, text := w.rest(t, testToken, "POST", "/api/sessions/"+plain+"/terminal", `{"argv":["/bin/sh"],"cols":80,"rows":24}`); status != http.StatusBadRequest {
		t.Errorf("terminal with an argv: got %d %s, want 400", status, text)
	}
}

// TestLaunchRefusedBeforeSession: what the sandbox would refuse is
// refused before a session starts.
func TestLaunchRefusedBeforeSession(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name, body, code string
		status           int
	}{
		{"missing workspace", launchBody(t, missing, false), "launch_refused", http.StatusBadRequest},
		{"a launch that also asks for a socket", `{"profile":"work","socket":true,"launch":{"dir":"/tmp","path":"/bin","home":"/h"}}`, "bad_request", http.StatusBadRequest},
		{"an unknown profile", `{"profile":"nope","launch":{"dir":"/tmp","path":"/bin","home":"/h"}}`, "not_found", http.StatusNotFound},
	} {
		status, text := w.rest(t, testToken, "POST", "/api/sessions", tc.body)
		if status != tc.status || !strings.Contains(text, tc.code) {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, status, text, tc.status, tc.code)
		}
	}
	if n := w.s.sessions.count(); n != 0 {
		t.Errorf("live sessions: got %d, want none", n)
	}
	if recs, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindSessionStart}, Limit: 10}); len(recs) != 0 {
		t.Errorf("session.start records: got %d, want none", len(recs))
	}
}

// TestLaunchLeaseUntilSessionEnds: the daemon holds a sandboxed launch's
// lease on its workspace, whose missing protected paths it made, until
// the session ends.
func TestLaunchLeaseUntilSessionEnds(t *testing.T) {
	// Not parallel: a child another test forks holds a copy of the
	// lease's lock until it execs, and the cleanup would see a holder.
	bwrap, err := sandbox.Find()
	if err == nil {
		err = sandbox.Check(bwrap)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no sandbox here: %v; CI must have one", err)
		}
		t.Skipf("no sandbox here: %v", err)
	}
	state := t.TempDir()
	empty, err := sandbox.EmptyFile(state)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := newMCPWorldWith(t, func(o *Options) {
		o.StateDir, o.Launch = state, launch.New(launch.Options{Executable: exe, StateDir: state, EmptyFile: empty})
		o.SocketDir = t.TempDir()
	})
	ws := t.TempDir()
	status, text := w.rest(t, testToken, "POST", "/api/sessions", launchBody(t, ws, false))
	var st api.SessionStarted
	if status != http.StatusCreated || json.Unmarshal([]byte(text), &st) != nil {
		t.Fatalf("POST /api/sessions with a launch: got %d %s, want 201", status, text)
	}
	if !st.Sandboxed || st.Socket == "" || st.BaseURL != launch.ForwarderURL {
		t.Errorf("got sandboxed %v, socket %q, base URL %q; want a sandbox on the provider network", st.Sandboxed, st.Socket, st.BaseURL)
	}
	envrc := filepath.Join(ws, ".envrc")
	if _, err := os.Lstat(envrc); err != nil {
		t.Fatalf("%s while the session lives: %v, want the placeholder", envrc, err)
	}
	status, text = w.rest(t, testToken, "POST", "/api/sessions/"+st.ID+"/plan", "")
	var plan api.LaunchPlan
	if status != http.StatusOK || json.Unmarshal([]byte(text), &plan) != nil || !plan.Sandbox || len(plan.Files) != 2 || !slices.Equal(plan.Trees, []string{ws}) {
		t.Fatalf("POST plan: got %d %.300s, want a sandbox's plan", status, text)
	}
	if strings.Contains(strings.Join(plan.Argv, " "), st.Token) || !strings.Contains(string(plan.Files[0]), st.Token) {
		t.Errorf("plan: want the session token in bwrap's options, never on its command line")
	}
	if status, text := w.rest(t, testToken, "DELETE", "/api/sessions/"+st.ID, ""); status != http.StatusOK {
		t.Fatalf("DELETE session: got %d %s", status, text)
	}
	if _, err := os.Lstat(envrc); err == nil {
		t.Errorf("%s after the session ended: still there, want the placeholder removed", envrc)
	}
}
