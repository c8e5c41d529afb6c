package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// groupGoneTimeout bounds how long a killed process group may take to
// disappear: killed members are reparented and reaped by init.
const groupGoneTimeout = 10 * time.Second

// testHook is a pre-tool-use hook running shell with a timeout.
func testHook(shell string, timeout time.Duration) Hook {
	return Hook{ID: "h_test", Profile: "work", Event: PreToolUse, Shell: shell, Timeout: timeout}
}

// testEvent is a Bash tool call with input as its arguments.
func testEvent(input string) Event {
	return Event{Event: PreToolUse, Profile: "work", Session: "s_1", ToolName: "Bash", ToolInput: json.RawMessage(input)}
}

// readFile returns a file the hook wrote, failing t if it is missing.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read what the hook wrote: %v", err)
	}
	return string(data)
}

// readPID reads a decimal process id that a hook wrote to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, path)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s: got %q, want a process id", path, readFile(t, path))
	}
	return pid
}

// waitGone polls kill(target, 0) until it fails with ESRCH or the deadline
// passes; target is a pid, or -pgid for a process group. Killed processes
// linger as zombies until init reaps them, so this waits rather than
// asserting at once.
func waitGone(t *testing.T, target int, what string) {
	t.Helper()
	deadline := time.Now().Add(groupGoneTimeout)
	for {
		err := syscall.Kill(target, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s (kill(%d, 0)) still exists %s after Run returned: got err %v, want ESRCH", what, target, groupGoneTimeout, err)
			syscall.Kill(target, syscall.SIGKILL)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		shell      string
		allow      bool
		code       int
		reasonPart string
	}{
		{"exit 0 allows", "exit 0", true, 0, ""},
		{"true allows", "true", true, 0, ""},
		{"exit 1 denies", "exit 1", false, 1, "exit 1"},
		{"exit 2 denies", "exit 2", false, 2, "exit 2"},
		{"exit 127 denies", "exit 127", false, 127, "exit 127"},
		{"exit 255 denies", "exit 255", false, 255, "exit 255"},
		{"missing program denies", "exec /nonexistent/ringlet-hook", false, 127, "nonexistent"},
		{"unknown command denies", "ringlet-no-such-command-xyz", false, 127, "not found"},
		{"syntax error denies", "if then fi (", false, 2, ""},
		{"killed by SIGKILL denies", "kill -9 $$", false, -1, "killed"},
		{"killed by SIGTERM denies", "kill -TERM $$", false, -1, "killed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := Run(t.Context(), testHook(c.shell, 5*time.Second), testEvent(`{}`), Env{Home: t.TempDir()})
			if d.Allow != c.allow {
				t.Errorf("Allow: got %v, want %v (reason %q)", d.Allow, c.allow, d.Reason)
			}
			if d.ExitCode != c.code {
				t.Errorf("ExitCode: got %d, want %d", d.ExitCode, c.code)
			}
			if !c.allow && d.Reason == "" {
				t.Errorf("Reason: got empty, want a reason for the denial")
			}
			if c.allow && d.Reason != "" {
				t.Errorf("Reason: got %q, want empty for an allow", d.Reason)
			}
			if !strings.Contains(d.Reason, c.reasonPart) {
				t.Errorf("Reason: got %q, want it to contain %q", d.Reason, c.reasonPart)
			}
			if d.HookID != "h_test" {
				t.Errorf("HookID: got %q, want %q", d.HookID, "h_test")
			}
			if d.Duration <= 0 {
				t.Errorf("Duration: got %v, want > 0", d.Duration)
			}
		})
	}
}

// A hook in a PID namespace of its own sees its own numbers in $$ and $!;
// the host's are in /proc/self/stat (procfs is the host's), read by the
// shell itself through a redirection: pid, (comm), state, ppid, pgrp.
const (
	hostPID  = `read p _ </proc/self/stat; echo $p`
	hostPGID = `read _ _ _ _ g _ </proc/self/stat; echo $g`
	// childPID starts a background child that writes its host pid to
	// "child" and then runs what follows up to a closing quote.
	childPID = `sh -c 'read p _ </proc/self/stat; echo $p > child.tmp; mv child.tmp child; exec `
	// waitChild waits until the child has written it.
	waitChild = `while [ ! -e child ]; do sleep 0.01; done; `
)

