package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillDuringHook: `ringlet sessions kill` while a pre-tool-use hook
// of the session's profile is running on a tool call ends the hook's
// processes and answers the call at once with a refusal, not after the
// hook's own timeout; the kill is recorded once. The call is checked the
// two ways an agent has: its hook adapter asking the session's hook route
// with its token, and a tools/call through Ringlet's MCP gateway, which
// runs the hooks before the server sees the call.
func TestKillDuringHook(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "kh", "fake", "--command", "true")
	mustRun(t, w.e, "mcp", "add", "kh", "slow", "--", buildMCPTestServer(t))
	// The hook blocks until it is killed; its command line holds the
	// file it touches, which names the hook's processes on the host (it
	// runs in a PID namespace of its own, so $$ would be the namespace's).
	started := filepath.Join(t.TempDir(), "started")
	shell := fmt.Sprintf("touch %s; tail -f /dev/null %s", started, started)
	if out := mustRun(t, w.e, "hooks", "add", "kh", "--on", "pre-tool-use", "--timeout", "5m", "--shell", shell); !strings.Contains(out, "h_") {
		t.Fatalf("hooks add: got %q", out)
	}

	// killDuring starts call with a new session's token, waits for the
	// hook to run, kills the session and returns what call got.
	killDuring := func(t *testing.T, call func(ctx context.Context, s proxySession) (int, string, error)) (proxySession, int, string) {
		t.Helper()
		if err := os.Remove(started); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		s := w.startSession("kh")
		type answer struct {
			status int
			body   string
			err    error
		}
		done := make(chan answer, 1)
		// A hook the kill does not cancel runs to its 5 minute timeout.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		go func() {
			status, body, err := call(ctx, s)
			done <- answer{status, body, err}
		}()
		var procs []int
		if !waitFor(30*time.Second, func() bool {
			_, err := os.Stat(started)
			procs = markedProcesses(started)
			return err == nil && len(procs) > 0
		}) {
			t.Fatalf("the hook did not start within 30s (processes %v)", procs)
		}
		mustRun(t, w.e, "sessions", "kill", s.ID, "--yes")
		var a answer
		select {
		case a = <-done:
		case <-time.After(time.Minute):
			t.Fatalf("the call was still open a minute after the kill; hook processes %v", markedProcesses(started))
		}
		if !waitFor(30*time.Second, func() bool { return len(markedProcesses(started)) == 0 }) {
			t.Errorf("the hook's processes %v outlived the kill", markedProcesses(started))
		}
		for _, pid := range procs {
			if !pidGone(pid) {
				t.Errorf("hook process %d outlived the kill", pid)
			}
		}
		var killed int
		for _, r := range sessionRecords(t, w.e, s.ID) {
			if r.Kind == "session.killed" {
				killed++
			}
		}
		if killed != 1 {
			t.Errorf("session.killed records: got %d, want 1", killed)
		}
		if a.err != nil {
			return s, 0, a.err.Error()
		}
		return s, a.status, a.body
	}

	check := `{"event":"pre-tool-use","tool_name":"Bash","tool_input":{"command":"ls"}}`
	t.Run("hook route", func(t *testing.T) {
		s, status, body := killDuring(t, func(ctx context.Context, s proxySession) (int, string, error) {
			req, err := http.NewRequestWithContext(ctx, "POST", w.d.URL+"/session/hooks/check", strings.NewReader(check))
			if err != nil {
				return 0, "", err
			}
			req.Header.Set("Authorization", "Bearer "+s.Token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := longClient.Do(req)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), err
		})
		var d struct {
			Allow  bool   `json:"allow"`
			Reason string `json:"reason"`
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil || d.Allow || !strings.Contains(d.Reason, "killed") {
			t.Errorf("the check cut by the kill: got %d %s, want a refusal saying the session was killed", status, body)
		}
		t.Logf("the check cut by the kill got %d %s", status, body)
		// The token is dead: a new check is refused and runs no hook.
		if status, _, body := w.d.MustDo(t, "POST", "/session/hooks/check", s.Token, check); status != http.StatusUnauthorized {
			t.Errorf("a check after the kill: got %d %s, want 401", status, body)
		}
	})

	t.Run("MCP tools/call", func(t *testing.T) {
		_, status, body := killDuring(t, func(ctx context.Context, s proxySession) (int, string, error) {
			sid := mcpOpen(t, w.d.URL, s.Token)
			return mcpPost(w.d.URL, s.Token, sid, stdioCall(2, "slow__slow", map[string]any{"ms": 1}))
		})
		// The call is cut (its stream ends, or an error): the server's
		// result ("slept") never comes, since the hook never allowed it.
		if strings.Contains(body, "slept") {
			t.Errorf("the tools/call cut by the kill: got %d %s, want it cut before the server ran it", status, body)
		}
		t.Logf("the tools/call cut by the kill got %d %.300s", status, body)
	})
}
