package sessionstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a writer process for the kill test: with
// helperEnv set, TestMain writes the store at helperPathEnv until killed.
const (
	helperEnv     = "RINGLET_TEST_SESSIONSTORE_WRITER"
	helperPathEnv = "RINGLET_TEST_SESSIONSTORE_PATH"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runWriter(os.Getenv(helperPathEnv)))
	}
	os.Exit(m.Run())
}

// writerSessions is how many sessions each write of the writer holds.
const writerSessions = 40

// runWriter stores step n as writerSessions sessions with n requests
// each, and prints n once it is written, for ever. A writer continues
// from the latest step stored.
func runWriter(path string) int {
	f := NewDir(path, Options{})
	got, err := f.Load(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n := 0
	for _, s := range got {
		n = max(n, int(s.Requests)+1)
	}
	for ; ; n++ {
		var ss []Session
		for i := range writerSessions {
			s := sample(i)
			s.Requests = int64(n)
			ss = append(ss, s)
		}
		if err := f.Put(context.Background(), ss...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println(n)
	}
}

// sample is a valid session, the i-th of its kind.
func sample(i int) Session {
	t := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	return Session{
		ID: fmt.Sprintf("s_%016x", i+1), TokenSHA256: fmt.Sprintf("%064x", i+1), TokenID: "hmac:0123", Profile: "work",
		ProfileCreated: t.Add(-time.Hour), Provider: "anthropic", BaseURL: "https://api.anthropic.com", KeyRef: "anthropic/work",
		KeyHMAC: "hmac:4567", Created: t, Deadline: t.Add(12 * time.Hour), IdleSeconds: 7200, LastUsed: t,
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// logBuf is a log a test reads back.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newDir is the store of dir with a log the test reads, migrating legacy
// when it is not "".
func newDir(dir, legacy string) (*Dir, *logBuf) {
	l := &logBuf{}
	return NewDir(dir, Options{Legacy: legacy, Log: slog.New(slog.NewTextHandler(l, nil))}), l
}

// sessionJSON is the file of s as the store writes it.
func sessionJSON(t *testing.T, s Session) []byte {
	t.Helper()
	return mustJSON(t, sessionFile{Version: fileVersion, Session: s})
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "sessions")
	f, _ := newDir(dir, "")
	if got, err := f.Load(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("Load with no directory: got %v, %v; want no sessions and no error", got, err)
	}
	a, b := sample(0), sample(1)
	b.Launch, b.Workspace, b.SocketDir, b.IdleSeconds = true, "/home/u/ws", "/tmp/ringlet-sockets-0123456789ab/ringlet-ba9876543210", 0
	if err := f.Put(t.Context(), b, a); err != nil {
		t.Fatal(err)
	}
	b.Requests, b.LastUsed = 7, b.LastUsed.Add(time.Minute)
	if err := f.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	again, _ := newDir(dir, "")
	got, err := again.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Load: got %+v, want %+v and %+v, oldest first", got, a, b)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(dir, a.ID+".json"): 0o600, filepath.Join(dir, b.ID+".json"): 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("mode of %s: got %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if err := f.Delete(t.Context(), a.ID, "s_ffffffffffffffff", "../x"); err != nil {
		t.Fatal(err)
	}
	again, _ = newDir(dir, "")
	if got, _ := again.Load(t.Context()); len(got) != 1 || got[0] != b {
		t.Errorf("after Delete: got %+v, want only %s", got, b.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, a.ID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file of a deleted session: got %v, want it gone", err)
	}
	if err := f.Put(t.Context(), Session{ID: "s_1"}); err == nil {
		t.Errorf("Put of an invalid session: got nil error, want one")
	}
}

// TestLoadRefusesFile: a session's file that is not safe or not valid is
// refused with one line in the log that says what is wrong; the other
// sessions load, and nothing panics.
func TestLoadRefusesFile(t *testing.T) {
	t.Parallel()
	bad := sample(0)
	write := func(content string, mode os.FileMode) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, bad.ID+".json")
			if err := os.WriteFile(path, []byte(content), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	valid := func(edit func(*Session)) string {
		s := bad
		edit(&s)
		return string(sessionJSON(t, s))
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"readable by others", write(valid(func(*Session) {}), 0o644), "group or others can access it"},
		{"a symbolic link", func(t *testing.T, dir string) {
			write(valid(func(*Session) {}), 0o600)(t, filepath.Join(dir, ".."))
			if err := os.Symlink(filepath.Join(dir, "..", bad.ID+".json"), filepath.Join(dir, bad.ID+".json")); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"not the user's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the file away")
			}
			write(valid(func(*Session) {}), 0o600)(t, dir)
			if err := os.Chown(filepath.Join(dir, bad.ID+".json"), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
		{"a directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, bad.ID+".json"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"empty", write(``, 0o600), "not valid JSON"},
		{"truncated", write(valid(func(*Session) {})[:40], 0o600), "not valid JSON"},
		{"data after it", write(valid(func(*Session) {})+`{}`, 0o600), "data after the value"},
		{"an unknown field", write(strings.Replace(valid(func(*Session) {}), `"version":1`, `"version":1,"token":"rlt_x"`, 1), 0o600), "unknown field"},
		{"another version", write(strings.Replace(valid(func(*Session) {}), `"version":1`, `"version":2`, 1), 0o600), "format version 2"},
		{"another session's name", write(valid(func(s *Session) { s.ID, s.TokenSHA256 = "s_00000000000000aa", strings.Repeat("a", 64) }), 0o600), "not the s_0000000000000001 its name says"},
		{"a token where its hash goes", write(valid(func(s *Session) { s.TokenSHA256 = "rlt_abc" }), 0o600), "token_sha256"},
		{"a bad profile", write(valid(func(s *Session) { s.Profile = "Work Stuff" }), 0o600), "valid names"},
		{"a bad key ref", write(valid(func(s *Session) { s.KeyRef = "anthropic" }), 0o600), "key_ref"},
		{"a deadline before its start", write(valid(func(s *Session) { s.Deadline = s.Created }), 0o600), "deadline"},
		{"a negative idle", write(valid(func(s *Session) { s.IdleSeconds = -1 }), 0o600), "idle_seconds"},
		{"a socket dir without a launch", write(valid(func(s *Session) { s.SocketDir = "/tmp/ringlet-sockets-0123456789ab/ringlet-0123456789ab" }), 0o600), "belong to a launch"},
		{"a socket dir of another name", write(valid(func(s *Session) { s.Launch, s.SocketDir = true, "/home/u/.ssh" }), 0o600), "socket_dir"},
		{"a relative workspace", write(valid(func(s *Session) { s.Launch, s.Workspace = true, "../ws" }), 0o600), "workspace"},
		{"two of one token", func(t *testing.T, dir string) {
			write(valid(func(*Session) {}), 0o600)(t, dir)
			twin := bad
			twin.ID = "s_00000000000000bb"
			if err := os.WriteFile(filepath.Join(dir, twin.ID+".json"), sessionJSON(t, twin), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "another stored session has its token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "sessions")
			f, _ := newDir(dir, "")
			good := sample(5)
			if err := f.Put(t.Context(), good); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			again, log := newDir(dir, "")
			got, err := again.Load(t.Context())
			if err != nil || len(got) != 1 || got[0] != good {
				t.Fatalf("Load: got %+v, %v; want only the sound session %s", got, err, good.ID)
			}
			if l := log.String(); !strings.Contains(l, "refusing a stored session") || !strings.Contains(l, tt.want) {
				t.Errorf("log: got %q, want a line refusing the file that says %q", l, tt.want)
			}
			if lines := strings.Count(log.String(), "\n"); lines < 1 || lines > 2 {
				t.Errorf("log: got %d lines, want one per refused file:\n%s", lines, log.String())
			}
		})
	}
}

// TestLoadRefusesDir: a directory that is not safe admits no session, and
// no write goes into it.
func TestLoadRefusesDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  string
	}{
		{"open to others", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "group or others can access it"},
		{"a symbolic link", func(t *testing.T, dir string) {
			if err := os.Rename(dir, dir+".real"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(dir+".real", dir); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"not the user's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the directory away")
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
		{"a file", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "sessions")
			f, _ := newDir(dir, "")
			if err := f.Put(t.Context(), sample(0)); err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, dir)
			again, _ := newDir(dir, "")
			got, err := again.Load(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) || len(got) != 0 {
				t.Fatalf("Load: got %d sessions, error %v; want none and an error saying %q", len(got), err, tt.want)
			}
			if err := again.Put(t.Context(), sample(1)); err == nil {
				t.Errorf("Put into a refused directory: got nil error, want one")
			}
		})
	}
}

// TestLeftoverTempIgnored: a temporary file that a killed writer left, or
// a file of another name, is not read and costs no session; the log says
// so once each.
func TestLeftoverTempIgnored(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	f, _ := newDir(dir, "")
	if err := f.Put(t.Context(), sample(0), sample(1)); err != nil {
		t.Fatal(err)
	}
	torn := sessionJSON(t, sample(1))
	for name, data := range map[string][]byte{".s_0000000000000002.json.tmp-0123456789abcdef": torn[:len(torn)/2], "notes.txt": []byte("x")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	again, log := newDir(dir, "")
	if got, err := again.Load(t.Context()); err != nil || len(got) != 2 || got[0] != sample(0) || got[1] != sample(1) {
		t.Errorf("Load beside a torn temporary file: got %+v, %v; want the two stored", got, err)
	}
	l := log.String()
	if !strings.Contains(l, "temporary file that a killed write left") || !strings.Contains(l, "not a stored session") || strings.Count(l, "\n") != 2 {
		t.Errorf("log: got %q, want one line for the temporary file and one for the other", l)
	}
}

// TestKilledWriter: a writer killed (SIGKILL) at any point of a write
// leaves every session's file whole, old or new: no session lost, none
// torn, none older than the last write reported done.
func TestKilledWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions")
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for round := range 12 {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=1", helperPathEnv+"="+path)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		done := -1
		for n := 1 + rnd.IntN(3); n > 0 && sc.Scan(); n-- {
			if done, err = strconv.Atoi(sc.Text()); err != nil {
				t.Fatalf("round %d: writer printed %q", round, sc.Text())
			}
		}
		if done < 0 {
			_ = cmd.Wait() // it failed; stderr says why
			t.Fatalf("round %d: the writer wrote nothing: %s", round, stderr.String())
		}
		// Jitter, so the kill lands at different points of a write (not
		// synchronisation: nothing waits on it).
		time.Sleep(time.Duration(rnd.IntN(20000)) * time.Microsecond)
		_ = cmd.Process.Signal(syscall.SIGKILL) // it may have died already; Wait says
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer: got %v, want killed by SIGKILL; stderr: %s", round, err, stderr.String())
		}
		f, log := newDir(path, "")
		got, err := f.Load(t.Context())
		if err != nil {
			t.Fatalf("round %d: the store after SIGKILL: %v", round, err)
		}
		if strings.Contains(log.String(), "refusing") {
			t.Fatalf("round %d: a file was torn: %s", round, log.String())
		}
		if len(got) != writerSessions {
			t.Fatalf("round %d: the store holds %d sessions, want all %d", round, len(got), writerSessions)
		}
		// Each session is at the step reported written or later; the
		// write in flight may have reached some sessions, not others.
		for _, s := range got {
			if int(s.Requests) < done || int(s.Requests) > done+len(got) {
				t.Fatalf("round %d: session %s is at step %d, want at least %d, which was reported written", round, s.ID, s.Requests, done)
			}
			if fi, err := os.Stat(filepath.Join(path, s.ID+".json")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("round %d: mode %v (%v), want 0600", round, fi.Mode().Perm(), err)
			}
		}
	}
}

// legacyFile writes the single file of earlier versions.
func legacyFile(t *testing.T, path string, ss ...Session) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mustJSON(t, legacyContent{Version: legacyVersion, Sessions: ss}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMigrate: the single file of earlier versions moves into the
// directory on the first Load, and is gone after.
func TestMigrate(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	legacy, dir := filepath.Join(state, "sessions.json"), filepath.Join(state, "sessions")
	want := []Session{sample(0), sample(1), sample(2)}
	legacyFile(t, legacy, want[2], want[0], want[1])
	f, log := newDir(dir, legacy)
	got, err := f.Load(t.Context())
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("Load: got %+v, %v; want the three sessions of the old file", got, err)
	}
	if _, err := os.Lstat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old file after the migration: got %v, want it removed", err)
	}
	for _, s := range want {
		if fi, err := os.Stat(filepath.Join(dir, s.ID+".json")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the file of %s: got %v, %v; want one of mode 0600", s.ID, fi, err)
		}
	}
	if !strings.Contains(log.String(), "moved the stored sessions") {
		t.Errorf("log: got %q, want a line saying the sessions moved", log.String())
	}
	// Deleted after the migration: it stays deleted.
	if err := f.Delete(t.Context(), want[1].ID); err != nil {
		t.Fatal(err)
	}
	again, _ := newDir(dir, legacy)
	if got, err := again.Load(t.Context()); err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[2] {
		t.Errorf("Load after a Delete: got %+v, %v; want the other two", got, err)
	}
}

// TestMigrateCrash: a daemon killed at any step of the migration (after
// k of the n sessions were written, or after all of them but before the
// old file was removed) loses nothing: the next start migrates again.
// And a Delete, or a Put, before any Load migrates first, so the old file
// cannot bring a deleted session back.
func TestMigrateCrash(t *testing.T) {
	t.Parallel()
	want := []Session{sample(0), sample(1), sample(2)}
	for k := range len(want) + 1 {
		t.Run(fmt.Sprintf("after %d of %d", k, len(want)), func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "state")
			legacy, dir := filepath.Join(state, "sessions.json"), filepath.Join(state, "sessions")
			legacyFile(t, legacy, want...)
			// What a migration killed after k writes leaves.
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, s := range want[:k] {
				if err := os.WriteFile(filepath.Join(dir, s.ID+".json"), sessionJSON(t, s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f, _ := newDir(dir, legacy)
			got, err := f.Load(t.Context())
			if err != nil || len(got) != len(want) {
				t.Fatalf("Load: got %+v, %v; want the %d sessions of the old file", got, err, len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("session %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
			if _, err := os.Lstat(legacy); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the old file: got %v, want it removed", err)
			}
		})
	}
	t.Run("a write fails midway", func(t *testing.T) {
		t.Parallel()
		state := filepath.Join(t.TempDir(), "state")
		legacy, dir := filepath.Join(state, "sessions.json"), filepath.Join(state, "sessions")
		legacyFile(t, legacy, want...)
		// A directory where the last session's file goes: renaming onto
		// it fails, after the others were written.
		blocker := filepath.Join(dir, want[2].ID+".json")
		if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		f, _ := newDir(dir, legacy)
		if got, err := f.Load(t.Context()); err == nil {
			t.Fatalf("Load with a write failing: got %+v and no error, want one", got)
		}
		if _, err := os.Stat(legacy); err != nil {
			t.Fatalf("the old file after a failed migration: %v, want it kept", err)
		}
		if err := f.Put(t.Context(), sample(3)); err == nil {
			t.Errorf("Put before the migration is done: got nil error, want one")
		}
		if err := os.RemoveAll(blocker); err != nil {
			t.Fatal(err)
		}
		got, err := f.Load(t.Context())
		if err != nil || len(got) != len(want) || got[2] != want[2] {
			t.Fatalf("Load once the write works: got %+v, %v; want the %d sessions of the old file", got, err, len(want))
		}
		if _, err := os.Lstat(legacy); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the old file: got %v, want it removed", err)
		}
	})
	for _, first := range []string{"Delete", "Put"} {
		t.Run(first+" before Load", func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "state")
			legacy, dir := filepath.Join(state, "sessions.json"), filepath.Join(state, "sessions")
			legacyFile(t, legacy, want...)
			f, _ := newDir(dir, legacy)
			var err error
			if first == "Delete" {
				err = f.Delete(t.Context(), want[0].ID)
			} else {
				err = f.Put(t.Context(), sample(3))
			}
			if err != nil {
				t.Fatal(err)
			}
			again, _ := newDir(dir, legacy)
			got, err := again.Load(t.Context())
			wantN := map[string]int{"Delete": 2, "Put": 4}[first]
			if err != nil || len(got) != wantN {
				t.Fatalf("Load: got %+v, %v; want %d sessions", got, err, wantN)
			}
			if first == "Delete" && (got[0] != want[1] || got[1] != want[2]) {
				t.Errorf("Load: got %+v, want the two not deleted", got)
			}
		})
	}
}

// TestMigrateRefusesUnsafe: an old file that is not safe or not valid
// admits nothing, as before; it is removed with a line in the log, and the
// store works.
func TestMigrateRefusesUnsafe(t *testing.T) {
	t.Parallel()
	for name, spoil := range map[string]func(t *testing.T, path string){
		"readable by others": func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"truncated": func(t *testing.T, path string) {
			if err := os.Truncate(path, 30); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "state")
			legacy, dir := filepath.Join(state, "sessions.json"), filepath.Join(state, "sessions")
			legacyFile(t, legacy, sample(0))
			spoil(t, legacy)
			f, log := newDir(dir, legacy)
			if got, err := f.Load(t.Context()); err != nil || len(got) != 0 {
				t.Fatalf("Load: got %+v, %v; want no session and no error", got, err)
			}
			if !strings.Contains(log.String(), "refusing the stored sessions of the old sessions file") {
				t.Errorf("log: got %q, want a line refusing the old file", log.String())
			}
			if _, err := os.Lstat(legacy); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused old file: got %v, want it removed", err)
			}
			if err := f.Put(t.Context(), sample(1)); err != nil {
				t.Errorf("Put after: %v", err)
			}
		})
	}
}

