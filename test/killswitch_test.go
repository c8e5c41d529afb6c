//go:build linux

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// killAgent is the agent stand-in of the kill switch's tests, run by
// python3 inside the sandbox: it writes its token where the test finds
// it, leaves a child process behind (the whole tree must go), opens a
// streaming provider request and an MCP call that would last minutes, and
// writes a file when each is open.
const killAgent = `
import json, os, subprocess, sys, threading, urllib.request
out, tag = sys.argv[1], sys.argv[2]
tok, base, url = os.environ["ANTHROPIC_API_KEY"], os.environ["ANTHROPIC_BASE_URL"], os.environ["RINGLET_SESSION_URL"]
def mark(name, text=""):
    with open(os.path.join(out, tag + "." + name), "w") as f:
        f.write(text)
subprocess.Popen(["/bin/sh", "-c", "sleep 600; :", tag])
def stream():
    body = json.dumps({"model": "m", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(base + "/v1/messages", data=body, headers={"x-api-key": tok, "content-type": "application/json", "anthropic-version": "2023-06-01"})
    with urllib.request.urlopen(req) as r:
        r.readline()
        mark("stream")
        r.read()
def call(msg, sid=None):
    h = {"Authorization": "Bearer " + tok, "content-type": "application/json", "accept": "application/json, text/event-stream"}
    if sid:
        h["Mcp-Session-Id"] = sid
    return urllib.request.urlopen(urllib.request.Request(url + "/mcp", data=json.dumps(msg).encode(), headers=h))
def tool():
    r = call({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "k", "version": "1"}}})
    sid = r.headers["Mcp-Session-Id"]
    r.read()
    call({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid).read()
    mark("mcp")
    call({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow__slow", "arguments": {"ms": 600000}}}, sid).read()
mark("token", tok)
ts = [threading.Thread(target=stream), threading.Thread(target=tool)]
for t in ts:
    t.start()
for t in ts:
    t.join()
`

// killRecord is an audit record as the kill tests read it.
type killRecord struct {
	Kind    string         `json:"kind"`
	Profile string         `json:"profile"`
	Session string         `json:"session"`
	Actor   string         `json:"actor"`
	Detail  map[string]any `json:"detail"`
}

func (w *sbWorld) records(t *testing.T, kind string) []killRecord {
	t.Helper()
	out := w.mustRun(t, "audit", "query", "--json", "--limit", "1000", "--kind", kind)
	var page struct{ Records []killRecord }
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit query: %v; got %.300q", err, out)
	}
	return page.Records
}

// pidNamespace is the inode of a process's PID namespace, 0 when it is
// gone.
func pidNamespace(pid int) uint64 {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return 0
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// inNamespace are the live (not zombie) processes of PID namespace ns.
func inNamespace(ns uint64) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, de := range entries {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pidGone(pid) {
			continue
		}
		if pidNamespace(pid) == ns {
			out = append(out, pid)
		}
	}
	return out
}

// startKillAgent runs killAgent under 'profiles run p' and waits until
// its stream and MCP call are open. It returns the launcher, the
// session's id and token, and the PID namespace of its sandbox.
func startKillAgent(t *testing.T, w *sbWorld, tag string) (*exec.Cmd, string, string, uint64) {
	t.Helper()
	writeFile(t, filepath.Join(w.ws, "agent.py"), killAgent, 0o644)
	launcher := w.e.command(context.Background(), ringletBin, "profiles", "run", "p", "--", "-c", `exec python3 agent.py "$@"`, "sh", w.ws, tag)
	var stderr lockedBuffer
	launcher.Stderr = &stderr
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		launcher.Process.Signal(syscall.SIGCONT)
		launcher.Process.Kill()
		launcher.Wait()
	})
	var tok string
	if !waitFor(runTimeout, func() bool {
		data, _ := os.ReadFile(filepath.Join(w.ws, tag+".token"))
		tok = string(data)
		_, e1 := os.Stat(filepath.Join(w.ws, tag+".stream"))
		_, e2 := os.Stat(filepath.Join(w.ws, tag+".mcp"))
		return tok != "" && e1 == nil && e2 == nil && len(markedProcesses("sleep 600; :")) > 0
	}) {
		t.Fatalf("the agent did not open its stream and MCP call; launcher stderr:\n%s", stderr.String())
	}
	var sessions []struct{ ID, Profile string }
	if err := json.Unmarshal([]byte(w.mustRun(t, "sessions", "list", "--json")), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("sessions list: got %+v (%v), want the run's one session", sessions, err)
	}
	var ns uint64
	for _, pid := range markedProcesses(tag) {
		if n := pidNamespace(pid); n != 0 && n != pidNamespace(os.Getpid()) {
			ns = n
		}
	}
	if ns == 0 {
		t.Fatal("found no process of the agent's sandbox")
	}
	return launcher, sessions[0].ID, tok, ns
}

