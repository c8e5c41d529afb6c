package privatefile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFile makes a file with exactly mode perm, whatever the umask.
func writeFile(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestModesUnderUmask0 changes the process umask, so it must not run in
// parallel with other tests that create files.
func TestModesUnderUmask0(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()

	created := filepath.Join(dir, "created")
	if err := Create(created, []byte("x")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	replaced := filepath.Join(dir, "replaced")
	if err := WriteAtomic(replaced, []byte("x"), FileMode); err != nil {
		t.Fatalf("WriteAtomic: %v", err)
	}
	sub := filepath.Join(dir, "a", "b")
	if err := EnsureDir(sub); err != nil {
		t.Fatalf("EnsureDir: %v", err)
	}
	tests := []struct {
		path string
		want fs.FileMode
	}{
		{created, 0o600},
		{replaced, 0o600},
		{filepath.Join(dir, "a"), 0o700},
		{sub, 0o700},
	}
	for _, tt := range tests {
		if got := perm(t, tt.path); got != tt.want {
			t.Errorf("%s under umask 0: got mode %04o, want %04o", filepath.Base(tt.path), got, tt.want)
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Create(path, []byte("first")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := Read(path, 100)
	if err != nil || string(got) != "first" {
		t.Fatalf("Read after Create: got (%q, %v), want (%q, nil)", got, err, "first")
	}

	tests := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"existing file", func(t *testing.T) string { return path }},
		{"existing dir", func(t *testing.T) string { return dir }},
		{"dangling symlink", func(t *testing.T) string {
			l := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(filepath.Join(t.TempDir(), "target"), l); err != nil {
				t.Fatal(err)
			}
			return l
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t)
			err := Create(p, []byte("second"))
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("Create on %s: got %v, want an error matching fs.ErrExist", tt.name, err)
			}
		})
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("content after a refused Create: got %q, want %q", got, "first")
	}
}

// TestCreateAppearsWhole has a reader poll the path while Create writes
// it: the reader sees no file or the whole content, never an empty or
// partial file, and no temporary file is left behind.
func TestCreateAppearsWhole(t *testing.T) {
	t.Parallel()
	content := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for i := range 50 {
		dir := t.TempDir()
		path := filepath.Join(dir, "token")
		done := make(chan struct{})
		seen := make(chan string, 1)
		go func() {
			defer close(seen)
			for {
				data, err := os.ReadFile(path)
				if err == nil && !bytes.Equal(data, content) {
					seen <- fmt.Sprintf("%d of %d bytes", len(data), len(content))
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
		err := Create(path, content)
		close(done)
		if bad, ok := <-seen; ok {
			t.Fatalf("round %d: a reader saw %s", i, bad)
		}
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("round %d: directory holds %d entries after Create, want only the file", i, len(entries))
		}
		if got := perm(t, path); got != 0o600 {
			t.Fatalf("mode %04o, want 0600", got)
		}
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFile(t, good, []byte("secret"), 0o600)
	readOnly := filepath.Join(dir, "readonly")
	writeFile(t, readOnly, []byte("secret"), 0o400)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	world := filepath.Join(dir, "world")
	writeFile(t, world, []byte("secret"), 0o644)
	group := filepath.Join(dir, "group")
	writeFile(t, group, []byte("secret"), 0o640)
	groupWrite := filepath.Join(dir, "groupwrite")
	writeFile(t, groupWrite, []byte("secret"), 0o620)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	writeFile(t, big, bytes.Repeat([]byte("x"), 11), 0o600)
	exact := filepath.Join(dir, "exact")
	writeFile(t, exact, bytes.Repeat([]byte("x"), 10), 0o600)

	tests := []struct {
		name     string
		path     string
		limit    int64
		want     string
		wantErr  []string
		notExist bool
	}{
		{name: "0600", path: good, limit: 100, want: "secret"},
		{name: "0400", path: readOnly, limit: 100, want: "secret"},
		{name: "exactly at the limit", path: exact, limit: 10, want: "xxxxxxxxxx"},
		{name: "symlink", path: link, limit: 100, wantErr: []string{"symbolic link", link}},
		{name: "0644", path: world, limit: 100, wantErr: []string{"chmod 600 " + world, "0644"}},
		{name: "0640", path: group, limit: 100, wantErr: []string{"chmod 600 " + group, "0640"}},
		{name: "0620", path: groupWrite, limit: 100, wantErr: []string{"chmod 600"}},
		{name: "directory", path: sub, limit: 100, wantErr: []string{"not a regular file"}},
		{name: "one over the limit", path: big, limit: 10, wantErr: []string{"larger than 10 bytes"}},
		{name: "missing", path: filepath.Join(dir, "missing"), limit: 100, notExist: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Read(tt.path, tt.limit)
			if tt.notExist {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Read: got %v, want an error matching fs.ErrNotExist", err)
				}
				return
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Read: got %q, nil error; want an error", got)
				}
				if got != nil {
					t.Errorf("Read: got content %q with an error, want none", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error: got %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("Read: got (%q, %v), want (%q, nil)", got, err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFile(t, good, nil, 0o600)
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, nil, 0o604)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		wantErr string
	}{
		{good, ""},
		{bad, "chmod 600"},
		{link, "symbolic link"},
	}
	for _, tt := range tests {
		err := Check(tt.path)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Check(%s): got %v, want nil", filepath.Base(tt.path), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Check(%s): got %v, want an error containing %q", filepath.Base(tt.path), err, tt.wantErr)
		}
	}
	if err := Check(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check(missing): got %v, want an error matching fs.ErrNotExist", err)
	}
}

// TestReadRefusesOtherOwner needs root to give a file away.
func TestReadRefusesOtherOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	path := filepath.Join(t.TempDir(), "theirs")
	writeFile(t, path, []byte("x"), 0o600)
	if err := os.Chown(path, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	_, err := Read(path, 100)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 54321") {
		t.Errorf("Read of another user's file: got %v, want an error naming the owner", err)
	}
}

func TestWriteAtomic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing []byte // nil: no file before
		oldMode  fs.FileMode
		data     []byte
	}{
		{name: "new file", data: []byte("new")},
		{name: "replace longer with shorter", existing: []byte("old content that is long"), oldMode: 0o600, data: []byte("new")},
		{name: "replace 0644 file", existing: []byte("old"), oldMode: 0o644, data: []byte("new")},
		{name: "empty", existing: []byte("old"), oldMode: 0o600, data: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.existing != nil {
				writeFile(t, path, tt.existing, tt.oldMode)
			}
			if err := WriteAtomic(path, tt.data, FileMode); err != nil {
				t.Fatalf("WriteAtomic: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Errorf("content: got (%q, %v), want %q", got, err, tt.data)
			}
			if got := perm(t, path); got != FileMode {
				t.Errorf("mode: got %04o, want %04o", got, FileMode)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "f" {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("directory: got %q, want only [f] (no temporary files)", names)
			}
		})
	}
}

func TestWriteAtomicFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The target is a non-empty directory, so the rename fails.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "inner"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(target, []byte("x"), FileMode); err == nil {
		t.Fatalf("WriteAtomic over a non-empty directory: got nil error, want one")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "target" {
		t.Errorf("directory after a failed WriteAtomic: got %d entries, want only the target", len(entries))
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), FileMode); err == nil {
		t.Errorf("WriteAtomic into a missing directory: got nil error, want one")
	}
}

func TestEnsureDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr []string
	}{
		{name: "missing is created"},
		{name: "existing 0700", setup: func(t *testing.T, dir string) { mkdir(t, dir, 0o700) }},
		{name: "existing 0755 is accepted", setup: func(t *testing.T, dir string) { mkdir(t, dir, 0o755) }},
		{name: "group-writable", setup: func(t *testing.T, dir string) { mkdir(t, dir, 0o775) }, wantErr: []string{"chmod 700", "0775"}},
		{name: "world-writable", setup: func(t *testing.T, dir string) { mkdir(t, dir, 0o703) }, wantErr: []string{"chmod 700"}},
		{name: "a file", setup: func(t *testing.T, dir string) { writeFile(t, dir, nil, 0o600) }, wantErr: []string{"directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "a", "b")
			if tt.setup != nil {
				mkdir(t, filepath.Dir(dir), 0o700)
				tt.setup(t, dir)
			}
			err := EnsureDir(dir)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("EnsureDir: got nil error, want one")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error: got %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureDir: got %v, want nil", err)
			}
			if tt.setup == nil {
				for _, d := range []string{dir, filepath.Dir(dir)} {
					if got := perm(t, d); got != DirMode {
						t.Errorf("mode of %s: got %04o, want %04o", d, got, DirMode)
					}
				}
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// TestSweepStaleTemps removes what a killed writer left, and nothing else:
// not a fresh temporary file (a writer in another process may hold it),
// not a file of another name, not a symbolic link, nothing too deep.
func TestSweepStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(rel string, age time.Time) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, age, age); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := []string{
		mk(".http_token.tmp-0123456789abcdef", old),
		mk("profiles/.work.toml.tmp-fedcba9876543210", old),
	}
	kept := []string{
		mk(".config.toml.tmp-00112233445566ff", time.Now()), // fresh: a live writer's
		mk("notes.tmp-0123456789abcdef", old),               // not a hidden temp name
		mk(".x.tmp-0123", old),                              // not 16 hex digits
		mk("a/b/c/.deep.toml.tmp-0123456789abcdef", old),    // deeper than it looks
		mk(".http_token", old),                              // the real file
	}
	target := mk("elsewhere", old)
	link := filepath.Join(dir, ".link.tmp-0123456789abcdef")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, link, target)
	n, err := SweepStaleTemps(dir, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(stale) {
		t.Errorf("removed: got %d, want %d", n, len(stale))
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s: still there, want it removed", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
	if n, err := SweepStaleTemps(filepath.Join(dir, "missing"), time.Minute); n != 0 || err != nil {
		t.Errorf("a missing dir: got %d, %v; want 0, nil", n, err)
	}
}