// TestRunKillsProcessGroup covers the ways a hook may fail to finish
// cleanly: each must deny, within a bound, and leave nothing running.
func TestRunKillsProcessGroup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		shell      string // run after writing the hook's process group to pgid
		timeout    time.Duration
		child      bool // the hook writes a background child's pid to "child"
		reasonPart string
		// bound is how long the denial may take: far less than the hook
		// would run if nobody stopped it.
		bound time.Duration
	}{
		{"timeout", "sleep 30", time.Second, false, "did not finish within 1s", 15 * time.Second},
		{"timeout ignoring SIGTERM", "trap '' TERM INT HUP; sleep 30", time.Second, false, "did not finish", 15 * time.Second},
		{"timeout with child in group", childPID + "sleep 30' & wait", time.Second, true, "did not finish", 15 * time.Second},
		{"1 GB on stdout", "head -c 1000000000 /dev/zero", 60 * time.Second, false, "printed more than 64 KiB", 20 * time.Second},
		{"1 GB through a pipe", "yes | head -c 1000000000", 60 * time.Second, false, "printed more than 64 KiB", 20 * time.Second},
		{"1 GB on stderr", "head -c 1000000000 /dev/zero >&2", 60 * time.Second, false, "printed more than 64 KiB", 20 * time.Second},
		{"output split across both streams", "head -c 40000 /dev/zero; head -c 40000 /dev/zero >&2; sleep 5", 60 * time.Second, false, "printed more than 64 KiB", 20 * time.Second},
		{"background child holding the output", childPID + "sleep 100' & " + waitChild + "exit 0", 60 * time.Second, true, "left ", 20 * time.Second},
		{"detached background child", childPID + "sleep 100' </dev/null >/dev/null 2>&1 & " + waitChild + "exit 0", 60 * time.Second, true, "left processes running", 20 * time.Second},
		{"new session, double fork", "setsid sh -c '" + strings.TrimPrefix(childPID, "sh -c '") + "sleep 100' </dev/null >/dev/null 2>&1 & " + waitChild + "exit 0", 60 * time.Second, true, "left processes running", 20 * time.Second},
		{"background child and exit 3", childPID + "sleep 100' </dev/null >/dev/null 2>&1 & " + waitChild + "exit 3", 60 * time.Second, true, "exit 3", 20 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			start := time.Now()
			d := Run(t.Context(), testHook(hostPGID+" > pgid; "+c.shell, c.timeout), testEvent(`{}`), Env{Home: home})
			elapsed := time.Since(start)
			if d.Allow {
				t.Fatalf("Allow: got true, want a denial")
			}
			if !strings.Contains(d.Reason, c.reasonPart) {
				t.Errorf("Reason: got %q, want it to contain %q", d.Reason, c.reasonPart)
			}
			if elapsed > c.bound {
				t.Errorf("Run took %v, want at most %v: the hook was not stopped", elapsed, c.bound)
			}
			pgid := readPID(t, filepath.Join(home, "pgid"))
			if c.child {
				waitGone(t, readPID(t, filepath.Join(home, "child")), "the hook's background child")
			}
			waitGone(t, -pgid, "the hook's process group")
		})
	}
}

// TestRunCancelled denies when the caller gives up, and kills the hook.
func TestRunCancelled(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	ctx, cancel := contextWithCancelOnFile(t, filepath.Join(home, "pgid"))
	defer cancel()
	d := Run(ctx, testHook(hostPGID+" > pgid.tmp; mv pgid.tmp pgid; sleep 30", 20*time.Second), testEvent(`{}`), Env{Home: home})
	if d.Allow || !strings.Contains(d.Reason, "cancelled") {
		t.Errorf("got allow %v, reason %q; want a denial that says cancelled", d.Allow, d.Reason)
	}
	waitGone(t, -readPID(t, filepath.Join(home, "pgid")), "the hook's process group")
}

// contextWithCancelOnFile returns a context that is cancelled once path
// exists (polled; the hook's own timeout bounds the wait).
func contextWithCancelOnFile(t *testing.T, path string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(path); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return ctx, func() { cancel(); wg.Wait() }
}