// TestKillSwitch: 'ringlet sessions kill' of a sandboxed 'profiles run'
// session whose launcher does nothing (stopped with SIGSTOP: it ignores
// every signal and message) ends everything at once: the sandbox's whole
// process tree is gone when the command returns (checked in /proc by its
// PID namespace), the agent's stream is cut at the provider, a stream and
// an MCP call of the same token from outside end, the profile's stdio MCP
// server is killed, the token is refused, and the audit log has one
// session.killed record with who and why, and its session.end.
func TestKillSwitch(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	bin := buildMCPTestServer(t)
	w.mustRun(t, "mcp", "add", "p", "slow", "--", bin)
	// Streams last minutes unless cut.
	w.fake.TextEvents.Store(100000)
	w.fake.EventDelay.Store(50 * time.Millisecond)
	tag := "ringlet-kill-" + sbRandomHex(4)
	launcher, id, tok, ns := startKillAgent(t, w, tag)
	if !waitFor(runTimeout, func() bool { return len(markedProcesses(bin)) > 0 }) {
		t.Fatal("the MCP server does not run")
	}

	// From outside, with the same token: a stream and an MCP call.
	body := `{"model":"m","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", w.d.URL+"/proxy/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", tok)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := longClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("outside stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	streamEnded := make(chan string, 1)
	go func() {
		data, _ := io.ReadAll(resp.Body)
		streamEnded <- string(data)
	}()
	sid := mcpOpen(t, w.d.URL, tok)
	callDone := make(chan string, 1)
	go func() {
		status, answer, err := mcpPost(w.d.URL, tok, sid, stdioCall(2, "slow__slow", map[string]any{"ms": 600000}))
		callDone <- fmt.Sprintf("%d %s %v", status, answer, err)
	}()

	// The launcher stops answering anything.
	if err := launcher.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := w.e.Run("sessions", "kill", id, "--reason", "runaway test", "--json")
	if code != 0 {
		t.Fatalf("sessions kill: exit %d, stderr %q", code, stderr)
	}
	// Nothing of the sandbox is left when the command returns.
	if left := inNamespace(ns); len(left) > 0 {
		t.Errorf("processes of the killed sandbox still there: %v", left)
	}
	var out struct {
		Sessions []struct {
			ID, Sandbox, By, Reason string
			MCPServers              int `json:"mcp_servers"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Sessions) != 1 || out.Sessions[0].ID != id ||
		out.Sessions[0].Sandbox != "killed" || out.Sessions[0].By != "cli" || out.Sessions[0].MCPServers != 1 {
		t.Errorf("sessions kill --json: got %s (%v), want session %s, sandbox killed, by cli, 1 MCP server", stdout, err, id)
	}
	if !waitFor(endDeadline, func() bool { return len(markedProcesses(bin)) == 0 }) {
		t.Errorf("the profile's MCP server outlived the kill: %v", markedProcesses(bin))
	}
	select {
	case got := <-streamEnded:
		if strings.Contains(got, "message_stop") {
			t.Errorf("the outside stream ran to its end; want it cut")
		}
	case <-time.After(endDeadline):
		t.Error("the outside stream is still open after the kill")
	}
	// The agent's own stream was cut at the provider.
	if !waitFor(endDeadline, func() bool {
		for _, r := range w.fake.Requests() {
			if r.Key == w.key && strings.Contains(string(r.Body), `"stream":true`) && r.Cancelled.IsZero() {
				return false
			}
		}
		return true
	}) {
		t.Error("a stream at the provider outlived the kill")
	}
	status, _, _ := w.d.MustDo(t, "POST", "/proxy/v1/messages", tok, body)
	if status != http.StatusUnauthorized {
		t.Errorf("the killed session's token: got %d, want 401", status)
	}
	killed := 0
	for _, r := range w.records(t, "session.killed") {
		if r.Session == id {
			killed++
			if r.Actor != "admin" || r.Detail["by"] != "cli" || r.Detail["reason"] != "runaway test" || r.Detail["sandbox"] != "killed" {
				t.Errorf("session.killed: got %+v, want by cli, reason, sandbox killed", r)
			}
		}
	}
	if killed != 1 {
		t.Errorf("session.killed records of %s: got %d, want 1", id, killed)
	}
	ended := false
	for _, r := range w.records(t, "session.end") {
		ended = ended || (r.Session == id && r.Detail["reason"] == "killed: runaway test")
	}
	if !ended {
		t.Errorf("no session.end of %s saying it was killed", id)
	}
	// Let go, the launcher hears it and exits, saying why.
	launcher.Process.Signal(syscall.SIGCONT)
	exited := make(chan error, 1)
	go func() { exited <- launcher.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Error("the launcher of a killed session exited 0")
		}
	case <-time.After(endDeadline):
		t.Error("the launcher did not exit after its session was killed")
	}
	select {
	case got := <-callDone:
		if strings.Contains(got, "slept") {
			t.Errorf("the outside MCP call ran to its end: %s", got)
		}
	case <-time.After(endDeadline):
		t.Error("the outside MCP call is still in flight after the kill")
	}
	w.e.AssertNoSecret(w.key)
}

