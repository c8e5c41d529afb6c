//go:build linux

package test

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// forkProbe forks up to 300 children that wait to be killed and reports
// how many it got, and the errno that stopped it; then it kills them. A
// bounded loop, not a fork bomb: without a limit it ends at 300 and the
// machine stays healthy.
const forkProbe = `
import os, signal, time
pids, err = [], 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.kill(p, signal.SIGKILL)
for p in pids:
    os.waitpid(p, 0)
print("FORKED", len(pids), "ERRNO", err)
`

// TestSandboxLimits: a profile's --max-procs, --max-memory and --tmp-size
// bound its agent. Processes are bounded by RLIMIT_NPROC here (no systemd
// user manager), which the kernel does not apply to root: the world runs
// as an unprivileged user.
func TestSandboxLimits(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nobody)}
	}
	w := newSBWorld(t, cred)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("the probes need /usr/bin/python3")
	}

	// --network none: nothing of Ringlet's runs inside, so the limits
	// are the probe's alone. (With the provider network the forwarder,
	// a Go program, runs inside too; under -race it is built with
	// ThreadSanitizer, whose shadow memory no RLIMIT_DATA of 256M holds.)
	stdout, stderr, code := w.e.Run("profiles", "set", "p", "--max-procs", "64", "--max-memory", "256M", "--tmp-size", "8M", "--network", "none")
	if code != 0 {
		t.Fatalf("profiles set: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if stdout, stderr, code := w.e.Run("profiles", "set", "q", "--network", "none"); code != 0 {
		t.Fatalf("profiles set: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Run("inspect shows them", func(t *testing.T) {
		out := w.mustRun(t, "profiles", "inspect", "p", "--json")
		var v struct {
			MaxProcs  int   `json:"max_procs"`
			MaxMemory int64 `json:"max_memory"`
			TmpSize   int64 `json:"tmp_size"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.MaxProcs != 64 || v.MaxMemory != 256<<20 || v.TmpSize != 8<<20 {
			t.Errorf("inspect --json: got %+v (%v), want 64, 256M, 8M", v, err)
		}
		out = w.mustRun(t, "profiles", "inspect", "p")
		for _, want := range []string{"max_procs", "64", "max_memory", "256M", "tmp_size", "8M"} {
			if !strings.Contains(out, want) {
				t.Errorf("inspect: got %q, want %q in it", out, want)
			}
		}
		out = w.mustRun(t, "profiles", "inspect", "q")
		if !strings.Contains(out, "default (2048)") || !strings.Contains(out, "default (8G)") || !strings.Contains(out, "default (1G)") {
			t.Errorf("inspect of a profile without limits: got %q, want the defaults shown", out)
		}
	})

	t.Run("a fork bomb is bounded", func(t *testing.T) {
		out := w.mustProbe(t, "p", `exec /usr/bin/python3 -c "$1"`, forkProbe)
		m := regexp.MustCompile(`FORKED (\d+) ERRNO (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("got %q, want the probe's count", out)
		}
		n, _ := strconv.Atoi(m[1])
		if n > 64 || m[2] != strconv.Itoa(int(syscall.EAGAIN)) {
			t.Errorf("got %d children and errno %s, want at most 64 and then EAGAIN", n, m[2])
		}
		// Control: the other profile, with the default (2048), forks all.
		out = w.mustProbe(t, "q", `exec /usr/bin/python3 -c "$1"`, forkProbe)
		if !strings.Contains(out, "FORKED 300 ERRNO 0") {
			t.Errorf("profile q: got %q, want all 300 children under the default limit", out)
		}
	})

	t.Run("writing past the tmp size fails", func(t *testing.T) {
		out := w.mustProbe(t, "p", `
for d in /tmp /var/tmp /dev/shm; do
	# The error goes to a variable: the full filesystem cannot take it.
	err=$(head -c 16777216 /dev/zero 2>&1 > "$d/fill") && echo "WROTE $d"
	case $err in *"No space left"*) echo "FULL $d";; esac
	rm -f "$d/fill"
done
touch /.x 2>/dev/null && echo "WROTE /"
touch /dev/.x 2>/dev/null && echo "WROTE /dev"
head -c 1048576 /dev/zero > /tmp/small && echo "SMALL OK"
exit 0`)
		for _, d := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
			if strings.Contains(out, "WROTE "+d) || !strings.Contains(out, "FULL "+d) {
				t.Errorf("got %q, want writing 16M to %s to fail with ENOSPC", out, d)
			}
		}
		if strings.Contains(out, "WROTE /\n") || strings.Contains(out, "WROTE /dev\n") || !strings.Contains(out, "SMALL OK") {
			t.Errorf("got %q, want / and /dev read-only and a small write to /tmp to work", out)
		}
	})

	t.Run("memory is bounded", func(t *testing.T) {
		out := w.mustProbe(t, "p", `exec /usr/bin/python3 -c '
try:
    b = bytearray(512 << 20)
    print("ALLOCATED")
except MemoryError:
    print("REFUSED")
small = bytearray(16 << 20)
print("SMALL OK")'`)
		if !strings.Contains(out, "REFUSED") || !strings.Contains(out, "SMALL OK") {
			t.Errorf("got %q, want 512M refused and 16M allowed under --max-memory 256M", out)
		}
		out = w.mustProbe(t, "q", `exec /usr/bin/python3 -c 'b = bytearray(512 << 20); print("ALLOCATED")'`)
		if !strings.Contains(out, "ALLOCATED") {
			t.Errorf("profile q: got %q, want 512M under the default limit", out)
		}
	})

	t.Run("bad values are refused", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--max-procs", "3"}, "invalid max-procs 3: want 32 to"},
			{[]string{"--max-memory", "4X"}, `--max-memory: invalid size "4X"`},
			{[]string{"--max-memory", "1M"}, "invalid max-memory 1M: want 64M"},
			{[]string{"--tmp-size", "-1G"}, `--tmp-size: invalid size "-1G"`},
		} {
			_, stderr, code := w.e.Run(append([]string{"profiles", "set", "p"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("profiles set %q: got exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
			}
		}
		_, stderr, code := w.e.Run("profiles", "create", "generic", "lim", "--provider", "fake", "--command", "/bin/sh", "--skip-key", "--tmp-size", "1.5G")
		if code != 2 || !strings.Contains(stderr, `--tmp-size: invalid size "1.5G"`) {
			t.Errorf("profiles create --tmp-size 1.5G: got exit %d, stderr %q; want exit 2", code, stderr)
		}
		w.mustRun(t, "profiles", "create", "generic", "lim", "--provider", "fake", "--command", "/bin/sh", "--skip-key", "--max-procs", "100", "--tmp-size", "2G")
		if out := w.mustRun(t, "profiles", "inspect", "lim"); !strings.Contains(out, "100") || !strings.Contains(out, "2G") {
			t.Errorf("inspect after create with limits: got %q, want 100 and 2G", out)
		}
		// The API refuses them too, with a JSON error.
		status, _, body := w.d.MustDo(t, "PATCH", "/api/profiles/p", w.e.Token(), `{"max_procs": 1}`)
		if status != 400 || !strings.Contains(string(body), `"code":"invalid_profile"`) {
			t.Errorf("PATCH max_procs 1: got %d %s, want 400 invalid_profile", status, body)
		}
	})
}
