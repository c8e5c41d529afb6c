package test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// requireBwrap skips t when bubblewrap is missing or cannot create a
// sandbox on this machine, or fails it under CI=true.
func requireBwrap(t *testing.T) {
	t.Helper()
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		skipUnlessCI(t, "bubblewrap (bwrap) is not installed; install it (Debian/Ubuntu: apt-get install bubblewrap) to run the sandbox tests")
	}
	out, err := exec.Command(bwrap, "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "/bin/true").CombinedOutput()
	if err != nil {
		skipUnlessCI(t, "bubblewrap cannot create a sandbox here ("+strings.TrimSpace(string(out))+"); user namespaces may be restricted")
	}
}

// sandboxWorld is a proxyWorld with a claude profile, alias "box", whose
// workspace is a fresh directory, and whose user has test/node's Claude
// Code first on PATH, where `profiles run` looks for the agent.
func sandboxWorld(t *testing.T) (w *proxyWorld, key, work string) {
	t.Helper()
	return sandboxWorldConfig(t)
}

// sandboxWorldConfig is sandboxWorld with config keys set (key, value,
// ...) before the daemon starts.
func sandboxWorldConfig(t *testing.T, keyValues ...string) (w *proxyWorld, key, work string) {
	t.Helper()
	requireNode(t)
	requireBwrap(t)
	// Symbolic links resolved: `profiles run` binds the program's
	// directory into the sandbox, where a link in a parent directory
	// would not resolve.
	binDir, err := filepath.EvalSymlinks(filepath.Dir(claudeBin(t)))
	if err != nil {
		t.Fatal(err)
	}
	w = newProxyWorldConfig(t, keyValues...)
	work = t.TempDir()
	key = w.newProfile("claude", "box", "fake", "--model", "claude-sonnet-4-5", "--workspace", work)
	w.e.ExtraEnv = append(w.e.ExtraEnv, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return w, key, work
}

// runBox runs `ringlet profiles run box -- ARGS`, wants exit 0, and
// decodes Claude Code's --output-format json result.
func runBox(t *testing.T, w *proxyWorld, args ...string) claudeResult {
	t.Helper()
	start := time.Now()
	stdout, stderr, code := w.e.Run(append([]string{"profiles", "run", "box", "--"}, args...)...)
	t.Logf("profiles run took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("profiles run box: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var res claudeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("claude --output-format json in the sandbox: %v; got %q (stderr %q)", err, stdout, stderr)
	}
	return res
}

// assertNoKeyIn fails t if any file under dir holds the key.
func assertNoKeyIn(t *testing.T, what, dir, key string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(dir, path)
		assertNoKey(t, what+" "+rel, data, key)
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", what, err)
	}
	t.Logf("checked %d files in %s for the key", files, what)
}