// FuzzLoad: whatever a session's file holds, Load accepts only a session
// that validates, and what it accepts is written back the same.
func FuzzLoad(f *testing.F) {
	one, _ := json.Marshal(sessionFile{Version: fileVersion, Session: sample(0)})
	for _, seed := range []string{
		``, `{}`, `{"version":1}`, string(one), string(one) + string(one), `null`, `[]`,
		`{"version":1,"id":"s_0000000000000001"}`, `{"Version":1,"ID":"s_0000000000000001"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "sessions")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sample(0).ID+".json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, _ := newDir(dir, "")
		got, err := s.Load(context.Background())
		if err != nil {
			t.Fatalf("Load: %v, want a refused file skipped", err)
		}
		for _, s := range got {
			if err := s.Validate(); err != nil {
				t.Fatalf("Load accepted an invalid session: %v", err)
			}
		}
		again, _ := newDir(filepath.Join(filepath.Dir(dir), "again"), "")
		if err := again.Put(context.Background(), got...); err != nil {
			t.Fatalf("Put of what Load accepted: %v", err)
		}
		back, err := again.Load(context.Background())
		if err != nil || len(back) != len(got) {
			t.Fatalf("reloaded: got %d sessions, %v; want %d", len(back), err, len(got))
		}
	})
}

// TestConcurrent: Puts and Deletes of different sessions from many
// goroutines at once each land; the store ends as the last of each
// session's calls left it.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	f, _ := newDir(dir, "")
	const workers, each = 8, 6
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				s := sample(w*each + i)
				for step := range 3 {
					s.Requests = int64(step)
					if err := f.Put(t.Context(), s); err != nil {
						t.Error(err)
					}
				}
				if i%2 == 1 {
					if err := f.Delete(t.Context(), s.ID); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	again, _ := newDir(dir, "")
	got, err := again.Load(t.Context())
	if err != nil || len(got) != workers*each/2 {
		t.Fatalf("Load: got %d sessions, %v; want %d", len(got), err, workers*each/2)
	}
	for _, s := range got {
		var n int
		if _, err := fmt.Sscanf(s.ID, "s_%x", &n); err != nil || (n-1)%2 != 0 || s.Requests != 2 {
			t.Errorf("session %s at step %d: want only the even ones kept, each at its last step (2)", s.ID, s.Requests)
		}
	}
}
