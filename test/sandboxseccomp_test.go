//go:build linux

package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The seccomp filter, probed from inside `ringlet profiles run`: the
// ringlet binary makes each refused system call there (it is bound at its
// host path), and ordinary work still runs.
func TestSandboxSeccomp(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)

	t.Run("refused system calls", func(t *testing.T) {
		stdout, stderr, code := w.sh(t, "p", `grep '^Seccomp:' /proc/self/status; exec "$1" sandbox syscalls`, ringletBin)
		if code != 0 {
			t.Fatalf("got exit %d, want every probe to pass\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "Seccomp:\t2") {
			t.Errorf("got %q, want Seccomp: 2 (a filter) in /proc/self/status", stdout)
		}
		for _, call := range []string{"clone3", "clone CLONE_NEWUSER", "unshare", "io_uring_setup", "keyctl", "perf_event_open", "bpf", "ptrace", "ioctl TIOCSTI", "ioctl TIOCLINUX", "mount"} {
			if !strings.Contains(stdout, "PASS    "+call+" ") {
				t.Errorf("got %q, want %s refused", stdout, call)
			}
		}
	})

	t.Run("ordinary work runs", func(t *testing.T) {
		script := `set -e
printf 'a\nb\n' | sort -r | head -1
git init -q repo && cd repo && echo x > f && git add f
git -c user.email=a@example.com -c user.name=a commit -q -m one && git log --oneline | wc -l
cd ..
echo "py $(/usr/bin/python3 -c 'import threading, subprocess
t = threading.Thread(target=lambda: None); t.start(); t.join()
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())')"
`
		if _, err := os.Stat("/usr/bin/node"); err == nil {
			script += `echo "node $(/usr/bin/node -e 'require("child_process").exec("echo spawned", (e, out) => { require("fs").writeFileSync("n.txt", out); console.log(out.trim()) })')"
`
		}
		out := w.mustProbe(t, "p", script)
		for _, want := range []string{"b\n", "1\n", "py child"} {
			if !strings.Contains(out, want) {
				t.Errorf("got %q, want %q in it", out, want)
			}
		}
		if _, err := os.Stat("/usr/bin/node"); err == nil && !strings.Contains(out, "node spawned") {
			t.Errorf("got %q, want node to spawn a child", out)
		}
	})

	// A program of the other ABI (i386 on amd64) would pass a filter
	// that checks only the native one: it is killed.
	t.Run("32-bit programs are killed", func(t *testing.T) {
		if runtime.GOARCH != "amd64" {
			t.Skip("the 32-bit probe is built for amd64 hosts")
		}
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		src := filepath.Join(dir, "main.go")
		writeFile(t, src, "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"32-BIT RAN\\n\") }\n", 0o644)
		bin := filepath.Join(dir, "hello386")
		build := exec.Command("go", "build", "-o", bin, src)
		build.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0", "GO111MODULE=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build a 386 program: %v\n%s", err, out)
		}
		if out, err := exec.Command(bin).CombinedOutput(); err != nil || !strings.Contains(string(out), "32-BIT RAN") {
			t.Skipf("this kernel does not run 32-bit programs (%v, %q): nothing to probe", err, out)
		}
		// The workspace is visible inside; the program is copied there.
		inside := filepath.Join(w.ws, "hello386")
		data, _ := os.ReadFile(bin)
		writeFile(t, inside, string(data), 0o755)
		stdout, stderr, code := w.sh(t, "p", `"$1"; echo "exit $?"`, inside)
		if strings.Contains(stdout, "32-BIT RAN") || !strings.Contains(stdout, "exit 159") {
			t.Errorf("got %q (exit %d, stderr %q), want the 32-bit program killed by SIGSYS (exit 159)", stdout, code, stderr)
		}
	})
}
