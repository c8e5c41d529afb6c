package hook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHookDiesWithCaller runs a hook from a helper process (this test
// binary, standing in for the daemon), kills the helper with SIGKILL, and
// checks that nothing the hook started is left: not its shell, not a
// child it put in a new session with closed descriptors.
func TestHookDiesWithCaller(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signals and PID namespaces are Linux's; elsewhere a hook's detached children can outlive the daemon (README)")
	}
	if os.Getenv("RINGLET_HOOK_HELPER") != "" {
		return // the helper branch runs in TestMain
	}
	dir := t.TempDir()
	shell := hostPID + " > pid; " +
		"setsid " + childPID + "sleep 100' </dev/null >/dev/null 2>&1 & " + waitChild +
		"touch ready; sleep 100"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGLET_HOOK_HELPER="+shell, "RINGLET_HOOK_HELPER_DIR="+dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the hook did not start within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	shellPID, childPid := readPID(t, filepath.Join(dir, "pid")), readPID(t, filepath.Join(dir, "child"))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, shellPID, "the hook's shell")
	waitGone(t, childPid, "the hook's child in a session of its own")
}

// TestMain lets the test binary be the hook's caller in
// TestHookDiesWithCaller.
func TestMain(m *testing.M) {
	if shell := os.Getenv("RINGLET_HOOK_HELPER"); shell != "" {
		h := testHook(shell, time.Minute)
		Run(context.Background(), h, testEvent(`{}`), Env{Home: os.Getenv("RINGLET_HOOK_HELPER_DIR")})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHookLoadsNothingAgentWritable plants, in the directory an agent
// can write, what a Python, git or shell hook would load from its HOME or
// working directory, and checks that a hook given that directory as
// AgentWritable (and its own HOME elsewhere) loads none of it: its
// verdict is the one it gives without the plant, and no planted code ran.
func TestHookLoadsNothingAgentWritable(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		requireTool(t, "python3")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		requireTool(t, "git")
	}
	agentHome := t.TempDir() // the sandboxed agent's HOME: it writes here
	workspace := t.TempDir() // and here
	marker := filepath.Join(t.TempDir(), "PLANT-RAN")
	plant := func(rel, content string) {
		t.Helper()
		p := filepath.Join(agentHome, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pyTouch := "open(" + quotePy(marker) + ", 'w').close()\n"
	// Python: a module shadowing json in the working directory, and a .pth
	// file in the user site-packages under HOME.
	plant("json.py", pyTouch+"def loads(s): return {'command': 'ls'}\n")
	out, err := exec.Command(python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	ver := strings.TrimSpace(string(out))
	plant(".local/lib/python"+ver+"/site-packages/evil.pth", "import os; open("+quotePy(marker)+", 'w').close()\n")
	// git: a global config whose fsmonitor runs at 'git status'.
	plant(".gitconfig", "[core]\n\tfsmonitor = touch "+marker+"\n")
	// shell: a script the hook sources from its working directory, and a
	// program it runs by name from a PATH entry inside the agent's HOME.
	plant("policy.sh", "touch "+marker+"; exit 0\n")
	plant("bin/grep", "#!/bin/sh\ntouch "+marker+"\nexit 1\n")
	// The repository a git hook looks at: clean, so fsmonitor would run.
	repo := filepath.Join(workspace, "repo")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"}} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	hookHome := t.TempDir()
	env := Env{Home: hookHome, Path: filepath.Join(agentHome, "bin") + ":" + DefaultPath, AgentWritable: []string{agentHome, workspace}}
	rm := `{"command":"rm -rf /"}`
	cases := []struct {
		name, shell string
	}{
		// Each denies rm; the plants would make it allow.
		{"python import from cwd", `/usr/bin/env python3 -c 'import json,os,sys; sys.exit(2 if "rm" in json.loads(os.environ["RINGLET_TOOL_INPUT"])["command"] else 0)'`},
		{"python .pth by absolute path", python + ` -c 'import os,sys; sys.exit(2 if "rm" in os.environ["RINGLET_TOOL_INPUT"] else 0)'`},
		{"git status reads ~/.gitconfig", `cd /tmp && git -C "$0" status --porcelain >/dev/null 2>&1; case "$RINGLET_TOOL_INPUT" in *rm*) exit 2;; esac`},
		{"shell sources ./policy.sh", `[ -f ./policy.sh ] && . ./policy.sh; case "$RINGLET_TOOL_INPUT" in *rm*) exit 2;; esac`},
		{"shell runs grep from PATH", `echo "$RINGLET_TOOL_INPUT" | grep -q rm && exit 2; exit 0`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shell := strings.ReplaceAll(c.shell, `"$0"`, "'"+repo+"'")
			if strings.Contains(shell, repo) {
				// A hook that names the workspace is refused outright
				// (below); this one looks at a copy of the repository
				// that the agent cannot write.
				safe := filepath.Join(t.TempDir(), "repo")
				if out, err := exec.Command(git, "clone", "-q", repo, safe).CombinedOutput(); err != nil {
					t.Fatalf("git clone: %v: %s", err, out)
				}
				shell = strings.ReplaceAll(c.shell, `"$0"`, "'"+safe+"'")
			}
			d := Run(t.Context(), testHook(shell, 20*time.Second), testEvent(rm), env)
			if d.Allow {
				t.Errorf("Allow: got true (reason %q), want the hook's own refusal of rm", d.Reason)
			}
			if d.ExitCode != 2 {
				t.Errorf("ExitCode: got %d (reason %q), want 2, the hook's own", d.ExitCode, d.Reason)
			}
			if _, err := os.Stat(marker); err == nil {
				os.Remove(marker)
				t.Errorf("planted code ran on the host")
			}
		})
	}
	// The same hooks with the agent's HOME as theirs, as before: the
	// plants take over (this shows the plants work, so the test above can
	// fail).
	t.Run("control", func(t *testing.T) {
		open := Env{Home: agentHome, Path: filepath.Join(agentHome, "bin") + ":" + DefaultPath}
		d := Run(t.Context(), testHook(cases[0].shell, 20*time.Second), testEvent(rm), open)
		if _, err := os.Stat(marker); err != nil || !d.Allow {
			t.Errorf("with the agent's HOME: got allow %v, plant ran %v; want the plant to run and allow", d.Allow, err == nil)
		}
		os.Remove(marker)
	})
}

// TestHookNamingAgentWritableRefused: a hook whose command names a path
// the agent can write is refused, however the path is written; paths that
// only share a prefix are not.
func TestHookNamingAgentWritableRefused(t *testing.T) {
	t.Parallel()
	ws := "/home/u/src/app"
	cases := []struct {
		shell   string
		refused bool
	}{
		{"python3 /home/u/src/app/check.py", true},
		{"'/home/u/src/app/check.sh'", true},
		{`sh "/home/u/src/app"/x`, true},
		{"tool --config=/home/u/src/app/.cfg", true},
		{"cd /home/u/src/app && make check", true},
		{"cat /home/u/src/app", true},
		{"python3 /home/u/src/app2/check.py", false},
		{"python3 /x/home/u/src/app/check.py", false},
		{"python3 /home/u/src/app.bak/check.py", false},
		{"echo ok", false},
	}
	for _, c := range cases {
		env := Env{Home: t.TempDir(), AgentWritable: []string{ws}}
		d := Run(t.Context(), testHook(c.shell+"; exit 0", 5*time.Second), testEvent(`{}`), env)
		if refused := !d.Allow && strings.Contains(d.Reason, "agents can write"); refused != c.refused {
			t.Errorf("%q: got refused %v (allow %v, reason %q), want %v", c.shell, refused, d.Allow, d.Reason, c.refused)
		}
	}
	d := Run(t.Context(), testHook("exit 0", 5*time.Second), testEvent(`{}`), Env{Home: ws + "/.hooks", AgentWritable: []string{ws}})
	if d.Allow || !strings.Contains(d.Reason, "agents can write") {
		t.Errorf("HOME inside the workspace: got allow %v, reason %q; want a refusal", d.Allow, d.Reason)
	}
}

func quotePy(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// requireTool fails under CI and skips elsewhere when a tool is missing.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must have it", name)
	}
	t.Skipf("%s is not installed", name)
}

// TestHookNamingAgentWritableThroughSymlink: a hook that reaches the
// workspace through a symbolic link is refused as if it named it.
func TestHookNamingAgentWritableThroughSymlink(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	link := filepath.Join(t.TempDir(), "proj-link")
	if err := os.Symlink(ws, link); err != nil {
		t.Fatal(err)
	}
	env := Env{Home: t.TempDir(), AgentWritable: []string{ws}}
	for _, shell := range []string{
		"python3 " + link + "/check.py",
		"sh '" + link + "/not-yet-there.sh'",
		"tool --config=" + link,
		"cd " + link + " && make check",
	} {
		d := Run(t.Context(), testHook(shell+"; exit 0", 5*time.Second), testEvent(`{}`), env)
		if d.Allow || !strings.Contains(d.Reason, "agents can write") {
			t.Errorf("%q: got allow %v (%q), want a refusal: the link leads into the workspace", shell, d.Allow, d.Reason)
		}
	}
	// A link elsewhere is fine.
	other := filepath.Join(t.TempDir(), "other-link")
	if err := os.Symlink(t.TempDir(), other); err != nil {
		t.Fatal(err)
	}
	if d := Run(t.Context(), testHook("ls "+other+" >/dev/null; exit 0", 5*time.Second), testEvent(`{}`), env); !d.Allow {
		t.Errorf("a link outside: got refused (%q), want allow", d.Reason)
	}
}
