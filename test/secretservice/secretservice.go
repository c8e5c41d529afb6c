//go:build linux

// Package secretservice starts a private D-Bus session bus with an unlocked
// gnome-keyring on it, for tests that drive the Secret Service. Tests point
// DBUS_SESSION_BUS_ADDRESS at it and so never touch the user's own keyring,
// and run the same on a headless CI machine as on a desktop.
//
// Start gives a test its own Secret Service for its lifetime; Launch and
// Stop serve a TestMain that shares one between the tests of a package.
// When dbus-daemon or gnome-keyring-daemon is not installed, tests skip
// with a message, except under CI=true where they fail.
package secretservice

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	secretsName     = "org.freedesktop.secrets"
	secretsPath     = dbus.ObjectPath("/org/freedesktop/secrets")
	loginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	// password unlocks the private login keyring.
	password = "pw"
	// startTimeout bounds each step of bringing the service up.
	startTimeout = 10 * time.Second
)

// InstallHint says how to install every tool the harness and its users
// need, secret-tool included.
const InstallHint = "apt-get install gnome-keyring dbus-daemon libsecret-tools"

// ErrMissing is wrapped by Launch's error when a tool is not installed.
var ErrMissing = errors.New("not installed")

// Service is a running private session bus and gnome-keyring.
type Service struct {
	// Addr is the bus address, the value for DBUS_SESSION_BUS_ADDRESS.
	Addr  string
	dir   string
	procs []*process // stopped in reverse order
}

// Missing names the first tool the harness needs that is not on PATH,
// with how to install it, or returns "" when all are there.
func Missing() string {
	for _, tool := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("no %s: %s", tool, InstallHint)
		}
	}
	return ""
}

// Start gives t a private Secret Service, stopped when t ends, and returns
// its bus address. It skips t when the tools are missing (fails it under
// CI=true) and fails t when they are there but the service does not start.
func Start(t testing.TB) (busAddr string) {
	t.Helper()
	if why := Missing(); why != "" {
		SkipOrFail(t, why)
	}
	s, err := Launch()
	if err != nil {
		t.Fatalf("private Secret Service: %v", err)
	}
	t.Cleanup(s.Stop)
	return s.Addr
}

// SkipOrFail skips t with why, or fails it when CI=true: CI installs every
// tool, so a missing one there is a broken setup, not a reason to skip.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so the keyring tests must run)", why)
	}
	t.Skip(why)
}

// RequireTool returns the path of an executable such as secret-tool, or
// ends t as SkipOrFail does.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, fmt.Sprintf("no %s: %s", name, InstallHint))
	}
	return p
}

