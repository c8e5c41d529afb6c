package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestLimitsLauncher(t *testing.T) {
	t.Parallel()
	const ringlet = "/opt/ringlet/bin/ringlet"
	for _, c := range []struct {
		name    string
		l       Limits
		ringlet string
		want    []string
	}{
		{"rlimit defaults", Limits{}, ringlet,
			[]string{ringlet, "sandbox", "rlimit", "--procs", strconv.Itoa(DefaultProcs), "--memory", strconv.FormatInt(DefaultMemory, 10), "--"}},
		{"rlimit set", Limits{Procs: 100, Memory: 1 << 30, Mechanism: LimitRlimit}, ringlet,
			[]string{ringlet, "sandbox", "rlimit", "--procs", "100", "--memory", "1073741824", "--"}},
		{"no helper", Limits{Procs: 100}, "", nil},
		{"systemd, user", Limits{Procs: 100, Memory: 1 << 30, Mechanism: LimitSystemd, SystemdRun: "/usr/bin/systemd-run", SystemdUser: true,
			Env: []string{"XDG_RUNTIME_DIR=/run/user/1000"}}, ringlet,
			[]string{ringlet, "sandbox", "rlimit", "--setenv", "XDG_RUNTIME_DIR=/run/user/1000", "--",
				"/usr/bin/systemd-run", "--user", "--scope", "--quiet", "--collect", "-p", "TasksMax=100", "-p", "MemoryMax=1073741824", "--"}},
		{"systemd, root", Limits{Mechanism: LimitSystemd, SystemdRun: "/usr/bin/systemd-run"}, ringlet,
			[]string{ringlet, "sandbox", "rlimit", "--",
				"/usr/bin/systemd-run", "--scope", "--quiet", "--collect", "-p", "TasksMax=" + strconv.Itoa(DefaultProcs), "-p", "MemoryMax=" + strconv.FormatInt(DefaultMemory, 10), "--"}},
	} {
		if got := c.l.launcher(c.ringlet); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// fakeProbe is a machine with or without cgroup v2, systemd-run and a
// manager that answers.
func fakeProbe(t *testing.T, cgroup2, haveRun, runOK bool, euid int, env map[string]string) (limiterProbe, *[]string) {
	root := t.TempDir()
	if cgroup2 {
		if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var ran []string
	return limiterProbe{
		cgroupRoot: root, euid: euid,
		lookPath: func(name string) (string, error) {
			if haveRun && name == "systemd-run" {
				return "/usr/bin/systemd-run", nil
			}
			return "", errors.New("not found")
		},
		getenv: func(k string) string { return env[k] },
		run: func(_ context.Context, e []string, argv ...string) error {
			ran = append(append(ran, e...), argv...)
			if !runOK {
				return errors.New("Failed to connect to bus: No medium found")
			}
			return nil
		},
	}, &ran
}

func TestDetectLimits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                    string
		cgroup2, haveRun, runOK bool
		euid                    int
		env                     map[string]string
		want                    Limits
	}{
		{"cgroup v1", false, true, true, 1000, nil, Limits{Mechanism: LimitRlimit}},
		{"no systemd-run", true, false, true, 1000, nil, Limits{Mechanism: LimitRlimit}},
		{"no manager answers", true, true, false, 1000, nil, Limits{Mechanism: LimitRlimit}},
		{"user manager", true, true, true, 1000, nil,
			Limits{Mechanism: LimitSystemd, SystemdRun: "/usr/bin/systemd-run", SystemdUser: true, Env: []string{"XDG_RUNTIME_DIR=/run/user/1000"}}},
		{"user manager, session bus", true, true, true, 1000, map[string]string{"XDG_RUNTIME_DIR": "/run/user/7", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/7/bus"},
			Limits{Mechanism: LimitSystemd, SystemdRun: "/usr/bin/systemd-run", SystemdUser: true, Env: []string{"XDG_RUNTIME_DIR=/run/user/7", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/7/bus"}}},
		{"root, system manager", true, true, true, 0, nil, Limits{Mechanism: LimitSystemd, SystemdRun: "/usr/bin/systemd-run"}},
	} {
		pr, ran := fakeProbe(t, c.cgroup2, c.haveRun, c.runOK, c.euid, c.env)
		got := pr.detect()
		if got.Mechanism != c.want.Mechanism || got.SystemdRun != c.want.SystemdRun || got.SystemdUser != c.want.SystemdUser || !slices.Equal(got.Env, c.want.Env) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
		// The trial is the real command line around /bin/true.
		if c.cgroup2 && c.haveRun {
			want := append(append([]string{}, c.want.Env...), "/usr/bin/systemd-run")
			if c.euid != 0 {
				want = append(want, "--user")
			}
			want = append(want, "--scope", "--quiet", "--collect", "-p", "TasksMax=64", "-p", "MemoryMax=67108864", "--", "/bin/true")
			if c.runOK && !slices.Equal(*ran, want) {
				t.Errorf("%s: tried %q, want %q", c.name, *ran, want)
			}
		} else if len(*ran) != 0 {
			t.Errorf("%s: ran %q, want nothing run", c.name, *ran)
		}
	}
}

// TestPrlimitLauncher: where util-linux's prlimit is found, it sets the
// rlimits and execs bwrap (no Go runtime runs between them): soft and
// hard alike, RLIMIT_NPROC relative to the user's tasks now, none above
// this process's hard limit.
func TestPrlimitLauncher(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("prlimit is util-linux's")
	}
	oldTasks, oldHard := userTasksFunc, hardLimit
	t.Cleanup(func() { userTasksFunc, hardLimit = oldTasks, oldHard })
	userTasksFunc = func(int) (int, error) { return 40, nil }
	hardLimit = func(res int) (uint64, bool) {
		if res == rlimitNproc {
			return 1000, true
		}
		return 1 << 62, true
	}
	l := Limits{Procs: 100, Memory: 256 << 20, Mechanism: LimitRlimit, Prlimit: "/usr/bin/prlimit"}
	want := []string{"/usr/bin/prlimit", "--core=0", "--data=268435456", "--nproc=140", "--"}
	if got := l.launcher("/opt/ringlet"); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	l.Procs = 5000
	if got := l.launcher("/opt/ringlet"); got[3] != "--nproc=1000" {
		t.Errorf("above the hard limit: got %q, want --nproc=1000", got[3])
	}
	// The real thing: prlimit runs and bwrap would inherit the limits.
	if p, err := exec.LookPath("prlimit"); err == nil {
		userTasksFunc, hardLimit = oldTasks, oldHard
		argv := append(Limits{Memory: 512 << 20, Mechanism: LimitRlimit, Prlimit: p}.launcher(""), "/bin/sh", "-c", "ulimit -d; ulimit -c")
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil || strings.Fields(string(out))[0] != strconv.Itoa(512<<10) || strings.Fields(string(out))[1] != "0" {
			t.Errorf("%q: got %q (%v), want RLIMIT_DATA 512M (in KiB) and no core dumps", argv, out, err)
		}
	} else if os.Getenv("CI") == "true" {
		t.Errorf("prlimit (util-linux) is not installed: %v", err)
	}
}
