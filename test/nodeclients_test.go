package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// nodeDir holds the npm packages the client tests run: the official
// Anthropic and OpenAI SDKs and Claude Code, pinned in package-lock.json.
const nodeDir = "node"

// requireNode skips t when node or test/node/node_modules is missing, or
// fails it under CI=true, where `npm ci` has installed them.
func requireNode(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(nodeDir, "node_modules")); err != nil {
		why = "test/node/node_modules is missing; run 'npm ci --prefix test/node' (make test does)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this test must run)", why)
	}
	t.Skip(why)
}

// clientEnv is the whole environment of a client process: PATH, a HOME
// and the variables of the session's launch. It fails t if the real key
// is in it: an agent gets the session token, never the key.
func clientEnv(t *testing.T, s proxySession, home string, key string, extra ...string) []string {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	for _, v := range s.Launch.Env {
		env = append(env, v.Name+"="+v.Value)
	}
	env = append(env, extra...)
	for _, kv := range env {
		assertNoKey(t, "the client's environment", []byte(kv), key)
	}
	return env
}

// runClient runs a client process in test/node and returns its stdout.
// Its output is shown only when it fails.
func runClient(t *testing.T, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	return runClientIn(t, nodeDir, env, timeout, name, args...)
}

// runClientIn is runClient in dir.
func runClientIn(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v (timeout %s)\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, timeout, out.String(), errb.String())
	}
	return out.String()
}

// requestsWithKey are the fake's requests that carried key.
func requestsWithKey(reqs []fakeprovider.Request, key string) []fakeprovider.Request {
	var out []fakeprovider.Request
	for _, r := range reqs {
		if r.Key == key {
			out = append(out, r)
		}
	}
	return out
}