// Launch starts a private session bus and an unlocked gnome-keyring and
// returns once the login collection is ready. Stop ends both.
func Launch() (_ *Service, err error) {
	if why := Missing(); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrMissing, why)
	}
	dir, err := os.MkdirTemp("", "ringlet-ss-")
	if err != nil {
		return nil, err
	}
	s := &Service{dir: dir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := os.Mkdir(dir+"/data", 0o700); err != nil {
		return nil, err
	}
	path := "PATH=" + os.Getenv("PATH")

	// The bus listens inside dir, so nothing is left in /tmp afterwards.
	// dbus-daemon may warn on stderr (XDG_RUNTIME_DIR, fd limits): ignored.
	addr := &firstLine{c: make(chan string, 1)}
	bus, err := startProcess("dbus-daemon",
		[]string{"--session", "--nofork", "--print-address=1", "--address=unix:path=" + dir + "/bus"},
		[]string{path, "HOME=" + dir}, nil, addr)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, bus)
	select {
	case s.Addr = <-addr.c:
	case <-bus.done:
	case <-time.After(startTimeout):
	}
	if s.Addr == "" {
		return nil, fmt.Errorf("dbus-daemon printed no address: %s", bus.stderr)
	}

	// --unlock reads the login keyring's password from stdin until EOF; the
	// first run creates the keyring with it.
	kr, err := startProcess("gnome-keyring-daemon",
		[]string{"--foreground", "--unlock", "--components=secrets"},
		[]string{path, "HOME=" + dir, "XDG_DATA_HOME=" + dir + "/data", "DBUS_SESSION_BUS_ADDRESS=" + s.Addr},
		strings.NewReader(password), io.Discard)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, kr)

	// The daemon answers before it owns its name and creates the login
	// collection: wait for both.
	conn, err := dbus.Connect(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the private bus: %w", err)
	}
	defer func() { _ = conn.Close() }()
	ready := func() bool {
		var owned bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&owned)
		if err != nil || !owned {
			return false
		}
		locked, err := collectionLocked(conn)
		return err == nil && !locked
	}
	deadline := time.Now().Add(startTimeout)
	for !ready() {
		if kr.exited() {
			return nil, fmt.Errorf("gnome-keyring-daemon exited: %s", kr.stderr)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("gnome-keyring-daemon did not register %s with an unlocked login collection within %s: %s", secretsName, startTimeout, kr.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, nil
}

// Stop ends the keyring and the bus and removes their files.
func (s *Service) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	s.procs = nil
	os.RemoveAll(s.dir)
}

// Lock locks the login collection on the bus at addr and returns the
// function that unlocks it again, for t.Cleanup.
func Lock(t testing.TB, addr string) func() {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = conn.Object(secretsName, secretsPath).Call("org.freedesktop.Secret.Service.Lock", 0, []dbus.ObjectPath{loginCollection}).Store(&locked, &prompt)
	if err != nil {
		t.Fatalf("lock the login collection: %v", err)
	}
	waitLocked(t, conn, true)
	return func() { Unlock(t, addr) }
}

// Unlock unlocks the login collection with its password through
// gnome-keyring's own interface: Service.Unlock would need a prompt no one
// can answer here.
func Unlock(t testing.TB, addr string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	svc := conn.Object(secretsName, secretsPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		t.Fatalf("open a Secret Service session: %v", err)
	}
	defer conn.Object(secretsName, session).Call("org.freedesktop.Secret.Session.Close", 0)
	pw := dbusSecret{Session: session, Parameters: []byte{}, Value: []byte(password), ContentType: "text/plain"}
	if err := svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, loginCollection, pw).Err; err != nil {
		t.Fatalf("unlock the login collection: %v", err)
	}
	waitLocked(t, conn, false)
}

// dbusSecret is the Secret Service's (oayays) secret struct.
type dbusSecret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

func collectionLocked(conn *dbus.Conn) (bool, error) {
	v, err := conn.Object(secretsName, loginCollection).GetProperty("org.freedesktop.Secret.Collection.Locked")
	if err != nil {
		return false, err
	}
	locked, ok := v.Value().(bool)
	if !ok {
		return false, fmt.Errorf("Locked is a %T", v.Value())
	}
	return locked, nil
}

func waitLocked(t testing.TB, conn *dbus.Conn, want bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := collectionLocked(conn)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("login collection Locked: got %v (err %v), want %v", got, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// process is a started daemon in its own process group.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when cmd.Wait returns
}

func startProcess(name string, args, env []string, stdin io.Reader, stdout io.Writer) (*process, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	// Own process group, so stop reaches anything the daemon forks; killed
	// with the test binary's thread if the binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	p := &process{name: name, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait() // killed on purpose: its status is SIGKILL
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) stop() {
	pgid := -p.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	// Whatever the daemon left behind in its group goes too.
	syscall.Kill(pgid, syscall.SIGKILL)
	<-p.done
}

// syncBuffer collects a daemon's stderr for error messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 64<<10 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.b.String())
	if s == "" {
		return "(no stderr)"
	}
	return s
}

// firstLine sends the first line written to it on c and drops the rest.
type firstLine struct {
	c    chan string
	buf  []byte
	sent bool
}

func (w *firstLine) Write(p []byte) (int, error) {
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.c <- strings.TrimSpace(string(w.buf[:i]))
		w.sent = true
	}
	return len(p), nil
}
