package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// initEnv is a fresh env with a fake claude on a PATH of its own, keys in
// the file backend and the background daemon on a free port.
func initEnv(t *testing.T) (e *env, ws string) {
	t.Helper()
	e = newEnv(t)
	bin := filepath.Join(e.Root, "bin")
	ws = filepath.Join(e.Root, "src", "app")
	for _, d := range []string{bin, ws} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "claude"), []byte("#!/bin/sh\necho '9.9.9 (Claude Code)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.ExtraEnv = append(e.ExtraEnv, "PATH="+bin+":/usr/local/bin:/usr/bin:/bin")
	mustRun(t, e, "config", "set", "credentials.backend", "file")
	mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	t.Cleanup(func() { stopBackgroundDaemon(t, e) })
	return e, ws
}

// checkInitProfile: the profile init made has the workspace and the key.
func checkInitProfile(t *testing.T, e *env, alias, ws string) {
	t.Helper()
	var view struct {
		Agent, Provider, Workspace, Key string
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "inspect", alias, "--json")), &view); err != nil {
		t.Fatal(err)
	}
	if view.Agent != "claude" || view.Provider != "anthropic" || view.Workspace != ws {
		t.Errorf("profile %s: %+v, want claude via anthropic in %s", alias, view, ws)
	}
	if keys := mustRun(t, e, "keychain", "list", "--json"); !strings.Contains(keys, `"alias": "`+alias+`"`) {
		t.Errorf("keychain list: %s, want anthropic/%s stored", keys, alias)
	}
}

// TestInitNonInteractive: with --yes every answer comes from a flag or a
// default and the key from stdin; what cannot be decided is a usage error.
func TestInitNonInteractive(t *testing.T) {
	t.Parallel()
	e, ws := initEnv(t)
	key := proxyCanary("init")

	// Nothing to take the key from: refused before anything is created.
	_, stderr, code := e.Run("init", "--yes", "--workspace", ws)
	if code != 2 || !strings.Contains(stderr, "--key-stdin") || !strings.Contains(stderr, "--skip-key") {
		t.Fatalf("init without a key: exit %d, stderr %q; want 2 naming --key-stdin and --skip-key", code, stderr)
	}
	if out, _, _ := e.Run("profiles", "list", "--json"); strings.Contains(out, `"claude"`) {
		t.Fatalf("init without a key left a profile: %s", out)
	}

	stdout, stderr, code := e.RunInput(key, "init", "--yes", "--workspace", ws, "--key-stdin")
	if code != 0 {
		t.Fatalf("init: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"found claude: ", "9.9.9 (Claude Code)", "keys go to a 0600 file: credentials.backend is file",
		"created profile claude (claude via anthropic, workspace " + ws + "); key: stored", "sandbox: ", "next: ringlet profiles run claude\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("init stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, key) {
		t.Error("init printed the key")
	}
	checkInitProfile(t, e, "claude", ws)
	if out := mustRun(t, e, "budgets", "show", "claude"); !strings.Contains(out, "has no budget") {
		t.Errorf("budgets show after init --yes: got %q, want none (budgets are opt-in)", out)
	}

	// Again: the profile exists; nothing is overwritten.
	_, stderr, code = e.RunInput(key, "init", "--yes", "--workspace", ws, "--key-stdin")
	if code != 1 || !strings.Contains(stderr, "profile claude exists already") || !strings.Contains(stderr, "--profile") {
		t.Errorf("init again: exit %d, stderr %q; want 1: exists, choose --profile", code, stderr)
	}
	// A workspace that does not exist, an unknown agent: usage errors.
	if _, stderr, code = e.Run("init", "--yes", "--profile", "x", "--workspace", filepath.Join(ws, "nope"), "--skip-key"); code != 2 || !strings.Contains(stderr, "not a directory") {
		t.Errorf("init with a missing workspace: exit %d, stderr %q; want 2", code, stderr)
	}
	if _, stderr, code = e.Run("init", "--yes", "--agent", "nosuch", "--profile", "x", "--skip-key"); code != 2 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("init with an unknown agent: exit %d, stderr %q; want 2", code, stderr)
	}
}

// TestInitInteractive: on a terminal init asks, Enter takes the default,
// and the key is read without echo.
func TestInitInteractive(t *testing.T) {
	t.Parallel()
	e, ws := initEnv(t)
	key := proxyCanary("initpty")
	cmd := exec.Command(ringletBin, "init")
	cmd.Env = e.Environ()
	cmd.Dir = ws
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 200, Rows: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	screen := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	answer := func(prompt, reply string) {
		t.Helper()
		if !waitFor(30*time.Second, func() bool { return strings.Contains(screen(), prompt) }) {
			_ = cmd.Process.Kill()
			t.Fatalf("no %q on the terminal; it shows:\n%s", prompt, screen())
		}
		if _, err := ptmx.Write([]byte(reply + "\r")); err != nil {
			t.Fatal(err)
		}
	}
	answer("Agent (claude) [claude]: ", "")
	answer("Provider [anthropic]: ", "")
	answer("Profile name [claude]: ", "work")
	// The current directory is the default workspace.
	answer("Workspace (the agent may change everything in it) ["+ws+"]: ", "")
	// A budget is offered, none by default.
	answer("Daily budget, e.g. output=2M,requests=2000 (Enter: none): ", "requests=500")
	answer("Key for anthropic/work (input hidden): ", key)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("init: %v; the terminal shows:\n%s", err, screen())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("init did not finish; the terminal shows:\n%s", screen())
	}
	waitFor(5*time.Second, func() bool { return strings.Contains(screen(), "next: ") })
	s := screen()
	if !strings.Contains(s, "next: ringlet profiles run work") {
		t.Errorf("the terminal shows:\n%s\nwant the next command", s)
	}
	if strings.Contains(s, key) {
		t.Errorf("the key was echoed on the terminal:\n%s", s)
	}
	checkInitProfile(t, e, "work", ws)
	if out := mustRun(t, e, "budgets", "show", "work"); !strings.Contains(out, "day      requests=500") {
		t.Errorf("budgets show after init: got %q, want the daily budget answered", out)
	}
}
