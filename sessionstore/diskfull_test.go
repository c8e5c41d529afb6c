package sessionstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/internal/fulldisk"
)

// TestPutDiskFull: on a file system that is full (a real one: a small
// tmpfs filled up), a Put fails with the file system's error, leaves no
// temporary file, and the session's file stays as it was, loadable; a
// new session is not stored at all. Once there is space again, the same
// Put succeeds.
func TestPutDiskFull(t *testing.T) {
	mnt, ok := fulldisk.Dir(t, 256<<10)
	if !ok {
		return
	}
	dir := filepath.Join(mnt, "sessions")
	d := NewDir(dir, Options{})
	v1 := sample(0)
	if err := d.Put(t.Context(), v1); err != nil {
		t.Fatalf("Put before the disk is full: %v", err)
	}
	before, err := os.ReadFile(d.file(v1.ID))
	if err != nil {
		t.Fatal(err)
	}
	free := fulldisk.Fill(t, mnt)

	v2 := v1
	v2.LastUsed, v2.Requests = v1.LastUsed.Add(time.Hour), 7
	err = d.Put(t.Context(), v2)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: got %v, want ENOSPC", err)
	}
	if err := d.Put(t.Context(), sample(1)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put of a new session on a full disk: got %v, want ENOSPC", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{v1.ID + ".json"}; !slices.Equal(names, want) {
		t.Errorf("store directory after the failed Puts: got %q, want %q (no temporary or partial file)", names, want)
	}
	after, err := os.ReadFile(d.file(v1.ID))
	if err != nil || !bytes.Equal(after, before) {
		t.Errorf("the session's file after the failed Put: changed (err %v), want it as before", err)
	}
	got, err := NewDir(dir, Options{}).Load(t.Context())
	if err != nil || len(got) != 1 || !got[0].LastUsed.Equal(v1.LastUsed) || got[0].Requests != v1.Requests {
		t.Fatalf("Load after the failed Put: got %+v, %v; want the first version", got, err)
	}

	free()
	if err := d.Put(t.Context(), v2); err != nil {
		t.Fatalf("Put once there is space again: %v", err)
	}
	got, err = NewDir(dir, Options{}).Load(t.Context())
	if err != nil || len(got) != 1 || !got[0].LastUsed.Equal(v2.LastUsed) {
		t.Errorf("Load after the Put with space: got %+v, %v; want the second version", got, err)
	}
}
