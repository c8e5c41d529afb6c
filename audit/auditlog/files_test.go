package auditlog

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestFileModesUnderUmask0 changes the process umask, so it must not run
// in parallel with tests that create files.
func TestFileModesUnderUmask0(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), "state", "audit")
	path := filepath.Join(dir, "audit.db")
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	appendN(t, l, 3)

	tests := []struct {
		path string
		want fs.FileMode
	}{
		{filepath.Dir(dir), 0o700},
		{dir, 0o700},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
		{audit.AnchorPath(path), 0o600},
	}
	check := func(when string) {
		for _, tt := range tests {
			if _, err := os.Stat(tt.path); os.IsNotExist(err) && strings.HasSuffix(tt.path, "-wal") && when != "open" {
				continue // SQLite removes the WAL when the last connection closes
			}
			if got := mode(t, tt.path); got != tt.want {
				t.Errorf("%s (%s) under umask 0: got mode %04o, want %04o", filepath.Base(tt.path), when, got, tt.want)
			}
		}
	}
	check("open")

	// A reader may be the first to open the database after the writer
	// closed it and recreate what the writer removed.
	l.Close()
	for _, s := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + s); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	mustVerifyOK(t, path, 3)
	check("after a reader")
}

func TestOpenRefusesSharedFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{"database 0644", func(t *testing.T, path string) { writeMode(t, path, 0o644) }, "chmod 600"},
		{"database 0640", func(t *testing.T, path string) { writeMode(t, path, 0o640) }, "chmod 600"},
		{"shared memory 0644", func(t *testing.T, path string) { writeMode(t, path+"-shm", 0o644) }, "chmod 600"},
		{"anchor 0644", func(t *testing.T, path string) { writeMode(t, audit.AnchorPath(path), 0o644) }, "chmod 600"},
		{"database is a symlink", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere.db")
			writeMode(t, target, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"directory 0777", func(t *testing.T, path string) {
			if err := os.Chmod(filepath.Dir(path), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "chmod 700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit", "audit.db")
			if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, path)
			l, err := Open(Options{Path: path})
			if err == nil {
				l.Close()
				t.Fatalf("Open: got nil error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open: got %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestOpenKeepsRefusedFile: a refused file is reported, not repaired.
func TestOpenKeepsRefusedFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.db")
	writeMode(t, path, 0o644)
	if _, err := Open(Options{Path: path}); err == nil {
		t.Fatal("Open of a 0644 database: got nil error, want a refusal")
	}
	if got := mode(t, path); got != 0o644 {
		t.Errorf("mode after the refusal: got %04o, want 0644 unchanged", got)
	}
}

// writeMode makes an empty file with exactly mode perm, whatever the umask.
func writeMode(t *testing.T, path string, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, nil, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// TestNotADatabase: a file that holds something else is refused by the
// daemon's Open and by the readers with one line saying so, never chmod-ed
// nor given a -shm beside it.
func TestNotADatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	if err := os.WriteFile(path, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: path}); err == nil || !strings.Contains(err.Error(), "not an SQLite audit database") {
		t.Errorf("Open: got %v, want not an SQLite audit database", err)
	}
	if _, err := audit.OpenReader(path); err == nil || !strings.Contains(err.Error(), "not an SQLite audit database") {
		t.Errorf("OpenReader: got %v, want not an SQLite audit database", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the file's mode: got %v (%v), want it untouched at 0644", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(path + "-shm"); err == nil {
		t.Error("a -shm file was created beside it")
	}
	// An empty file is a database yet to be written.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{Path: empty})
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	l.Close()
}
