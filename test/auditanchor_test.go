package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// stopDaemon stops d with SIGTERM and checks it exits 0.
func stopDaemon(t *testing.T, d *daemon) {
	t.Helper()
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(); code != 0 {
		t.Fatalf("daemon exit code after SIGTERM: got %d, want 0; stderr:\n%s", code, d.Stderr())
	}
}

// refusals makes n requests with a wrong token, each one an auth.failure
// record.
func refusals(t *testing.T, d *daemon, n int) {
	t.Helper()
	for range n {
		if status, _, body := d.MustGet(t, "/api/status", "wrong-"+randomHex(8), nil); status != http.StatusUnauthorized {
			t.Fatalf("wrong token: got %d, want 401; body %s", status, body)
		}
	}
}

// TestAuditRollbackRefused is the attack of issue #11 item 4 and its
// family: the audit database is rolled back to an older copy, truncated,
// deleted, or its anchor removed, while no daemon runs. The next daemon
// start (in the foreground, or the background start any command does)
// must refuse instead of re-anchoring to what it finds, and 'audit verify'
// must keep failing. A deliberate 'audit new-epoch' then lets the daemon
// start, recorded in the chain and in the anchor file, and verify says so.
func TestAuditRollbackRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper func(t *testing.T, db, old string)
		want   string // in the refusal
	}{
		{"restored older copy", func(t *testing.T, db, old string) {
			copyFileT(t, old, db)
		}, "behind its anchor"},
		{"truncated to nothing", func(t *testing.T, db, old string) {
			if err := os.Truncate(db, 0); err != nil {
				t.Fatal(err)
			}
		}, "behind its anchor"},
		{"deleted", func(t *testing.T, db, old string) {
			if err := os.Remove(db); err != nil {
				t.Fatal(err)
			}
		}, "missing"},
		{"anchor deleted", func(t *testing.T, db, old string) {
			if err := os.Remove(db + ".anchor"); err != nil {
				t.Fatal(err)
			}
		}, "no anchor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// 'daemon start' below uses daemon.listen: never the default
			// port, and never a daemon left behind.
			mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			t.Cleanup(func() { stopBackgroundDaemon(t, e) })
			db := filepath.Join(e.StateDir(), "audit.db")
			d := e.StartDaemon()
			refusals(t, d, 2)
			stopDaemon(t, d)
			old := filepath.Join(e.Root, "audit.db.old")
			copyFileT(t, db, old)

			d = e.StartDaemon()
			refusals(t, d, 3)
			stopDaemon(t, d)
			auditVerify(t, e, 0)

			tc.tamper(t, db, old)

			// The background start that every command relies on.
			stdout, stderr, code := e.Run("daemon", "start")
			checkOneLineError(t, stdout, stderr, code, []int{1}, tc.want, "audit new-epoch")
			// The foreground daemon.
			d = e.SpawnDaemon()
			if code := d.Wait(); code == 0 {
				t.Fatalf("daemon on a tampered audit log: exit 0, want a refusal")
			}
			if !strings.Contains(d.Stderr(), "audit new-epoch") {
				t.Errorf("daemon on a tampered audit log: stderr %q, want it to name 'ringlet audit new-epoch'", d.Stderr())
			}
			_, vstderr := auditVerify(t, e, 1)
			if !strings.Contains(vstderr, "NOT intact") {
				t.Errorf("audit verify after the refused starts: stderr %q, want NOT intact", vstderr)
			}
			// So does a key change, which starts the daemon to make it.
			if _, stderr, code := e.RunInput("sk-test-"+randomHex(8)+"\n", "keychain", "set", "x", "y"); code == 0 || !strings.Contains(stderr, "audit new-epoch") {
				t.Errorf("keychain set on a tampered audit log: exit %d, stderr %q; want a refusal naming audit new-epoch", code, stderr)
			}

			// A new epoch, on purpose.
			if _, stderr, code := e.Run("audit", "new-epoch"); code != 2 || !strings.Contains(stderr, "--reason") {
				t.Errorf("audit new-epoch without --reason: exit %d, stderr %q; want exit 2 asking for --reason", code, stderr)
			}
			stdout, stderr, code = e.Run("audit", "new-epoch", "--reason", "restored from backup in test")
			if code != 0 || !strings.Contains(stdout, "new epoch") {
				t.Fatalf("audit new-epoch: exit %d, stdout %q, stderr %q; want exit 0 and the new epoch said", code, stdout, stderr)
			}
			if _, stderr, code := e.Run("audit", "new-epoch", "--reason", "again"); code == 0 || !strings.Contains(stderr, "matches its anchor") {
				t.Errorf("audit new-epoch on an intact log: exit %d, stderr %q; want a refusal saying it matches its anchor", code, stderr)
			}
			vout, _ := auditVerify(t, e, 0)
			if !strings.Contains(vout, "new epoch") || !strings.Contains(vout, "restored from backup in test") {
				t.Errorf("audit verify after a new epoch: got %q, want the epoch and its reason named", vout)
			}
			d = e.StartDaemon()
			refusals(t, d, 1)
			stopDaemon(t, d)
			auditVerify(t, e, 0)
			recs, _ := queryRecords(t, e, "--kind", "audit.epoch")
			if len(recs) != 1 || recs[0].Actor != "cli" || !strings.Contains(string(recs[0].Detail), "restored from backup in test") {
				t.Errorf("audit.epoch records: got %+v, want one by the cli with the reason", recs)
			}
			anchor, err := os.ReadFile(db + ".anchor")
			if err != nil || !strings.Contains(string(anchor), "ringlet-audit-epoch") {
				t.Errorf("anchor file after a new epoch: got %q (%v), want an epoch line", anchor, err)
			}
		})
	}
}

// copyFileT copies src over dst in place (same inode when dst exists),
// as cp does.
func copyFileT(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// stopBackgroundDaemon stops a daemon that a command started in the
// background, if one runs (t.Context is over in cleanups, so not through
// the CLI).
func stopBackgroundDaemon(t *testing.T, e *env) {
	var st struct {
		PID int `json:"pid"`
	}
	data, err := os.ReadFile(e.StateFile())
	if err != nil || json.Unmarshal(data, &st) != nil || st.PID <= 0 || pidGone(st.PID) {
		return
	}
	syscall.Kill(st.PID, syscall.SIGTERM)
	if !waitFor(exitTimeout, func() bool { return pidGone(st.PID) }) {
		syscall.Kill(st.PID, syscall.SIGKILL)
		t.Errorf("background daemon (pid %d) still running %s after SIGTERM", st.PID, exitTimeout)
	}
}
