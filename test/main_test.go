// Package test holds Ringlet's end-to-end suites. TestMain builds the real
// binary once; every test then runs it with its own HOME, XDG directories
// and port, and drives it the way users do: the CLI, plain HTTP and a
// WebSocket client.
package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ringletBin is the binary under test, built by TestMain.
var ringletBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ringlet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create build directory:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Readable and searchable by everyone, so one test can run the binary
	// as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: chmod build directory:", err)
		return 1
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ringletBin = filepath.Join(dir, "ringlet")
	args := []string{"build", "-o", ringletBin}
	if raceEnabled {
		// The daemon is then race-checked too: a data race makes it exit
		// 66 with a report on stderr, which fails the test that ran it.
		args = append(args, "-race")
	}
	args = append(args, "./cmd/ringlet")
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot is the directory of go.mod: from `go env GOMOD`, else the
// parent of this package's directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(gomod) {
		return filepath.Dir(gomod), nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	return root, nil
}
