// Package hook runs the user's pre- and post-tool-use hooks: shell
// commands that see a tool call before it happens and can refuse it.
//
// Hooks fail closed. Exit 0 allows; any other exit, a signal, a timeout, a
// failure to start, output past 64 KiB, or processes left running after
// the hook exits deny. The hook runs as /bin/sh -c with an environment
// of Ringlet's choosing (no keys, no daemon token, nothing of the agent's),
// the event as JSON on stdin, no descriptors beyond 0-2, in a process
// group of its own that is killed whatever happens and, on Linux, in a PID
// namespace of its own, so that nothing it starts outlives it or the
// daemon.
//
// A hook runs on the host, as the user, judging what a sandboxed agent
// asks for: it must never load anything that agent can write. Its HOME
// and working directory are a directory no sandbox can bind (Env.Home),
// its PATH leaves out every directory an agent can write, and a hook whose
// command names a path an agent can write is refused (Env.AgentWritable).
package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	re, err := compiled(h.Match)
	return err == nil && re.MatchString(tool)
}

// matchers holds compiled match patterns: hooks are checked on every tool
// call, and compiling a pattern costs far more than matching it.
var matchers struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

// maxMatchers bounds matchers; past it, it starts again empty.
const maxMatchers = 512

// compiled is regexp.Compile of pattern, compiled once.
func compiled(pattern string) (*regexp.Regexp, error) {
	matchers.Lock()
	re, ok := matchers.m[pattern]
	matchers.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	matchers.Lock()
	if matchers.m == nil || len(matchers.m) >= maxMatchers {
		matchers.m = map[string]*regexp.Regexp{}
	}
	matchers.m[pattern] = re
	matchers.Unlock()
	return re, nil
}

// Runs reports whether any of hooks would run for event on tool, or
// refuse it for an invalid match: when none does, Evaluate allows without
// running anything and needs no Env.
func Runs(hooks []Hook, event, tool string) bool {
	for _, h := range hooks {
		if h.Event != event {
			continue
		}
		if _, err := compiled(h.Match); err != nil || h.Matches(event, tool) {
			return true
		}
	}
	return false
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
	// Kind is what the MCP gateway is asked for when it is not a tool
	// call: "resource" (resources/read: tool_name is the resource's URI
	// as the session knows it, tool_input {"uri": the server's own URI})
	// or "prompt" (prompts/get: tool_name <server>__<prompt>, tool_input
	// {"name", "arguments"}). Absent for a tool call.
	Kind string `json:"kind,omitempty"`
}

// Decision is the outcome of one hook, or of all of them.
type Decision struct {
	Allow    bool          `json:"allow"`
	Reason   string        `json:"reason,omitempty"`
	HookID   string        `json:"hook_id,omitempty"`
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration_ns"`
}

// Env is where a hook runs, besides the RINGLET_ variables.
type Env struct {
	// Home is the hook's HOME and working directory. It must be a
	// directory no agent can write: Python imports from the working
	// directory and ~/.local, git reads ~/.gitconfig, and a shell script
	// may source ./anything. Empty means / for both.
	Home string
	// Path is the hook's PATH; default /usr/local/bin:/usr/bin:/bin.
	// Directories inside AgentWritable are left out of it.
	Path string
	// AgentWritable are the trees the profile's agents and sandboxed MCP
	// servers can write (workspace, agent HOME, read-write paths), each
	// also in its resolved form. A hook whose command names a path in
	// one, or whose Home lies in one, is refused: what it would load is
	// the agent's to choose.
	AgentWritable []string
	// Sandbox, when set, is the command line (a sandbox and its options,
	// from package launch) the hook's shell runs under instead of the
	// PID namespace Ringlet makes: 'hooks test' runs hooks this way,
	// with no network and nothing writable to keep.
	Sandbox []string
	// SandboxFiles are what the Sandbox reads on descriptors 3, 4, ...
	// (its seccomp filter), each through a pipe.
	SandboxFiles [][]byte
}

