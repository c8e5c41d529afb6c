package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// The sessions of 'profiles env' renew while used, outlive a restart of
// the daemon (an upgrade must not cut every agent off), and end when they
// must: revoked, expired, or their key changed while the daemon was down.

// restart stops the daemon (SIGTERM, or SIGKILL when kill) and starts
// another on the same address, where the agents' base URL points.
func (w *proxyWorld) restart(t *testing.T, kill bool) {
	t.Helper()
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	w.d.Signal(sig)
	w.d.Wait()
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
}

// proxyStatus sends one Messages request with tok and returns the status,
// and whether it reached the fake provider.
func (w *proxyWorld) proxyStatus(t *testing.T, tok string) (int, bool) {
	t.Helper()
	before := len(w.fake.Requests())
	status, _, _ := w.send(t, "POST", "/v1/messages", anthropicHeaders(tok), messagesBody)
	return status, len(w.fake.Requests()) > before
}

// sessionRecords are the audit records of session id, oldest first.
func sessionRecords(t *testing.T, e *env, id string) []sessionRecord {
	t.Helper()
	var page struct{ Records []sessionRecord }
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--session", id, "--json", "--limit", "100")), &page); err != nil {
		t.Fatal(err)
	}
	sort.Slice(page.Records, func(i, j int) bool { return page.Records[i].Seq < page.Records[j].Seq })
	return page.Records
}

// endReason is the reason of id's session.end, "" when it has none.
func endReason(t *testing.T, e *env, id string) string {
	t.Helper()
	for _, r := range sessionRecords(t, e, id) {
		if r.Kind == "session.end" {
			reason, _ := r.Detail["reason"].(string)
			return reason
		}
	}
	return ""
}

// sessionsDir is where the daemon keeps the sessions that outlive it, a
// file each.
func (e *env) sessionsDir() string { return filepath.Join(e.StateDir(), "sessions") }

// sessionFile is the file of the stored session id.
func (e *env) sessionFile(id string) string { return filepath.Join(e.sessionsDir(), id+".json") }

