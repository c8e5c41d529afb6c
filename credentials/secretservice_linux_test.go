//go:build linux

package credentials

import (
	"bytes"
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

// A private session bus and gnome-keyring for the keyring tests, so that
// they never touch the user's own keyring and run the same on a headless CI
// machine as on a desktop.

const (
	loginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	secretsPath     = dbus.ObjectPath("/org/freedesktop/secrets")
	// keyringPassword unlocks the private login keyring.
	keyringPassword = "pw"
	installHint     = "apt-get install gnome-keyring dbus-daemon libsecret-tools"
)

var (
	// harnessAddr is the private session bus when the harness runs.
	harnessAddr string
	// harnessMissing says which tool is not installed: the keyring tests
	// skip, or fail when CI=true.
	harnessMissing string
	// harnessErr is a harness that is installed but did not start: the
	// keyring tests fail.
	harnessErr error
)

// requireKeyring returns the private session bus address, or ends the test.
func requireKeyring(t *testing.T) string {
	t.Helper()
	if harnessErr != nil {
		t.Fatalf("private Secret Service: %v", harnessErr)
	}
	if harnessMissing != "" {
		skipOrFail(t, harnessMissing)
	}
	return harnessAddr
}

// requireTool returns the path of an executable, or ends the test.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("no %s: %s", name, installHint))
	}
	return p
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so the keyring tests must run)", why)
	}
	t.Skip(why)
}

// startKeyringHarness starts the private Secret Service and points
// DBUS_SESSION_BUS_ADDRESS (which go-keyring reads) at it. It returns the
// function that stops it.
func startKeyringHarness() func() {
	// Until the harness is up no test may reach the user's own keyring.
	os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
	for _, tool := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			harnessMissing = fmt.Sprintf("no %s: %s", tool, installHint)
			fmt.Fprintf(os.Stderr, "credentials: the keyring tests cannot run: %s\n", harnessMissing)
			return func() {}
		}
	}
	h, err := startSecretService()
	if err != nil {
		harnessErr = err
		fmt.Fprintf(os.Stderr, "credentials: private Secret Service: %v\n", err)
		return func() {}
	}
	harnessAddr = h.addr
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", h.addr)
	return h.stop
}

type secretService struct {
	dir   string
	addr  string
	procs []*daemon // stopped in reverse order
}

// daemon is a started process in its own process group.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when cmd.Wait returns
}

func startDaemon(name string, args, env []string, stdin io.Reader, stdout io.Writer) (*daemon, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	// Own process group, so stop reaches anything the daemon forks; killed
	// with the test binary's thread if the binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	d := &daemon{name: name, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *daemon) stop() {
	pgid := -d.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(3 * time.Second):
	}
	// Whatever the daemon left behind in its group goes too.
	syscall.Kill(pgid, syscall.SIGKILL)
	<-d.done
}

func startSecretService() (_ *secretService, err error) {
	dir, err := os.MkdirTemp("", "ringlet-ss-")
	if err != nil {
		return nil, err
	}
	h := &secretService{dir: dir}
	defer func() {
		if err != nil {
			h.stop()
		}
	}()
	if err := os.Mkdir(dir+"/data", 0o700); err != nil {
		return nil, err
	}
	path := "PATH=" + os.Getenv("PATH")

	// The bus listens inside dir, so nothing is left in /tmp afterwards.
	// dbus-daemon may warn on stderr (XDG_RUNTIME_DIR, fd limits): ignored.
	addr := &firstLine{c: make(chan string, 1)}
	bus, err := startDaemon("dbus-daemon",
		[]string{"--session", "--nofork", "--print-address=1", "--address=unix:path=" + dir + "/bus"},
		[]string{path, "HOME=" + dir}, nil, addr)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, bus)
	select {
	case h.addr = <-addr.c:
	case <-bus.done:
	case <-time.After(10 * time.Second):
	}
	if h.addr == "" {
		return nil, fmt.Errorf("dbus-daemon printed no address: %s", bus.stderr)
	}

	// --unlock reads the login keyring's password from stdin until EOF; the
	// first run creates the keyring with it.
	kr, err := startDaemon("gnome-keyring-daemon",
		[]string{"--foreground", "--unlock", "--components=secrets"},
		[]string{path, "HOME=" + dir, "XDG_DATA_HOME=" + dir + "/data", "DBUS_SESSION_BUS_ADDRESS=" + h.addr},
		strings.NewReader(keyringPassword), io.Discard)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, kr)

	// The daemon answers before it owns its name and creates the login
	// collection: wait for both.
	conn, err := dbus.Connect(h.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the private bus: %w", err)
	}
	defer conn.Close()
	ready := func() bool {
		var owned bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&owned)
		if err != nil || !owned {
			return false
		}
		locked, err := collectionLocked(conn)
		return err == nil && !locked
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		if kr.exited() {
			return nil, fmt.Errorf("gnome-keyring-daemon exited: %s", kr.stderr)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("gnome-keyring-daemon did not register %s with an unlocked login collection within 10s: %s", secretsName, kr.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h, nil
}

func (h *secretService) stop() {
	for i := len(h.procs) - 1; i >= 0; i-- {
		h.procs[i].stop()
	}
	os.RemoveAll(h.dir)
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

// dbusSecret is the Secret Service's (oayays) secret struct.
type dbusSecret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// lockLogin locks the private login collection and returns the function
// that unlocks it again, for t.Cleanup.
func lockLogin(t *testing.T, addr string) func() {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = conn.Object(secretsName, secretsPath).Call("org.freedesktop.Secret.Service.Lock", 0, []dbus.ObjectPath{loginCollection}).Store(&locked, &prompt)
	if err != nil {
		t.Fatalf("lock the login collection: %v", err)
	}
	waitLocked(t, conn, true)
	return func() { unlockLogin(t, addr) }
}

// unlockLogin unlocks with the password through gnome-keyring's own
// interface: Service.Unlock would need a prompt no one can answer here.
func unlockLogin(t *testing.T, addr string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	svc := conn.Object(secretsName, secretsPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		t.Fatalf("open a Secret Service session: %v", err)
	}
	defer conn.Object(secretsName, session).Call("org.freedesktop.Secret.Session.Close", 0)
	pw := dbusSecret{Session: session, Parameters: []byte{}, Value: []byte(keyringPassword), ContentType: "text/plain"}
	if err := svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, loginCollection, pw).Err; err != nil {
		t.Fatalf("unlock the login collection: %v", err)
	}
	waitLocked(t, conn, false)
}

func waitLocked(t *testing.T, conn *dbus.Conn, want bool) {
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
