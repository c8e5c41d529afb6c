// Package hook runs the user's pre- and post-tool-use hooks: shell
// commands that see a tool call before it happens and can refuse it.
//
// Hooks fail closed. Exit 0 allows; any other exit, a signal, a timeout, a
// failure to start, output past 64 KiB, or processes left running after
// the hook exits deny. The hook runs as /bin/sh -c with a minimal
// environment (no keys, no daemon token), the event as JSON on stdin, no
// descriptors beyond 0-2, in a process group of its own that is killed
// whatever happens.
package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/neullabs/ringlet/internal/child"
)

// Events.
const (
	PreToolUse  = "pre-tool-use"
	PostToolUse = "post-tool-use"
)

// Limits.
const (
	DefaultTimeout = 10 * time.Second
	MaxTimeout     = 5 * time.Minute
	MaxOutput      = 64 << 10 // stdout and stderr together
	// MaxInput bounds the tool input passed in RINGLET_TOOL_INPUT: Linux
	// refuses a single environment string over 128 KiB.
	MaxInput = 100 << 10
	// MaxToolOutput bounds the tool result a post-tool-use hook is given
	// on stdin; RINGLET_TOOL_OUTPUT carries it only up to MaxInput.
	MaxToolOutput = 16 << 20
	maxReason     = 300
	maxShellLen   = 16 << 10
)

// Hook is one configured command.
type Hook struct {
	ID      string        `json:"id"`
	Profile string        `json:"profile"`
	Event   string        `json:"event"`
	Shell   string        `json:"shell"`
	Match   string        `json:"match,omitempty"` // regexp on the tool name; empty matches all
	Timeout time.Duration `json:"timeout_ns"`
	Created time.Time     `json:"created"`
}

// Validate checks a hook definition.
func (h *Hook) Validate() error {
	if h.Event != PreToolUse && h.Event != PostToolUse {
		return fmt.Errorf("invalid event %q; accepted values: pre-tool-use, post-tool-use", h.Event)
	}
	if strings.TrimSpace(h.Shell) == "" {
		return errors.New("the hook's shell command is empty")
	}
	if len(h.Shell) > maxShellLen || strings.ContainsRune(h.Shell, 0) {
		return errors.New("the hook's shell command is too long or contains NUL")
	}
	if h.Match != "" {
		if _, err := regexp.Compile(h.Match); err != nil {
			return fmt.Errorf("invalid --match regular expression: %v", err)
		}
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultTimeout
	}
	if h.Timeout < 100*time.Millisecond || h.Timeout > MaxTimeout {
		return fmt.Errorf("timeout must be from 100ms to %s", MaxTimeout)
	}
	return nil
}

// Matches reports whether the hook applies to a tool.
func (h *Hook) Matches(event, tool string) bool {
	if h.Event != event {
		return false
	}
	if h.Match == "" {
		return true
	}
	re, err := regexp.Compile(h.Match)
	return err == nil && re.MatchString(tool)
}

// Event is what a hook is told about a tool call.
type Event struct {
	Event     string          `json:"event"`
	Profile   string          `json:"profile"`
	Session   string          `json:"session"`
	ToolName  string          `json:"tool_name"`
	ToolInput json.RawMessage `json:"tool_input"`
	// ToolOutput is the tool's result, for post-tool-use hooks only.
	ToolOutput json.RawMessage `json:"tool_output,omitempty"`
}

// Decision is the outcome of one hook, or of all of them.
type Decision struct {
	Allow    bool          `json:"allow"`
	Reason   string        `json:"reason,omitempty"`
	HookID   string        `json:"hook_id,omitempty"`
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration_ns"`
}

// Env is the environment a hook runs with besides the RINGLET_ variables.
type Env struct {
	Home string // the profile's HOME
	Path string // default /usr/local/bin:/usr/bin:/bin
}

// Run runs one hook on one event.
func Run(ctx context.Context, h Hook, ev Event, env Env) Decision {
	start := time.Now()
	d := run(ctx, h, ev, env)
	d.HookID, d.Duration = h.ID, time.Since(start)
	return d
}

func deny(code int, format string, args ...any) Decision {
	return Decision{Allow: false, ExitCode: code, Reason: fmt.Sprintf(format, args...)}
}

