package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Terminal size of every tmux test: Claude Code and Codex lay out their
// screens by it, so what a test waits for stays on one line.
const tmuxCols, tmuxRows = 120, 40

// tuiTimeout bounds each wait on an agent's screen. Generous: a TUI agent
// starts a large runtime on a loaded machine.
const tuiTimeout = 90 * time.Second

// requireTmux fails t under CI=true when tmux is missing, and skips it
// otherwise.
func requireTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		skipUnlessCI(t, "tmux is not installed; install it (Debian/Ubuntu: apt-get install tmux) to run the terminal tests")
	}
}

// tmuxTerm is a real terminal for one command: a tmux server of its own
// (its socket in a fresh directory, no user configuration) with one
// window of tmuxCols x tmuxRows. The window stays after the command exits
// (remain-on-exit), so that what it showed last can be read.
type tmuxTerm struct {
	t    *testing.T
	sock string
	env  []string
	// status receives the command's exit status from the shell that
	// runs it: tmux 3.3 can leave an exited pane's process unreaped
	// (pane_dead set, pane_dead_status never), seen under load.
	status string
}

// startTmux runs argv in dir in a new terminal, with env as its whole
// environment (tmux adds TERM).
func startTmux(t *testing.T, env []string, dir string, argv ...string) *tmuxTerm {
	t.Helper()
	// A short directory: a Unix socket's path has at most 107 bytes.
	tmp, err := os.MkdirTemp("", "rlt-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	m := &tmuxTerm{t: t, sock: filepath.Join(tmp, "s"), env: env, status: filepath.Join(tmp, "status")}
	conf := filepath.Join(tmp, "tmux.conf")
	// Set before the command starts, so that no exit comes too early to
	// be kept on screen.
	cfg := fmt.Sprintf("set-option -g remain-on-exit on\nset-option -g default-size %dx%d\nset-option -g history-limit 10000\n", tmuxCols, tmuxRows)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = m.run("kill-server") // it may be gone already
		os.RemoveAll(tmp)
	})
	// The shell waits for the command and writes down its status; the
	// command keeps the terminal as its own (the shell runs it in the
	// foreground and does nothing else meanwhile).
	wrap := append([]string{"/bin/sh", "-c", `"$@"; echo $? > "$0"`, m.status}, argv...)
	args := append([]string{"-f", conf, "new-session", "-d", "-s", "agent", "-x", strconv.Itoa(tmuxCols), "-y", strconv.Itoa(tmuxRows), "-c", dir}, wrap...)
	if out, err := m.run(args...); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	return m
}

// run runs one tmux command against this terminal's server.
func (m *tmuxTerm) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-S", m.sock}, args...)...)
	cmd.Env = m.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Screen is what the terminal shows now, lines that wrapped joined, and
// no-break spaces as spaces (Claude Code's prompt sign is followed by
// one).
func (m *tmuxTerm) Screen() string {
	m.t.Helper()
	out, err := m.run("capture-pane", "-p", "-J", "-t", "agent")
	if err != nil {
		m.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	return strings.ReplaceAll(out, "\u00a0", " ")
}

// WaitFor waits until cond holds for the screen, and returns that
// screen; it fails t with the screen when tuiTimeout passes first.
func (m *tmuxTerm) WaitFor(what string, cond func(screen string) bool) string {
	m.t.Helper()
	deadline := time.Now().Add(tuiTimeout)
	for {
		s := m.Screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the terminal did not show %s within %s; it shows:\n%s\nits processes:\n%s", what, tuiTimeout, s, m.processes())
		}
		time.Sleep(100 * time.Millisecond) // polling the screen, not waiting for it
	}
}

// WaitText waits until the screen holds text.
func (m *tmuxTerm) WaitText(text string) string {
	m.t.Helper()
	return m.WaitFor(fmt.Sprintf("%q", text), func(s string) bool { return strings.Contains(s, text) })
}

// WaitMatch waits until the screen matches re.
func (m *tmuxTerm) WaitMatch(re *regexp.Regexp) string {
	m.t.Helper()
	return m.WaitFor(re.String(), re.MatchString)
}

