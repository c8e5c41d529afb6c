package keystore

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbeSilentBus: a session bus socket that accepts connections but
// never answers must not hang the probe (and so the daemon's start).
func TestProbeSilentBus(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	// Unbounded, this call would hang until go test's own timeout.
	absent, err := probeKeyring("unix:path=" + sock)
	if err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("got absent %q, err %v; want an error saying the bus did not answer", absent, err)
	}
}