func run(ctx context.Context, h Hook, ev Event, env Env) Decision {
	input := []byte(ev.ToolInput)
	if len(input) == 0 {
		input = []byte("{}")
	}
	if len(input) > MaxInput {
		return deny(-1, "hook %s: the tool input is larger than %d KiB and cannot be passed to the hook; refused", h.ID, MaxInput>>10)
	}
	if bytes.IndexByte(input, 0) >= 0 {
		return deny(-1, "hook %s: the tool input contains a NUL byte; refused", h.ID)
	}
	ev.ToolInput = input // stdin and RINGLET_TOOL_INPUT say the same
	if len(ev.ToolOutput) > MaxToolOutput {
		return deny(-1, "hook %s: the tool output is larger than %d MiB and cannot be passed to the hook; refused", h.ID, MaxToolOutput>>20)
	}
	stdin, err := json.Marshal(ev)
	if err != nil {
		return deny(-1, "hook %s: could not encode the event; refused", h.ID)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	path := env.Path
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Shell)
	cmd.Env = []string{
		"PATH=" + path,
		"LANG=C.UTF-8",
		"HOME=" + env.Home,
		"RINGLET_EVENT=" + ev.Event,
		"RINGLET_PROFILE=" + ev.Profile,
		"RINGLET_SESSION=" + ev.Session,
		"RINGLET_TOOL_NAME=" + ev.ToolName,
		"RINGLET_TOOL_INPUT=" + string(input),
	}
	if ev.Event == PostToolUse && len(ev.ToolOutput) <= MaxInput && bytes.IndexByte(ev.ToolOutput, 0) < 0 {
		// Larger outputs are on stdin only: one environment string may
		// not pass 128 KiB on Linux.
		cmd.Env = append(cmd.Env, "RINGLET_TOOL_OUTPUT="+string(ev.ToolOutput))
	}
	if env.Home != "" {
		cmd.Dir = env.Home
	} else {
		cmd.Dir = "/"
	}
	cmd.Stdin = bytes.NewReader(stdin)
	budget := newBudget(MaxOutput)
	out := &boundedBuffer{budget: budget}
	stderr := &boundedBuffer{budget: budget}
	cmd.Stdout, cmd.Stderr = out, stderr
	cmd.SysProcAttr = child.Attr()
	// The whole group goes, not just the shell: a hook may fork.
	killGroup := func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	cmd.Cancel = func() error { killGroup(); return nil }
	// After the shell exits, wait at most this long for its output pipes:
	// a grandchild holding them open must not hold up the decision. Past
	// it the pipes are closed with whatever is unread, so it must also
	// outlast a busy daemon's scheduling delays (200ms did not: 200
	// concurrent hooks lost their stderr and could be refused).
	cmd.WaitDelay = 2 * time.Second
	if err := child.CloseInheritedOnExec(); err != nil {
		return deny(-1, "hook %s could not start: ringlet could not close its own descriptors (%v); refused", h.ID, err)
	}
	if err := cmd.Start(); err != nil {
		return deny(-1, "hook %s could not start (%v); refused", h.ID, err)
	}
	pid := cmd.Process.Pid
	waited := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case <-waited:
		case <-budget.overflow:
			killGroup()
		}
	})
	err = cmd.Wait()
	close(waited)
	watcher.Wait()
	// Anything still in the group now was left behind by the hook.
	leftover := syscall.Kill(-pid, 0) == nil
	syscall.Kill(-pid, syscall.SIGKILL)

	switch {
	case budget.exceeded():
		return deny(-1, "hook %s printed more than %d KiB; refused", h.ID, MaxOutput>>10)
	case ctx.Err() == context.DeadlineExceeded:
		return deny(-1, "hook %s did not finish within %s; refused", h.ID, timeout)
	case ctx.Err() != nil:
		return deny(-1, "hook %s was cancelled; refused", h.ID)
	}
	var exitErr *exec.ExitError
	code := 0
	if err != nil {
		if !errors.As(err, &exitErr) {
			if errors.Is(err, exec.ErrWaitDelay) {
				return deny(-1, "hook %s left a process running that holds its output open; refused", h.ID)
			}
			return deny(-1, "hook %s failed (%v); refused", h.ID, err)
		}
		ws := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return deny(-1, "hook %s was killed by %s; refused", h.ID, ws.Signal())
		}
		code = ws.ExitStatus()
	}
	if code != 0 {
		reason := firstLine(stderr.bytes())
		if reason == "" {
			reason = fmt.Sprintf("hook %s refused the call (exit %d)", h.ID, code)
		}
		return Decision{Allow: false, ExitCode: code, Reason: reason}
	}
	if leftover {
		return deny(0, "hook %s left processes running after it exited; they were killed and the call refused", h.ID)
	}
	return Decision{Allow: true}
}

// Evaluate runs every hook of an event that matches the tool, in order;
// all must allow. It stops at the first refusal. decisions has one entry
// per hook that ran.
func Evaluate(ctx context.Context, hooks []Hook, ev Event, env Env) (Decision, []Decision) {
	var ran []Decision
	for _, h := range hooks {
		if h.Event == ev.Event && h.Match != "" {
			// Only a hand-edited file gets here; skipping the hook
			// would fail open.
			if _, err := regexp.Compile(h.Match); err != nil {
				d := Decision{HookID: h.ID, ExitCode: -1, Reason: fmt.Sprintf("hook %s has an invalid match (%v); refused", h.ID, err)}
				return d, append(ran, d)
			}
		}
		if !h.Matches(ev.Event, ev.ToolName) {
			continue
		}
		d := Run(ctx, h, ev, env)
		ran = append(ran, d)
		if !d.Allow {
			return d, ran
		}
	}
	return Decision{Allow: true}, ran
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // never split a character
		}
		s = s[:cut] + "…"
	}
	return s
}

// outputBudget is the 64 KiB that stdout and stderr share; past it the
// hook is killed and refused. Writes come from two copying goroutines.
type outputBudget struct {
	mu       sync.Mutex
	limit    int
	total    int
	over     bool
	overflow chan struct{}
}

func newBudget(limit int) *outputBudget {
	return &outputBudget{limit: limit, overflow: make(chan struct{})}
}

func (b *outputBudget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += n
	if b.total > b.limit {
		if !b.over {
			b.over = true
			close(b.overflow)
		}
		return false
	}
	return true
}

func (b *outputBudget) exceeded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

// boundedBuffer is one stream (stdout or stderr) within a shared budget.
type boundedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	budget *outputBudget
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if !b.budget.take(len(p)) {
		return 0, errors.New("hook output limit exceeded")
	}
	b.mu.Lock()
	b.buf.Write(p)
	b.mu.Unlock()
	return len(p), nil
}

func (b *boundedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
