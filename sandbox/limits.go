package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Limits bound what one sandbox may use: its processes, its memory and
// the size of the temporary filesystems it can write. Zero fields take
// the defaults.
//
// Processes and memory are enforced by Mechanism:
//   - LimitSystemd: a transient systemd scope (cgroup v2) around bwrap,
//     with TasksMax=Procs and MemoryMax=Memory for the sandbox as a whole.
//   - LimitRlimit (the default, and what is left without a reachable
//     systemd manager): rlimits that bwrap and everything in the sandbox
//     inherit. RLIMIT_NPROC counts all the processes (threads) of the
//     user, not only the sandbox's, so it is set to the user's count when
//     the sandbox starts plus Procs: the sandbox may start Procs more,
//     fewer if the user's other programs start some meanwhile; root is
//     exempt from it. RLIMIT_DATA bounds each process's private writable
//     memory (not RLIMIT_AS, which V8's address-space reservations
//     exceed), so the sandbox as a whole may use up to Procs times Memory.
//
// Either way RLIMIT_CORE is 0 (a core dump of an agent would write its
// session token into the workspace), and each writable tmpfs (/tmp,
// /var/tmp, /dev/shm) is Tmp bytes at most; /home, /root and /run, which
// only hold mount points, are 16 MiB, and /dev is read-only.
type Limits struct {
	Procs  int   `json:"procs"`
	Memory int64 `json:"memory"`
	Tmp    int64 `json:"tmp"`
	// Mechanism is LimitRlimit ("" too) or LimitSystemd.
	Mechanism string `json:"mechanism"`
	// SystemdRun is systemd-run's path, with LimitSystemd.
	SystemdRun string `json:"-"`
	// SystemdUser runs the scope in the user's manager (systemd-run
	// --user), not the system's (root).
	SystemdUser bool `json:"-"`
	// Env is what systemd-run needs to reach the manager.
	Env []string `json:"-"`
	// Prlimit is util-linux's prlimit, which sets the rlimits and execs
	// bwrap with them (LimitRlimit on Linux); without it Ringlet's own
	// helper does.
	Prlimit string `json:"-"`
}

// Mechanisms.
const (
	LimitRlimit  = "rlimit"
	LimitSystemd = "systemd"
)

// Defaults: room for an agent, its language servers, a parallel build and
// a test run, and a bound on a runaway loop or fork bomb.
const (
	DefaultProcs  = 2048
	DefaultMemory = 8 << 30
	DefaultTmp    = 1 << 30
	scaffoldTmp   = 16 << 20
)

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.Procs <= 0 {
		l.Procs = DefaultProcs
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.Tmp <= 0 {
		l.Tmp = DefaultTmp
	}
	if l.Mechanism == "" {
		l.Mechanism = LimitRlimit
	}
	return l
}

// tmpfsArgs mounts the empty dirs (tmpfsDirs) with their sizes, and
// /dev/shm over a read-only /dev; it comes after --dev /dev.
func (l Limits) tmpfsArgs(dir string) []string {
	size := int64(scaffoldTmp)
	if dir == "/tmp" || dir == "/var/tmp" {
		size = l.WithDefaults().Tmp
	}
	return []string{"--size", strconv.FormatInt(size, 10), "--tmpfs", dir}
}

// devArgs bound /dev: bwrap's --dev is a tmpfs of the kernel's default
// size (half the RAM) that --size cannot change, so it is made read-only
// and /dev/shm, the one place in it programs write, a tmpfs of its own.
func (l Limits) devArgs() []string {
	return []string{"--size", strconv.FormatInt(l.WithDefaults().Tmp, 10), "--tmpfs", "/dev/shm", "--remount-ro", "/dev"}
}

// launcher returns what runs before bwrap to apply the limits: ringlet's
// rlimit helper, which sets the rlimits on itself and execs the rest (so
// they hold from bwrap's first instruction on), then, for a scope,
// systemd-run, which execs bwrap inside it. The helper also hands
// systemd-run the environment it needs to reach the manager (launchers
// start the sandbox with none); bwrap clears it (--clearenv). Without a
// helper (ringlet == ""), only the scope applies.
func (l Limits) launcher(ringlet string) []string {
	l = l.WithDefaults()
	var a []string
	if l.Mechanism == LimitRlimit && l.Prlimit != "" {
		// No Go runtime between the limits and bwrap: a Go helper (a race
		// build in the tests above all) may need memory after it has set
		// RLIMIT_DATA on itself.
		return l.prlimitArgs()
	}
	if ringlet != "" {
		a = append(a, ringlet, "sandbox", "rlimit")
		if l.Mechanism == LimitSystemd {
			for _, kv := range l.Env {
				a = append(a, "--setenv", kv)
			}
		} else {
			a = append(a, "--procs", strconv.Itoa(l.Procs), "--memory", strconv.FormatInt(l.Memory, 10))
		}
		a = append(a, "--")
	}
	if l.Mechanism == LimitSystemd {
		a = append(a, l.SystemdRun)
		if l.SystemdUser {
			a = append(a, "--user")
		}
		a = append(a, "--scope", "--quiet", "--collect",
			"-p", "TasksMax="+strconv.Itoa(l.Procs), "-p", "MemoryMax="+strconv.FormatInt(l.Memory, 10), "--")
	}
	return a
}

