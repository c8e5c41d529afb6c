package sessionstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// from the step in the file.
func runWriter(path string) int {
	f := NewFile(path)
	got, err := f.Load(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n := 0
	if len(got) > 0 {
		n = int(got[0].Requests) + 1
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

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state", "sessions.json")
	f := NewFile(path)
	if got, err := f.Load(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("Load with no file: got %v, %v; want no sessions and no error", got, err)
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
	got, err := NewFile(path).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Load: got %+v, want %+v and %+v, oldest first", got, a, b)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("mode of %s: got %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if err := f.Delete(t.Context(), a.ID, "s_ffffffffffffffff"); err != nil {
		t.Fatal(err)
	}
	if got, _ := NewFile(path).Load(t.Context()); len(got) != 1 || got[0] != b {
		t.Errorf("after Delete: got %+v, want only %s", got, b.ID)
	}
	if err := f.Put(t.Context(), Session{ID: "s_1"}); err == nil {
		t.Errorf("Put of an invalid session: got nil error, want one")
	}
}

// TestLoadRefuses: a file that is not safe or not valid is an error that
// says what is wrong, and the store then holds nothing.
func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	write := func(content string, mode os.FileMode) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(content), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	valid := func(edit func(*Session)) string {
		s := sample(0)
		edit(&s)
		return `{"version":1,"sessions":[` + string(mustJSON(t, s)) + `]}`
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"readable by others", write(valid(func(*Session) {}), 0o644), "group or others can access it"},
		{"a symbolic link", func(t *testing.T, path string) {
			write(valid(func(*Session) {}), 0o600)(t, path+".real")
			if err := os.Symlink(path+".real", path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"not the user's", func(t *testing.T, path string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the file away")
			}
			write(valid(func(*Session) {}), 0o600)(t, path)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"truncated", write(`{"version":1,"sessions":[{"id":`, 0o600), "not valid JSON"},
		{"data after it", write(valid(func(*Session) {})+`{}`, 0o600), "data after the value"},
		{"an unknown field", write(`{"version":1,"sessions":[],"tokens":["rlt_x"]}`, 0o600), "unknown field"},
		{"another version", write(`{"version":2,"sessions":[]}`, 0o600), "format version 2"},
		{"a bad id", write(valid(func(s *Session) { s.ID = "../x" }), 0o600), "is not of the form"},
		{"a token where its hash goes", write(valid(func(s *Session) { s.TokenSHA256 = "rlt_abc" }), 0o600), "token_sha256"},
		{"a bad profile", write(valid(func(s *Session) { s.Profile = "Work Stuff" }), 0o600), "valid names"},
		{"a bad key ref", write(valid(func(s *Session) { s.KeyRef = "anthropic" }), 0o600), "key_ref"},
		{"a deadline before its start", write(valid(func(s *Session) { s.Deadline = s.Created }), 0o600), "deadline"},
		{"a negative idle", write(valid(func(s *Session) { s.IdleSeconds = -1 }), 0o600), "idle_seconds"},
		{"a socket dir without a launch", write(valid(func(s *Session) { s.SocketDir = "/tmp/ringlet-sockets-0123456789ab/ringlet-0123456789ab" }), 0o600), "belong to a launch"},
		{"a socket dir of another name", write(valid(func(s *Session) { s.Launch, s.SocketDir = true, "/home/u/.ssh" }), 0o600), "socket_dir"},
		{"a relative socket dir", write(valid(func(s *Session) { s.Launch, s.SocketDir = true, "x/ringlet-0123456789ab" }), 0o600), "socket_dir"},
		{"a relative workspace", write(valid(func(s *Session) { s.Launch, s.Workspace = true, "../ws" }), 0o600), "workspace"},
		{"twice", write(`{"version":1,"sessions":[`+string(mustJSON(t, sample(0)))+`,`+string(mustJSON(t, sample(0)))+`]}`, 0o600), "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sessions.json")
			tt.setup(t, path)
			f := NewFile(path)
			got, err := f.Load(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: got %d sessions, error %v; want an error saying %q", len(got), err, tt.want)
			}
			if len(got) != 0 {
				t.Errorf("Load: got %d sessions with the error, want none", len(got))
			}
		})
	}
}

// TestLeftoverTempIgnored: a temporary file that a killed writer left
// beside the store is not read.
func TestLeftoverTempIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sessions.json")
	if err := NewFile(path).Put(t.Context(), sample(0)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".sessions.json.tmp-0123456789abcdef"), []byte(`{"version":1,"sess`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := NewFile(path).Load(t.Context()); err != nil || len(got) != 1 {
		t.Errorf("Load beside a torn temporary file: got %d sessions, %v; want the one stored", len(got), err)
	}
}

// TestKilledWriter: a writer killed (SIGKILL) at any point of a write
// leaves the file of one whole write, old or new, never a mix.
func TestKilledWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions.json")
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
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
		for n := 1 + rnd.IntN(6); n > 0 && sc.Scan(); n-- {
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
		time.Sleep(time.Duration(rnd.IntN(2000)) * time.Microsecond)
		_ = cmd.Process.Signal(syscall.SIGKILL) // it may have died already; Wait says
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer: got %v, want killed by SIGKILL; stderr: %s", round, err, stderr.String())
		}
		got, err := NewFile(path).Load(t.Context())
		if err != nil {
			t.Fatalf("round %d: the file after SIGKILL: %v", round, err)
		}
		// One whole write: all its sessions, each with its step; the step
		// reported written or a later one.
		if len(got) != writerSessions {
			t.Fatalf("round %d: the file holds %d sessions, want the %d of one write", round, len(got), writerSessions)
		}
		step := got[0].Requests
		if int(step) < done {
			t.Fatalf("round %d: the file holds step %d, want at least %d, which was reported written", round, step, done)
		}
		for _, s := range got {
			if s.Requests != step {
				t.Fatalf("round %d: the file mixes steps %d and %d", round, step, s.Requests)
			}
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: mode %v (%v), want 0600", round, fi.Mode().Perm(), err)
		}
	}
}

// FuzzLoad: whatever the file holds, Load accepts only sessions that
// validate, and what it accepts is written back the same.
func FuzzLoad(f *testing.F) {
	one, _ := json.Marshal(sample(0))
	for _, seed := range []string{
		``, `{}`, `{"version":1,"sessions":[]}`, `{"version":1,"sessions":[` + string(one) + `]}`,
		`{"version":1,"sessions":[` + string(one) + `,` + string(one) + `]}`, `{"version":1,"sessions":null}`,
		`{"version":1,"sessions":[{"id":"s_0000000000000001"}]}`, `[]`, `{"version":1,"Sessions":[]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "sessions.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := NewFile(path).Load(context.Background())
		if err != nil {
			return
		}
		for _, s := range got {
			if err := s.Validate(); err != nil {
				t.Fatalf("Load accepted an invalid session: %v", err)
			}
		}
		again := filepath.Join(dir, "again.json")
		if err := NewFile(again).Put(context.Background(), got...); err != nil {
			t.Fatalf("Put of what Load accepted: %v", err)
		}
		back, err := NewFile(again).Load(context.Background())
		if err != nil || len(back) != len(got) {
			t.Fatalf("reloaded: got %d sessions, %v; want %d", len(back), err, len(got))
		}
	})
}
