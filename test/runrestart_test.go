package test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A 'profiles run' session outlives a graceful restart of the daemon (an
// upgrade must not cut its agent off): the agent, a shell script, makes a
// provider request through its forwarder whenever the test asks, and
// retries what fails to connect, as agents do.

// runAgentScript is the agent: $1 is the exchange directory. It writes its
// session token to token, answers each ask-N with answer-N (the HTTP
// status of one Messages request, retried while the connection is refused
// or the answer is 503), and exits when stop appears.
const runAgentScript = `
dir=$1 i=1
printf '%s' "$ANTHROPIC_API_KEY" > "$dir/token.tmp" && mv "$dir/token.tmp" "$dir/token"
body='{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
while [ ! -e "$dir/stop" ]; do
	if [ -e "$dir/ask-$i" ]; then
		code=000 n=0
		# Like an agent, it retries a refused connection and a 503.
		while { [ "$code" = 000 ] || [ "$code" = 503 ]; } && [ $n -lt 600 ]; do
			code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
				-H 'content-type: application/json' --data "$body" "$ANTHROPIC_BASE_URL/v1/messages")
			n=$((n+1))
			if [ "$code" = 000 ] || [ "$code" = 503 ]; then sleep 0.1; fi
		done
		echo "$code" > "$dir/answer-$i.tmp" && mv "$dir/answer-$i.tmp" "$dir/answer-$i"
		i=$((i+1))
	fi
	sleep 0.05
done
exit 0`

// restartWait bounds what a test waits for across a restart.
const restartWait = 60 * time.Second

// runAgent is one 'profiles run' of the agent above.
type runAgent struct {
	cmd   *exec.Cmd
	out   lockedBuffer
	dir   string // the exchange directory, in the workspace
	id    string // its session
	token string // its session token, as the agent has it
	done  chan struct{}
}

// startRunAgent runs the agent in profile alias; env is added to the
// launcher's environment.
func (w *sbWorld) startRunAgent(t *testing.T, alias string, env ...string) *runAgent {
	t.Helper()
	r := &runAgent{dir: filepath.Join(w.ws, "x-"+sbRandomHex(4)), done: make(chan struct{})}
	if err := os.Mkdir(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.cmd = w.e.command(context.Background(), ringletBin, "profiles", "run", alias, "--", "-c", runAgentScript, "agent", r.dir)
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait() // its exit code is read from ProcessState
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill() // gone already when the test finished it
		<-r.done
	})
	if !waitFor(restartWait, func() bool {
		data, err := os.ReadFile(filepath.Join(r.dir, "token"))
		r.token = string(data)
		return err == nil
	}) {
		t.Fatalf("the agent never started; output:\n%s", r.out.String())
	}
	var list []struct {
		ID      string `json:"id"`
		Profile string `json:"profile"`
	}
	if err := json.Unmarshal([]byte(w.mustRun(t, "sessions", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Profile == alias {
			r.id = s.ID
		}
	}
	if r.id == "" {
		t.Fatalf("no session of %s in sessions list: %+v", alias, list)
	}
	return r
}

// ask has the agent make its n-th request and returns the status it got.
func (r *runAgent) ask(t *testing.T, n int) string {
	t.Helper()
	writeFile(t, filepath.Join(r.dir, "ask-"+strconv.Itoa(n)), "", 0o644)
	var got string
	if !waitFor(restartWait, func() bool {
		data, err := os.ReadFile(filepath.Join(r.dir, "answer-"+strconv.Itoa(n)))
		got = strings.TrimSpace(string(data))
		return err == nil
	}) {
		t.Fatalf("request %d: no answer; output:\n%s", n, r.out.String())
	}
	return got
}

// finish tells the agent to exit and returns the launcher's exit code.
func (r *runAgent) finish(t *testing.T) int {
	t.Helper()
	writeFile(t, filepath.Join(r.dir, "stop"), "", 0o644)
	return r.wait(t)
}

// wait waits for the launcher to exit and returns its exit code.
func (r *runAgent) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(restartWait):
		t.Fatalf("profiles run did not exit; output:\n%s", r.out.String())
		return -1
	}
}

// stopDaemon stops the daemon: 'ringlet daemon stop', or kill -9.
func (w *sbWorld) stopDaemon(t *testing.T, kill bool) {
	t.Helper()
	if kill {
		w.d.Signal(syscall.SIGKILL)
	} else {
		w.mustRun(t, "daemon", "stop")
	}
	w.d.Wait()
}

