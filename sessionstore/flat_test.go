package sessionstore

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// written is how many bytes this process has written so far (wchar of
// /proc/self/io: every write(2), whatever the file).
func written(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("wchar: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no wchar: %s", data)
	return 0
}

// TestPutFlat: one Put writes as many bytes with 1,000 sessions stored as
// with 10: a change to one session costs the same whatever the others. It
// counts bytes, not time, so load on the machine does not sway it. Not
// parallel: the count is the whole process's.
func TestPutFlat(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts the bytes written through /proc/self/io")
	}
	dir := filepath.Join(t.TempDir(), "sessions")
	f, _ := newDir(dir, "")
	fill := func(from, to int) {
		var ss []Session
		for i := from; i < to; i++ {
			ss = append(ss, sample(i))
		}
		if err := f.Put(t.Context(), ss...); err != nil {
			t.Fatal(err)
		}
	}
	// One Put of an existing session's renewal, as the gateway makes.
	onePut := func(step int64) int64 {
		s := sample(0)
		s.Requests = step
		before := written(t)
		if err := f.Put(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		return written(t) - before
	}
	fill(0, 10)
	small := onePut(1)
	fill(10, 1000)
	large := onePut(2)
	if small <= 0 || large > small+small/10 {
		t.Errorf("bytes written by one Put: %d with 1,000 sessions stored, %d with 10; want the same", large, small)
	}
}
