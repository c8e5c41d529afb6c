package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines. They are generous because the suite runs with -race on two
// cores; a healthy daemon needs a fraction of each.
const (
	runTimeout   = 30 * time.Second // one CLI invocation
	readyTimeout = 15 * time.Second // a daemon answering after it starts
	exitTimeout  = 10 * time.Second // a daemon exiting after it is told to
)

// env is one user's world: a HOME and XDG directories under t.TempDir()
// and a minimal environment that takes only PATH from the outer one (no
// RINGLET_* variable reaches the binary). Everything the binary prints
// through it is kept for the token canary.
type env struct {
	t    *testing.T
	Root string // holds everything below; snapshot it to see changes

	Home, ConfigHome, StateHome, DataHome string

	// Umask, when set, makes daemons start under `umask Umask`.
	Umask string
	// Cred, when set, runs the binary as that user.
	Cred *syscall.Credential
	// ExtraEnv is added to the environment of every process, e.g.
	// DBUS_SESSION_BUS_ADDRESS for a private Secret Service.
	ExtraEnv []string
	// Dir, when set, is the working directory of every process.
	Dir string
	// Binary, when set, is the ringlet binary daemons start from (an
	// upgrade: another binary than the CLI's).
	Binary string
	// ShellWords, when set, starts daemons through `sh -c` with their
	// arguments unquoted, so the shell expands them (~ against Home) the
	// way it would for a user typing them.
	ShellWords bool

	transcript lockedBuffer
	daemons    []*daemon
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{
		t:          t,
		Root:       root,
		Home:       filepath.Join(root, "home"),
		ConfigHome: filepath.Join(root, "config"),
		StateHome:  filepath.Join(root, "state"),
		DataHome:   filepath.Join(root, "data"),
	}
	if err := os.Mkdir(e.Home, 0o700); err != nil {
		t.Fatal(err)
	}
	return e
}

// Environ is the environment every process of this env gets.
func (e *env) Environ() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.Home,
		"XDG_CONFIG_HOME=" + e.ConfigHome,
		"XDG_STATE_HOME=" + e.StateHome,
		"XDG_DATA_HOME=" + e.DataHome,
	}
	if raceEnabled {
		// A race-enabled binary sleeps 1s before exiting by default,
		// which would add a second to every command and make a 1s idle
		// timeout expire between two commands.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return append(env, e.ExtraEnv...)
}

func (e *env) ConfigDir() string { return filepath.Join(e.ConfigHome, "ringlet") }
func (e *env) StateDir() string  { return filepath.Join(e.StateHome, "ringlet") }
func (e *env) TokenFile() string { return filepath.Join(e.ConfigDir(), "http_token") }
func (e *env) StateFile() string { return filepath.Join(e.StateDir(), "daemon.json") }
func (e *env) LogFile() string   { return filepath.Join(e.StateDir(), "daemon.log") }

// Token returns the current token from the token file.
func (e *env) Token() string {
	e.t.Helper()
	data, err := os.ReadFile(e.TokenFile())
	if err != nil {
		e.t.Fatalf("read token: %v", err)
	}
	return strings.TrimSpace(string(data))
}

func (e *env) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.Environ()
	cmd.Dir = e.Dir
	if e.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: e.Cred}
	}
	// A daemon the CLI starts in the background must not hold our pipes;
	// if it did, Run would report it instead of hanging.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs ringlet with args to completion and returns what it printed and