// assertNotInStateDir fails t if any file under the state dir holds one of
// the values (the daemon's log included, when detached).
func assertNotInStateDir(t *testing.T, e *env, values ...string) {
	t.Helper()
	err := filepath.WalkDir(e.StateDir(), func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%s holds a secret (%d bytes of it), want none", path, len(v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSessionsSurviveRestart: a session of 'profiles env' keeps working
// across a restart of the daemon, graceful or kill -9; the daemon keeps it
// in a 0600 file that holds no token; the audit log says it was restored.
func TestSessionsSurviveRestart(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "p1", "fake", "--command", "true")
	s := w.startSession("p1")
	if status, reached := w.proxyStatus(t, s.Token); status != http.StatusOK || !reached {
		t.Fatalf("before the restart: got %d (reached the provider: %v), want 200 from the provider", status, reached)
	}
	fi, err := os.Lstat(w.e.sessionFile(s.ID))
	if err != nil {
		t.Fatalf("the session's file: %v, want one", err)
	}
	if fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
		t.Fatalf("the session's file: got %v, want a regular file of mode 0600", fi.Mode())
	}
	if fi, err := os.Lstat(w.e.sessionsDir()); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("sessions directory: got %v (%v), want a directory of mode 0700", fi.Mode(), err)
	}

	for _, kill := range []bool{false, true} {
		w.restart(t, kill)
		if status, reached := w.proxyStatus(t, s.Token); status != http.StatusOK || !reached {
			t.Fatalf("after a restart (kill -9: %v): got %d (reached the provider: %v), want the same token to reach the provider", kill, status, reached)
		}
	}
	restores := 0
	for _, r := range sessionRecords(t, w.e, s.ID) {
		switch r.Kind {
		case "session.restore":
			restores++
		case "session.end":
			t.Errorf("session.end recorded for a session that lives on: %+v", r)
		}
	}
	if restores != 2 {
		t.Errorf("session.restore records: got %d, want one per restart (2)", restores)
	}
	var list []struct {
		ID       string `json:"id"`
		Durable  bool   `json:"durable"`
		Requests int64  `json:"requests"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "sessions", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != s.ID || !list[0].Durable {
		t.Errorf("sessions list after the restarts: got %+v (%v), want %s, durable", list, err, s.ID)
	}
	assertNotInStateDir(t, w.e, s.Token, strings.TrimPrefix(s.Token, "rlt_"), key)
	w.e.AssertNoSecret(key)
}

// TestRevokedStaysRevoked: a revoked session stays refused after a
// restart, also when the admin token was rotated in between; a session
// revoked with --all too.
func TestRevokedStaysRevoked(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "p1", "fake", "--command", "true")
	w.newProfile("generic", "p2", "fake", "--command", "true")
	one, two, other := w.startSession("p1"), w.startSession("p1"), w.startSession("p2")
	mustRun(t, w.e, "sessions", "revoke", one.ID)

	// --all asks first; without a terminal it wants --yes.
	if _, stderr, code := w.e.Run("sessions", "revoke", "--all", "--profile", "p1"); code != 2 || !strings.Contains(stderr, "pass --yes") {
		t.Fatalf("revoke --all without --yes: exit %d, stderr %q; want exit 2 asking for --yes", code, stderr)
	}
	if _, stderr, code := w.e.Run("sessions", "revoke", one.ID, "--all"); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("revoke ID --all: exit %d, stderr %q; want exit 2", code, stderr)
	}
	var revoked struct {
		Sessions []struct {
			ID     string `json:"id"`
			Reason string `json:"reason"`
		} `json:"sessions"`
	}
	out := mustRun(t, w.e, "sessions", "revoke", "--all", "--profile", "p1", "--yes", "--json")
	if err := json.Unmarshal([]byte(out), &revoked); err != nil || len(revoked.Sessions) != 1 || revoked.Sessions[0].ID != two.ID {
		t.Fatalf("revoke --all --profile p1: got %s (%v), want only %s", out, err, two.ID)
	}
	mustRun(t, w.e, "daemon", "rotate-token")
	w.restart(t, false)
	for _, s := range []proxySession{one, two} {
		if status, reached := w.proxyStatus(t, s.Token); status != http.StatusUnauthorized || reached {
			t.Errorf("revoked %s after a rotation and a restart: got %d (reached the provider: %v), want 401", s.ID, status, reached)
		}
		if got := endReason(t, w.e, s.ID); got != "revoked" {
			t.Errorf("session.end of %s: got %q, want revoked", s.ID, got)
		}
	}
	if status, _ := w.proxyStatus(t, other.Token); status != http.StatusOK {
		t.Errorf("the other profile's session after the restart: got %d, want 200", status)
	}
}

// TestKeyChangedWhileStopped: a key replaced while the daemon was down
// ends the sessions that started with the old one, as a replacement while
// it runs does.
func TestKeyChangedWhileStopped(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	oldKey := w.newProfile("generic", "p1", "fake", "--command", "true")
	w.newProfile("generic", "p2", "fake", "--command", "true")
	s, other := w.startSession("p1"), w.startSession("p2")
	w.d.Signal(syscall.SIGTERM)
	w.d.Wait()

	// What the user does without the daemon: edit the file backend.
	credFile := filepath.Join(w.e.ConfigDir(), "credentials.toml")
	data, err := os.ReadFile(credFile)
	if err != nil || !bytes.Contains(data, []byte(oldKey)) {
		t.Fatalf("credentials.toml: %v; want it to hold the key (the file backend)", err)
	}
	newKey := proxyCanary("p1-new")
	w.fake.AddKey(newKey)
	if err := os.WriteFile(credFile, bytes.Replace(data, []byte(oldKey), []byte(newKey), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	w.d = w.e.StartDaemon("--listen", w.d.Addr)

	if status, reached := w.proxyStatus(t, s.Token); status != http.StatusUnauthorized || reached {
		t.Errorf("a session of the replaced key: got %d (reached the provider: %v), want 401", status, reached)
	}
	if got := endReason(t, w.e, s.ID); got != "key replaced while the daemon was stopped" {
		t.Errorf("session.end: got %q, want the key replaced while the daemon was stopped", got)
	}
	if status, _ := w.proxyStatus(t, other.Token); status != http.StatusOK {
		t.Errorf("a session of another key: got %d, want 200", status)
	}
}

// editStored rewrites the stored session id while the daemon is down.
func editStored(t *testing.T, e *env, id string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(e.sessionFile(id))
	if err != nil {
		t.Fatalf("session %s is not stored: %v", id, err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	edit(s)
	if data, err = json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.sessionFile(id), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredAndIdleSessionsEnd: a session that expired, or idled out,
// while the daemon was down is not restored; `sessions prune` ends the
// sessions nobody uses, and says which.
func TestExpiredAndIdleSessionsEnd(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "p1", "fake", "--command", "true")
	expired, idle, live := w.startSession("p1"), w.startSession("p1"), w.startSession("p1")
	w.d.Signal(syscall.SIGTERM)
	w.d.Wait()
	// Time passed while the daemon was down: past one's deadline, past
	// the other's idle timeout (2h by default).
	editStored(t, w.e, expired.ID, func(s map[string]any) {
		// Started two hours ago with a deadline an hour ago: past it
		// however fast the restart is.
		now := time.Now()
		s["created"] = now.Add(-2 * time.Hour).Format(time.RFC3339Nano)
		s["last_used"] = s["created"]
		s["deadline"] = now.Add(-time.Hour).Format(time.RFC3339Nano)
	})
	editStored(t, w.e, idle.ID, func(s map[string]any) {
		s["last_used"] = time.Now().Add(-2*time.Hour - time.Minute).Format(time.RFC3339Nano)
	})
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	for _, c := range []struct {
		s    proxySession
		want string
	}{{expired, "expired while the daemon was stopped"}, {idle, "expired: no request for 2h0m0s while the daemon was stopped"}} {
		s, want := c.s, c.want
		if status, _ := w.proxyStatus(t, s.Token); status != http.StatusUnauthorized {
			t.Errorf("%s after the restart: got %d, want 401", s.ID, status)
		}
		if got := endReason(t, w.e, s.ID); got != want {
			t.Errorf("session.end of %s: got %q, want %q", s.ID, got, want)
		}
	}

	// prune --idle 1s lists the live session once a second has passed
	// with no request of it; --dry-run ends nothing.
	type pruned struct {
		Sessions []struct {
			ID     string `json:"id"`
			Reason string `json:"reason"`
		} `json:"sessions"`
		DryRun bool `json:"dry_run"`
	}
	var dry pruned
	if !waitFor(30*time.Second, func() bool {
		if err := json.Unmarshal([]byte(mustRun(t, w.e, "sessions", "prune", "--idle", "1s", "--dry-run", "--json")), &dry); err != nil {
			t.Fatal(err)
		}
		return len(dry.Sessions) > 0
	}) {
		t.Fatal("prune --idle 1s --dry-run listed nothing within 30s, want the live session")
	}
	if len(dry.Sessions) != 1 || dry.Sessions[0].ID != live.ID || !strings.HasPrefix(dry.Sessions[0].Reason, "unused for ") || !dry.DryRun {
		t.Fatalf("prune --dry-run: got %+v, want %s, unused", dry, live.ID)
	}
	if status, _ := w.proxyStatus(t, live.Token); status != http.StatusOK {
		t.Fatalf("after a dry run: got %d, want the session live", status)
	}
	if out := mustRun(t, w.e, "sessions", "prune"); !strings.Contains(out, "no sessions to prune") {
		t.Errorf("prune right after a use (idle 1h): got %q, want nothing pruned", out)
	}
	var done pruned
	if !waitFor(30*time.Second, func() bool {
		if err := json.Unmarshal([]byte(mustRun(t, w.e, "sessions", "prune", "--idle", "1s", "--json")), &done); err != nil {
			t.Fatal(err)
		}
		return len(done.Sessions) > 0
	}) {
		t.Fatal("prune --idle 1s ended nothing within 30s, want the live session")
	}
	if len(done.Sessions) != 1 || done.Sessions[0].ID != live.ID || done.DryRun {
		t.Fatalf("prune: got %+v, want %s ended", done, live.ID)
	}
	if status, _ := w.proxyStatus(t, live.Token); status != http.StatusUnauthorized {
		t.Errorf("a pruned session: got %d, want 401", status)
	}
	if got := endReason(t, w.e, live.ID); !strings.HasPrefix(got, "pruned: unused for ") {
		t.Errorf("session.end of the pruned session: got %q, want pruned: unused for ...", got)
	}
	if _, stderr, code := w.e.Run("sessions", "prune", "--idle", "soon"); code != 2 || !strings.Contains(stderr, "--idle") {
		t.Errorf("prune --idle soon: exit %d, stderr %q; want exit 2 naming --idle", code, stderr)
	}
}

// TestUnsafeSessionsFileRefused: a stored session's file that others can
// read, or a symbolic link, is refused with a log line that says why, and
// that session is not admitted; the other stored sessions are. A sessions
// directory others can enter admits none.
func TestUnsafeSessionsFileRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, logged string
		whole        bool
		spoil        func(t *testing.T, e *env, id string)
	}{
		{"readable by others", "group or others can access it", false, func(t *testing.T, e *env, id string) {
			if err := os.Chmod(e.sessionFile(id), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a symbolic link", "symbolic link", false, func(t *testing.T, e *env, id string) {
			path, moved := e.sessionFile(id), filepath.Join(e.StateDir(), "moved.json")
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory others can enter", "group or others can access it", true, func(t *testing.T, e *env, _ string) {
			if err := os.Chmod(e.sessionsDir(), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newProxyWorld(t)
			w.newProfile("generic", "p1", "fake", "--command", "true")
			s := w.startSession("p1")
			other := w.startSession("p1")
			w.d.Signal(syscall.SIGTERM)
			w.d.Wait()
			tc.spoil(t, w.e, s.ID)
			w.d = w.e.StartDaemon("--listen", w.d.Addr)
			if status, reached := w.proxyStatus(t, s.Token); status != http.StatusUnauthorized || reached {
				t.Errorf("a session of a refused file: got %d (reached the provider: %v), want 401", status, reached)
			}
			refusal, want := "refusing a stored session", http.StatusOK
			if tc.whole {
				refusal, want = "refusing the stored sessions", http.StatusUnauthorized
			}
			if log := w.d.Stderr(); !strings.Contains(log, refusal) || !strings.Contains(log, tc.logged) {
				t.Errorf("daemon log: got %s, want a line %q that says %q", log, refusal, tc.logged)
			}
			if status, _ := w.proxyStatus(t, other.Token); status != want {
				t.Errorf("the other stored session: got %d, want %d", status, want)
			}
			// The session is over in the audit log too.
			if got := endReason(t, w.e, s.ID); !strings.HasPrefix(got, "lost") {
				t.Errorf("session.end: got %q, want lost", got)
			}
		})
	}
}

// TestSessionsMigrateFromOneFile: the sessions an earlier version kept in
// one file (sessions.json) are admitted by this one, which moves them
// into a file each and removes the old file.
func TestSessionsMigrateFromOneFile(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "p1", "fake", "--command", "true")
	a, b := w.startSession("p1"), w.startSession("p1")
	w.d.Signal(syscall.SIGTERM)
	w.d.Wait()
	// What an earlier version left: the same records, in one file.
	var old struct {
		Version  int               `json:"version"`
		Sessions []json.RawMessage `json:"sessions"`
	}
	old.Version = 1
	for _, id := range []string{a.ID, b.ID} {
		data, err := os.ReadFile(w.e.sessionFile(id))
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		delete(rec, "version")
		old.Sessions = append(old.Sessions, mustMarshal(t, rec))
	}
	if err := os.RemoveAll(w.e.sessionsDir()); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(w.e.StateDir(), "sessions.json")
	if err := os.WriteFile(legacy, mustMarshal(t, old), 0o600); err != nil {
		t.Fatal(err)
	}
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	for _, s := range []string{a.Token, b.Token} {
		if status, reached := w.proxyStatus(t, s); status != http.StatusOK || !reached {
			t.Errorf("a session of the old file: got %d (reached the provider: %v), want 200", status, reached)
		}
	}
	if _, err := os.Lstat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old file: got %v, want it removed", err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if fi, err := os.Lstat(w.e.sessionFile(id)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the file of %s: got %v, %v; want one of mode 0600", id, fi, err)
		}
	}
	if log := w.d.Stderr(); !strings.Contains(log, "moved the stored sessions") {
		t.Errorf("daemon log: got %s, want a line saying the sessions moved", log)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSandboxCannotReachSessionsFile: the sandboxed agent sees nothing of
// the state directory (it is not bound) and cannot write there; its own
// 'profiles run' session is not kept across restarts, and ends with it.
func TestSandboxCannotReachSessionsFile(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	var env struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(w.mustRun(t, "profiles", "env", "p", "--json")), &env); err != nil {
		t.Fatal(err)
	}
	file := w.e.sessionFile(env.ID)
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	goFile := filepath.Join(w.ws, "go-"+sbRandomHex(4))
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	var out bytes.Buffer
	run := w.e.command(ctx, ringletBin, "profiles", "run", "p", "--", "-c", `
state=$1 file=$2 go=$3
for p in "$state" "$file"; do
	if [ -e "$p" ] || cat "$p" 2>/dev/null; then echo "VISIBLE $p"; fi
done
# Inside, /tmp is the sandbox's own: a write there must not reach the host.
mkdir -p "$state" 2>/dev/null && echo x > "$file" 2>/dev/null
i=0; while [ ! -e "$go" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
exit 0`, "probe", w.e.StateDir(), file, goFile)
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	// While the agent runs: its session is live, and not kept.
	var runID string
	ok := waitFor(runTimeout/2, func() bool {
		var list []struct {
			ID      string `json:"id"`
			Durable bool   `json:"durable"`
		}
		if json.Unmarshal([]byte(w.mustRun(t, "sessions", "list", "--json")), &list) != nil {
			return false
		}
		for _, s := range list {
			if s.ID != env.ID {
				runID = s.ID
				if s.Durable {
					t.Errorf("the run's session %s says durable, want it to end with its agent", s.ID)
				}
			}
		}
		return runID != ""
	})
	if ok {
		if _, err := os.Lstat(w.e.sessionFile(runID)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the run's session while it lives: stored (%v), want only the env session kept", err)
		}
	}
	writeFile(t, goFile, "go", 0o644)
	if err := run.Wait(); err != nil {
		t.Fatalf("profiles run: %v; output %s", err, out.String())
	}
	if !ok {
		t.Fatalf("the run's session never showed in sessions list; output %s", out.String())
	}
	if strings.Contains(out.String(), "VISIBLE") {
		t.Errorf("probe: got %q, want the state dir and the sessions file out of reach", out.String())
	}
	if after, err := os.ReadFile(file); err != nil || !bytes.Equal(after, before) {
		t.Errorf("sessions file after the probe: changed (%v), want it as before", err)
	}
	if got := endReason(t, w.e, runID); !strings.HasPrefix(got, "agent exited") {
		t.Errorf("the run's session.end: got %q, want agent exited", got)
	}
}

// onTerminal runs ringlet with args on a pseudo-terminal, answers answer
// once the output shows prompt, and returns all it printed and its exit
// code.
func onTerminal(t *testing.T, e *env, prompt, answer string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, ringletBin, args...)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out lockedBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&out, tty) // ends with EIO when the command exits
	}()
	if !waitFor(runTimeout/2, func() bool { return strings.Contains(out.String(), prompt) }) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("ringlet %s: no prompt %q; printed %q", strings.Join(args, " "), prompt, out.String())
	}
	if _, err := tty.Write([]byte(answer + "\n")); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	<-copied
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ringlet %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestRevokeAllAsksOnATerminal: on a terminal, revoke --all says how many
// sessions it would end and ends them only on yes.
func TestRevokeAllAsksOnATerminal(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "p1", "fake", "--command", "true")
	w.newProfile("generic", "p2", "fake", "--command", "true")
	a, b := w.startSession("p1"), w.startSession("p2")
	const prompt = "Revoke 1 live session of profile p1?"
	out, code := onTerminal(t, w.e, prompt, "n", "sessions", "revoke", "--all", "--profile", "p1")
	if code != 1 || !strings.Contains(out, "not revoked") {
		t.Errorf("answered no: exit %d, printed %q; want exit 1, not revoked", code, out)
	}
	if status, _ := w.proxyStatus(t, a.Token); status != http.StatusOK {
		t.Fatalf("after no: got %d, want the session live", status)
	}
	out, code = onTerminal(t, w.e, "Revoke 2 live sessions?", "y", "sessions", "revoke", "--all")
	if code != 0 || !strings.Contains(out, "revoked 2 sessions") {
		t.Errorf("answered yes: exit %d, printed %q; want exit 0, revoked 2 sessions", code, out)
	}
	for _, s := range []proxySession{a, b} {
		if status, _ := w.proxyStatus(t, s.Token); status != http.StatusUnauthorized {
			t.Errorf("%s after yes: got %d, want 401", s.ID, status)
		}
	}
}

// TestRevokeAllWhileStopped: revoking every session while the daemon is
// stopped starts it, so the sessions it kept are revoked too and are not
// admitted again at a later start.
func TestRevokeAllWhileStopped(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "p1", "fake", "--command", "true")
	s := w.startSession("p1")
	w.d.Signal(syscall.SIGTERM)
	w.d.Wait()
	// The daemon the CLI starts listens where the agent's base URL points.
	mustRun(t, w.e, "config", "set", "daemon.listen", w.d.Addr)

	out, stderr, code := w.e.Run("sessions", "revoke", "--all", "--yes")
	var st struct {
		PID int `json:"pid"`
	}
	if data, err := os.ReadFile(w.e.StateFile()); err == nil {
		_ = json.Unmarshal(data, &st) // checked below
	}
	// Not our child: make sure it goes even if we fail.
	t.Cleanup(func() {
		if st.PID > 0 && !pidGone(st.PID) {
			_ = syscall.Kill(st.PID, syscall.SIGTERM) // it may be exiting
		}
	})
	if code != 0 || !strings.Contains(out, "revoked 1 session") || st.PID <= 0 {
		t.Fatalf("revoke --all with the daemon stopped: exit %d, stdout %q, stderr %q, daemon pid %d; want one session revoked by a daemon started for it", code, out, stderr, st.PID)
	}
	if got := endReason(t, w.e, s.ID); got != "revoked" {
		t.Errorf("session.end: got %q, want revoked", got)
	}
	mustRun(t, w.e, "daemon", "stop")
	if !waitFor(exitTimeout, func() bool { return pidGone(st.PID) }) {
		t.Fatalf("the started daemon (pid %d) did not stop", st.PID)
	}
	w.d = w.e.StartDaemon("--listen", w.d.Addr)
	if status, reached := w.proxyStatus(t, s.Token); status != http.StatusUnauthorized || reached {
		t.Errorf("after another start: got %d (reached the provider: %v), want 401", status, reached)
	}
}
