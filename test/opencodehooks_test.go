package test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOpenCodeHookUnreachable runs the real OpenCode with the variables
// `profiles env` prints, in a HOME of its own, whose model asks its bash
// tool to delete a file. Ringlet's plugin, loaded from the profile's
// OPENCODE_CONFIG_DIR, asks the daemon first; with the daemon out of
// reach (RINGLET_HOOK_URL at a closed port) the call is refused: the file
// stays and the model gets the reason as the tool's error. The profile's
// hook would allow it: nothing but the unreachable daemon refuses.
func TestOpenCodeHookUnreachable(t *testing.T) {
	t.Parallel()
	requireNode(t)
	bin := nodeBin(t, "opencode")
	w := newProxyWorld(t)
	work := t.TempDir()
	victim := filepath.Join(work, "victim.txt")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := w.newProfile("opencode", "oc", "fake", "--model", "claude-sonnet-4-5", "--workspace", work)
	addHook(t, w.e, "oc", "true")
	s := w.startSession("oc")
	plugin, err := os.ReadFile(filepath.Join(w.unsandboxedHome("oc"), ".config", "opencode-ringlet", "plugin", "ringlet.js"))
	if err != nil || !strings.Contains(string(plugin), strconv.Quote(ringletBin)) {
		t.Errorf("Ringlet's OpenCode plugin in the profile's HOME: got %.200q (%v), want one that runs %s", plugin, err, ringletBin)
	}
	// OpenCode waits at start for npm to put its plugin package into each
	// config directory once a plugin is configured; the user's own (here
	// a fresh HOME) is marked as having it, as Ringlet marks the
	// profile's, since this machine need not reach npm.
	home := t.TempDir()
	userConfig := filepath.Join(home, ".config", "opencode")
	if err := os.MkdirAll(filepath.Join(userConfig, "node_modules"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(userConfig, "package-lock.json"), []byte(`{"packages":{"":{"dependencies":{"@opencode-ai/plugin":"*"}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := "rm victim.txt"
	w.fake.ToolUse.Store(&cmd)
	env := clientEnv(t, s, home, key, "RINGLET_HOOK_URL=http://127.0.0.1:"+strconv.Itoa(freePort(t)))
	runClientIn(t, work, env, 3*time.Minute, bin, append(slices.Clone(s.Launch.Args), "run", "delete victim.txt")...)
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("the file the refused call would delete: %v; want it kept", err)
	}
	want := "ringlet: blocked: could not reach the Ringlet daemon"
	var got []toolResult
	for _, r := range w.fake.Requests() {
		if tr, ok := toolResultOf(r.Body); ok {
			got = append(got, tr)
		}
	}
	if len(got) != 1 || !got[0].IsError || !strings.Contains(got[0].Text, want) {
		t.Errorf("tool results sent to the provider: got %+v, want one error with %q", got, want)
	}
	if recs := auditOf(t, w.e, "oc", "hook.decision,tool.call"); len(recs) != 0 {
		t.Errorf("audit: got %+v, want no hook.decision or tool.call: the daemon was never asked", recs)
	}
	w.assertNoKeyLeak(t, key)
}
