// Package fulldisk gives tests a file system that really fills up: a
// small tmpfs, mounted in a mount namespace of the test's own so that
// nothing outside the test sees it and it goes away with the test.
package fulldisk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Fill fills the file system dir is on: it writes a file there until the
// file system refuses with ENOSPC. The returned func frees the space.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n := len(chunk); n > 0; {
		_, err := f.Write(chunk[:n])
		if errors.Is(err, syscall.ENOSPC) {
			// Again with less, down to a byte: the file system's
			// last page fills too.
			n /= 2
			continue
		}
		if err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	return func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("free %s: %v", dir, err)
		}
	}
}
