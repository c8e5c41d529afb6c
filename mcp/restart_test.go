package mcp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// TestHungUpstreamIsRestarted: a call that gets no answer in time ends the
// server's run: the hung process is killed, the fault is reported (for the
// audit log), 'mcp list' says so, and the next call runs on a new process
// instead of timing out behind the hung one.
func TestHungUpstreamIsRestarted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pidFile := filepath.Join(w.homes["a"], "pid")
	if _, err := w.srv.AddServer("a", mcpserver.Config{Name: "up", Command: upstreamCommand(t, "-pid", pidFile), Timeout: time.Second, NoSandbox: true}); err != nil {
		t.Fatal(err)
	}
	c := w.ready(t, "a1")
	first := readPid(t, pidFile)
	os.Remove(pidFile)
	r := c.tool("up__hang", map[string]any{})
	if !r.IsError || !strings.Contains(r.text(), "no answer within 1s") {
		t.Errorf("the hung call: got %v %q, want a timeout error", r.IsError, r.text())
	}
	waitFor(t, 10*time.Second, "the hung process to be killed", func() bool { return gone(first) })
	faults := w.faultsOf("a", "up")
	if len(faults) != 1 || faults[0].Reason != FaultTimeout || faults[0].Tool != "hang" || !strings.Contains(faults[0].Error, "no answer") || faults[0].Failures != 1 {
		t.Errorf("faults: got %+v, want one timeout of hang", faults)
	}
	if st := w.status("a", "up"); st.State == StateRunning && st.Error == "" && readPidNow(pidFile) == 0 {
		t.Errorf("mcp list right after the timeout: got %+v, want it restarting (or running a new process)", st)
	}
	// A call right away waits for the restart within its own 1s, which a
	// busy machine may not give it: wait for the restart first.
	waitFor(t, 20*time.Second, "the restart", func() bool { return w.status("a", "up").State == StateRunning })
	if r := c.tool("up__echo", map[string]any{"text": "after"}); r.IsError || !strings.Contains(r.text(), "after") {
		t.Errorf("the next call: got %v %q, want it answered by a new process", r.IsError, r.text())
	}
	if second := readPid(t, pidFile); second == first {
		t.Errorf("the server still runs as pid %d", first)
	}
	if st := w.status("a", "up"); st.State != StateRunning {
		t.Errorf("mcp list after the restart: got %q, want running", st.State)
	}
}

func readPidNow(path string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestCrashingUpstreamBacksOff: each crash is reported with the failures
// in a row and a growing backoff, 'mcp list' shows the server restarting,
// its tools stay listed meanwhile (a call gets an answer that says it is
// restarting, never "tool not found"), and a call after the restart works.
func TestCrashingUpstreamBacksOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("a", "up", upstreamCommand(t))
	c := w.ready(t, "a1")
	for i := 1; i <= 3; i++ {
		if r := c.tool("up__crash", map[string]any{}); !r.IsError {
			t.Fatalf("crash %d: got %q, want an error result", i, r.text())
		}
		waitFor(t, 10*time.Second, "the crash to be reported", func() bool { return len(w.faultsOf("a", "up")) == i })
		if i < 3 {
			// Wait for the restart, so the next crash is of a running server.
			if r := c.tool("up__echo", map[string]any{}); r.IsError {
				t.Fatalf("echo after crash %d: %s", i, r.text())
			}
		}
	}
	faults := w.faultsOf("a", "up")
	var waits []time.Duration
	for i, f := range faults {
		if f.Reason != FaultCrash || !strings.Contains(f.Error, "exited with status 3: boom") || f.Failures != i+1 {
			t.Errorf("fault %d: got %+v, want crash number %d with its status and stderr", i+1, f, i+1)
		}
		waits = append(waits, f.RetryIn)
	}
	if !slices.IsSorted(waits) || waits[0] >= waits[2] {
		t.Errorf("restart backoffs: got %v, want them growing", waits)
	}
	// It restarts 2s after the third crash; a busy machine may have
	// restarted it already.
	switch st := w.status("a", "up"); st.State {
	case StateRestarting:
		if st.Failures != 3 || st.RetryAt == nil || !strings.Contains(st.Error, "boom") {
			t.Errorf("mcp list of a restarting server: got %+v, want 3 failures in a row, when and why", st)
		}
	case StateRunning, StateStarting:
	default:
		t.Errorf("mcp list after three crashes: got state %q, want restarting", st.State)
	}
	if !slices.Contains(c.toolNames(), "up__echo") {
		t.Error("the tools of a restarting server are not listed")
	}
	m := c.call("tools/call", map[string]any{"name": "up__echo", "arguments": map[string]any{"text": "hi"}})
	if m.Error != nil {
		t.Errorf("a call while restarting: got JSON-RPC error %q, want a result or an error result saying it restarts", m.Error.Message)
	}
	waitFor(t, 20*time.Second, "the server to run again", func() bool {
		r := c.tool("up__echo", map[string]any{"text": "back"})
		if r.IsError && !strings.Contains(r.text(), "restarting") {
			t.Fatalf("a call while restarting: got %q, want it to say the server is restarting", r.text())
		}
		return !r.IsError
	})
}
