//go:build linux

package test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// endDeadline bounds how long a dead launcher's session may outlive it.
const endDeadline = 10 * time.Second

// TestKilledLauncherEndsSession: kill -9 of `ringlet profiles run` ends
// its session at once (its agent dies with it, through bwrap's
// --die-with-parent): the API no longer lists it, its token is refused on
// the proxy, and the audit log says why.
func TestKilledLauncherEndsSession(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	tag := "ringlet-launcher-" + sbRandomHex(4)
	tokenFile := filepath.Join(w.ws, tag)
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	launcher := w.e.command(ctx, ringletBin, "profiles", "run", "p", "--", "-c",
		`printf '%s' "$ANTHROPIC_API_KEY" > "$1"; exec /bin/sh -c 'sleep 300' "$2"`, "probe", tokenFile, tag)
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	var tok string
	if !waitFor(runTimeout/2, func() bool {
		data, _ := os.ReadFile(tokenFile)
		tok = string(data)
		return strings.HasPrefix(tok, "rlt_") && len(markedProcesses(tag)) > 0
	}) {
		launcher.Process.Kill()
		launcher.Wait()
		t.Fatalf("the agent did not start (token %q)", tok)
	}
	var sessions []struct{ ID, Profile string }
	if err := json.Unmarshal([]byte(w.mustRun(t, "sessions", "list", "--json")), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("sessions list: got %+v (%v), want the run's one session", sessions, err)
	}
	id := sessions[0].ID

	launcher.Process.Kill() // SIGKILL: nothing of its own runs
	launcher.Wait()

	admin := w.e.Token()
	if !waitFor(endDeadline, func() bool {
		status, _, _ := w.d.MustGet(t, "/api/sessions/"+id, admin, nil)
		return status == http.StatusNotFound
	}) {
		t.Fatalf("session %s still live %s after its launcher was killed", id, endDeadline)
	}
	if out := strings.TrimSpace(w.mustRun(t, "sessions", "list", "--json")); out != "[]" {
		t.Errorf("sessions list: got %s, want none", out)
	}
	body := `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", w.d.URL+"/proxy/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", tok)
	req.Header.Set("content-type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the dead launcher's token on /proxy: got %d, want 401", resp.StatusCode)
	}
	var end *sbAudit
	for _, r := range w.audit(t, "--kind", "session.end") {
		if r.Session == id {
			end = &r
		}
	}
	if end == nil || end.Detail["reason"] != "launcher exited" {
		t.Errorf("session.end of %s: got %+v, want reason \"launcher exited\"", id, end)
	}
	if !waitFor(endDeadline, func() bool { return len(markedProcesses(tag)) == 0 }) {
		t.Errorf("the agent (%v) outlived its killed launcher", markedProcesses(tag))
	}
	w.e.AssertNoSecret(tok)
}

// TestKilledDaemonSocketDirs: kill -9 of the daemon leaves its session
// socket directories; the next daemon removes them, and nothing else.
func TestKilledDaemonSocketDirs(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	admin := w.e.Token()
	status, _, body := w.d.MustDo(t, "POST", "/api/sessions", admin, `{"profile":"p","socket":true}`)
	var st struct{ Socket string }
	if err := json.Unmarshal(body, &st); status != http.StatusCreated || err != nil || st.Socket == "" {
		t.Fatalf("start a session with a socket: got %d %s", status, body)
	}
	sessionDir := filepath.Dir(st.Socket)
	root := filepath.Dir(sessionDir)
	if fi, err := os.Lstat(st.Socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the session socket %s: got %v, %v", st.Socket, fi, err)
	}
	// Beside it, a directory of the same shape that this daemon did not
	// make (another daemon's, another user's): it must stay.
	other := filepath.Join(filepath.Dir(root), "ringlet-sockets-"+sbRandomHex(6))
	writeFile(t, filepath.Join(other, "keep"), "keep", 0o600)
	t.Cleanup(func() { os.RemoveAll(other) })

	w.d.cmd.Process.Kill()
	<-w.d.done
	if _, err := os.Lstat(st.Socket); err != nil {
		t.Fatalf("after kill -9 the socket is gone already (%v); the test needs it left", err)
	}

	d2 := w.e.StartDaemon()
	// The socket root is taken over (a graceful stop leaves in it the
	// directories of the sessions it keeps); what no session holds goes.
	if _, err := os.Lstat(sessionDir); !os.IsNotExist(err) {
		t.Errorf("%s after the restart: got %v, want it removed", sessionDir, err)
	}
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("the socket root %s after the restart: got %v, %v; want it taken over, 0700", root, fi, err)
	}
	if data, err := os.ReadFile(filepath.Join(other, "keep")); err != nil || string(data) != "keep" {
		t.Errorf("%s: got %q, %v; want it untouched", other, data, err)
	}
	// The new daemon's sessions still get sockets.
	status, _, body = d2.MustDo(t, "POST", "/api/sessions", admin, `{"profile":"p","socket":true}`)
	if err := json.Unmarshal(body, &st); status != http.StatusCreated || err != nil || st.Socket == "" {
		t.Fatalf("a session after the restart: got %d %s", status, body)
	}
	if _, err := os.Lstat(st.Socket); err != nil {
		t.Errorf("the new session's socket: %v", err)
	}
}