// DefaultPath is a hook's PATH unless Env.Path says otherwise.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// reach refuses a hook that would load something an agent can write, and
// returns the PATH it may use.
func (env Env) reach(h Hook) (path string, err error) {
	if env.Home != "" {
		for _, w := range env.AgentWritable {
			if within(env.Home, w) {
				return "", fmt.Errorf("hook %s would run in %s, which the profile's agents can write; refused", h.ID, env.Home)
			}
		}
	}
	if w := NamesAgentWritable(h.Shell, env.AgentWritable); w != "" {
		return "", fmt.Errorf("hook %s names %s, which the profile's agents can write: a hook must not load anything an agent can write; move what it uses outside the workspace, the agent's HOME and the read-write paths; refused", h.ID, w)
	}
	path = env.Path
	if path == "" {
		path = DefaultPath
	}
	var kept []string
	for _, d := range strings.Split(path, ":") {
		if d == "" || !filepath.IsAbs(d) {
			continue // "" and relative entries mean the working directory
		}
		safe := true
		for _, w := range env.AgentWritable {
			if within(filepath.Clean(d), w) {
				safe = false
			}
		}
		if safe {
			kept = append(kept, d)
		}
	}
	return strings.Join(kept, ":"), nil
}

// NamesAgentWritable returns the first of trees that the shell command
// names: as a whole path or a path inside it, wherever it stands in the
// text (a word, a quoted string, --opt=PATH), or through a symbolic link
// (an absolute path in the command that resolves into one), or "".
func NamesAgentWritable(shell string, trees []string) string {
	if w := namesLiterally(shell, trees); w != "" {
		return w
	}
	// /home/me/proj-link/check.sh, with proj-link a link to the workspace:
	// each absolute path in the text, resolved as far as it exists.
	for _, m := range absPathRE().FindAllStringSubmatch(shell, maxPathsChecked) {
		p := m[1]
		real := resolveExisting(filepath.Clean(p))
		if real == filepath.Clean(p) {
			continue
		}
		if w := namesLiterally(real, trees); w != "" {
			return w
		}
	}
	return ""
}