// setRestartGrace sets sessions.restart_grace, which the daemon reads
// when it starts.
func (w *sbWorld) setRestartGrace(t *testing.T, grace string) {
	t.Helper()
	w.stopDaemon(t, false)
	w.mustRun(t, "config", "set", "sessions.restart_grace", grace)
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
}

// endOf is the reason of session id's session.end, "" when it has none.
func (w *sbWorld) endOf(t *testing.T, id string) string {
	t.Helper()
	for _, r := range w.audit(t, "--session", id) {
		if r.Kind == "session.end" {
			reason, _ := r.Detail["reason"].(string)
			return reason
		}
	}
	return ""
}

// restores counts the session.restore records of session id.
func (w *sbWorld) restores(t *testing.T, id string) int {
	t.Helper()
	n := 0
	for _, r := range w.audit(t, "--session", id, "--kind", "session.restore") {
		if r.Session == id {
			n++
		}
	}
	return n
}

// TestRunSurvivesRestart: 'daemon stop', then a new binary started (an
// upgrade), then a SIGTERM and the same again: the agent's next request
// succeeds each time, with the same session, which the audit log shows
// restored; the store holds its token's hash, never the token.
func TestRunSurvivesRestart(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	r := w.startRunAgent(t, "p")
	if got := r.ask(t, 1); got != "200" {
		t.Fatalf("before the restart: got %s, want 200; output:\n%s", got, r.out.String())
	}

	w.stopDaemon(t, false)
	data, err := os.ReadFile(w.e.sessionFile(r.id))
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte(r.token))
	if s := string(data); !strings.Contains(s, r.id) || !strings.Contains(s, hex.EncodeToString(hash[:])) || !strings.Contains(s, `"launch": true`) {
		t.Errorf("sessions file after the stop: got %s, want the run session, its token's hash, launch", s)
	}
	assertNotInStateDir(t, w.e, r.token, w.key)

	// The upgrade: another binary.
	upgraded := filepath.Join(w.e.Root, "upgrade", "ringlet")
	bin, err := os.ReadFile(ringletBin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, upgraded, string(bin), 0o755)
	waitExecutable(t, upgraded, "version")
	w.e.Binary = upgraded
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	if got := r.ask(t, 2); got != "200" {
		t.Fatalf("after 'daemon stop' and an upgrade: got %s, want 200 with the same session; output:\n%s\ndaemon:\n%s", got, r.out.String(), w.d.Stderr())
	}
	// A second stop keeps it only if the launcher holds it again.
	w.d.Signal(syscall.SIGTERM)
	w.d.Wait()
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	if got := r.ask(t, 3); got != "200" {
		t.Fatalf("after a second restart: got %s, want 200; output:\n%s", got, r.out.String())
	}

	if code := r.finish(t); code != 0 {
		t.Errorf("profiles run: exit %d, want the agent's 0; output:\n%s", code, r.out.String())
	}
	if strings.Contains(r.out.String(), "stopped") || strings.Contains(r.out.String(), "could not") {
		t.Errorf("profiles run printed %q, want nothing about the restarts", r.out.String())
	}
	if n := w.restores(t, r.id); n != 2 {
		t.Errorf("session.restore of %s: got %d, want one per restart (2)", r.id, n)
	}
	if got := w.endOf(t, r.id); got != "agent exited with code 0" {
		t.Errorf("session.end: got %q, want agent exited with code 0", got)
	}
	n := 0
	for _, req := range w.fake.Requests() {
		if req.Path == "/v1/messages" {
			n++
			if req.Key != w.key {
				t.Errorf("the fake got key %q, want p's", req.Key)
			}
		}
	}
	if n != 3 {
		t.Errorf("the fake got %d requests, want 3", n)
	}
}

