package privatefile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// StampOf must make of a file what StampOfInfo makes of os.Lstat's
// FileInfo, for every kind of file: callers compare the two.
func TestStampOfMatchesLstat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	sticky := filepath.Join(dir, "sticky")
	if err := os.Mkdir(sticky, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o700|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	long := filepath.Join(dir, strings.Repeat("d", 200), strings.Repeat("e", 200))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, dir, sticky, link, fifo, sock, "/dev/null", long} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := StampOfInfo(fi)
		got, ok := StampOf(p)
		if !ok || got != want {
			t.Errorf("StampOf(%s) = %+v, %v; want %+v", p, got, ok, want)
		}
		// Both come from the stat: its mode and time as os reads them.
		if got.mode != fi.Mode() || got.mtime != fi.ModTime().UnixNano() {
			t.Errorf("StampOf(%s): mode %v, mtime %d; os.Lstat says %v, %d", p, got.mode, got.mtime, fi.Mode(), fi.ModTime().UnixNano())
		}
	}
	if _, ok := StampOf(filepath.Join(dir, "missing")); ok {
		t.Error("StampOf of a missing file: got ok, want not")
	}
	if _, ok := StampOf(file + "\x00x"); ok {
		t.Error("StampOf of a path with a NUL: got ok, want not")
	}
}

func TestStatFollowsAndLstatDoesNot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("xyz"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := Stat(link, &st); err != nil || st.Size != 3 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("Stat of a link: got size %d mode %o err %v, want the file's", st.Size, st.Mode, err)
	}
	if err := Lstat(link, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("Lstat of a link: got mode %o err %v, want the link's", st.Mode, err)
	}
	if err := Stat(filepath.Join(dir, "missing"), &st); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Stat of a missing file: got %v, want ENOENT", err)
	}
}

// The audit log's tamper checks and the profiles' change checks stat on
// every proxied request: os.Lstat allocates its FileInfo and the path as
// a C string, which StampOf and Stat do not.
func TestStatAllocations(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	for name, f := range map[string]func(){
		"StampOf": func() { StampOf(file) },
		"Stat":    func() { _ = Stat(file, &st) },
	} {
		// Other platforms fall back to syscall's stat (one allocation).
		want := 1.0
		if fastStat {
			want = 0
		}
		if got := testing.AllocsPerRun(100, f); got > want {
			t.Errorf("%s: got %v allocations, want at most %v", name, got, want)
		}
	}
}
