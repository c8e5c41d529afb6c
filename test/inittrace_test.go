package test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestInitAllocations keeps what runs before main small. The CLI and the
// daemon are one binary, so every package the daemon links is initialised
// for every command: work done in a package's variables or init() is paid
// by 'ringlet version' and by each daemon start, and what it allocates may
// stay on the daemon's heap. It reads the Go runtime's own account
// (GODEBUG=inittrace=1: bytes allocated by each package's initialisation,
// which, unlike its time, does not depend on the machine's load) and
// holds each of Ringlet's packages to 64 KiB and, in a build without the
// race detector (which allocates more), the whole binary to 3 MiB:
// 2.2 MiB today, 1.6 MiB of it the JSON Schema meta-schemas that
// santhosh-tekuri/jsonschema/v6 compiles (mcp-go imports it). Compile a
// pattern or build a table on first use (sync.OnceValue) instead.
func TestInitAllocations(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(ringletBin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ringlet version: %v\n%s", err, out)
	}
	const own, whole = 64 << 10, 3 << 20
	total, n := 0, 0
	for line := range strings.SplitSeq(string(out), "\n") {
		// init PKG @0.5 ms, 0.1 ms clock, 1234 bytes, 5 allocs
		f := strings.Fields(line)
		if len(f) < 11 || f[0] != "init" {
			continue
		}
		bytes, err := strconv.Atoi(f[7])
		if err != nil || f[8] != "bytes," {
			t.Fatalf("unexpected inittrace line %q", line)
		}
		n++
		total += bytes
		if strings.HasPrefix(f[1], "github.com/neullabs/ringlet/") && bytes > own {
			t.Errorf("package %s allocates %d bytes before main, want at most %d: move the work to its first use", f[1], bytes, own)
		}
	}
	if n == 0 {
		t.Fatalf("no inittrace lines in the output of ringlet version:\n%s", out)
	}
	if !raceEnabled && total > whole {
		t.Errorf("the binary's package initialisation allocates %d bytes, want at most %d", total, whole)
	}
	t.Logf("%d packages initialised, %d bytes allocated", n, total)
}