// TestClaudeCodeSandbox runs the real Claude Code with `ringlet profiles
// run` in bubblewrap on the default provider network, where its only way
// out is the forwarder inside the sandbox to the session's socket, and
// the daemon adds the real key. It must answer with the fake's text, the
// fake must see the real key, the session must be gone afterwards with
// its end (and the agent's exit code) audited, and the key must be
// nowhere in the profile's HOME or the workspace.
func TestClaudeCodeSandbox(t *testing.T) {
	t.Parallel()
	w, key, work := sandboxWorld(t)
	res := runBox(t, w, "-p", "say hi", "--output-format", "json")
	want := fakeprovider.AnswerText(fakeprovider.DefaultTextEvents)
	if res.Type != "result" || res.Subtype != "success" || res.IsError || res.Result != want {
		t.Errorf("claude in the sandbox: got %+v, want a successful result with the text %q", res, want)
	}

	reqs := w.fake.Requests()
	if len(requestsWithKey(reqs, key)) == 0 {
		t.Error("the provider got no request with the profile's key, want the answer's request")
	}
	for _, r := range reqs {
		if r.Key != key || r.Status != http.StatusOK {
			t.Errorf("%s %s: got status %d and another key than the profile's, or none; want 200 with the real key", r.Method, r.Path, r.Status)
		}
	}

	if out := strings.TrimSpace(mustRun(t, w.e, "sessions", "list", "--json")); out != "[]" {
		t.Errorf("sessions list --json after the run: got %s, want []", out)
	}
	recs := auditOf(t, w.e, "box", "session.start,profile.launch,provider.request,session.end")
	starts, launches, ends := ofKind(recs, "session.start"), ofKind(recs, "profile.launch"), ofKind(recs, "session.end")
	if len(starts) != 1 || len(launches) != 1 || len(ends) != 1 {
		t.Fatalf("audit: got %d session.start, %d profile.launch, %d session.end, want 1 each: %+v", len(starts), len(launches), len(ends), recs)
	}
	id := starts[0].Session
	l := launches[0].Detail
	runtime, _ := l["runtime"].([]any)
	if launches[0].Session != id || l["sandbox"] != true || l["network"] != "provider" || l["workspace"] != work ||
		!slices.ContainsFunc(runtime, func(d any) bool { s, _ := d.(string); return strings.HasSuffix(s, "/@anthropic-ai/claude-code") }) {
		t.Errorf("profile.launch: got session %s, %v; want session %s, sandbox on the provider network, workspace %s, Claude Code's package in the runtime", launches[0].Session, l, id, work)
	}
	if ends[0].Session != id || ends[0].Detail["reason"] != "agent exited with code 0" {
		t.Errorf("session.end: got session %s, %v; want session %s ended with 'agent exited with code 0'", ends[0].Session, ends[0].Detail, id)
	}
	proxied := ofKind(recs, "provider.request")
	if len(proxied) != len(reqs) {
		t.Errorf("audit: got %d provider.request records, want one for each of the %d requests the provider got", len(proxied), len(reqs))
	}
	for _, r := range proxied {
		if r.Session != id || r.Status != http.StatusOK {
			t.Errorf("provider.request: got session %s, status %d; want %s, 200", r.Session, r.Status, id)
		}
	}

	w.assertNoKeyLeak(t, key)
	assertNoKeyIn(t, "the workspace", work, key)
}

// TestClaudeCodeSandboxHooks checks that the profile's hooks guard Claude
// Code inside the sandbox too: its PreToolUse hook runs the ringlet
// binary at the path written into settings.json, which must be there
// inside, and asks the daemon through the forwarder and the session
// socket. A refusing hook keeps the tool from touching the workspace; an
// allowing one lets it.
func TestClaudeCodeSandboxHooks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, hook, decision string
		wantCreated          bool
	}{
		{name: "a refusing hook blocks", hook: `echo "$RINGLET_TOOL_INPUT" | grep -qv touch`, decision: "deny"},
		{name: "an allowing hook lets it run", hook: "true", decision: "allow", wantCreated: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w, key, work := sandboxWorld(t)
			hookID := addHook(t, w.e, "box", c.hook)
			marker := filepath.Join(work, "marker")
			cmd := "touch " + marker
			w.fake.ToolUse.Store(&cmd)
			res := runBox(t, w, "-p", "create the marker", "--output-format", "json", "--allowedTools", "Bash(touch:*)")

			_, err := os.Stat(marker)
			if created := err == nil; created != c.wantCreated {
				t.Errorf("the tool's marker file exists: got %v, want %v", created, c.wantCreated)
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat marker: %v", err)
			}
			tr := toolRoundTrip(t, w.fake, res)
			starts := ofKind(auditOf(t, w.e, "box", "session.start"), "session.start")
			if len(starts) != 1 {
				t.Fatalf("audit: got %d session.start records, want 1", len(starts))
			}
			reason := checkToolAudit(t, w.e, "box", starts[0].Session, hookID, c.decision)
			switch {
			case c.wantCreated && tr.IsError:
				t.Errorf("tool_result: got the error %q, want the command's result", tr.Text)
			case !c.wantCreated && (!tr.IsError || reason == "" || !strings.Contains(tr.Text, reason)):
				t.Errorf("tool_result: got %+v, want is_error with the audited reason %q", tr, reason)
			}
			w.assertNoKeyLeak(t, key)
		})
	}
}