// TestSDKClients runs the official Anthropic and OpenAI SDKs against the
// daemon with nothing but the variables `profiles env` prints, and checks
// they get the fake's answers, streamed and not, with usage intact.
func TestSDKClients(t *testing.T) {
	t.Parallel()
	requireNode(t)
	w := newProxyWorld(t)
	usage := fakeprovider.Usage{Input: 120, Output: 17, CacheRead: 30, CacheWrite: 6, Reasoning: 4}
	w.fake.Usage.Store(&usage)
	w.fake.TextEvents.Store(4)
	wantText := fakeprovider.AnswerText(4)

	type result struct {
		Text       string         `json:"text"`
		StopReason string         `json:"stop_reason"`
		Finish     string         `json:"finish_reason"`
		Status     string         `json:"status"`
		Deltas     int            `json:"deltas"`
		Chunks     int            `json:"chunks"`
		Types      []string       `json:"types"`
		Usage      map[string]any `json:"usage"`
	}
	type output struct {
		Create result `json:"create"`
		Stream result `json:"stream"`
	}
	cases := []struct {
		script, providerID, wantPath string
		check                        func(t *testing.T, o output)
	}{
		{"anthropic.mjs", "fake", "/v1/messages", func(t *testing.T, o output) {
			for name, r := range map[string]result{"messages.create": o.Create, "messages.stream": o.Stream} {
				u := r.Usage
				if r.Text != wantText || r.StopReason != "end_turn" || u["input_tokens"] != 120.0 || u["output_tokens"] != 17.0 ||
					u["cache_read_input_tokens"] != 30.0 || u["cache_creation_input_tokens"] != 6.0 {
					t.Errorf("%s: got %+v, want text %q, end_turn and the fake's usage", name, r, wantText)
				}
			}
			if o.Stream.Deltas != 4 {
				t.Errorf("messages.stream: got %d text events, want 4", o.Stream.Deltas)
			}
		}},
		{"openai-chat.mjs", "fakeoa", "/v1/chat/completions", func(t *testing.T, o output) {
			for name, r := range map[string]result{"chat.completions.create": o.Create, "chat.completions.stream": o.Stream} {
				u := r.Usage
				details, _ := u["prompt_tokens_details"].(map[string]any)
				if r.Text != wantText || r.Finish != "stop" || u["prompt_tokens"] != 120.0 || u["completion_tokens"] != 17.0 || details["cached_tokens"] != 30.0 {
					t.Errorf("%s: got %+v, want text %q, stop and the fake's usage", name, r, wantText)
				}
			}
			// A role chunk, 4 text chunks, the finish chunk, the usage chunk.
			if o.Create.Chunks != 7 {
				t.Errorf("chat.completions.create: got %d chunks, want 7", o.Create.Chunks)
			}
		}},
		{"openai-responses.mjs", "fakeoa", "/v1/responses", func(t *testing.T, o output) {
			for name, r := range map[string]result{"responses.create": o.Create, "responses.stream": o.Stream} {
				u := r.Usage
				details, _ := u["input_tokens_details"].(map[string]any)
				if r.Text != wantText || r.Status != "completed" || u["input_tokens"] != 120.0 || u["output_tokens"] != 17.0 || details["cached_tokens"] != 30.0 {
					t.Errorf("%s: got %+v, want text %q, completed and the fake's usage", name, r, wantText)
				}
			}
			if n := len(o.Create.Types); n == 0 || o.Create.Types[0] != "response.created" || o.Create.Types[n-1] != "response.completed" {
				t.Errorf("responses.create: got events %v, want response.created first and response.completed last", o.Create.Types)
			}
		}},
	}
	var keys []string
	t.Cleanup(func() { w.assertNoKeyLeak(t, keys...) })
	for i, c := range cases {
		alias := fmt.Sprintf("node%d", i)
		key := w.newProfile("generic", alias, c.providerID, "--command", "node")
		keys = append(keys, key)
		s := w.startSession(alias)
		t.Run(c.script, func(t *testing.T) {
			t.Parallel()
			out := runClient(t, clientEnv(t, s, t.TempDir(), key), 60*time.Second, "node", c.script)
			var o output
			if err := json.Unmarshal([]byte(out), &o); err != nil {
				t.Fatalf("node %s: %v; got %q", c.script, err, out)
			}
			c.check(t, o)
			reqs := requestsWithKey(w.fake.Requests(), key)
			if len(reqs) != 2 {
				t.Fatalf("the provider got %d requests with the profile's key, want 2", len(reqs))
			}
			for _, r := range reqs {
				if r.Path != c.wantPath || r.Status != http.StatusOK {
					t.Errorf("upstream request: got %s %s -> %d, want POST %s -> 200", r.Method, r.Path, r.Status, c.wantPath)
				}
			}
			format, want := "openai", []string{"User-Agent", "X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-Retry-Count"}
			if c.providerID == "fake" {
				format, want = "anthropic", append(want, "Anthropic-Version")
			}
			assertForwardedHeaders(t, reqs, format, want...)
			recs := w.waitRecords(t, s.ID, 2)
			for _, r := range recs {
				if r.TokensOut != 17 || r.Detail["complete"] != true {
					t.Errorf("provider.request: got tokens_out %d, complete %v; want 17, true", r.TokensOut, r.Detail["complete"])
				}
			}
		})
	}
}

// claudeBin is Claude Code as npm installed it in test/node.
func claudeBin(t *testing.T) string { return nodeBin(t, "claude") }

// nodeBin is the executable name that npm installed in test/node.
func nodeBin(t *testing.T, name string) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(nodeDir, "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is not installed in test/node: %v", name, err)
	}
	return bin
}

