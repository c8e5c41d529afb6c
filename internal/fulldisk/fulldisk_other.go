//go:build !linux

package fulldisk

import "testing"

// Dir skips the test: a tmpfs of the test's own takes Linux.
func Dir(t *testing.T, size int64) (dir string, ok bool) {
	t.Helper()
	t.Skip("no full disk to test on: it takes Linux")
	return "", false
}