// absPathRE finds absolute paths in a command's text: a '/' that starts a
// word (or follows = or a quote) up to the next character no path name in
// a shell word holds unquoted.
var absPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:^|[\s='"(:])(/[^\s'"();|&<>$` + "`" + `]*)`) })

// maxPathsChecked bounds the paths a command's text is searched for.
const maxPathsChecked = 64

// resolveExisting resolves the symbolic links of p's longest existing
// prefix and appends the rest.
func resolveExisting(p string) string {
	rest := ""
	for d := p; d != "/" && d != "."; d = filepath.Dir(d) {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			return filepath.Join(real, rest)
		}
		rest = filepath.Join(filepath.Base(d), rest)
	}
	return p
}

// namesLiterally is NamesAgentWritable on the text as it is.
func namesLiterally(shell string, trees []string) string {
	for _, w := range trees {
		if w == "" || w == "/" {
			continue
		}
		for i := 0; ; {
			j := strings.Index(shell[i:], w)
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(w)
			before := start == 0 || !isPathByte(shell[start-1])
			after := end == len(shell) || shell[end] == '/' || !isPathByte(shell[end])
			if before && after {
				return w
			}
			i = start + 1
		}
	}
	return ""
}

// isPathByte reports whether b may continue a path name on either side of
// a match: a letter, digit or one of "._-/~" (so /ws does not match
// /ws2 or /x/ws), or any byte of a non-ASCII character.
func isPathByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b >= 0x80:
		return true
	}
	return strings.IndexByte("._-/~+@", b) >= 0
}

// within reports whether p is dir or lies inside it (both clean).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
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

	path, err := env.reach(h)
	if err != nil {
		return deny(-1, "%v", err)
	}
	attr, contained := child.Contained()
	var cmd *exec.Cmd
	var status *os.File
	var feed []*os.File // write ends of the pipes to SandboxFiles
	if len(env.Sandbox) > 0 {
		// The sandbox is its own PID namespace, killed with its first
		// process; its group is killed as a hook's is.
		contained = false
		attr = &syscall.SysProcAttr{Setpgid: true}
		cmd = exec.CommandContext(ctx, env.Sandbox[0], append(append([]string{}, env.Sandbox[1:]...), "/bin/sh", "-c", h.Shell)...)
		for range env.SandboxFiles {
			r, w, err := os.Pipe()
			if err != nil {
				return deny(-1, "hook %s could not start (%v); refused", h.ID, err)
			}
			defer r.Close()
			defer w.Close()
			cmd.ExtraFiles = append(cmd.ExtraFiles, r)
			feed = append(feed, w)
		}
	} else if contained {
		// The shell that runs the hook is not the namespace's first
		// process: that one (containInit) waits for it, then tells on
		// descriptor 3 how it ended and whether it left anything behind,
		// which the kernel kills as soon as containInit exits.
		r, w, err := os.Pipe()
		if err != nil {
			return deny(-1, "hook %s could not start (%v); refused", h.ID, err)
		}
		defer r.Close()
		status = r
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", containInit, "/bin/sh", h.Shell)
		cmd.ExtraFiles = []*os.File{w}
		defer w.Close()
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", h.Shell)
	}
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
	if ev.Kind != "" {
		cmd.Env = append(cmd.Env, "RINGLET_TOOL_KIND="+ev.Kind)
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
	cmd.SysProcAttr = attr
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
	if contained {
		// Nothing the hook started outlives its namespace's first
		// process, so after it exits only scheduling delays can keep the
		// pipes open (each hook now also starts an init shell and
		// namespaces, which a loaded machine makes slower).
		cmd.WaitDelay = 10 * time.Second
	}
	if err := child.CloseInheritedOnExec(); err != nil {
		return deny(-1, "hook %s could not start: ringlet could not close its own descriptors (%v); refused", h.ID, err)
	}
	if err := cmd.Start(); err != nil {
		return deny(-1, "hook %s could not start (%v); refused", h.ID, err)
	}
	if contained {
		cmd.ExtraFiles[0].Close() // the child has its copy
	}
	var feeding sync.WaitGroup
	for i, w := range feed {
		cmd.ExtraFiles[i].Close() // the child has its copy
		feeding.Go(func() {
			// A write fails only when the sandbox closed its end: it
			// then fails to start, and the hook is refused for that.
			_, _ = w.Write(env.SandboxFiles[i])
			w.Close()
		})
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
	feeding.Wait()
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
	if contained && err == nil {
		code, left, ok := readStatus(status)
		switch {
		case !ok:
			return deny(-1, "hook %s ended without a status; refused", h.ID)
		case code > 128 && code-128 < 65:
			return deny(-1, "hook %s was killed by %s (or exited %d); refused", h.ID, syscall.Signal(code-128), code)
		case code != 0:
			return refusal(h, code, stderr.bytes())
		case left:
			return deny(0, "hook %s left processes running after it exited; they were killed and the call refused", h.ID)
		}
		return Decision{Allow: true}
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
		return refusal(h, code, stderr.bytes())
	}
	if leftover {
		return deny(0, "hook %s left processes running after it exited; they were killed and the call refused", h.ID)
	}
	return Decision{Allow: true}
}

// refusal is the decision of a hook that exited with a non-zero code: the
// first line of its stderr, or a line that says so.
func refusal(h Hook, code int, stderr []byte) Decision {
	reason := firstLine(stderr)
	if reason == "" {
		reason = fmt.Sprintf("hook %s refused the call (exit %d)", h.ID, code)
	}
	return Decision{Allow: false, ExitCode: code, Reason: reason}
}

// containInit is the first process of a hook's PID namespace: it runs the
// hook's shell ($1) without descriptor 3, then writes its exit status and
// whether any other process is still in the namespace (kill -1 reaches
// every process there but the first) to descriptor 3. A shell reports a
// child killed by signal N as 128+N.
const containInit = `/bin/sh -c "$1" /bin/sh 3>&-
s=$?
l=0
kill -0 -1 2>/dev/null && l=1
echo "$s $l" >&3`

// readStatus reads what containInit wrote.
func readStatus(r *os.File) (code int, left, ok bool) {
	var b [64]byte
	n, _ := io.ReadFull(r, b[:])
	var l int
	if _, err := fmt.Sscanf(string(b[:n]), "%d %d\n", &code, &l); err != nil {
		return 0, false, false
	}
	return code, l == 1, true
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
			if _, err := compiled(h.Match); err != nil {
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