// TestRunRevokedWhileRestarting: a session revoked through another daemon
// before its launcher holds it again stays revoked: the next daemon
// refuses it, and the launcher stops the agent and says why.
func TestRunRevokedWhileRestarting(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	addr := w.d.Addr
	// The launcher looks for its daemon at addr only, so that a daemon
	// elsewhere can revoke the session before the launcher finds one.
	r := w.startRunAgent(t, "p", "RINGLET_URL="+w.d.URL)
	if got := r.ask(t, 1); got != "200" {
		t.Fatalf("before the restart: got %s, want 200", got)
	}
	w.stopDaemon(t, false)
	w.d = w.e.StartDaemon()
	w.mustRun(t, "sessions", "revoke", r.id)
	w.stopDaemon(t, false)
	w.d = w.e.StartDaemon("--listen", addr)
	code := r.wait(t)
	if out := r.out.String(); code == 0 || !strings.Contains(out, "refused session "+r.id) || !strings.Contains(out, "the agent was stopped") {
		t.Errorf("profiles run: exit %d, printed %q; want non-zero, the session refused and the agent stopped", code, out)
	}
	if got := w.endOf(t, r.id); got != "revoked" {
		t.Errorf("session.end: got %q, want revoked", got)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "answer-2")); err == nil {
		t.Error("the agent made another request, want it stopped")
	}
}

// TestRunLauncherKilledWhileRestarting: a launcher killed while no daemon
// runs never holds its session again: the next daemon restores it and
// ends it after the grace.
func TestRunLauncherKilledWhileRestarting(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	w.setRestartGrace(t, "2s")
	r := w.startRunAgent(t, "p")
	if got := r.ask(t, 1); got != "200" {
		t.Fatalf("before the restart: got %s, want 200", got)
	}
	w.stopDaemon(t, false)
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	var got string
	if !waitFor(restartWait, func() bool { got = w.endOf(t, r.id); return got != "" }) {
		t.Fatalf("session %s never ended; daemon:\n%s", r.id, w.d.Stderr())
	}
	if got != "launcher did not hold it again within 2s of the restart" {
		t.Errorf("session.end: got %q, want the launcher's absence", got)
	}
	if n := w.restores(t, r.id); n != 1 {
		t.Errorf("session.restore: got %d, want 1 before it ended", n)
	}
}

// TestRunDaemonKilled: kill -9 of the daemon loses its 'profiles run'
// sessions (the next daemon ends them as lost); their launchers find that
// out from the next daemon and stop their agents, saying why.
func TestRunDaemonKilled(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	r := w.startRunAgent(t, "p")
	if got := r.ask(t, 1); got != "200" {
		t.Fatalf("before the kill: got %s, want 200", got)
	}
	w.stopDaemon(t, true)
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	code := r.wait(t)
	if out := r.out.String(); code == 0 || !strings.Contains(out, "refused session "+r.id) || !strings.Contains(out, "the agent was stopped") {
		t.Errorf("profiles run: exit %d, printed %q; want non-zero, the session refused and the agent stopped", code, out)
	}
	if got := w.endOf(t, r.id); !strings.HasPrefix(got, "lost") {
		t.Errorf("session.end: got %q, want lost", got)
	}
}

// TestRunNoDaemonComesBack: when no daemon comes back within the grace,
// the launcher stops the agent and says so.
func TestRunNoDaemonComesBack(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	w.setRestartGrace(t, "2s")
	r := w.startRunAgent(t, "p")
	w.stopDaemon(t, false)
	code := r.wait(t)
	if out := r.out.String(); code == 0 || !strings.Contains(out, "no daemon came back within 2s") || !strings.Contains(out, "the agent was stopped") {
		t.Errorf("profiles run: exit %d, printed %q; want non-zero and the grace passed", code, out)
	}
}

// TestRunSocketDirReadOnly: the agent sees its session's socket directory
// read-only: it can reach the socket, and can put nothing there for a
// daemon started later to take (nor remove or replace the socket).
func TestRunSocketDirReadOnly(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	out := w.mustProbe(t, "p", `
d=/run/ringlet/session
[ -S "$d/s.sock" ] && echo SOCKET
touch "$d/x" 2>/dev/null && echo PLANTED
ln -s / "$d/y" 2>/dev/null && echo LINKED
mkdir "$d/z" 2>/dev/null && echo MADE
mv "$d/s.sock" "$d/w" 2>/dev/null && echo MOVED
rm -f "$d/s.sock" 2>/dev/null; [ -S "$d/s.sock" ] || echo REMOVED
exit 0`)
	if got := lines(out); len(got) != 1 || got[0] != "SOCKET" {
		t.Errorf("probe: got %q, want only SOCKET: the socket reachable, its directory read-only", got)
	}
}
