package hook

import (
	"strings"
	"testing"
)

// TestNewCodexHook: the command runs the adapter at the quoted path and
// blocks when it cannot run; the hash is Codex's for that command (the
// values were computed by an implementation of Codex's hashing apart
// from this one, and the first was accepted by the pinned Codex).
func TestNewCodexHook(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ringlet, command, hash string
	}{
		{"/usr/local/bin/ringlet", `'/usr/local/bin/ringlet' hook codex-pre-tool-use || exit 2`,
			"sha256:a3c778f323acb43c3fe04dcea301926b5cf2b17e56454497400d30961d4cce87"},
		{"/opt/it's <here> & ü/ringlet", `'/opt/it'\''s <here> & ü/ringlet' hook codex-pre-tool-use || exit 2`,
			"sha256:b43843c56d7088609ba89b0fcf05e66d635486dd7dcf50b7b65847d0094b91b9"},
	} {
		h, err := NewCodexHook(tt.ringlet)
		if err != nil {
			t.Fatalf("NewCodexHook(%q): %v", tt.ringlet, err)
		}
		if h.Command != tt.command || h.TrustedHash != tt.hash {
			t.Errorf("NewCodexHook(%q): got %q, %s; want %q, %s", tt.ringlet, h.Command, h.TrustedHash, tt.command, tt.hash)
		}
		if !IsCodexEntry(h.Group()) {
			t.Errorf("IsCodexEntry(%v): got false, want true", h.Group())
		}
	}
	for _, bad := range []string{"", "ringlet", "/bin/ring\nlet", "/bin/ring\u2028let", "/bin/\x7f"} {
		if _, err := NewCodexHook(bad); err == nil || !strings.Contains(err.Error(), "plain absolute path") {
			t.Errorf("NewCodexHook(%q): got %v, want a refusal", bad, err)
		}
	}
	for _, g := range []any{nil, "x", map[string]any{"hooks": []any{map[string]any{"command": "my-check"}}}} {
		if IsCodexEntry(g) {
			t.Errorf("IsCodexEntry(%v): got true, want false", g)
		}
	}
}