// its exit code.
func (e *env) Run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	stdout, stderr, code, err := e.exec(args...)
	if err != nil {
		e.t.Fatalf("ringlet %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr, code
}

// RunInput is Run with stdin as the standard input (not a terminal).
func (e *env) RunInput(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	stdout, stderr, code, err := e.execInput(strings.NewReader(stdin), args...)
	if err != nil {
		e.t.Fatalf("ringlet %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr, code
}

// exec is Run that returns failures to start or wait instead of failing.
func (e *env) exec(args ...string) (stdout, stderr string, code int, err error) {
	return e.execInput(nil, args...)
}

// execInput is exec with stdin (nil: no input).
func (e *env) execInput(stdin io.Reader, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(e.t.Context(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, ringletBin, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	e.transcript.WriteString(out.String() + errb.String())
	if ctx.Err() != nil {
		return out.String(), errb.String(), -1, fmt.Errorf("did not finish within %s: %w", runTimeout, err)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0, nil
	case errors.As(err, &ee) && ee.Exited():
		return out.String(), errb.String(), ee.ExitCode(), nil
	default:
		return out.String(), errb.String(), -1, err
	}
}

// daemon is a `ringlet daemon` child process of the test.
type daemon struct {
	e      *env
	cmd    *exec.Cmd
	Pid    int
	URL    string // http://127.0.0.1:PORT
	Addr   string // the --listen value
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{} // closed once the process has exited
}

// StartDaemon starts `ringlet daemon --stay-alive` in the foreground on a
// free loopback port (unless args has --listen) and returns once it answers
// GET /api/version with the token. A cleanup stops it with SIGTERM and
// fails the test if it does not exit within 10s.
func (e *env) StartDaemon(extraArgs ...string) *daemon {
	e.t.Helper()
	d := e.SpawnDaemon(extraArgs...)
	d.waitReady()
	return d
}

// SpawnDaemon starts the daemon like StartDaemon without waiting for it.
func (e *env) SpawnDaemon(extraArgs ...string) *daemon {
	e.t.Helper()
	args := []string{"daemon", "--stay-alive"}
	addr := listenArg(extraArgs)
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort(e.t))
		args = append(args, "--listen", addr)
	}
	args = append(args, extraArgs...)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		e.t.Fatalf("bad --listen %q in test: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	d := &daemon{e: e, Addr: addr, URL: "http://" + net.JoinHostPort(host, port), done: make(chan struct{})}

	bin := ringletBin
	if e.Binary != "" {
		bin = e.Binary
	}
	name := bin
	// Through sh, exec keeps the pid, so the child is the daemon itself.
	switch {
	case e.ShellWords:
		script := `exec "$0" ` + strings.Join(args, " ")
		if e.Umask != "" {
			script = `umask ` + e.Umask + `; ` + script
		}
		args = []string{"-c", script, bin}
		name = "sh"
	case e.Umask != "":
		args = append([]string{"-c", `umask ` + e.Umask + `; exec "$0" "$@"`, bin}, args...)
		name = "sh"
	}
	// Not CommandContext: the cleanup stops the daemon with SIGTERM, the way
	// users do, and checks that it goes.
	d.cmd = e.command(context.Background(), name, args...)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	if err := d.cmd.Start(); err != nil {
		e.t.Fatalf("start daemon: %v", err)
	}
	d.Pid = d.cmd.Process.Pid
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	e.daemons = append(e.daemons, d)
	e.t.Cleanup(func() {
		if !d.exited() {
			d.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-d.done:
		case <-time.After(exitTimeout):
			d.cmd.Process.Kill()
			<-d.done
			e.t.Errorf("daemon (pid %d) did not exit within %s of SIGTERM; stderr:\n%s", d.Pid, exitTimeout, d.stderr.String())
		}
	})
	return d
}

func listenArg(args []string) string {
	for i, a := range args {
		if a == "--listen" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--listen="); ok {
			return v
		}
	}
	return ""
}

// waitReady polls GET /api/version with the token from the file until it
// answers 200, the process exits, or the deadline passes.
func (d *daemon) waitReady() {
	t := d.e.t
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		if tok, err := os.ReadFile(d.e.TokenFile()); err == nil {
			status, _, _, err := d.Get("/api/version", strings.TrimSpace(string(tok)), nil)
			if err == nil && status == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d, err %v", status, err)
		} else {
			last = err.Error()
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited with code %d before it was ready; stderr:\n%s", d.ExitCode(), d.stderr.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready within %s (last: %s); stderr:\n%s", readyTimeout, last, d.stderr.String())
		}
	}
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Wait waits up to exitTimeout for the daemon to exit and returns its exit
// code.
func (d *daemon) Wait() int {
	d.e.t.Helper()
	select {
	case <-d.done:
		return d.ExitCode()
	case <-time.After(exitTimeout):
		d.e.t.Fatalf("daemon (pid %d) still running after %s; stderr:\n%s", d.Pid, exitTimeout, d.stderr.String())
		return -1
	}
}

// ExitCode is the exit code of an exited daemon (-1 for a signal).
func (d *daemon) ExitCode() int { return d.cmd.ProcessState.ExitCode() }

// Signal sends sig to the daemon.
func (d *daemon) Signal(sig os.Signal) {
	d.e.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.e.t.Fatalf("signal daemon: %v", err)
	}
}

// Stderr is what the daemon has written to stderr so far.
func (d *daemon) Stderr() string { return d.stderr.String() }

// Get sends GET path with token (none when empty) and extra headers. The
// Host header is taken from hdr["Host"] when present.
func (d *daemon) Get(path, token string, hdr http.Header) (status int, header http.Header, body []byte, err error) {
	req, err := http.NewRequest(http.MethodGet, d.URL+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, vs := range hdr {
		if k == "Host" {
			req.Host = vs[0]
			continue
		}
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// Do sends method path with token (none when empty) and a JSON body
// (none when empty).
func (d *daemon) Do(method, path, token, body string) (status int, header http.Header, respBody []byte, err error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, d.URL+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, respBody, err
}

// MustDo is Do that fails t on a transport error.
func (d *daemon) MustDo(t *testing.T, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	status, h, respBody, err := d.Do(method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, h, respBody
}

// MustGet is Get that fails t on a transport error. It takes t so that
// subtests fail themselves, not the test that started the daemon.
func (d *daemon) MustGet(t *testing.T, path, token string, hdr http.Header) (int, http.Header, []byte) {
	t.Helper()
	status, h, body, err := d.Get(path, token, hdr)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return status, h, body
}

var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// AssertNoSecret fails the test if any of the values appears in anything
// the binary printed through this env: CLI output and daemon stderr.
func (e *env) AssertNoSecret(values ...string) {
	e.t.Helper()
	all := e.transcript.String()
	for _, d := range e.daemons {
		all += d.stdout.String() + d.stderr.String()
	}
	for _, v := range values {
		if v == "" {
			e.t.Fatal("canary: empty secret")
		}
		for _, l := range strings.Split(all, "\n") {
			if strings.Contains(l, v) {
				e.t.Errorf("a token value appears in the output of ringlet: got %q, want no token", strings.ReplaceAll(l, v, "<TOKEN>"))
			}
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	return ports.take(t)
}

// ports hands out loopback ports for servers a test starts by number
// (daemons, demo servers). A port the kernel picked for "127.0.0.1:0" and
// that was closed again is the next one it gives to someone else's
// outbound connection or ":0" listener, so a server started on it a moment
// later could find it taken. These ports come from below the kernel's
// ephemeral range, which it never picks by itself, and none is handed out
// twice in this process.
var ports portPicker

type portPicker struct {
	mu     sync.Mutex
	given  map[int]bool
	lo, hi int // the range [lo, hi) to pick from; hi == 0 until read
}

func (p *portPicker) take(t *testing.T) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hi == 0 {
		p.given = map[int]bool{}
		p.lo, p.hi = belowEphemeral()
	}
	if p.hi-p.lo < 1000 {
		return kernelPort(t)
	}
	for range 200 {
		port := p.lo + rand.IntN(p.hi-p.lo)
		if p.given[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // another process has it
		}
		l.Close()
		p.given[port] = true
		return port
	}
	t.Fatalf("no free loopback port in [%d, %d) after 200 tries", p.lo, p.hi)
	return 0
}

// belowEphemeral is the port range below the kernel's ephemeral ports
// (net.ipv4.ip_local_port_range), leaving the well-known ports alone.
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	return 10000, first
}

// kernelPort is a port the kernel picked, for machines whose ephemeral
// range leaves no room below it.
func kernelPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pidGone reports whether pid no longer runs. A zombie counts as gone: a
// daemon the CLI started in the background is reparented when the CLI
// exits, and its new parent may be slow to reap it.
// markedProcesses are the live (not zombie) processes on the host whose
// command line contains marker.
func markedProcesses(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, de := range entries {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + de.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) || pidGone(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func pidGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// fileState is what a snapshot records of one path.
type fileState struct {
	Mode    fs.FileMode
	Content string // regular files
	Link    string // symbolic links
}

func (f fileState) String() string {
	switch {
	case f.Mode&fs.ModeSymlink != 0:
		return fmt.Sprintf("%v -> %s", f.Mode, f.Link)
	case f.Mode.IsRegular():
		return fmt.Sprintf("%v %q", f.Mode, f.Content)
	default:
		return f.Mode.String()
	}
}

// snapshot records the names, modes, contents and link targets of
// everything under root.
func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	snap := map[string]fileState{}
	if _, err := os.Lstat(root); err != nil {
		return snap // nothing there, which a later snapshot can compare
	}
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fileState{Mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			st.Content = string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			if st.Link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		rel, _ := filepath.Rel(root, path)
		snap[rel] = st
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return snap
}

// diffSnapshots lists what changed between two snapshots.
func diffSnapshots(before, after map[string]fileState) []string {
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("removed %s (was %v)", p, b))
		case a != b:
			diffs = append(diffs, fmt.Sprintf("changed %s: got %v, want %v", p, a, b))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("created %s (%v)", p, a))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// lockedBuffer is a bytes.Buffer that a child process's output copier and
// the test may use at the same time.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFreePortsOutsideEphemeral: the ports handed out are distinct, free
// and below the kernel's ephemeral range, so no ":0" listener or outbound
// connection on the host is given one of them meanwhile.
func TestFreePortsOutsideEphemeral(t *testing.T) {
	t.Parallel()
	lo, hi := belowEphemeral()
	if hi-lo < 1000 {
		t.Skipf("the ephemeral range starts at %d: no room below it, ports come from the kernel", hi)
	}
	seen := map[int]bool{}
	for range 50 {
		p := freePort(t)
		if p < lo || p >= hi {
			t.Fatalf("port %d, want one in [%d, %d)", p, lo, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}