// Type types text as keystrokes, literally.
func (m *tmuxTerm) Type(text string) {
	m.t.Helper()
	if out, err := m.run("send-keys", "-t", "agent", "-l", text); err != nil {
		m.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// Keys sends named keys (Enter, Escape, C-c, ...).
func (m *tmuxTerm) Keys(keys ...string) {
	m.t.Helper()
	if out, err := m.run(append([]string{"send-keys", "-t", "agent"}, keys...)...); err != nil {
		m.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// PressUntil sends key until the screen shows what cond wants, and
// returns that screen. A key pressed as a dialog appears can be lost:
// Claude Code ignores input for a moment after it shows a question. So
// the key is sent again while cond does not hold a few seconds later.
func (m *tmuxTerm) PressUntil(key, what string, cond func(screen string) bool) string {
	m.t.Helper()
	deadline := time.Now().Add(tuiTimeout)
	for {
		m.Keys(key)
		again := time.Now().Add(3 * time.Second)
		for time.Now().Before(again) {
			if s := m.Screen(); cond(s) {
				return s
			}
			time.Sleep(100 * time.Millisecond) // polling the screen, not waiting for it
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the terminal did not show %s within %s of pressing %s; it shows:\n%s\nits processes:\n%s", what, tuiTimeout, key, m.Screen(), m.processes())
		}
	}
}

// processes lists what runs in the terminal, for a failure message: each
// process under the command with its state and what it waits in.
func (m *tmuxTerm) processes() string {
	out, err := m.run("display-message", "-p", "-t", "agent", "#{pane_pid} #{pane_dead} #{pane_dead_status} #{pane_dead_signal}")
	if err != nil {
		return err.Error()
	}
	list, _ := exec.Command("ps", "-e", "-o", "pid,ppid,stat,wchan:24,args").Output()
	pid, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	// Descendants of the pane's process, by parent.
	keep := map[string]bool{pid: true}
	var b strings.Builder
	b.WriteString("pane (pid dead status signal): " + out)
	for range 8 {
		for _, l := range strings.Split(string(list), "\n") {
			f := strings.Fields(l)
			if len(f) > 1 && keep[f[1]] && !keep[f[0]] {
				keep[f[0]] = true
			}
		}
	}
	for _, l := range strings.Split(string(list), "\n") {
		if f := strings.Fields(l); len(f) > 0 && keep[f[0]] {
			b.WriteString(l + "\n")
			// Its threads: a process whose leader has exited waits for
			// them all.
			tasks, _ := filepath.Glob("/proc/" + f[0] + "/task/*")
			for _, task := range tasks {
				stat, _ := os.ReadFile(task + "/stat")
				wchan, _ := os.ReadFile(task + "/wchan")
				stack, _ := os.ReadFile(task + "/stack")
				fmt.Fprintf(&b, "  thread %s: %s wchan %s\n%s", filepath.Base(task), statState(string(stat)), wchan, stack)
			}
		}
	}
	return b.String()
}

// statState is the state field of a /proc/PID/stat line.
func statState(stat string) string {
	if i := strings.LastIndexByte(stat, ')'); i >= 0 && i+3 <= len(stat) {
		return stat[i+2 : i+3]
	}
	return "?"
}

// exited reports whether the command has exited, and its exit status.
func (m *tmuxTerm) exited() (bool, int) {
	m.t.Helper()
	data, err := os.ReadFile(m.status)
	if err != nil || !strings.HasSuffix(string(data), "\n") {
		return false, 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		m.t.Fatalf("the command's exit status: got %q, want a number", data)
	}
	return true, n
}

// Exited is a condition for WaitFor and PressUntil: the command exited.
func (m *tmuxTerm) Exited(string) bool {
	dead, _ := m.exited()
	return dead
}

// ExitStatus waits for the command to exit and returns its exit status.
func (m *tmuxTerm) ExitStatus() int {
	m.t.Helper()
	m.WaitFor("the command's exit", m.Exited)
	_, status := m.exited()
	return status
}