// longClient has no timeout: the kill, not the client, must end what it
// holds (the tests bound their waits themselves).
var longClient = &http.Client{}

// mcpPost posts one JSON-RPC message to /mcp with a session token and
// returns the answer's status and body.
func mcpPost(base, tok, sid, msg string) (int, string, error) {
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(msg))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := longClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data) + " sid=" + resp.Header.Get("Mcp-Session-Id"), err
}

// mcpOpen initializes an MCP session at /mcp and returns its id.
func mcpOpen(t *testing.T, base, tok string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(stdioInit))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("MCP initialize: got %d, session %q", resp.StatusCode, sid)
	}
	if status, body, err := mcpPost(base, tok, sid, stdioInitialized); err != nil || status >= 300 {
		t.Fatalf("MCP initialized: got %d %s %v", status, body, err)
	}
	return sid
}

// TestKillSwitchScopes: --profile kills that profile's sessions only,
// --all the rest; without --yes and off a terminal nothing is killed; the
// admin MCP tool kills and is recorded as such; a plain revoke of a
// 'profiles run' session now stops its agent too.
func TestKillSwitchScopes(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	start := func(alias string) string {
		var s struct{ ID string }
		if err := json.Unmarshal([]byte(w.mustRun(t, "profiles", "env", alias, "--json")), &s); err != nil || s.ID == "" {
			t.Fatalf("profiles env %s: %v", alias, err)
		}
		return s.ID
	}
	p1, p2, q1 := start("p"), start("p"), start("q")
	if _, stderr, code := w.e.Run("sessions", "kill", "--profile", "p"); code == 0 || !strings.Contains(stderr, "--yes") {
		t.Errorf("kill --profile without --yes off a terminal: exit %d, stderr %q; want refused, naming --yes", code, stderr)
	}
	if _, stderr, code := w.e.Run("sessions", "kill"); code == 0 || !strings.Contains(stderr, "--all") {
		t.Errorf("kill with nothing: exit %d, stderr %q; want a usage error", code, stderr)
	}
	live := func() map[string]bool {
		var ss []struct{ ID string }
		json.Unmarshal([]byte(w.mustRun(t, "sessions", "list", "--json")), &ss)
		m := map[string]bool{}
		for _, s := range ss {
			m[s.ID] = true
		}
		return m
	}
	if l := live(); !l[p1] || !l[p2] || !l[q1] {
		t.Fatalf("a refused kill killed: live %v", l)
	}
	w.mustRun(t, "sessions", "kill", "--profile", "p", "--yes", "--reason", "scope")
	if l := live(); l[p1] || l[p2] || !l[q1] {
		t.Errorf("after kill --profile p: live %v, want only %s", l, q1)
	}
	// The admin MCP tool.
	got := stdioAdmin(t, w.e, nil, stdioInit, stdioInitialized, stdioCall(2, "sessions_kill", map[string]any{"all": true, "reason": "from mcp"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, q1) {
		t.Errorf("sessions_kill all: got %q (error %v), want %s killed", text, isErr, q1)
	}
	if l := live(); len(l) != 0 {
		t.Errorf("after sessions_kill all: live %v, want none", l)
	}
	by := map[string]string{}
	for _, r := range w.records(t, "session.killed") {
		by[r.Session] = fmt.Sprint(r.Detail["by"], "/", r.Detail["reason"])
	}
	if want := map[string]string{p1: "cli/scope", p2: "cli/scope", q1: "mcp/from mcp"}; fmt.Sprint(by) != fmt.Sprint(want) {
		t.Errorf("session.killed by session: got %v, want %v", by, want)
	}

	// A revoke of a 'profiles run' session: its launcher stops the agent.
	tag := "ringlet-revoke-" + sbRandomHex(4)
	launcher := w.e.command(context.Background(), ringletBin, "profiles", "run", "p", "--", "-c", `exec /bin/sh -c 'sleep 600; :' "$1"`, "sh", tag)
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { launcher.Process.Kill(); launcher.Wait() }()
	var id string
	if !waitFor(runTimeout, func() bool {
		for s := range live() {
			id = s
		}
		return id != "" && len(markedProcesses("sleep 600; :")) > 0
	}) {
		t.Fatal("the agent did not start")
	}
	w.mustRun(t, "sessions", "revoke", id)
	exited := make(chan error, 1)
	go func() { exited <- launcher.Wait() }()
	select {
	case <-exited:
	case <-time.After(endDeadline):
		t.Error("the agent of a revoked 'profiles run' session still runs")
	}
	if !waitFor(endDeadline, func() bool { return len(markedProcesses(tag)) == 0 }) {
		t.Errorf("processes of the revoked session's agent: %v", markedProcesses(tag))
	}
}

// TestClaudeCodeKilled: the real Claude Code, in its sandbox on a tmux
// terminal, is killed in the middle of a streamed answer: ringlet exits,
// saying why, no process of its sandbox is left, and the kill is
// recorded with its sandbox killed.
func TestClaudeCodeKilled(t *testing.T) {
	t.Parallel()
	requireNode(t)
	w := newTUIWorld(t, claudeBin(t))
	w.newProfile("claude", "tui", "fake", "--model", "claude-sonnet-4-5", "--workspace", w.work, "--trust-workspace")
	m, id := w.agentTerm(t, "tui", false)
	m.WaitMatch(claudePrompt)
	var ns uint64
	// Claude Code's processes, not another test's: in this workspace.
	for _, pid := range markedProcesses("claude") {
		cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
		if n := pidNamespace(pid); n != 0 && n != pidNamespace(os.Getpid()) && cwd == w.work {
			ns = n
		}
	}
	if ns == 0 {
		t.Fatal("found no process of Claude Code's sandbox")
	}
	// An answer that streams for minutes.
	w.fake.TextEvents.Store(100000)
	w.fake.EventDelay.Store(50 * time.Millisecond)
	m.Type("say hi")
	m.WaitText("❯ say hi")
	m.Keys("Enter")
	m.WaitText(fakeprovider.Delta(3))
	stdout := mustRun(t, w.e, "sessions", "kill", id, "--yes", "--reason", "mid-answer", "--json")
	if !strings.Contains(stdout, `"sandbox": "killed"`) {
		t.Errorf("sessions kill --json: got %s, want the sandbox killed", stdout)
	}
	if left := inNamespace(ns); len(left) > 0 {
		t.Errorf("processes of Claude Code's sandbox after the kill: %v", left)
	}
	if status := m.ExitStatus(); status == 0 {
		t.Errorf("ringlet's exit status after the kill: got 0\n%s", m.Screen())
	}
	if !strings.Contains(m.Screen(), "killed: mid-answer") {
		t.Errorf("the terminal does not say the session was killed:\n%s", m.Screen())
	}
}

// TestKillSwitchRemote: a --remote agent, the daemon's child, is killed
// with its sandbox.
func TestKillSwitchRemote(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	tag := "ringlet-remote-" + sbRandomHex(4)
	out := w.mustRun(t, "profiles", "run", "p", "--remote", "--", "-c", `exec /bin/sh -c 'sleep 600; :' "$1"`, "sh", tag)
	var id string
	if _, err := fmt.Sscanf(out[strings.Index(out, "session ")+len("session "):], "%s", &id); err != nil {
		t.Fatalf("profiles run --remote: %q", out)
	}
	var ns uint64
	// The agent itself (not bwrap, whose command line holds the tag too):
	// its forwarder has connected to the session socket by then.
	if !waitFor(runTimeout, func() bool {
		for _, pid := range markedProcesses(tag) {
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if n := pidNamespace(pid); n != 0 && n != pidNamespace(os.Getpid()) && strings.HasPrefix(string(cmdline), "/bin/sh\x00") {
				ns = n
			}
		}
		return ns != 0
	}) {
		t.Fatal("the remote agent did not start")
	}
	stdout := w.mustRun(t, "sessions", "kill", id, "--json")
	if !strings.Contains(stdout, `"sandbox": "killed"`) || !strings.Contains(stdout, `"terminal": true`) {
		t.Errorf("sessions kill --json: got %s, want the sandbox and the terminal killed\n%s", stdout, w.d.Stderr())
	}
	if left := inNamespace(ns); len(left) > 0 {
		t.Errorf("processes of the remote agent's sandbox after the kill: %v", left)
	}
}
