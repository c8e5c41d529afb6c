package test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// codexArgs are the arguments of a non-interactive Codex run of prompt:
// no git repository needed, and (for the tool test) Codex's own sandbox
// off, since its nested bubblewrap cannot run from a temporary CODEX_HOME.
func codexArgs(prompt string, extra ...string) []string {
	return append(append([]string{"exec", "--skip-git-repo-check", "-s", "danger-full-access"}, extra...), prompt)
}

// TestCodex runs the real Codex CLI, offline, with what `profiles env`
// gives a codex profile on an OpenAI-format provider that is the fake:
// the -c flags that make Ringlet its model provider (Codex ignores
// OPENAI_BASE_URL) and the session token in the variable they name. It
// must answer with the fake's text over the Responses API while only the
// daemon holds the key, run a tool call without the token in the
// command's environment, and be refused once the session is revoked.
func TestCodex(t *testing.T) {
	t.Parallel()
	requireNode(t)
	bin := nodeBin(t, "codex")
	w := newProxyWorld(t)
	key := w.newProfile("codex", "cx", "fakeoa", "--model", "gpt-5.5")
	s := w.startSession("cx")
	home := w.unsandboxedHome("cx")
	env := s.Env()
	codexHome := filepath.Join(home, ".codex")
	if env["RINGLET_SESSION_TOKEN"] != s.Token || env["CODEX_HOME"] != codexHome || env["OPENAI_API_KEY"] != "" {
		t.Errorf("launch env: got %v, want RINGLET_SESSION_TOKEN = the session token, CODEX_HOME = %s and no OPENAI_API_KEY", env, codexHome)
	}
	if fi, err := os.Stat(codexHome); err != nil || !fi.IsDir() {
		t.Errorf("CODEX_HOME %s: got %v, want the session start to have made it (Codex refuses to run without it)", codexHome, err)
	}
	if !slices.Contains(s.Launch.Args, `model_providers.ringlet={name="Ringlet",base_url="`+s.BaseURL+`",env_key="RINGLET_SESSION_TOKEN",wire_api="responses"}`) {
		t.Errorf("launch args: got %q, want the ringlet model provider on %s", s.Launch.Args, s.BaseURL)
	}
	cenv := clientEnv(t, s, home, key)
	work := t.TempDir()
	codex := func(t *testing.T, prompt string) string {
		t.Helper()
		return runClientIn(t, work, cenv, 90*time.Second, bin, append(slices.Clone(s.Launch.Args), codexArgs(prompt)...)...)
	}

	t.Run("answers with the fake's text", func(t *testing.T) {
		want := fakeprovider.AnswerText(fakeprovider.DefaultTextEvents)
		if got := strings.TrimSpace(codex(t, "say hi")); got != want {
			t.Errorf("codex exec: got %q, want the fake's text %q", got, want)
		}
		reqs := w.fake.Requests()
		if len(reqs) != 1 {
			t.Fatalf("the provider received %d requests, want 1", len(reqs))
		}
		assertForwardedHeaders(t, reqs, "openai", "Originator", "Session-Id", "User-Agent", "X-Client-Request-Id")
		var body struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if r := reqs[0]; r.Path != "/v1/responses" || r.Key != key || r.Status != http.StatusOK || json.Unmarshal(r.Body, &body) != nil || body.Model != "gpt-5.5" || !body.Stream {
			t.Errorf("%s %s: got status %d, model %q, stream %v and another key than the profile's, or none; want a 200 stream of gpt-5.5 on /v1/responses with the real key",
				r.Method, r.Path, r.Status, body.Model, body.Stream)
		}
	})

	// The fake's function_call of exec_command is one Codex runs; the
	// command's environment must not hold the session token.
	t.Run("tool call round trip", func(t *testing.T) {
		before := len(w.fake.Requests())
		cmd := "env > cmd-env.txt"
		w.fake.ToolUse.Store(&cmd)
		defer w.fake.ToolUse.Store(nil)
		codex(t, "write your environment to a file")
		reqs := w.fake.Requests()[before:]
		if len(reqs) != 2 || !strings.Contains(string(reqs[1].Body), `"function_call_output"`) {
			t.Fatalf("got %d requests, want 2, the second with the command's function_call_output", len(reqs))
		}
		data, err := os.ReadFile(filepath.Join(work, "cmd-env.txt"))
		if err != nil {
			t.Fatalf("the command did not run: %v", err)
		}
		if strings.Contains(string(data), s.Token) || strings.Contains(string(data), "RINGLET_SESSION_TOKEN") {
			t.Error("the command Codex ran got the session token in its environment")
		}
		assertNoKey(t, "the command's environment", data, key)
	})

	recs := w.waitRecords(t, s.ID, 3)
	// OpenAI counts cached tokens inside input_tokens; the audit keeps
	// them apart, as Anthropic reports them.
	u := fakeprovider.DefaultUsage
	for _, r := range recs {
		if r.Status != http.StatusOK || r.Detail["complete"] != true || r.Detail["model"] != "gpt-5.5" ||
			r.TokensIn != u.Input-u.CacheRead || r.TokensOut != u.Output || r.TokensCacheRead != u.CacheRead {
			t.Errorf("provider.request: got status %d, tokens in/out/cached %d/%d/%d, detail %v; want 200, complete, gpt-5.5, tokens %d/%d/%d",
				r.Status, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.Detail, u.Input-u.CacheRead, u.Output, u.CacheRead)
		}
	}

	t.Run("revoked token is dead", func(t *testing.T) {
		mustRun(t, w.e, "sessions", "revoke", s.ID)
		before := len(w.fake.Requests())
		if status, _, body := w.send(t, "POST", "/responses", openaiHeaders(s.Token), `{"model":"gpt-5.5","input":"hi"}`); status != http.StatusUnauthorized {
			t.Errorf("after revoke: got %d, want 401; body %s", status, body)
		}
		if n := len(w.fake.Requests()) - before; n != 0 {
			t.Errorf("after revoke the provider received %d requests, want 0", n)
		}
	})
	w.assertTokenNeverUpstream(t, s.Token)
	w.assertNoKeyLeak(t, key)
	assertNoKeyIn(t, "CODEX_HOME", codexHome, key)
}