// TestRunInputIsData passes tool input full of shell syntax to a hook
// that copies it (RINGLET_TOOL_INPUT) and its stdin out verbatim. Nothing
// in the input may run, and the copies must be exact. The hook uses
// printf rather than echo because dash's echo expands backslashes.
func TestRunInputIsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "MARKER")
	q := strconv.Quote
	inputs := map[string]string{
		"command substitution": `{"command":` + q("$(touch "+marker+")") + `}`,
		"backticks":            `{"command":` + q("`touch "+marker+"`") + `}`,
		"semicolon":            `{"command":` + q("ls; touch "+marker) + `}`,
		"pipe":                 `{"command":` + q("ls | touch "+marker) + `}`,
		"and and or":           `{"command":` + q("false || touch "+marker+" && true") + `}`,
		"escaped newline":      `{"command":` + q("ls\ntouch "+marker) + `}`,
		"raw newlines":         "{\n\"command\":\n" + q("$(touch "+marker+")") + "\n}\n",
		"quotes":               `{"command":"'\"'\"'; touch ` + marker + `; '\""}`,
		"variables":            `{"command":"$HOME ${PATH} $RINGLET_SESSION $0 $$ $(id)"}`,
		"globs":                `{"command":"* /* ~ ?"}`,
		"redirections":         `{"command":"> ` + marker + ` < /etc/passwd 2>&1"}`,
		"non-ASCII":            `{"command":"rm -rf ✓ 日本 \u00e9"}`,
		"backslashes":          `{"command":"a\\nb\\\\c \\t \\c"}`,
	}
	hookShell := `printf '%s' "$RINGLET_TOOL_INPUT" > out; cat > out2; printf '%s' "$RINGLET_TOOL_NAME" > tool`
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			ev := testEvent(input)
			ev.ToolName = "Bash;touch " + marker + "`touch " + marker + "`"
			d := Run(t.Context(), testHook(hookShell, 10*time.Second), ev, Env{Home: home})
			if !d.Allow {
				t.Fatalf("Allow: got false (reason %q), want true", d.Reason)
			}
			if got := readFile(t, filepath.Join(home, "out")); got != input {
				t.Errorf("RINGLET_TOOL_INPUT: got %q, want %q", got, input)
			}
			if got := readFile(t, filepath.Join(home, "tool")); got != ev.ToolName {
				t.Errorf("RINGLET_TOOL_NAME: got %q, want %q", got, ev.ToolName)
			}
			gotStdin := readFile(t, filepath.Join(home, "out2"))
			var back Event
			if err := json.Unmarshal([]byte(gotStdin), &back); err != nil {
				t.Fatalf("stdin: got %q, not the event as JSON: %v", gotStdin, err)
			}
			want, _ := json.Marshal(ev)
			if gotStdin != string(want) {
				t.Errorf("stdin: got %q, want %q", gotStdin, want)
			}
			if back.ToolName != ev.ToolName || back.Session != ev.Session || back.Profile != ev.Profile || back.Event != ev.Event {
				t.Errorf("stdin event: got %+v, want %+v", back, ev)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("marker file: got stat error %v, want it never created: the input was interpreted", err)
			}
		})
	}
}

// shellExtras are variables /bin/sh may export by itself (dash: PWD;
// bash: also SHLVL and _; some also OLDPWD).
var shellExtras = []string{"PWD", "SHLVL", "_", "OLDPWD"}