// TestClaudeCode runs the real Claude Code, offline, with the variables
// `profiles env` prints for a claude profile whose provider is the fake:
// it must answer with the fake's text while only the daemon ever holds
// the key, and the token must be dead once the session is revoked.
func TestClaudeCode(t *testing.T) {
	t.Parallel()
	requireNode(t)
	bin := claudeBin(t)
	w := newProxyWorld(t)
	key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5")
	s := w.startSession("cc")
	home := w.unsandboxedHome("cc")
	env := s.Env()
	for name, want := range map[string]string{"ANTHROPIC_BASE_URL": s.BaseURL, "ANTHROPIC_AUTH_TOKEN": s.Token, "ANTHROPIC_API_KEY": "", "ANTHROPIC_MODEL": "claude-sonnet-4-5"} {
		if env[name] != want {
			t.Errorf("launch env %s: got %q, want %q", name, env[name], want)
		}
	}
	if slices.Compare(s.Launch.Command, []string{"claude"}) != 0 {
		t.Errorf("launch command: got %v, want [claude]", s.Launch.Command)
	}

	cenv := clientEnv(t, s, home, key, "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1", "DISABLE_ERROR_REPORTING=1")
	work := t.TempDir()
	claude := func(t *testing.T, extra ...string) claudeResult {
		t.Helper()
		args := append([]string{"-p", "say hi", "--output-format", "json"}, extra...)
		out := runClientIn(t, work, cenv, 90*time.Second, bin, args...)
		var res claudeResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("claude --output-format json: %v; got %q", err, out)
		}
		return res
	}

	t.Run("answers with the fake's text", func(t *testing.T) {
		res := claude(t)
		if res.Type != "result" || res.Subtype != "success" || res.IsError || res.Result != fakeprovider.AnswerText(fakeprovider.DefaultTextEvents) {
			t.Errorf("claude: got %+v, want a successful result with the text %q", res, fakeprovider.AnswerText(fakeprovider.DefaultTextEvents))
		}
		reqs := w.fake.Requests()
		if len(reqs) == 0 {
			t.Fatal("the provider received no request")
		}
		assertForwardedHeaders(t, reqs, "anthropic", "Anthropic-Version", "Anthropic-Beta", "User-Agent", "X-App", "X-Claude-Code-Session-Id")
		for _, r := range reqs {
			if r.Key != key || r.Status != http.StatusOK {
				t.Errorf("%s %s: got status %d and another key than the profile's, or none; want 200 with the real key", r.Method, r.Path, r.Status)
			}
			var body struct{ Model string }
			if r.Path == "/v1/messages" && (json.Unmarshal(r.Body, &body) != nil || body.Model != "claude-sonnet-4-5") {
				t.Errorf("%s %s: got model %q, want the profile's claude-sonnet-4-5", r.Method, r.Path, body.Model)
			}
		}
	})

	// The scripted tool_use of the fake is an answer Claude Code accepts:
	// it runs the tool and sends the result back.
	t.Run("tool use round trip", func(t *testing.T) {
		before := len(w.fake.Requests())
		cmd := "echo ringlet-tool-ran"
		w.fake.ToolUse.Store(&cmd)
		defer w.fake.ToolUse.Store(nil)
		res := claude(t, "--allowedTools", "Bash(echo ringlet-tool-ran)")
		reqs := w.fake.Requests()[before:]
		if res.IsError || res.NumTurns != 2 || len(reqs) != 2 {
			t.Fatalf("claude: got %+v and %d requests, want success in 2 turns and 2 requests", res, len(reqs))
		}
		if b := string(reqs[1].Body); !strings.Contains(b, `"tool_result"`) || !strings.Contains(b, "ringlet-tool-ran") {
			t.Errorf("second request: got no tool_result with the command's output; body %.500s", b)
		}
	})

	recs := w.waitRecords(t, s.ID, 3)
	for _, r := range recs {
		if r.Status != http.StatusOK || r.Detail["complete"] != true || r.Detail["model"] != "claude-sonnet-4-5" {
			t.Errorf("provider.request: got status %d, detail %v; want 200, complete, claude-sonnet-4-5", r.Status, r.Detail)
		}
	}

	t.Run("revoked token is dead", func(t *testing.T) {
		mustRun(t, w.e, "sessions", "revoke", s.ID)
		before := len(w.fake.Requests())
		// Claude Code retries a 401 for minutes, so the token is tried the
		// way it sends it: as a bearer token (ANTHROPIC_AUTH_TOKEN).
		hdr := anthropicHeaders("")
		hdr.Del("X-Api-Key")
		hdr.Set("Authorization", "Bearer "+s.Token)
		if status, _, body := w.send(t, "POST", "/v1/messages?beta=true", hdr, messagesBody); status != http.StatusUnauthorized {
			t.Errorf("after revoke: got %d, want 401; body %s", status, body)
		}
		if n := len(w.fake.Requests()) - before; n != 0 {
			t.Errorf("after revoke the provider received %d requests, want 0", n)
		}
	})
	w.assertTokenNeverUpstream(t, s.Token)
	w.assertNoKeyLeak(t, key)
}

// claudeResult is the part of `claude -p --output-format json` the test
// reads.
type claudeResult struct {
	Type     string `json:"type"`
	Subtype  string `json:"subtype"`
	IsError  bool   `json:"is_error"`
	Result   string `json:"result"`
	NumTurns int    `json:"num_turns"`
}
