package test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAutoStartAndIdleExit: a command that needs the daemon starts one in
// the background, says so once on stderr, and that daemon exits by itself
// after daemon.idle_timeout, leaving a private JSON log without secrets.
func TestAutoStartAndIdleExit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, kv := range [][2]string{{"daemon.idle_timeout", "1s"}, {"daemon.listen", addr}} {
		if _, stderr, code := e.Run("config", "set", kv[0], kv[1]); code != 0 {
			t.Fatalf("config set %s %s: exit %d, want 0; stderr %q", kv[0], kv[1], code, stderr)
		}
	}

	stdout, stderr, code := e.Run("api", "/api/status")
	var st struct {
		PID         int    `json:"pid"`
		Listen      string `json:"listen"`
		StayAlive   bool   `json:"stay_alive"`
		IdleTimeout string `json:"idle_timeout"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.PID <= 0 {
		t.Fatalf("ringlet api /api/status: exit %d, stdout %q (%v), stderr %q; want the JSON status", code, stdout, err, stderr)
	}
	// The daemon is not our child; make sure it goes even if we fail.
	t.Cleanup(func() {
		if !pidGone(st.PID) {
			syscall.Kill(st.PID, syscall.SIGTERM)
		}
	})
	if code != 0 {
		t.Errorf("ringlet api /api/status: exit %d, want 0", code)
	}
	if st.Listen != addr || st.StayAlive || st.IdleTimeout != "1s" {
		t.Errorf("status: got listen %q stay_alive %v idle_timeout %q, want %q false \"1s\"", st.Listen, st.StayAlive, st.IdleTimeout, addr)
	}
	ls := lines(stderr)
	if len(ls) != 1 || !strings.HasPrefix(ls[0], "ringlet: started the daemon in the background") ||
		!strings.Contains(ls[0], fmt.Sprintf("pid %d", st.PID)) || !strings.Contains(ls[0], e.LogFile()) {
		t.Errorf("stderr: got %q, want one line saying it started the daemon in the background with pid %d and log %s", stderr, st.PID, e.LogFile())
	}
	tok := e.Token()

	if !waitFor(15*time.Second, func() bool { return pidGone(st.PID) }) {
		t.Fatalf("daemon (pid %d) still running 15s after its 1s idle timeout", st.PID)
	}
	if _, err := os.Stat(e.StateFile()); !os.IsNotExist(err) {
		t.Errorf("daemon.json after idle exit: got err %v, want it removed", err)
	}

	fi, err := os.Lstat(e.LogFile())
	if err != nil {
		t.Fatalf("daemon log: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("daemon log mode: got %v, want a regular 0600 file", fi.Mode())
	}
	log, err := os.ReadFile(e.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	logLines := lines(string(log))
	if len(logLines) == 0 {
		t.Fatal("daemon log: got no lines, want JSON lines")
	}
	var sawIdle bool
	for _, l := range logLines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("daemon log line %q: %v; want a JSON object", l, err)
			continue
		}
		if r, _ := rec["reason"].(string); rec["msg"] == "daemon stopped" && strings.Contains(r, "idle") {
			sawIdle = true
		}
	}
	if !sawIdle {
		t.Errorf("daemon log: got\n%s\nwant a \"daemon stopped\" line with an idle reason", log)
	}
	if strings.Contains(string(log), tok) {
		t.Error("daemon log contains the token")
	}
	e.AssertNoSecret(tok)
}

// TestCompletionAndHelp: shell completion and help work without a daemon.
func TestCompletionAndHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	stdout, stderr, code := e.Run("completion", "bash")
	if code != 0 || stderr != "" {
		t.Errorf("completion bash: got exit %d stderr %q, want exit 0 and no stderr", code, stderr)
	}
	if !strings.Contains(stdout, "ringlet") || !strings.Contains(stdout, "complete ") {
		t.Errorf("completion bash: got %.200q, want a bash completion script for ringlet", stdout)
	}

	stdout, stderr, code = e.Run("daemon", "--help")
	if code != 0 || stderr != "" {
		t.Errorf("daemon --help: got exit %d stderr %q, want exit 0 and no stderr", code, stderr)
	}
	for _, want := range []string{"--stay-alive", "Examples:", "ringlet daemon stop"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("daemon --help: got %q, want it to contain %q", stdout, want)
		}
	}

	// A mistyped subcommand or help topic is a usage error at every level,
	// not a help page with exit 0.
	for _, args := range [][]string{
		{"bogus"}, {"profiles", "lsit"}, {"audit", "bogus"}, {"config", "bogus"}, {"hooks", "bogus"},
		{"keychain", "bogus"}, {"sessions", "bogus"}, {"mcp", "bogus"}, {"completion", "nosuch"},
		{"help", "nosuch"}, {"help", "profiles", "lsit"},
	} {
		stdout, stderr, code := e.Run(args...)
		checkOneLineError(t, stdout, stderr, code, []int{2}, "unknown")
	}
	// A group alone, or help on it, still shows its help.
	for _, args := range [][]string{{"profiles"}, {"help", "profiles"}} {
		if stdout, stderr, code := e.Run(args...); code != 0 || stderr != "" || !strings.Contains(stdout, "ringlet profiles") {
			t.Errorf("ringlet %s: got exit %d, stderr %q, stdout %.100q; want exit 0 and the profiles help", strings.Join(args, " "), code, stderr, stdout)
		}
	}

	// Nothing was started or created by asking for help.
	if _, err := os.Stat(e.ConfigHome); !os.IsNotExist(err) {
		t.Errorf("config home after help: got err %v, want it not created", err)
	}
}

// TestConfigSetWhileDaemonRuns: the daemon reads config.toml when it
// starts. Changing a key while it runs writes the file but exits 1 and
// says the daemon still uses the old value, so nobody goes on as if the
// change were in effect (a keychain set after switching
// credentials.backend would still go to the old backend); setting the same
// value, or with no daemon, is a plain success.
func TestConfigSetWhileDaemonRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, stderr, code := e.Run("config", "set", "daemon.log_level", "warn"); code != 0 {
		t.Fatalf("config set with no daemon: exit %d, stderr %q; want 0", code, stderr)
	}
	d := e.StartDaemon()
	_, stderr, code := e.Run("config", "set", "credentials.backend", "file")
	if code != 1 || !strings.Contains(stderr, "restart it to apply") || !strings.Contains(stderr, fmt.Sprintf("pid %d", d.Pid)) || !strings.Contains(stderr, `still uses "auto"`) {
		t.Errorf("config set credentials.backend file while the daemon runs: exit %d, stderr %q; want exit 1 saying the daemon (pid %d) still uses \"auto\" until restarted", code, stderr, d.Pid)
	}
	if got, _, _ := e.Run("config", "get", "credentials.backend"); strings.TrimSpace(got) != "file" {
		t.Errorf("config get after the set: got %q, want the file to say file", got)
	}
	if _, stderr, code := e.Run("config", "set", "credentials.backend", "file"); code != 0 {
		t.Errorf("setting the value it already has: exit %d, stderr %q; want 0", code, stderr)
	}
	if _, stderr, code := e.Run("config", "unset", "daemon.log_level"); code != 1 || !strings.Contains(stderr, "restart it to apply") {
		t.Errorf("config unset daemon.log_level while the daemon runs: exit %d, stderr %q; want exit 1 and the restart note", code, stderr)
	}
}
