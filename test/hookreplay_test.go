package test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hrResult is what 'hooks test --json' prints.
type hrResult struct {
	Calls, Replayed, Unchanged int
	Flips                      []struct {
		Seq            int64
		Tool, From, To string
		Why            string
	}
	NotReplayable []struct {
		Seq          int64
		Tool, Reason string
	} `json:"not_replayable"`
	Input *struct {
		Tool    string
		Current struct {
			Allow  bool
			Reason string
		}
		Candidate *struct {
			Allow  bool
			Reason string
		}
		Flip bool
	}
}

func hrTest(t *testing.T, e *env, stdin string, args ...string) (hrResult, int) {
	t.Helper()
	stdout, stderr, code := e.RunInput(stdin, append([]string{"hooks", "test"}, args...)...)
	var r hrResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("hooks test %v: exit %d, stdout %q, stderr %q: %v", args, code, stdout, stderr, err)
	}
	return r, code
}

// TestHooksDenialAndReplay: a hook's refusal tells the agent (through
// Claude Code's adapter) and the audit log which hook, its command, its
// exit code, its first line of stderr and how to change it, with no key
// or admin token the hook printed; then 'hooks test' decides the recorded
// calls again with a candidate set and names the calls that would flip,
// says which cannot be replayed and why, runs hooks on one input in a
// sandbox that keeps nothing, and writes nothing to the audit log.
func TestHooksDenialAndReplay(t *testing.T) {
	requireBwrap(t)
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	const key = "sk-ant-replay-canary-7f3e9a1c"
	if _, stderr, code := e.RunInput(key, "profiles", "create", "claude", "work", "--provider", "local"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	// A hook of the user's that prints what it should not: the key and
	// the admin token, from a file of theirs.
	dir := t.TempDir()
	canary := filepath.Join(dir, "canary")
	if err := os.WriteFile(canary, []byte("danger refused near "+key+" and "+e.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	guardID := strings.TrimSpace(strings.TrimPrefix(strings.Fields(mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^Bash$", "--shell", hkGuard))[2], ""))
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^Danger$", "--shell", "cat "+canary+" >&2; exit 4")
	var sess hkSession
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &sess); err != nil {
		t.Fatal(err)
	}
	direct := []string{ringletBin, "hook", "claude-pre-tool-use"}
	event := func(tool, input string) string {
		return `{"session_id":"x","hook_event_name":"PreToolUse","tool_name":"` + tool + `","tool_input":` + input + `}`
	}
	// What the agent sees.
	stderr, code := hkClaude(t, e, sess, hkEvent("rm -rf /tmp/x"), direct...)
	for _, want := range []string{"hook " + guardID, hkGuard, "exit 1", "'ringlet hooks remove work " + guardID + "'", "'ringlet hooks test work --hook FILE'"} {
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("refused rm -rf: exit %d, stderr %q; want 2 and %q in it", code, stderr, want)
		}
	}
	stderr, code = hkClaude(t, e, sess, event("Danger", `{}`), direct...)
	if code != 2 || !strings.Contains(stderr, "danger refused near [redacted] and [redacted]") || !strings.Contains(stderr, "exit 4") ||
		strings.Contains(stderr, key) || strings.Contains(stderr, e.Token()) {
		t.Errorf("refused Danger: exit %d, stderr %q; want 2, the hook's line with the key and the token redacted, and exit 4", code, stderr)
	}
	if _, code := hkClaude(t, e, sess, hkEvent("ls"), direct...); code != 0 {
		t.Fatalf("ls: exit %d, want 0", code)
	}
	if _, code := hkClaude(t, e, sess, event("Write", `{"file_path":"a"}`), direct...); code != 0 {
		t.Fatalf("Write: exit %d, want 0", code)
	}
	// What the audit log says.
	auditJSON := mustRun(t, e, "audit", "query", "--kind", "hook.decision,tool.call", "--json")
	if strings.Contains(auditJSON, key) || strings.Contains(auditJSON, e.Token()) {
		t.Errorf("audit records hold the key or the admin token: %s", auditJSON)
	}
	var q struct {
		Records []struct {
			Seq                    int64
			Kind, Target, Decision string
			Status                 int64
			Detail                 map[string]any
		}
	}
	if err := json.Unmarshal([]byte(auditJSON), &q); err != nil {
		t.Fatal(err)
	}
	seqOf := map[string]int64{}
	for _, r := range q.Records {
		if r.Kind == "hook.decision" && r.Decision == "deny" && r.Target == "Danger" {
			if r.Status != 4 || r.Detail["reason"] != "danger refused near [redacted] and [redacted]" || !strings.HasPrefix(stringOf(r.Detail["command"]), "cat "+canary) {
				t.Errorf("hook.decision of Danger: got status %d, detail %v; want exit 4, the redacted first line and the command", r.Status, r.Detail)
			}
		}
		if r.Kind == "tool.call" {
			seqOf[r.Target+" "+r.Decision] = r.Seq
			if r.Decision == "deny" && !strings.Contains(stringOf(r.Detail["reason"]), "'ringlet hooks list work'") {
				t.Errorf("tool.call deny of %s: reason %q, want it to say how to change the hook", r.Target, r.Detail["reason"])
			}
		}
	}
	before := len(q.Records)

	// Replayed with the current hooks: nothing flips.
	r, code := hrTest(t, e, "", "work", "--since", "1h", "--json")
	if code != 0 || r.Calls != 4 || r.Replayed != 4 || r.Unchanged != 4 || len(r.Flips) != 0 {
		t.Errorf("hooks test work: exit %d, %+v; want 0 and 4 calls replayed, none flipped", code, r)
	}
	// A candidate without the rm -rf guard: that call flips to allow.
	var hooks []hkHook
	if err := json.Unmarshal([]byte(mustRun(t, e, "hooks", "export", "work")), &hooks); err != nil || len(hooks) != 2 {
		t.Fatalf("hooks export: %v, %d hooks", err, len(hooks))
	}
	write := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noGuard := write("no-guard.json", hooks[1:])
	r, code = hrTest(t, e, "", "work", "--hook", noGuard, "--json")
	if code != 3 || len(r.Flips) != 1 || r.Flips[0].Seq != seqOf["Bash deny"] || r.Flips[0].From != "deny" || r.Flips[0].To != "allow" || r.Unchanged != 3 {
		t.Errorf("hooks test --hook without the guard: exit %d, %+v; want 3 and seq %d (Bash) deny -> allow, 3 unchanged", code, r, seqOf["Bash deny"])
	}
	text, _, code := e.Run("hooks", "test", "work", "--hook", noGuard)
	if code != 3 || !strings.Contains(text, "1 would flip") || !strings.Contains(text, "deny  allow") {
		t.Errorf("hooks test --hook (text): exit %d, %q; want 3 and the flip", code, text)
	}
	// A new hook on Write: that call cannot be decided without its input.
	newOnWrite := write("write.json", append(append([]hkHook{}, hooks...), hkHook{Event: "pre-tool-use", Match: "^Write$", Shell: "exit 1"}))
	r, code = hrTest(t, e, "", "work", "--hook", newOnWrite, "--json")
	if code != 0 || len(r.NotReplayable) != 1 || r.NotReplayable[0].Seq != seqOf["Write allow"] || !strings.Contains(r.NotReplayable[0].Reason, "keeps no tool input") {
		t.Errorf("hooks test --hook with a new Write hook: exit %d, %+v; want 0 and seq %d not replayable for want of its input", code, r, seqOf["Write allow"])
	}

	// One input, run in the sandbox: a hook there cannot write.
	marker := filepath.Join(dir, "marker")
	writer := write("writer.json", []hkHook{{Event: "pre-tool-use", Shell: "touch " + marker + " && exit 0; echo cannot write >&2; exit 5"}})
	input := `{"tool_name":"Bash","tool_input":{"command":"rm -rf /"}}`
	r, code = hrTest(t, e, input, "work", "--input", "-", "--hook", writer, "--json")
	if code != 0 || r.Input == nil || r.Input.Current.Allow || !strings.Contains(r.Input.Current.Reason, "hook "+guardID) || r.Input.Flip ||
		r.Input.Candidate == nil || r.Input.Candidate.Allow || !strings.Contains(r.Input.Candidate.Reason, "cannot touch") {
		t.Errorf("hooks test --input with a writing hook: exit %d, %+v; want 0 (both deny), the guard's refusal and the candidate refused for it cannot write; candidate %+v", code, r.Input, r.Input.Candidate)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: a hook run by 'hooks test' wrote to the host", marker)
	}
	r, code = hrTest(t, e, input, "work", "--input", "-", "--hook", noGuard, "--json")
	if code != 3 || r.Input == nil || r.Input.Current.Allow || r.Input.Candidate == nil || !r.Input.Candidate.Allow || !r.Input.Flip {
		t.Errorf("hooks test --input without the guard: exit %d, %+v; want deny -> allow, exit 3", code, r.Input)
	}
	// Nothing of this was recorded.
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "hook.decision,tool.call", "--json")), &q); err != nil || len(q.Records) != before {
		t.Errorf("hook.decision and tool.call records after hooks test: got %d (%v), want the %d there were", len(q.Records), err, before)
	}
	// Bad input: one clear line.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"work", "--input", filepath.Join(dir, "canary")}, 1, "not JSON"},
		{[]string{"work", "--all", "--hook", noGuard}, 2, "exclude each other"},
		{[]string{"work", "--hook", canary}, 1, "not a hooks file"},
		{[]string{"nobody"}, 1, "nobody"},
	} {
		_, stderr, code := e.Run(append([]string{"hooks", "test"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
			t.Errorf("hooks test %v: exit %d, stderr %q; want %d and one line with %q", c.args, code, stderr, c.code, c.want)
		}
	}
	e.AssertNoSecret(key)
}

// TestHooksTestSockets: a hook run by 'hooks test --input' reaches no
// unix socket of the host: not one under /tmp (where a session's egress
// socket, X11 and tmux live), not one in the user's HOME, not one in the
// hook's own HOME, which the replay sandbox shows (only the seccomp
// filter stops that one); and what it writes under /tmp is not the host's.
func TestHooksTestSockets(t *testing.T) {
	requireBwrap(t)
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput("sk-ant-x", "profiles", "create", "claude", "work", "--provider", "local"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	tmp, err := os.MkdirTemp("/tmp", "hts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	hookHome := filepath.Join(e.DataHome, "ringlet", "profiles", "work", "hook-home")
	// The hook's HOME is made on the first 'hooks test'.
	if _, _, code := e.RunInput(`{"tool_name":"Bash","tool_input":{}}`, "hooks", "test", "work", "--input", "-", "--json"); code != 0 {
		t.Fatalf("hooks test: exit %d", code)
	}
	if fi, err := os.Stat(hookHome); err != nil || !fi.IsDir() {
		t.Fatalf("the hook's HOME is not at %s: %v", hookHome, err)
	}
	socks := map[string]*net.UnixListener{}
	for _, p := range []string{filepath.Join(tmp, "s"), filepath.Join(e.Home, "s"), filepath.Join(hookHome, "s")} {
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
		socks[p] = l
	}
	marker := filepath.Join(tmp, "marker")
	input := `{"tool_name":"Bash","tool_input":{"command":"ls"}}`
	for p, l := range socks {
		connect := `python3 -c 'import socket,sys
try: s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"x")
except OSError as e: sys.exit("connect: %s" % e)' ` + p
		hooks := filepath.Join(t.TempDir(), "hooks.json")
		b, _ := json.Marshal([]hkHook{{Event: "pre-tool-use", Shell: "mkdir -p " + tmp + " && touch " + marker + "; " + connect + " && exit 0; exit 5"}})
		if err := os.WriteFile(hooks, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r, code := hrTest(t, e, input, "work", "--input", "-", "--hook", hooks, "--json")
		if r.Input == nil || r.Input.Candidate == nil || r.Input.Candidate.Allow || code != 3 {
			t.Errorf("hooks test --input with a hook connecting to %s: exit %d, %+v; want 3 (allow -> deny: it cannot connect)", p, code, r.Input)
		} else if !strings.HasPrefix(r.Input.Candidate.Reason, "connect: ") {
			t.Errorf("hook connecting to %s: refused for %q, want the connect's error", p, r.Input.Candidate.Reason)
		}
		// The hook has ended: a connection it made waits in the backlog.
		raw, err := l.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var aerr error
		if err := raw.Control(func(fd uintptr) {
			var nfd int
			if nfd, _, aerr = unix.Accept(int(fd)); aerr == nil {
				unix.Close(nfd)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(aerr, unix.EAGAIN) {
			t.Errorf("the listener on %s: accept gave %v, want EAGAIN (no connection from the hook)", p, aerr)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: a hook run by 'hooks test' wrote to the host's /tmp", marker)
	}
}

// TestHooksTestFIFO: a hook run by 'hooks test --input' cannot write
// into a FIFO it can see (the replay sandbox shows the host's files
// read-only, and a read-only mount does not stop opening a FIFO for
// writing; Landlock does), so it reaches no process listening on one.
func TestHooksTestFIFO(t *testing.T) {
	requireBwrap(t)
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput("sk-ant-x", "profiles", "create", "claude", "work", "--provider", "local"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	input := `{"tool_name":"Bash","tool_input":{"command":"ls"}}`
	// The hook's HOME is made on the first 'hooks test'.
	if _, _, code := e.RunInput(input, "hooks", "test", "work", "--input", "-", "--json"); code != 0 {
		t.Fatalf("hooks test: exit %d", code)
	}
	// Not under /tmp, /var/tmp, /run or /dev, which the replay sandbox
	// replaces with its own: the user's real HOME (root's in CI).
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(home, "ringlet-fifo-test-")
	if err != nil {
		skipUnlessCI(t, "no directory outside /tmp to put a FIFO in: "+err.Error())
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := unix.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	// A reader is there, so a writer's open would not block.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	hooks := filepath.Join(t.TempDir(), "hooks.json")
	b, _ := json.Marshal([]hkHook{{Event: "pre-tool-use", Shell: "echo from-the-replay > " + fifo + " && exit 0; echo 'write refused' >&2; exit 5"}})
	if err := os.WriteFile(hooks, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, code := hrTest(t, e, input, "work", "--input", "-", "--hook", hooks, "--json")
	if r.Input == nil || r.Input.Candidate == nil || r.Input.Candidate.Allow || code != 3 {
		t.Errorf("hooks test --input with a hook writing to a FIFO: exit %d, %+v; want 3 (allow -> deny: it cannot write)", code, r.Input)
	}
	buf := make([]byte, 64)
	if n, err := rd.Read(buf); n > 0 {
		t.Errorf("the FIFO's reader got %q from a hook run by 'hooks test' (err %v)", buf[:n], err)
	}
}
