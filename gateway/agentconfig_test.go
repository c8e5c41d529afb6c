package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/agenthome"
	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
)

// TestAgentConfigResetFailsClosed: a sandboxed session whose agent config
// must be reset is refused while the reset cannot be recorded, and
// nothing is changed; once it can, the reset is recorded before the
// session starts, and the session carries the line for the user.
func TestAgentConfigResetFailsClosed(t *testing.T) {
	t.Parallel()
	w := newAuditFailWorld(t)
	home := w.profiles.Home("work")
	rc := filepath.Join(home, ".bashrc")
	if err := os.WriteFile(rc, []byte("touch /tmp/planted\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.aud.setDown(true)
	if _, _, err := w.s.sessions.startFor(t.Context(), "work", terms{sandboxed: true}, audit.ActorAdmin); err == nil {
		t.Fatal("a sandboxed session with the audit log down: got one, want it refused")
	}
	if data, err := os.ReadFile(rc); err != nil || string(data) != "touch /tmp/planted\n" {
		t.Errorf(".bashrc: got %q %v, want it untouched while the reset cannot be recorded", data, err)
	}
	w.aud.setDown(false)
	before := w.aud.count()
	sess, _, err := w.s.sessions.startFor(t.Context(), "work", terms{sandboxed: true}, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(rc); !os.IsNotExist(err) {
		t.Errorf(".bashrc: got %v, want it removed (never approved)", err)
	}
	if got := sess.warnings(nil); len(got) != 1 || !strings.Contains(got[0], "~/.bashrc") || !strings.Contains(got[0], "ringlet profiles config approve work") {
		t.Errorf("warnings: got %q, want one line naming .bashrc and how to approve", got)
	}
	w.aud.mu.Lock()
	recs := w.aud.recs[before:]
	w.aud.mu.Unlock()
	if len(recs) < 3 || recs[0].Kind != audit.KindAgentConfigReset || recs[1].Kind != audit.KindAgentConfigReset || recs[2].Kind != audit.KindSessionStart {
		var kinds []string
		for _, r := range recs {
			kinds = append(kinds, r.Kind)
		}
		t.Errorf("records: got %q, want agent.config.reset twice, then session.start", kinds)
	}
	// An unsandboxed session's HOME is the user's: nothing reset there.
	uh := w.profiles.UnsandboxedHome("work")
	if err := os.MkdirAll(uh, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(uh, ".bashrc"), []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.s.sessions.startFor(t.Context(), "work", terms{}, audit.ActorAdmin); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(uh, ".bashrc")); string(data) != "mine\n" {
		t.Errorf("unsandboxed .bashrc: got %q, want it kept", data)
	}
}

// TestConfigApproveRoute: POST /api/profiles/{alias}/config/approve keeps
// what is there, records it, and refuses a profile that does not exist or
// a symbolic link in a place it approves.
func TestConfigApproveRoute(t *testing.T) {
	t.Parallel()
	w := newAuditFailWorld(t)
	home := w.profiles.Home("work")
	if err := os.WriteFile(filepath.Join(home, ".bashrc"), []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	status, body := w.do(t, http.MethodPost, "/api/profiles/work/config/approve", testToken, "")
	var out api.ConfigApproved
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil || len(out.Items) != 1 || out.Items[0] != ".bashrc" {
		t.Fatalf("approve: got %d %s, want 200 with .bashrc", status, body)
	}
	a, err := agenthome.LoadApproved(w.profiles.StateDir("work"), "generic")
	if err != nil || string(a.Items[".bashrc"]) != "mine\n" {
		t.Errorf("kept approval: got %v %v, want .bashrc", a.Items, err)
	}
	if status, body := w.do(t, http.MethodPost, "/api/profiles/nope/config/approve", testToken, ""); status != http.StatusNotFound {
		t.Errorf("unknown profile: got %d %s, want 404", status, body)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(home, ".profile")); err != nil {
		t.Fatal(err)
	}
	if status, body := w.do(t, http.MethodPost, "/api/profiles/work/config/approve", testToken, ""); status != http.StatusConflict || !strings.Contains(string(body), "symbolic link") {
		t.Errorf("a symbolic link: got %d %s, want 409 naming it", status, body)
	}
	w.aud.setDown(true)
	if err := os.Remove(filepath.Join(home, ".profile")); err != nil {
		t.Fatal(err)
	}
	if status, _ := w.do(t, http.MethodPost, "/api/profiles/work/config/approve", testToken, ""); status != http.StatusServiceUnavailable {
		t.Errorf("audit down: got %d, want 503", status)
	}
}
