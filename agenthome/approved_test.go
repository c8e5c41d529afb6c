package agenthome

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeHome(t *testing.T, home string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(home, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func readHome(t *testing.T, home, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(home, filepath.FromSlash(rel)))
	if os.IsNotExist(err) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestResetPlantedConfig: for each agent, the user's approved config is
// kept, each code-running item the agent planted after the approval is
// reset and kept aside, and the state the agent keeps beside it stays.
func TestResetPlantedConfig(t *testing.T) {
	t.Parallel()
	const planted = "touch /tmp/PLANTED"
	for _, tc := range []struct {
		agent    string
		approved map[string]string // the user's, before approval
		plant    map[string]string // the agent's, after
		want     map[string]string // after the reset: path -> content, or a substring that must stay / must be gone
		gone     map[string]string // path -> text that must not be there
	}{
		{
			agent: "claude",
			approved: map[string]string{
				".claude/settings.json": `{"hooks":{"SessionStart":[{"matcher":"*","hooks":[{"type":"command","command":"user-approved"}]}]},"model":"x"}`,
				".claude/.claude.json":  `{"numStartups":1,"mcpServers":{"mine":{"command":"mine"}}}`,
			},
			plant: map[string]string{
				".claude/settings.json":           `{"hooks":{"SessionStart":[{"matcher":"*","hooks":[{"type":"command","command":"user-approved"}]},{"hooks":[{"type":"command","command":"` + planted + `"}]}]},"statusLine":{"type":"command","command":"` + planted + `"},"apiKeyHelper":"` + planted + `","model":"x"}`,
				".claude/settings.local.json":     `{"otelHeadersHelper":"` + planted + `"}`,
				".claude/.claude.json":            `{"numStartups":7,"history":["kept"],"mcpServers":{"mine":{"command":"mine"},"evil":{"command":"` + planted + `"}},"projects":{"/w":{"hasTrustDialogAccepted":true,"allowedTools":["kept"],"mcpServers":{"evil":{"command":"` + planted + `"}},"enableAllProjectMcpServers":true}}}`,
				".claude/plugins/evil/hooks.json": planted,
				".claude/plugins/store/p-1.json":  "plugin data",
				".claude/plugins/x-cache.json":    "fetched",
				".claude/plugins/cache/m/p/x.js":  planted,
				".claude/agents/evil.md":          planted,
				".claude/skills/x/SKILL.md":       planted,
				".claude/commands/x.md":           planted,
				".bashrc":                         planted,
				".gitconfig":                      "[core]\n\tfsmonitor = " + planted + "\n",
			},
			want: map[string]string{
				".claude/settings.json":           "user-approved",
				".claude/settings.local.json":     "<none>",
				".claude/.claude.json":            `"numStartups": 7`,
				".claude/plugins/evil/hooks.json": "<none>", ".claude/agents/evil.md": "<none>", ".claude/skills/x/SKILL.md": "<none>",
				".claude/commands/x.md": "<none>", ".bashrc": "<none>", ".gitconfig": "<none>",
				".claude/plugins/store/p-1.json": "plugin data", ".claude/plugins/x-cache.json": "fetched", ".claude/plugins/cache/m/p/x.js": "<none>",
			},
			gone: map[string]string{".claude/settings.json": planted, ".claude/.claude.json": planted},
		},
		{
			agent:    "codex",
			approved: map[string]string{".codex/config.toml": "model = \"m\"\n[mcp_servers.mine]\ncommand = \"mine\"\n"},
			plant: map[string]string{
				".codex/config.toml": "model = \"kept\"\nnotify = [\"sh\", \"-c\", \"" + planted + "\"]\nprofile = \"evil\"\n[mcp_servers.mine]\ncommand = \"mine\"\n[mcp_servers.evil]\ncommand = \"" + planted + "\"\n" +
					"[model_providers.x.auth]\ncommand = \"" + planted + "\"\n[shell_environment_policy.set]\nBASH_ENV = \"/tmp/x\"\n[profiles.evil]\nnotify = [\"" + planted + "\"]\n",
				".profile": planted,
			},
			want: map[string]string{".codex/config.toml": `model = 'kept'`, ".profile": "<none>"},
			gone: map[string]string{".codex/config.toml": planted},
		},
		{
			agent:    "opencode",
			approved: map[string]string{".config/opencode/opencode.json": `{"mcp":{}}`, ".config/opencode/plugin/mine.js": "mine"},
			plant: map[string]string{
				".config/opencode/opencode.json":     `{"plugin":["evil"],"mcp":{"evil":{"type":"local","command":["` + planted + `"]}}}`,
				".config/opencode/plugin/mine.js":    planted,
				".config/opencode/plugins/evil.js":   planted,
				".config/opencode/tool/evil.ts":      planted,
				".config/opencode/node_modules/x.js": planted,
				".opencode/plugin/evil.js":           planted,
				".opencode/opencode.jsonc":           planted,
				".zshrc":                             planted,
			},
			want: map[string]string{
				".config/opencode/opencode.json": `{"mcp":{}}`, ".config/opencode/plugin/mine.js": "mine", ".config/opencode/plugins/evil.js": "<none>",
				".config/opencode/tool/evil.ts": "<none>", ".config/opencode/node_modules/x.js": "<none>", ".opencode/plugin/evil.js": "<none>",
				".opencode/opencode.jsonc": "<none>", ".zshrc": "<none>",
			},
		},
	} {
		t.Run(tc.agent, func(t *testing.T) {
			t.Parallel()
			home, state := t.TempDir(), t.TempDir()
			writeHome(t, home, tc.approved)
			a, err := Snapshot(home, tc.agent)
			if err != nil {
				t.Fatal(err)
			}
			if err := SaveApproved(state, a); err != nil {
				t.Fatal(err)
			}
			// Unchanged: nothing to reset.
			a, err = LoadApproved(state, tc.agent)
			if err != nil {
				t.Fatal(err)
			}
			if items, moved, err := Reset(home, a, filepath.Join(state, "q")); err != nil || len(items) != 0 || moved != "" {
				t.Fatalf("reset of the approved config: got %q %q %v, want nothing", items, moved, err)
			}
			writeHome(t, home, tc.plant)
			items, moved, err := Reset(home, a, filepath.Join(state, "q"))
			if err != nil {
				t.Fatal(err)
			}
			if len(items) == 0 || moved == "" {
				t.Fatalf("got items %q in %q, want the planted ones", items, moved)
			}
			for _, it := range items {
				if strings.Contains(it, planted) {
					t.Errorf("item %q names a value", it)
				}
			}
			for rel, want := range tc.want {
				if got := readHome(t, home, rel); !strings.Contains(got, want) {
					t.Errorf("%s after the reset: got %q, want it to hold %q", rel, got, want)
				}
			}
			for rel, bad := range tc.gone {
				if got := readHome(t, home, rel); strings.Contains(got, bad) {
					t.Errorf("%s after the reset: got %q, want no %q", rel, got, bad)
				}
			}
			for rel := range tc.plant {
				if readHome(t, home, rel) == "<none>" || !strings.Contains(tc.plant[rel], planted) {
					continue
				}
				if got := readHome(t, home, rel); strings.Contains(got, planted) {
					t.Errorf("%s still holds the planted command: %q", rel, got)
				}
			}
			// Kept aside, outside the HOME.
			var aside bytes.Buffer
			_ = filepath.WalkDir(moved, func(p string, de os.DirEntry, err error) error {
				if err == nil && de.Type().IsRegular() {
					data, _ := os.ReadFile(p)
					aside.Write(data)
				}
				return nil
			})
			if !strings.Contains(aside.String(), planted) {
				t.Errorf("the quarantine %s does not hold what the agent planted", moved)
			}
			// Reset again: nothing left to reset.
			if items, _, err := Reset(home, a, filepath.Join(state, "q")); err != nil || len(items) != 0 {
				t.Errorf("second reset: got %q %v, want nothing", items, err)
			}
		})
	}
}

// TestResetKeepsRingletsOwnHooks: Ringlet's hook entries in settings.json
// (whatever ringlet path) are not the agent's: no reset for them.
func TestResetKeepsRingletsOwnHooks(t *testing.T) {
	t.Parallel()
	home, state := t.TempDir(), t.TempDir()
	writeHome(t, home, map[string]string{".claude/settings.json": `{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"'/old/ringlet' hook claude-pre-tool-use || exit 2"}]}]}}`})
	a, err := Snapshot(home, "claude")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Items) != 0 {
		t.Errorf("approved items %q, want none: the hooks are Ringlet's", a.Names())
	}
	writeHome(t, home, map[string]string{".claude/settings.json": `{"disableAllHooks":true,"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"'/new/ringlet' hook claude-pre-tool-use || exit 2"}]}]}}`})
	if items, _, err := Reset(home, a, filepath.Join(state, "q")); err != nil || len(items) != 0 {
		t.Errorf("got %q %v, want no reset", items, err)
	}
}

// TestResetSymlinks: a symbolic link the agent plants in a reset place is
// removed (its target noted aside), never followed; an approval of one is
// refused; a link in place of a file whose keys are reset refuses the
// session.
func TestResetSymlinks(t *testing.T) {
	t.Parallel()
	home, state, outside := t.TempDir(), t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "victim")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := Approved{Agent: "claude", Items: map[string][]byte{".bashrc": []byte("approved rc")}}
	writeHome(t, home, map[string]string{".claude/x": ""})
	for _, l := range []string{".bashrc", ".claude/settings.json", ".claude/plugins"} {
		if err := os.Symlink(target, filepath.Join(home, l)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Snapshot(home, "claude"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("approving a symbolic link: got %v, want it refused", err)
	}
	items, moved, err := Reset(home, a, filepath.Join(state, "q"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep me" {
		t.Errorf("the link's target: got %q, want it untouched", got)
	}
	if got := readHome(t, home, ".bashrc"); got != "approved rc" {
		t.Errorf(".bashrc: got %q, want the approved one", got)
	}
	for _, l := range []string{".claude/settings.json", ".claude/plugins"} {
		if _, err := os.Lstat(filepath.Join(home, l)); !os.IsNotExist(err) {
			t.Errorf("%s: got %v, want the link removed", l, err)
		}
		if !slices.Contains(items, l) {
			t.Errorf("items %q, want %s", items, l)
		}
	}
	if data, err := os.ReadFile(filepath.Join(moved, "home", ".bashrc.symlink")); err != nil || !strings.Contains(string(data), target) {
		t.Errorf("quarantine: got %q %v, want the link's target", data, err)
	}
	// A link in place of .claude.json, whose keys are reset: refused.
	if err := os.Symlink(target, filepath.Join(home, ".claude", ".claude.json")); err != nil {
		t.Fatal(err)
	}
	b := Approved{Agent: "claude", Items: map[string][]byte{keyItem(".claude/.claude.json", []string{"mcpServers"}): []byte(`{}`)}}
	if _, _, err := Reset(home, b, filepath.Join(state, "q")); err == nil {
		t.Error("a symbolic link in place of .claude.json: got no error, want the reset (and session) refused")
	}
	if got, _ := os.ReadFile(target); string(got) != "keep me" {
		t.Errorf("the link's target: got %q, want it untouched", got)
	}
}

// TestNoApprovalResetsEverything: a profile with no approval (from before
// approvals) has all its code-running config reset.
func TestNoApprovalResetsEverything(t *testing.T) {
	t.Parallel()
	home, state := t.TempDir(), t.TempDir()
	writeHome(t, home, map[string]string{".claude/settings.json": `{"statusLine":{"command":"x"}}`, ".claude/.claude.json": `{"numStartups":3}`})
	a, err := LoadApproved(state, "claude")
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := Reset(home, a, filepath.Join(state, "q"))
	if err != nil || !slices.Equal(items, []string{".claude/settings.json"}) {
		t.Errorf("got %q %v, want settings.json reset", items, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(readHome(t, home, ".claude/.claude.json")), &m); err != nil || m["numStartups"] != float64(3) {
		t.Errorf(".claude.json: got %v %v, want it kept", m, err)
	}
}

// TestResetOversized: a file too large to read in a place Ringlet resets
// is removed (a note kept aside), rather than refusing every session.
func TestResetOversized(t *testing.T) {
	t.Parallel()
	home, state := t.TempDir(), t.TempDir()
	big := filepath.Join(home, ".claude", "plugins", "big.js")
	if err := os.MkdirAll(filepath.Dir(big), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, maxItem+1), 0o600); err != nil {
		t.Fatal(err)
	}
	items, moved, err := Reset(home, Approved{Agent: "claude", Items: map[string][]byte{}}, filepath.Join(state, "q"))
	if err != nil || !slices.Equal(items, []string{".claude/plugins/big.js"}) {
		t.Fatalf("got %q %v, want the big file reset", items, err)
	}
	if _, err := os.Lstat(big); !os.IsNotExist(err) {
		t.Errorf("the big file: got %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(moved, "home", ".claude", "plugins", "big.js.toolarge")); err != nil {
		t.Errorf("quarantine note: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		items []string
		want  string
	}{
		{[]string{".bashrc"}, "~/.bashrc"},
		{[]string{keyItem(".claude/.claude.json", []string{"mcpServers"}), keyItem(".claude/.claude.json", []string{"projects", "/w", "mcpServers"})}, "~/.claude/.claude.json (mcpServers), ~/.claude/.claude.json (projects)"},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "~/a, ~/b, ~/c, ~/d, ~/e, 2 more"},
	} {
		if got := Describe(tc.items); got != tc.want {
			t.Errorf("Describe(%q): got %q, want %q", tc.items, got, tc.want)
		}
	}
}
