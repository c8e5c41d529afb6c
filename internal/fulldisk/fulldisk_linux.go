package fulldisk

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// childEnv marks the test process that Dir re-runs in a mount namespace.
const childEnv = "RINGLET_FULLDISK_CHILD"

// cannotMount starts the line by which the re-run test says why it could
// not mount a tmpfs.
const cannotMount = "fulldisk: cannot mount a tmpfs: "

// Dir returns a directory on a tmpfs of size bytes of its own. Mounting
// one takes root (CAP_SYS_ADMIN), and a mount namespace of the test's
// own, which a process with threads cannot enter: so Dir re-runs the
// calling test, alone, in a child process that has one. In the test
// process as started, Dir waits for that child, reports its outcome as
// the test's own and returns ok false: the caller returns at once. In the
// child it mounts the tmpfs and returns ok true. Where no tmpfs can be
// mounted the test is skipped, saying why, but fails under CI=true
// (where the tests run as root). Only a top-level test can call it.
func Dir(t *testing.T, size int64) (dir string, ok bool) {
	t.Helper()
	if os.Getenv(childEnv) == "1" {
		dir = t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
			fmt.Println(cannotMount + err.Error())
			t.SkipNow()
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
		return dir, true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("fulldisk.Dir: %s is a subtest; call it from a top-level test", t.Name())
	}
	//nolint:gosec // G702: re-runs this very test binary, for the one test named
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	// Go makes the new namespace's mounts private before it runs the
	// child: the tmpfs is seen by no other process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	reason := ""
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		reason = "a mount namespace: " + err.Error()
	}
	for line := range strings.Lines(string(out)) {
		if r, found := strings.CutPrefix(line, cannotMount); found {
			reason = strings.TrimSpace(r)
		}
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no full disk to test on under CI: cannot mount a tmpfs (%s); run the tests as root", reason)
		}
		t.Skipf("no full disk to test on: cannot mount a tmpfs (%s); run as root to test", reason)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("%s on a tmpfs of its own: %v\n%s", t.Name(), err, out)
	}
	t.Logf("passed on a tmpfs of its own, in a child process:\n%s", out)
	return "", false
}