// TestRunEnvironment checks the hook's environment is exactly the
// documented one, whatever the daemon's own environment holds. Not
// parallel: it sets variables in the test process.
func TestRunEnvironment(t *testing.T) {
	const canary = "sk-canary-xyz"
	const tokenCanary = "ringlet-token-canary-0123456789"
	t.Setenv("CANARY_KEY", canary)
	t.Setenv("RINGLET_TOKEN", tokenCanary)
	t.Setenv("ANTHROPIC_API_KEY", canary)
	t.Setenv("LD_PRELOAD", "/nonexistent/"+canary+".so")

	cases := []struct {
		name string
		env  Env
		path string
	}{
		{"default PATH", Env{}, "/usr/local/bin:/usr/bin:/bin"},
		{"given PATH", Env{Path: "/usr/bin:/bin"}, "/usr/bin:/bin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			c.env.Home = home
			ev := Event{Event: PreToolUse, Profile: "work", Session: "s_abc", ToolName: "Write", ToolInput: json.RawMessage(`{"file_path":"/tmp/x"}`)}
			d := Run(t.Context(), testHook("env > env.txt", 10*time.Second), ev, c.env)
			if !d.Allow {
				t.Fatalf("Allow: got false (reason %q), want true", d.Reason)
			}
			raw := readFile(t, filepath.Join(home, "env.txt"))
			if strings.Contains(raw, canary) || strings.Contains(raw, tokenCanary) {
				t.Errorf("hook environment: got %q, want no value of the daemon's environment", raw)
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSuffix(raw, "\n"), "\n") {
				k, v, ok := strings.Cut(line, "=")
				if !ok {
					t.Fatalf("env line %q: want NAME=VALUE", line)
				}
				got[k] = v
			}
			want := map[string]string{
				"PATH":               c.path,
				"LANG":               "C.UTF-8",
				"HOME":               home,
				"RINGLET_EVENT":      PreToolUse,
				"RINGLET_PROFILE":    "work",
				"RINGLET_SESSION":    "s_abc",
				"RINGLET_TOOL_NAME":  "Write",
				"RINGLET_TOOL_INPUT": `{"file_path":"/tmp/x"}`,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			for k, v := range got {
				if _, ok := want[k]; !ok && !slices.Contains(shellExtras, k) {
					t.Errorf("unexpected variable %s=%q in the hook's environment; want only %v and the shell's own %v", k, v, keys(want), shellExtras)
				}
			}
			if pwd, ok := got["PWD"]; ok && pwd != home {
				t.Errorf("PWD: got %q, want the profile's HOME %q", pwd, home)
			}
		})
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRunDescriptors checks a hook gets only stdin, stdout and stderr:
// not the daemon's files and sockets, and not descriptors the daemon
// inherited from whoever started it (simulated with a dup, which is not
// close-on-exec). Not parallel: the inheritable descriptor would leak
// into other tests' children.
func TestRunDescriptors(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inherited, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(inherited)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// The test reads the shell's descriptors itself while the hook waits:
	// anything the hook ran to list them would add its own.
	home := t.TempDir()
	shell := hostPID + ` > pid.tmp; mv pid.tmp pid; while [ ! -e release ]; do sleep 0.01; done`
	decided := make(chan Decision, 1)
	go func() {
		decided <- Run(t.Context(), testHook(shell, 20*time.Second), testEvent(`{}`), Env{Home: home})
	}()
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		if data, err := os.ReadFile(filepath.Join(home, "pid")); err == nil {
			entries, err := os.ReadDir("/proc/" + strings.TrimSpace(string(data)) + "/fd")
			if err != nil {
				t.Errorf("read the hook's descriptors: %v", err)
			}
			for _, e := range entries {
				got = append(got, e.Name())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Error("the hook did not write its pid within 15s")
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(home, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if d := <-decided; !d.Allow {
		t.Errorf("Allow: got false (reason %q), want true", d.Reason)
	}
	slices.SortFunc(got, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	if want := []string{"0", "1", "2"}; !slices.Equal(got, want) {
		t.Errorf("the hook's descriptors: got %v, want %v (the test process had %d inheritable)", got, want, inherited)
	}
}

// TestRunConcurrent runs 200 hooks at once, each with its own nonce, and
// checks each saw only its own: in its environment, on stdin, in its
// HOME and in the reason it gave.
func TestRunConcurrent(t *testing.T) {
	t.Parallel()
	const n = 200
	root := t.TempDir()
	h := testHook(`printf '%s' "$RINGLET_TOOL_INPUT" > saw; cat > stdin; echo "$RINGLET_SESSION" >&2; exit 3`, 60*time.Second)
	type result struct {
		d     Decision
		home  string
		input string
		ev    Event
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		home := filepath.Join(root, strconv.Itoa(i))
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		nonce := fmt.Sprintf("nonce-%d-%d", i, time.Now().UnixNano())
		ev := Event{Event: PreToolUse, Profile: "work", Session: nonce, ToolName: "Bash", ToolInput: json.RawMessage(`{"nonce":"` + nonce + `"}`)}
		results[i] = result{home: home, input: string(ev.ToolInput), ev: ev}
		wg.Go(func() {
			results[i].d = Run(t.Context(), h, ev, Env{Home: home})
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.d.Allow || r.d.ExitCode != 3 {
			t.Errorf("run %d: got allow %v, exit %d, reason %q; want the hook's exit 3", i, r.d.Allow, r.d.ExitCode, r.d.Reason)
			continue
		}
		if r.d.Reason != r.ev.Session {
			t.Errorf("run %d reason: got %q, want its own nonce %q", i, r.d.Reason, r.ev.Session)
		}
		if got := readFile(t, filepath.Join(r.home, "saw")); got != r.input {
			t.Errorf("run %d RINGLET_TOOL_INPUT: got %q, want %q", i, got, r.input)
		}
		want, _ := json.Marshal(r.ev)
		if got := readFile(t, filepath.Join(r.home, "stdin")); got != string(want) {
			t.Errorf("run %d stdin: got %q, want %q", i, got, want)
		}
	}
}

func TestRunReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		shell string
		want  string // exact reason; empty: check only the bounds
	}{
		{"first line of stderr", `printf 'no rm -rf here\nsecond line\n' >&2; exit 1`, "no rm -rf here"},
		{"surrounding space trimmed", `printf '   padded  \n' >&2; exit 1`, "padded"},
		{"stdout is not the reason", `echo from stdout; echo from stderr >&2; exit 1`, "from stderr"},
		{"no stderr names the exit", `echo only stdout; exit 4`, "hook h_test refused the call (exit 4)"},
		{"empty first line", `printf '\nlater\n' >&2; exit 1`, "hook h_test refused the call (exit 1)"},
		{"no newline", `printf 'unterminated' >&2; exit 1`, "unterminated"},
		{"invalid UTF-8", `printf 'bad \377\376 bytes\n' >&2; exit 1`, "bad \uFFFD bytes"},
		{"long ASCII line", `head -c 10000 /dev/zero | tr '\0' a >&2; exit 1`, ""},
		{"long line of 2-byte runes", `printf 'a' >&2; i=0; while [ $i -lt 400 ]; do printf '\303\251' >&2; i=$((i+1)); done; exit 1`, ""},
		{"long line of 3-byte runes", `i=0; while [ $i -lt 400 ]; do printf '\342\234\223' >&2; i=$((i+1)); done; exit 1`, ""},
		{"long line of 4-byte runes", `printf 'ab' >&2; i=0; while [ $i -lt 400 ]; do printf '\360\237\230\200' >&2; i=$((i+1)); done; exit 1`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := Run(t.Context(), testHook(c.shell, 10*time.Second), testEvent(`{}`), Env{Home: t.TempDir()})
			if d.Allow {
				t.Fatalf("Allow: got true, want false")
			}
			if c.want != "" && d.Reason != c.want {
				t.Errorf("Reason: got %q, want %q", d.Reason, c.want)
			}
			if !utf8.ValidString(d.Reason) {
				t.Errorf("Reason: got %q, want valid UTF-8", d.Reason)
			}
			if max := maxReason + len("…"); len(d.Reason) > max {
				t.Errorf("Reason: got %d bytes, want at most %d", len(d.Reason), max)
			}
			if strings.ContainsAny(d.Reason, "\n\r") {
				t.Errorf("Reason: got %q, want one line", d.Reason)
			}
		})
	}
}

func TestRunInputLimits(t *testing.T) {
	t.Parallel()
	// jsonString is a JSON string value of exactly n bytes.
	jsonString := func(n int) string { return `"` + strings.Repeat("a", n-2) + `"` }
	cases := []struct {
		name  string
		input string
		allow bool
	}{
		{"empty input is {}", "", true},
		{"exactly MaxInput", jsonString(MaxInput), true},
		{"one byte over MaxInput", jsonString(MaxInput + 1), false},
		{"far over MaxInput", jsonString(4 * MaxInput), false},
		{"NUL byte", "\"a\x00b\"", false},
		{"not JSON", `{"command":`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			d := Run(t.Context(), testHook(`printf '%s' "$RINGLET_TOOL_INPUT" > ran`, 10*time.Second), testEvent(c.input), Env{Home: home})
			if d.Allow != c.allow {
				t.Fatalf("Allow: got %v (reason %q), want %v", d.Allow, d.Reason, c.allow)
			}
			_, err := os.Stat(filepath.Join(home, "ran"))
			if c.allow {
				want := c.input
				if want == "" {
					want = "{}"
				}
				if got := readFile(t, filepath.Join(home, "ran")); got != want {
					t.Errorf("RINGLET_TOOL_INPUT: got %d bytes, want %d", len(got), len(want))
				}
				return
			}
			if d.Reason == "" {
				t.Errorf("Reason: got empty, want why the input was refused")
			}
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the hook ran (stat: %v); want the input refused before running it", err)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	// mk is a hook that appends its id to "ran" and exits with code.
	mk := func(id, event, match string, code int) Hook {
		return Hook{ID: id, Profile: "work", Event: event, Match: match, Timeout: 10 * time.Second,
			Shell: fmt.Sprintf(`echo %s >> ran; echo %s says no >&2; exit %d`, id, id, code)}
	}
	cases := []struct {
		name     string
		hooks    []Hook
		event    string
		tool     string
		allow    bool
		ran      []string // hooks whose shell ran
		deniedBy string
		reason   string // the denial's reason; default "<deniedBy> says no"
		decided  []string
	}{
		{"no hooks allow", nil, PreToolUse, "Bash", true, nil, "", "", nil},
		{"all allow", []Hook{mk("a", PreToolUse, "", 0), mk("b", PreToolUse, "", 0)}, PreToolUse, "Bash", true, []string{"a", "b"}, "", "", nil},
		{"first deny stops", []Hook{mk("a", PreToolUse, "", 0), mk("b", PreToolUse, "", 1), mk("c", PreToolUse, "", 0)}, PreToolUse, "Bash", false, []string{"a", "b"}, "b", "", nil},
		{"deny first", []Hook{mk("a", PreToolUse, "", 2), mk("b", PreToolUse, "", 0)}, PreToolUse, "Bash", false, []string{"a"}, "a", "", nil},
		{"non-matching tool skipped", []Hook{mk("a", PreToolUse, "^Write$", 1), mk("b", PreToolUse, "^Bash$", 0)}, PreToolUse, "Bash", true, []string{"b"}, "", "", nil},
		{"match is a regexp", []Hook{mk("a", PreToolUse, "^(Write|Edit)$", 1)}, PreToolUse, "Edit", false, []string{"a"}, "a", "", nil},
		{"match is unanchored", []Hook{mk("a", PreToolUse, "mcp__", 1)}, PreToolUse, "mcp__github__push", false, []string{"a"}, "a", "", nil},
		{"other event skipped", []Hook{mk("a", PostToolUse, "", 1), mk("b", PreToolUse, "", 0)}, PreToolUse, "Bash", true, []string{"b"}, "", "", nil},
		{"post-tool-use runs post hooks", []Hook{mk("a", PostToolUse, "", 1), mk("b", PreToolUse, "", 0)}, PostToolUse, "Bash", false, []string{"a"}, "a", "", nil},
		// A hand-edited file may hold a match that does not compile: the
		// hook cannot tell what it guards, so the call is refused.
		{"invalid match denies", []Hook{mk("a", PreToolUse, "(", 0), mk("b", PreToolUse, "", 0)}, PreToolUse, "Bash", false, nil, "a", "hook a has an invalid match", []string{"a"}},
		{"invalid match of another event", []Hook{mk("a", PostToolUse, "(", 0), mk("b", PreToolUse, "", 0)}, PreToolUse, "Bash", true, []string{"b"}, "", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			ev := testEvent(`{}`)
			ev.Event, ev.ToolName = c.event, c.tool
			final, decisions := Evaluate(t.Context(), c.hooks, ev, Env{Home: home})
			if final.Allow != c.allow {
				t.Errorf("Allow: got %v (reason %q), want %v", final.Allow, final.Reason, c.allow)
			}
			var ran []string
			if data, err := os.ReadFile(filepath.Join(home, "ran")); err == nil {
				ran = strings.Fields(string(data))
			}
			if !slices.Equal(ran, c.ran) {
				t.Errorf("hooks that ran: got %v, want %v", ran, c.ran)
			}
			var ids []string
			for _, d := range decisions {
				ids = append(ids, d.HookID)
			}
			decided := c.decided
			if decided == nil {
				decided = c.ran
			}
			if !slices.Equal(ids, decided) {
				t.Errorf("decisions: got hooks %v, want %v", ids, decided)
			}
			if c.deniedBy != "" {
				reason := c.reason
				if reason == "" {
					reason = c.deniedBy + " says no"
				}
				if final.HookID != c.deniedBy || !strings.HasPrefix(final.Reason, reason) {
					t.Errorf("denial: got hook %q reason %q, want hook %q reason starting %q", final.HookID, final.Reason, c.deniedBy, reason)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func(mod func(*Hook)) Hook {
		h := Hook{Event: PreToolUse, Shell: "true"}
		mod(&h)
		return h
	}
	cases := []struct {
		name    string
		hook    Hook
		errPart string // empty: valid
		timeout time.Duration
	}{
		{"minimal", ok(func(*Hook) {}), "", DefaultTimeout},
		{"post-tool-use", ok(func(h *Hook) { h.Event = PostToolUse }), "", DefaultTimeout},
		{"match", ok(func(h *Hook) { h.Match = "^(Bash|Write)$" }), "", DefaultTimeout},
		{"timeout 100ms", ok(func(h *Hook) { h.Timeout = 100 * time.Millisecond }), "", 100 * time.Millisecond},
		{"timeout 5m", ok(func(h *Hook) { h.Timeout = MaxTimeout }), "", MaxTimeout},
		{"no event", ok(func(h *Hook) { h.Event = "" }), "invalid event", 0},
		{"bad event", ok(func(h *Hook) { h.Event = "PreToolUse" }), "invalid event", 0},
		{"empty shell", ok(func(h *Hook) { h.Shell = "" }), "empty", 0},
		{"blank shell", ok(func(h *Hook) { h.Shell = " \t\n" }), "empty", 0},
		{"NUL in shell", ok(func(h *Hook) { h.Shell = "true\x00false" }), "NUL", 0},
		{"shell too long", ok(func(h *Hook) { h.Shell = strings.Repeat("x", maxShellLen+1) }), "too long", 0},
		{"shell at the limit", ok(func(h *Hook) { h.Shell = strings.Repeat("x", maxShellLen) }), "", DefaultTimeout},
		{"bad regexp", ok(func(h *Hook) { h.Match = "(" }), "--match", 0},
		{"bad regexp class", ok(func(h *Hook) { h.Match = "[z-a]" }), "--match", 0},
		{"timeout 99ms", ok(func(h *Hook) { h.Timeout = 99 * time.Millisecond }), "timeout", 0},
		{"timeout 1ns", ok(func(h *Hook) { h.Timeout = 1 }), "timeout", 0},
		{"negative timeout", ok(func(h *Hook) { h.Timeout = -time.Second }), "timeout", 0},
		{"timeout over 5m", ok(func(h *Hook) { h.Timeout = MaxTimeout + time.Nanosecond }), "timeout", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := c.hook
			err := h.Validate()
			if c.errPart == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				if h.Timeout != c.timeout {
					t.Errorf("Timeout after Validate: got %v, want %v", h.Timeout, c.timeout)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("Validate: got %v, want an error containing %q", err, c.errPart)
			}
		})
	}
}

// FuzzHookValidate checks Validate never panics and accepts only hooks
// that can run: a known event, a non-blank shell without NUL, a Match
// that compiles, a timeout in bounds.
func FuzzHookValidate(f *testing.F) {
	f.Add(PreToolUse, "true", "", int64(0))
	f.Add(PostToolUse, `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf"`, "^Bash$", int64(5*time.Second))
	f.Add("pre-tool-use ", "true", "(", int64(-1))
	f.Add("", "\x00", "[[:alpha:]", int64(time.Hour))
	f.Fuzz(func(t *testing.T, event, shell, match string, timeout int64) {
		h := Hook{Event: event, Shell: shell, Match: match, Timeout: time.Duration(timeout)}
		if err := h.Validate(); err != nil {
			if err.Error() == "" {
				t.Errorf("Validate: got an empty error message")
			}
			return
		}
		if h.Event != PreToolUse && h.Event != PostToolUse {
			t.Errorf("accepted event %q", h.Event)
		}
		if strings.TrimSpace(h.Shell) == "" || strings.ContainsRune(h.Shell, 0) || len(h.Shell) > maxShellLen {
			t.Errorf("accepted shell %q", h.Shell)
		}
		if h.Timeout < 100*time.Millisecond || h.Timeout > MaxTimeout {
			t.Errorf("accepted timeout %v", h.Timeout)
		}
		if h.Match != "" {
			if _, err := regexp.Compile(h.Match); err != nil {
				t.Errorf("accepted match %q that does not compile: %v", h.Match, err)
			}
		}
		// Matches must not panic on an accepted hook.
		h.Matches(h.Event, "Bash")
		// Validate is idempotent on what it accepted.
		again := h
		if err := again.Validate(); err != nil || again != h {
			t.Errorf("Validate again: got %v, %+v; want nil, %+v", err, again, h)
		}
	})
}
