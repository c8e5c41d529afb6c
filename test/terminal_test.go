package test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRemoteTerminalDaemonStop: 'profiles run --remote' leaves a
// sandboxed agent with the daemon; 'terminal list' and 'info' show it.
// When the daemon stops, the agent goes with it and its session ends,
// without the shutdown waiting out its deadline for the terminal's
// stream.
func TestRemoteTerminalDaemonStop(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	stdout, stderr, code, err := w.e.exec("profiles", "run", "p", "--remote", "--", "-c", "echo remote-agent-up; exec sleep 1000")
	if err != nil || code != 0 {
		t.Fatalf("profiles run --remote: exit %d (%v), stderr %q", code, err, stderr)
	}
	m := regexp.MustCompile(`session (s_[0-9a-f]+) \(pid (\d+)\)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("profiles run --remote: got %q, want the session and pid", stdout)
	}
	id := m[1]
	pid, _ := strconv.Atoi(m[2])
	var list []struct {
		Session string `json:"session"`
		Running bool   `json:"running"`
	}
	out := w.mustRun(t, "terminal", "list", "--json")
	if json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Session != id || !list[0].Running {
		t.Fatalf("terminal list --json: got %q, want session %s running", out, id)
	}

	w.mustRun(t, "daemon", "stop")
	w.d.Wait()
	if !waitFor(15*time.Second, func() bool { return pidGone(pid) }) {
		t.Errorf("the remote agent's bwrap (pid %d) outlived the daemon", pid)
	}
	if log := w.d.Stderr(); strings.Contains(log, "shutdown deadline passed") || strings.Contains(log, "did not exit after SIGKILL") {
		t.Errorf("daemon log: the shutdown waited for the terminal:\n%s", log)
	}
	var ended, started bool
	for _, r := range w.audit(t, "--kind", "session.end,profile.launch") {
		ended = ended || r.Session == id && r.Kind == "session.end"
		started = started || r.Session == id && r.Kind == "profile.launch" && r.Detail["via"] == "terminal" && r.Detail["program"] != ""
	}
	if !ended {
		t.Errorf("audit: no session.end for %s", id)
	}
	if !started {
		t.Errorf("audit: no profile.launch via the terminal for %s: the program the daemon started is not on record", id)
	}
}
