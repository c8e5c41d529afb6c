package keystore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/credentials"
)

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != want {
		t.Errorf("mode of %s: got %v, want %v", filepath.Base(path), got, want)
	}
}

// Not parallel: the umask is the process's.
func TestFileBackendCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), "config", "ringlet")
	s, err := Open(Options{Dir: dir, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	r := credentials.Ref{Provider: "anthropic", Alias: "work"}
	if _, err := s.Set(r, credentials.NewSecret("sk-umask")); err != nil {
		t.Fatalf("Set: %v", err)
	}
	tests := []struct {
		path string
		want fs.FileMode
	}{
		{filepath.Dir(dir), fs.ModeDir | 0o700},
		{dir, fs.ModeDir | 0o700},
		{s.FilePath(), 0o600},
		{filepath.Join(dir, "credentials.lock"), 0o600},
		{filepath.Join(dir, "keychain.json"), 0o600},
		{filepath.Join(dir, "keychain.lock"), 0o600},
	}
	for _, tt := range tests {
		checkMode(t, tt.path, tt.want)
	}
	if got, err := s.Get(r); err != nil || got.Reveal() != "sk-umask" {
		t.Errorf("Get: got err %v or another key, want the key", err)
	}
}

func TestAutoWithoutBusUsesFile(t *testing.T) {
	t.Parallel()
	var backends, reasons []string
	s, err := Open(Options{Dir: t.TempDir(), Backend: credentials.BackendAuto, SessionBus: "", OnChoose: func(b, why string) {
		backends, reasons = append(backends, b), append(reasons, why)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{"one", "two"} {
		e, err := s.Set(credentials.Ref{Provider: "anthropic", Alias: alias}, credentials.NewSecret("sk-"+alias))
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		if e.Backend != credentials.BackendFile {
			t.Errorf("Set backend: got %q, want %q", e.Backend, credentials.BackendFile)
		}
	}
	if len(backends) != 1 || backends[0] != credentials.BackendFile {
		t.Fatalf("OnChoose backends: got %q, want one %q", backends, credentials.BackendFile)
	}
	if !strings.Contains(reasons[0], "bus") || !strings.Contains(reasons[0], s.FilePath()) {
		t.Errorf("OnChoose reason: got %q, want it to mention the bus and %s", reasons[0], s.FilePath())
	}
	checkMode(t, s.FilePath(), 0o600)
}

func TestOpenRejectsUnknownBackend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		backend string
		wantErr bool
	}{
		{"", false},
		{credentials.BackendAuto, false},
		{credentials.BackendKeyring, false},
		{credentials.BackendFile, false},
		{"File", true},
		{"plain", true},
	}
	for _, tt := range tests {
		t.Run(tt.backend, func(t *testing.T) {
			_, err := Open(Options{Dir: t.TempDir(), Backend: tt.backend})
			if got := err != nil; got != tt.wantErr {
				t.Errorf("Open(Backend %q): got err %v, want error %v", tt.backend, err, tt.wantErr)
			}
		})
	}
}

const unsafeKey = "sk-already-in-the-file"

var unsafeContent = []byte(fileHeader + "[anthropic]\nwork = \"" + unsafeKey + "\"\n")

func TestFileBackendRefusesUnsafeFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string) // creates path
		wantErr string
	}{
		{"group and others can read", func(t *testing.T, path string) { writeWithMode(t, path, 0o644) }, "chmod 600"},
		{"group can read", func(t *testing.T, path string) { writeWithMode(t, path, 0o640) }, "chmod 600"},
		{"others can write", func(t *testing.T, path string) { writeWithMode(t, path, 0o602) }, "chmod 600"},
		{"symbolic link", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere.toml")
			writeWithMode(t, target, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
	}
	r := credentials.Ref{Provider: "anthropic", Alias: "work"}
	ops := []struct {
		name string
		do   func(s *Store) error
	}{
		{"Set", func(s *Store) error { _, err := s.Set(r, credentials.NewSecret("sk-new")); return err }},
		{"Get", func(s *Store) error { _, err := s.Get(r); return err }},
		{"Remove", func(s *Store) error { _, err := s.Remove(r); return err }},
		{"List", func(s *Store) error {
			entries, err := s.List()
			if err != nil {
				return err
			}
			if len(entries) != 1 || entries[0].Status != "unavailable" {
				return fmt.Errorf("List: got %+v, want one unavailable entry", entries)
			}
			return errors.New(entries[0].Detail)
		}},
		{"backend Delete", func(s *Store) error { return s.file.Delete(r) }},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				s, err := Open(Options{Dir: dir, Backend: credentials.BackendFile})
				if err != nil {
					t.Fatal(err)
				}
				tt.setup(t, s.FilePath())
				if err := s.writeIndex([]credentials.Entry{{Provider: r.Provider, Alias: r.Alias, Backend: credentials.BackendFile}}); err != nil {
					t.Fatal(err)
				}
				before := snapshot(t, s.FilePath())

				err = op.do(s)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%s: got %v, want an error containing %q", op.name, err, tt.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), unsafeKey) {
					t.Errorf("%s: the error quotes the key in the file", op.name)
				}
				if after := snapshot(t, s.FilePath()); after != before {
					t.Errorf("file after %s: got %+v, want it unchanged %+v", op.name, after, before)
				}
				if entries, err := s.readIndex(); err != nil || len(entries) != 1 {
					t.Errorf("index after %s: got %v, %v, want the one entry kept", op.name, entries, err)
				}
			})
		}
	}
}

func writeWithMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, unsafeContent, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// fileState is what must not change about a refused file: its mode, what a
// symbolic link points to, and the content behind it.
type fileState struct {
	mode    fs.FileMode
	link    string
	content string
	target  fs.FileMode
}

func snapshot(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fileState{mode: fi.Mode()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st.link, err = os.Readlink(path); err != nil {
			t.Fatal(err)
		}
		ti, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st.target = ti.Mode()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st.content = string(data)
	return st
}

// helperCmd runs this test binary as a helper process (see TestMain).
func helperCmd(ctx context.Context, t *testing.T, helper string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + helper}, env...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// writerState is the file content after writer steps 0..j: alias a<m>
// holds the key of the last step i <= j with i mod 8 == m.
func writerState(j int) map[string]string {
	m := map[string]string{}
	for i := max(0, j-writerAliases+1); i <= j; i++ {
		r, key := writerStep(i)
		m[r.Alias] = key
	}
	return m
}

var tempName = regexp.MustCompile(`^\.(credentials\.toml|keychain\.json)\.tmp-[0-9a-f]+$`)

// TestFileCrashSafety kills a process in the middle of writing keys, again
// and again, and checks that what it leaves is always one whole write.
func TestFileCrashSafety(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	rnd := rand.New(rand.NewPCG(seed, seed))
	t.Logf("seed %d", seed)
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	next := 0                        // the step the next writer starts at
	interrupted := map[string]bool{} // aliases of the steps a kill cut short
	leftovers := map[string]bool{}   // temporary files the kills left
	for round := range 16 {
		cmd := helperCmd(ctx, t, "writer", helperDirEnv+"="+dir, helperStartEnv+"="+strconv.Itoa(next))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it finish a few writes, then kill it somewhere in a later one.
		sc := bufio.NewScanner(out)
		done := -1
		for n := 1 + rnd.IntN(4); n > 0 && sc.Scan(); n-- {
			if done, err = strconv.Atoi(sc.Text()); err != nil {
				t.Fatalf("round %d: writer printed %q, want a step number", round, sc.Text())
			}
		}
		if done < 0 {
			cmd.Wait()
			t.Fatalf("round %d: the writer stopped before writing: %s", round, stderr.String())
		}
		// Jitter, so the kill lands at different points of a write (not
		// synchronisation: nothing waits on it).
		time.Sleep(time.Duration(rnd.IntN(3000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer: got %v, want killed by SIGKILL; stderr: %s", round, err, stderr.String())
		}

		data, err := os.ReadFile(s.FilePath())
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseFile(data)
		if err != nil {
			t.Fatalf("round %d: credentials.toml after SIGKILL: %v", round, err)
		}
		// The newest key in the file says which write it is; the rest of
		// the file must be exactly what that write produced.
		last := -1
		for _, k := range m["anthropic"] {
			i, err := strconv.Atoi(strings.TrimPrefix(k, "sk-step-"))
			if err != nil {
				t.Fatalf("round %d: unexpected key in the file", round)
			}
			last = max(last, i)
		}
		if last < done {
			t.Fatalf("round %d: the file holds step %d, want at least step %d, which Set reported done", round, last, done)
		}
		if want := writerState(last); len(m) != 1 || !maps.Equal(m["anthropic"], want) {
			t.Fatalf("round %d: the file is not the content of one whole write: got %v, want %v", round, m, want)
		}
		checkMode(t, s.FilePath(), 0o600)

		// The index is written after the file, so a kill between the two
		// leaves that step's alias in the file only, until a later step
		// sets it again.
		entries, err := s.readIndex()
		if err != nil {
			t.Fatalf("round %d: index after SIGKILL: %v", round, err)
		}
		lastRef, _ := writerStep(last)
		interrupted[lastRef.Alias] = true
		inIndex := map[string]bool{}
		for _, e := range entries {
			inIndex[e.Alias] = true
			if _, ok := m["anthropic"][e.Alias]; !ok {
				t.Errorf("round %d: index entry %s is not in the file", round, e.Ref())
			}
		}
		for alias := range m["anthropic"] {
			if !inIndex[alias] && !interrupted[alias] {
				t.Errorf("round %d: %s is in the file but not in the index", round, alias)
			}
		}

		// Whatever temporary files the kill left are not read as the
		// credentials file or the index.
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			switch name := de.Name(); name {
			case "credentials.toml", "credentials.lock", "keychain.json", "keychain.lock":
			default:
				if tempName.MatchString(name) {
					leftovers[name] = true
				} else {
					t.Errorf("round %d: unexpected file %s", round, name)
				}
			}
		}
		listed, err := s.List()
		if err != nil {
			t.Fatalf("round %d: List: %v", round, err)
		}
		for _, e := range listed {
			want := "ok"
			if !inIndex[e.Alias] {
				// Killed between the file and the index write: the key is
				// listed so it can be seen and removed.
				want = "unindexed"
			}
			if e.Status != want {
				t.Errorf("round %d: List %s: got status %q, want %s", round, e.Ref(), e.Status, want)
			}
		}
		next = last + 1
	}
	t.Logf("after the last kill: %d temporary files left, %d aliases cut short", len(leftovers), len(interrupted))
}

// TestFileConcurrentProcesses runs two processes that store keys at the same
// time; the file lock must keep every key of both.
func TestFileConcurrentProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	tags := []string{"x", "y"}
	type child struct {
		cmd    *exec.Cmd
		stderr *strings.Builder
		start  func() error
	}
	var children []child
	for _, tag := range tags {
		cmd := helperCmd(ctx, t, "setter", helperDirEnv+"="+dir, helperTagEnv+"="+tag)
		c := child{cmd: cmd, stderr: &strings.Builder{}}
		cmd.Stderr = c.stderr
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		c.start = w.Close
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, c)
	}
	// Both are running: let them go together.
	for _, c := range children {
		c.start()
	}
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("setter %s: %v: %s", tags[i], err, c.stderr.String())
		}
	}

	want := map[string]string{}
	for _, tag := range tags {
		for i := range setterCount {
			r, key := setterKey(tag, i)
			want[r.Alias] = key
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "credentials.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !maps.Equal(m["anthropic"], want) {
		t.Errorf("credentials.toml: got %d keys, want all %d keys of both processes", len(m["anthropic"]), len(want))
	}
	s, err := Open(Options{Dir: dir, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		if e.Status != "ok" || e.Backend != credentials.BackendFile {
			t.Errorf("List %s: got status %q backend %q, want ok in file", e.Ref(), e.Status, e.Backend)
		}
		got[e.Alias] = true
	}
	for alias := range want {
		if !got[alias] {
			t.Errorf("index: %s is missing", alias)
		}
	}
	if len(entries) != len(want) {
		t.Errorf("index: got %d entries, want %d", len(entries), len(want))
	}
}
