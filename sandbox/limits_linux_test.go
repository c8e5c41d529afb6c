package sandbox

import (
	"slices"
	"strconv"
	"testing"
)

// TestArgsLimits: the limits are on the command line: the helper before
// bwrap, a size before every tmpfs, a read-only /dev with a sized
// /dev/shm, and a read-only root once every mount point is made.
func TestArgsLimits(t *testing.T) {
	t.Parallel()
	for _, network := range []string{NetProvider, NetNone} {
		p := validPolicy(t, network)
		gitWorkspace(t, p)
		p.Limiter = "/usr/local/bin/ringlet"
		p.Limits = Limits{Procs: 300, Memory: 2 << 30, Tmp: 64 << 20}
		argv, err := p.Args("/usr/bin/bwrap")
		if err != nil {
			t.Fatal(err)
		}
		prefix := []string{p.Limiter, "sandbox", "rlimit", "--procs", "300", "--memory", strconv.Itoa(2 << 30), "--", "/usr/bin/bwrap"}
		if !slices.Equal(argv[:len(prefix)], prefix) {
			t.Fatalf("%s: got %q, want it to start with %q", network, argv, prefix)
		}
		ops, _ := parseArgs(t, argv[len(prefix)-1:])
		for i, o := range ops {
			// A tmpfs made read-only at once (git's guards) holds nothing.
			if o.flag != "--tmpfs" || i+1 < len(ops) && ops[i+1].is("--remount-ro", o.args[0]) {
				continue
			}
			want := strconv.Itoa(scaffoldTmp)
			switch o.args[0] {
			case "/tmp", "/var/tmp", "/dev/shm":
				want = strconv.Itoa(64 << 20)
			}
			if i == 0 || !ops[i-1].is("--size", want) {
				t.Errorf("%s: got %v before %v, want --size %s", network, ops[max(i-1, 0)], o, want)
			}
		}
		dev, shm, ro := indexOp(ops, "--dev", "/dev"), indexOp(ops, "--tmpfs", "/dev/shm"), indexOp(ops, "--remount-ro", "/dev")
		if dev < 0 || !(dev < shm && shm < ro) {
			t.Errorf("%s: got --dev at %d, --tmpfs /dev/shm at %d, --remount-ro /dev at %d; want them in that order", network, dev, shm, ro)
		}
		// The root goes read-only after the last mount (HOME, binds, the
		// socket), just before --chdir.
		if n := len(ops); n < 2 || !ops[n-2].is("--remount-ro", "/") {
			t.Errorf("%s: got %v before the last option, want --remount-ro /", network, ops[max(n-2, 0)])
		}

		argv, _, err = p.ArgsFD("/usr/bin/bwrap")
		if err != nil {
			t.Fatal(err)
		}
		if want := append(prefix, "--args", "3", "--"); !slices.Equal(argv[:len(want)], want) {
			t.Errorf("%s: ArgsFD: got %q, want it to start with %q", network, argv, want)
		}
	}
}