// limiterProbe is what DetectLimits looks at; tests replace it.
type limiterProbe struct {
	lookPath   func(string) (string, error)
	cgroupRoot string // where the cgroup v2 hierarchy is mounted
	euid       int
	getenv     func(string) string
	run        func(ctx context.Context, env []string, argv ...string) error
}

func (pr limiterProbe) detect() Limits {
	rl := Limits{Mechanism: LimitRlimit}
	if runtime.GOOS == "linux" {
		if p, err := pr.lookPath("prlimit"); err == nil {
			rl.Prlimit = p
		}
	}
	// cgroup v2 (unified): TasksMax and MemoryMax mean something there.
	if _, err := os.Stat(filepath.Join(pr.cgroupRoot, "cgroup.controllers")); err != nil {
		return rl
	}
	run, err := pr.lookPath("systemd-run")
	if err != nil {
		return rl
	}
	l := Limits{Mechanism: LimitSystemd, SystemdRun: run, SystemdUser: pr.euid != 0}
	if l.SystemdUser {
		// The user's manager is reached through the user bus or its
		// private socket, both under XDG_RUNTIME_DIR.
		dir := pr.getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			dir = "/run/user/" + strconv.Itoa(pr.euid)
		}
		l.Env = []string{"XDG_RUNTIME_DIR=" + dir}
		if bus := pr.getenv("DBUS_SESSION_BUS_ADDRESS"); bus != "" {
			l.Env = append(l.Env, "DBUS_SESSION_BUS_ADDRESS="+bus)
		}
	}
	// A manager that answers: a scope with the same properties, around
	// a program that does nothing.
	argv := append(Limits{Mechanism: LimitSystemd, SystemdRun: run, SystemdUser: l.SystemdUser, Procs: 64, Memory: 64 << 20}.launcher(""), "/bin/true")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pr.run(ctx, l.Env, argv...); err != nil {
		return rl
	}
	return l
}

var detectOnce = sync.OnceValue(func() Limits {
	return limiterProbe{
		lookPath: exec.LookPath, cgroupRoot: "/sys/fs/cgroup", euid: os.Geteuid(), getenv: os.Getenv,
		run: func(ctx context.Context, env []string, argv ...string) error {
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				return errors.Join(err, errors.New(string(out)))
			}
			return nil
		},
	}.detect()
})

// NewLimits are a profile's limits (0: the default), enforced the way
// this machine can (DetectLimits).
func NewLimits(procs int, memory, tmp int64) Limits {
	l := DetectLimits()
	l.Procs, l.Memory, l.Tmp = procs, memory, tmp
	return l
}

// DetectLimits returns how processes and memory can be bounded here: a
// systemd scope where cgroup v2 is mounted and a systemd manager (the
// user's, or the system's for root) starts one, else rlimits. It tries
// once per process. The caller sets the sizes on what it returns.
func DetectLimits() Limits {
	l := detectOnce()
	l.Env = append([]string(nil), l.Env...)
	return l
}

// prlimitArgs is util-linux's prlimit with the rlimits LimitRlimit sets
// (RLIMIT_CORE 0, RLIMIT_DATA Memory, RLIMIT_NPROC the user's tasks now
// plus Procs), soft and hard alike, each no higher than this process's
// hard limit (only root may raise one).
func (l Limits) prlimitArgs() []string {
	capped := func(res int, v uint64) string {
		if h, ok := hardLimit(res); ok {
			v = min(v, h)
		}
		return strconv.FormatUint(v, 10)
	}
	a := []string{l.Prlimit, "--core=0", "--data=" + capped(rlimitData, uint64(l.Memory))}
	if n, err := UserTasks(os.Getuid()); err == nil {
		a = append(a, "--nproc="+capped(rlimitNproc, uint64(n+l.Procs)))
	} else {
		// Unknown count: the bound alone, which counts the user's other
		// processes too; never none.
		a = append(a, "--nproc="+capped(rlimitNproc, uint64(l.Procs)))
	}
	return append(a, "--")
}