// TestCodexSandbox runs the real Codex CLI with `ringlet profiles run` in
// bubblewrap on the provider network. Codex's npm launcher execs a native
// binary from the optional package @openai/codex-linux-x64, which must be
// bound into the sandbox beside the launcher's own package. It must answer
// with the fake's text through the forwarder, with the real key added by
// the daemon, and a tool call must be able to write the workspace.
func TestCodexSandbox(t *testing.T) {
	t.Parallel()
	requireNode(t)
	requireBwrap(t)
	binDir, err := filepath.EvalSymlinks(filepath.Dir(nodeBin(t, "codex")))
	if err != nil {
		t.Fatal(err)
	}
	w := newProxyWorld(t)
	work := t.TempDir()
	key := w.newProfile("codex", "cxbox", "fakeoa", "--model", "gpt-5.5", "--workspace", work)
	w.e.ExtraEnv = append(w.e.ExtraEnv, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	run := func(t *testing.T, prompt string) string {
		t.Helper()
		stdout, stderr, code := w.e.Run(append([]string{"profiles", "run", "cxbox", "--"}, codexArgs(prompt)...)...)
		if code != 0 {
			t.Fatalf("profiles run cxbox: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		return stdout
	}

	want := fakeprovider.AnswerText(fakeprovider.DefaultTextEvents)
	if got := strings.TrimSpace(run(t, "say hi")); got != want {
		t.Errorf("codex in the sandbox: got %q, want the fake's text %q", got, want)
	}
	marker := filepath.Join(work, "marker")
	cmd := "touch marker"
	w.fake.ToolUse.Store(&cmd)
	run(t, "create the marker")
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the tool call did not write the workspace: %v", err)
	}

	reqs := w.fake.Requests()
	if len(reqs) != 3 {
		t.Errorf("the provider got %d requests, want 3 (one answer, then a tool call and its result)", len(reqs))
	}
	for _, r := range reqs {
		if r.Key != key || r.Status != http.StatusOK || r.Path != "/v1/responses" {
			t.Errorf("%s %s: got status %d and another key than the profile's, or none; want 200 on /v1/responses with the real key", r.Method, r.Path, r.Status)
		}
	}
	launches := ofKind(auditOf(t, w.e, "cxbox", "profile.launch"), "profile.launch")
	if len(launches) != 2 {
		t.Fatalf("audit: got %d profile.launch records, want 2", len(launches))
	}
	runtime, _ := launches[0].Detail["runtime"].([]any)
	if !slices.ContainsFunc(runtime, func(d any) bool { s, _ := d.(string); return strings.HasSuffix(s, "/@openai/codex-linux-x64") }) {
		t.Errorf("profile.launch runtime: got %v, want the native package @openai/codex-linux-x64 bound", runtime)
	}
	if out := strings.TrimSpace(mustRun(t, w.e, "sessions", "list", "--json")); out != "[]" {
		t.Errorf("sessions list --json after the runs: got %s, want []", out)
	}
	w.assertNoKeyLeak(t, key)
	assertNoKeyIn(t, "the workspace", work, key)
}
