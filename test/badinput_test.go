package test

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkOneLineError asserts the shape of every failure: the wanted exit
// code, nothing on stdout, and one line on stderr that starts with
// "ringlet: " and contains each of wants.
func checkOneLineError(t *testing.T, stdout, stderr string, code int, wantCodes []int, wants ...string) {
	t.Helper()
	if !slices.Contains(wantCodes, code) {
		t.Errorf("exit code: got %d, want one of %v; stderr %q", code, wantCodes, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout: got %q, want nothing", stdout)
	}
	ls := lines(stderr)
	if len(ls) != 1 || !strings.HasPrefix(ls[0], "ringlet: ") || !strings.HasSuffix(stderr, "\n") {
		t.Fatalf("stderr: got %q, want one line starting with \"ringlet: \"", stderr)
	}
	for _, w := range wants {
		if !strings.Contains(ls[0], w) {
			t.Errorf("stderr: got %q, want it to contain %q", ls[0], w)
		}
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is subject to the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// waitExecutable waits until the program just written at path runs (with
// args): while another test's fork has not yet reached its exec, the
// child holds the write descriptor it inherited, and exec of path fails
// with ETXTBSY ("text file busy"). Any other failure ends the test.
func waitExecutable(t *testing.T, path string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(runTimeout)
	for {
		out, err := exec.Command(path, args...).CombinedOutput()
		if err == nil {
			return
		}
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			t.Fatalf("%s %v: %v\n%s", path, args, err, out)
		}
		runtime.Gosched()
	}
}

// assertNothingListens checks that nothing accepts connections on addr.
func assertNothingListens(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Errorf("after the daemon refused to start: something listens on %s, want nothing", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: got %v, want connection refused", addr, err)
	}
}

// TestRefusedTokenFile: a token file that is a symbolic link or that
// others can read is refused, not repaired, and left as it was.
func TestRefusedTokenFile(t *testing.T) {
	t.Parallel()
	const validToken = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  string
	}{
		{
			name: "symbolic link",
			setup: func(t *testing.T, e *env) {
				target := filepath.Join(e.Root, "elsewhere", "token")
				writeFile(t, target, validToken, 0o600)
				if err := os.Mkdir(e.ConfigHome, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(e.ConfigDir(), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, e.TokenFile()); err != nil {
					t.Fatal(err)
				}
			},
			want: "symbolic link",
		},
		{
			name: "readable by others",
			setup: func(t *testing.T, e *env) {
				writeFile(t, e.TokenFile(), validToken, 0o644)
			},
			want: "chmod 600",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c.setup(t, e)
			before := snapshotExceptState(t, e)
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))

			stdout, stderr, code := e.Run("daemon", "--stay-alive", "--listen", addr)
			checkOneLineError(t, stdout, stderr, code, []int{1}, c.want, e.TokenFile())
			assertNothingListens(t, addr)
			if _, err := os.Stat(e.StateFile()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("daemon.json: got err %v, want none written", err)
			}
			if diffs := diffSnapshots(before, snapshotExceptState(t, e)); len(diffs) > 0 {
				t.Errorf("the token file or its target was changed:\n%s", strings.Join(diffs, "\n"))
			}
		})
	}
}

// snapshotExceptState snapshots everything but the state directory, where
// the daemon takes its lock before it reads the token.
func snapshotExceptState(t *testing.T, e *env) map[string]fileState {
	t.Helper()
	snap := snapshot(t, e.Root)
	state, _ := filepath.Rel(e.Root, e.StateHome)
	for p := range snap {
		if p == state || strings.HasPrefix(p, state+string(filepath.Separator)) {
			delete(snap, p)
		}
	}
	return snap
}

