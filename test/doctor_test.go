package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type doctorReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Check, Status, Detail, Fix string
	} `json:"checks"`
}

// doctor runs `ringlet doctor --json` and returns its report and exit code.
func doctor(t *testing.T, e *env) (doctorReport, int) {
	t.Helper()
	stdout, stderr, code := e.Run("doctor", "--json")
	var r doctorReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("doctor --json: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	return r, code
}

// check returns the finding named name, failing the test without one.
func (r doctorReport) check(t *testing.T, name string) (status, detail, fix string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Check == name {
			return c.Status, c.Detail, c.Fix
		}
	}
	t.Fatalf("doctor: no %q check in %+v", name, r.Checks)
	return
}

// TestDoctor: doctor reports each part as a user meets it, with a fix for
// each problem, and exits 1 only when something fails.
func TestDoctor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// An agent on PATH: doctor finds it and asks it its version.
	bin := filepath.Join(e.Root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "claude"), []byte("#!/bin/sh\necho '9.9.9 (Claude Code)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.ExtraEnv = append(e.ExtraEnv, "PATH="+bin+":"+os.Getenv("PATH"))
	mustRun(t, e, "config", "set", "credentials.backend", "file")

	// No daemon yet: it says so and checks what it can without one.
	r, code := doctor(t, e)
	if code != 0 || !r.OK {
		t.Fatalf("doctor without a daemon: exit %d, %+v; want 0 (nothing fails)", code, r)
	}
	if st, detail, _ := r.check(t, "daemon"); st != "info" || !strings.Contains(detail, "not running") {
		t.Errorf("daemon: %s %q, want info: not running", st, detail)
	}
	if st, _, _ := r.check(t, "sandbox"); st != "ok" {
		t.Errorf("sandbox: %s, want ok (bubblewrap works here)", st)
	}
	if st, detail, _ := r.check(t, "agent claude"); st != "ok" || !strings.Contains(detail, "9.9.9 (Claude Code)") || !strings.Contains(detail, bin) {
		t.Errorf("agent claude: %s %q, want it found in %s with its version", st, detail, bin)
	}

	// With the daemon: keys and the audit log as it sees them.
	e.StartDaemon()
	r, code = doctor(t, e)
	if code != 0 {
		t.Fatalf("doctor with the daemon: exit %d, %+v", code, r)
	}
	if st, detail, _ := r.check(t, "daemon"); st != "ok" || !strings.Contains(detail, "pid ") {
		t.Errorf("daemon: %s %q, want ok with its pid", st, detail)
	}
	if st, detail, _ := r.check(t, "keys"); st != "ok" || !strings.Contains(detail, "credentials.backend is file") {
		t.Errorf("keys: %s %q, want ok: in a file because the setting says so", st, detail)
	}
	if st, detail, _ := r.check(t, "audit log"); st != "ok" || !strings.Contains(detail, "writable") || !strings.Contains(detail, filepath.Join(e.StateDir(), "audit.db")) {
		t.Errorf("audit log: %s %q, want ok, writable, at its path", st, detail)
	}
	if st, _, _ := r.check(t, "token file"); st != "ok" {
		t.Errorf("token file: %s, want ok", st)
	}

	// A token file others can read fails, with the command that fixes it.
	if err := os.Chmod(e.TokenFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, code = doctor(t, e)
	if code != 1 || r.OK {
		t.Errorf("doctor with a readable token file: exit %d, ok %v; want 1, false", code, r.OK)
	}
	if st, _, fix := r.check(t, "token file"); st != "fail" || !strings.Contains(fix, "chmod 600") || !strings.Contains(fix, "rotate-token") {
		t.Errorf("token file: %s, fix %q; want fail with chmod 600 and rotate-token", st, fix)
	}
	// The human form prints the same with the fix under it.
	stdout, _, code := e.Run("doctor")
	if code != 1 || !strings.Contains(stdout, "FAIL") || !strings.Contains(stdout, "fix: chmod 600") {
		t.Errorf("doctor: exit %d, stdout:\n%s\nwant FAIL and the fix", code, stdout)
	}
	if err := os.Chmod(e.TokenFile(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorNoKeyring: on a machine without a Secret Service, keys go to
// a 0600 file; doctor says so and how to move them to a keyring.
func TestDoctorNoKeyring(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ExtraEnv = append(e.ExtraEnv, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(e.Root, "no-bus"))
	e.StartDaemon()
	r, code := doctor(t, e)
	if code != 0 {
		t.Errorf("doctor: exit %d, want 0 (a file backend works)", code)
	}
	st, detail, fix := r.check(t, "keys")
	if st != "warn" || !strings.Contains(detail, "0600 file") || !strings.Contains(detail, "not reachable") || !strings.Contains(fix, "keychain migrate --to keyring") {
		t.Errorf("keys: %s %q fix %q; want warn: in a file because no keyring is reachable, with how to move them", st, detail, fix)
	}
}