// TestBadInput: each mistake exits 1 (2 for usage errors) with one line on
// stderr that says what is wrong, and changes nothing on disk.
func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		wantCodes []int
		// run prepares the env, runs ringlet through runSnap and returns
		// its output and the strings its error line must contain.
		run func(t *testing.T, e *env) (stdout, stderr string, code int, wants []string)
	}{
		{
			name:      "malformed config.toml",
			wantCodes: []int{1},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				cfg := filepath.Join(e.ConfigDir(), "config.toml")
				writeFile(t, cfg, "[daemon]\nlog_level = \"info\"\nidle_timeout = \n", 0o600)
				return runSnap(t, e, e.Root, []string{cfg, "line 3"}, "daemon", "--stay-alive", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			},
		},
		{
			name:      "unknown key in config.toml",
			wantCodes: []int{1},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				cfg := filepath.Join(e.ConfigDir(), "config.toml")
				writeFile(t, cfg, "[daemon]\nidle_timeout = \"5m\"\nlisten_addr = \"127.0.0.1:1\"\n", 0o600)
				return runSnap(t, e, e.Root, []string{cfg, "line 3", `unknown key "daemon.listen_addr"`}, "daemon", "--stay-alive", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			},
		},
		{
			name:      "config set unknown key",
			wantCodes: []int{2},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				return runSnap(t, e, e.Root, []string{`unknown config key "no.such.key"`}, "config", "set", "no.such.key", "x")
			},
		},
		{
			name:      "config set invalid value",
			wantCodes: []int{2},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				writeFile(t, filepath.Join(e.ConfigDir(), "config.toml"), "[daemon]\nidle_timeout = \"5m\"\n", 0o600)
				return runSnap(t, e, e.Root, []string{"daemon.idle_timeout"}, "config", "set", "daemon.idle_timeout", "soon")
			},
		},
		{
			name:      "invalid listen address",
			wantCodes: []int{1, 2},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				return runSnap(t, e, e.Root, []string{"invalid listen address", "nonsense"}, "daemon", "--stay-alive", "--listen", "nonsense")
			},
		},
		{
			name:      "port in use",
			wantCodes: []int{1},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				addr := l.Addr().String()
				return runSnap(t, e, e.Root, []string{addr, "ss -ltnp"}, "daemon", "--stay-alive", "--listen", addr)
			},
		},
		{
			name:      "unwritable config dir/config set",
			wantCodes: []int{1},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				wants := unwritableConfigDir(t, e)
				return runSnap(t, e, e.Root, wants, "config", "set", "daemon.idle_timeout", "5m")
			},
		},
		{
			// The daemon makes its state directory and lock before it
			// finds it cannot create the token; the config side must not
			// change.
			name:      "unwritable config dir/daemon",
			wantCodes: []int{1},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				wants := unwritableConfigDir(t, e)
				return runSnap(t, e, e.ConfigHome, wants, "daemon", "--stay-alive", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			},
		},
		{
			name:      "token file deleted while the daemon runs",
			wantCodes: []int{1},
			run: func(t *testing.T, e *env) (string, string, int, []string) {
				d := e.StartDaemon()
				if err := os.Remove(e.TokenFile()); err != nil {
					t.Fatal(err)
				}
				return runSnap(t, e, e.Root, []string{e.TokenFile(), "missing", fmt.Sprintf("pid %d", d.Pid)}, "daemon", "status")
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			stdout, stderr, code, wants := c.run(t, e)
			checkOneLineError(t, stdout, stderr, code, c.wantCodes, wants...)
		})
	}
}

// runSnap snapshots snapRoot, runs ringlet with args, and fails the test
// if anything under snapRoot changed.
func runSnap(t *testing.T, e *env, snapRoot string, wants []string, args ...string) (string, string, int, []string) {
	t.Helper()
	before := snapshot(t, snapRoot)
	stdout, stderr, code := e.Run(args...)
	if diffs := diffSnapshots(before, snapshot(t, snapRoot)); len(diffs) > 0 {
		t.Errorf("ringlet %s changed files under %s:\n%s", strings.Join(args, " "), snapRoot, strings.Join(diffs, "\n"))
	}
	return stdout, stderr, code, wants
}

// nobody is the unprivileged user root tests run the binary as.
var nobody = unprivilegedUID()

// unprivilegedUID is the user the unprivileged tests run as: the one .ci/run
// creates (RINGLET_TEST_USER), else nobody (65534). Its uid also serves as
// the gid of the test processes.
func unprivilegedUID() int {
	if name := os.Getenv("RINGLET_TEST_USER"); name != "" {
		if u, err := user.Lookup(name); err == nil {
			if uid, err := strconv.Atoi(u.Uid); err == nil {
				return uid
			}
		}
	}
	return 65534
}

// unwritableConfigDir makes the config directory one ringlet cannot write
// and returns what the error must mention. Root ignores permissions, so as
// root the binary runs as nobody in a home that nobody owns; where nobody
// cannot reach the files, XDG_CONFIG_HOME goes below a regular file.
func unwritableConfigDir(t *testing.T, e *env) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.MkdirAll(e.ConfigDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		chmod(t, e.ConfigDir(), 0o500)
		// Cleanups run before t.TempDir is removed.
		t.Cleanup(func() { os.Chmod(e.ConfigDir(), 0o700) })
		return []string{e.ConfigDir(), "permission denied"}
	}
	// t.TempDir's own directories are 0700; open them to others so nobody
	// can reach its home, and check the rest of the way is open too.
	chmod(t, filepath.Dir(e.Root), 0o755)
	chmod(t, e.Root, 0o755)
	if searchable(e.Root) && searchable(ringletBin) {
		for _, dir := range []string{e.Home, e.ConfigHome, e.ConfigDir()} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{e.Root, e.Home, e.ConfigHome, e.ConfigDir()} {
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
		chmod(t, e.ConfigDir(), 0o500)
		e.Cred = &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nobody)}
		if _, _, code, err := e.exec("version"); err == nil && code == 0 {
			return []string{e.ConfigDir(), "permission denied"}
		}
		e.Cred = nil
		t.Logf("cannot run ringlet as uid %d here; using a config directory below a regular file instead", nobody)
	} else {
		t.Logf("uid %d cannot reach %s or %s; using a config directory below a regular file instead", nobody, e.Root, ringletBin)
	}
	file := filepath.Join(e.Root, "not-a-dir")
	writeFile(t, file, "", 0o600)
	e.ConfigHome = filepath.Join(file, "config")
	return []string{e.ConfigDir(), "not a directory"}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// searchable reports whether others may search every directory above path.
func searchable(path string) bool {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == filepath.Dir(dir) {
			return true
		}
	}
}
