// Package agenthome prepares an agent's own configuration in the HOME a
// profile gives it, at every session start: what the agent must find
// there to start without asking what Ringlet has already settled (its
// first-run onboarding), and the user's answer to what Ringlet asks at
// 'profiles create' (whether the workspace is trusted).
//
// For Codex it also installs Ringlet's hook adapter as Codex's own
// PreToolUse hook, and for OpenCode a plugin whose tool.execute.before
// asks the same adapter, so that their tools (shell, file edits, MCP
// tools) are checked against the profile's hooks, as Claude Code's are
// (package hook writes Claude Code's).
//
// The agent can write that HOME. So each file is read as untrusted input
// and rewritten with Ringlet's settings every time, whatever the agent
// left; a symbolic link is refused, never followed
// (privatefile.Rewrite); and nothing written there is a secret: the
// agent gets its session token in its environment, never a key.
//
// In a sandboxed HOME, the parts of the agent's config that run code
// are also kept as the user approved them (approved.go): Snapshot at
// approval, Differs and Reset at every sandboxed session start.
package agenthome

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/profile"
)

// Home is the HOME of a session's agent.
type Home struct {
	// Dir is the HOME on the host, where Ringlet writes.
	Dir string
	// Seen is the same HOME as the agent sees it: where its sandbox
	// shows it, or Dir ("" says so) without a sandbox. Codex keys what
	// it records of a hook by the path it reads the hook from.
	Seen string
	// Ringlet is the ringlet binary that the agent runs as its hook
	// adapter, at the same path in and out of its sandbox.
	Ringlet string
}

// Prepare writes what the agent of p needs in h, the HOME of a session
// of p: Claude Code's .claude.json, Codex's config.toml, OpenCode's
// Ringlet plugin. Other agents get nothing.
func Prepare(h Home, p profile.Profile) error {
	trusted := trustedPaths(p)
	seen := h.Seen
	if seen == "" {
		seen = h.Dir
	}
	switch p.Agent {
	case "claude":
		return Claude(filepath.Join(h.Dir, ".claude"), trusted)
	case "codex":
		adapter, err := hook.NewCodexHook(h.Ringlet)
		if err != nil {
			return err
		}
		return Codex(filepath.Join(h.Dir, ".codex"), filepath.Join(seen, ".codex"), adapter, trusted)
	case "opencode":
		return OpenCode(h.Dir, h.Ringlet)
	}
	return nil
}

// maxOpenCodePlugin bounds the plugin file Ringlet reads back.
const maxOpenCodePlugin = 1 << 20

// OpenCode writes Ringlet's OpenCode plugin (hook.OpenCodePlugin) into
// home, the HOME of an OpenCode session, at hook.OpenCodePluginDir, which
// the catalog names in OPENCODE_CONFIG_DIR: whatever the agent left in
// that file is replaced, so it cannot durably disable the plugin or
// change it. The plugin asks Ringlet's pre-tool-use hooks about every
// tool call OpenCode makes.
func OpenCode(home, ringlet string) error {
	src, err := hook.OpenCodePlugin(ringlet)
	if err != nil {
		return err
	}
	dir := filepath.Join(home, filepath.FromSlash(hook.OpenCodePluginDir))
	if err := ensureDirs(home, filepath.FromSlash(filepath.Dir(hook.OpenCodePluginDir))); err != nil {
		return err
	}
	if err := privatefile.Rewrite(dir, hook.OpenCodePluginFile, maxOpenCodePlugin, func([]byte) ([]byte, error) {
		return src, nil
	}); err != nil {
		return err
	}
	for _, d := range []string{".config/opencode", filepath.Dir(hook.OpenCodePluginDir)} {
		if err := openCodeDeps(home, filepath.FromSlash(d)); err != nil {
			return err
		}
	}
	return keepOnly(home, filepath.FromSlash(filepath.Dir(hook.OpenCodePluginDir)), map[string][]string{
		"plugin": {hook.OpenCodePluginFile}, "node_modules": nil, "package-lock.json": nil})
}

// keepOnly removes from the directory rel of home (Ringlet's own, which
// the agent can write in its HOME) every entry keep does not name, and
// from each kept directory whose list is not nil every entry that list
// does not name. OpenCode loads its OPENCODE_CONFIG_DIR last, plugins
// and opencode.json alike: a plugin the agent left beside Ringlet's would
// run after it and could change the arguments Ringlet's judged, and a
// config there could undo Ringlet's settings. Nothing is followed out of
// home (os.Root).
func keepOnly(home, rel string, keep map[string][]string) error {
	root, err := os.OpenRoot(home)
	if err != nil {
		return fmt.Errorf("the HOME: %w", privatefile.WithoutPath(err))
	}
	defer root.Close()
	clean := func(dir string, keep func(string) bool) error {
		f, err := root.Open(dir)
		if err != nil {
			return fmt.Errorf("%s in the HOME: %w", dir, privatefile.WithoutPath(err))
		}
		names, err := f.Readdirnames(-1)
		_ = f.Close() // read only
		if err != nil {
			return fmt.Errorf("%s in the HOME: %w", dir, privatefile.WithoutPath(err))
		}
		for _, n := range names {
			if keep(n) {
				continue
			}
			if err := root.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("%s in the HOME: %w", filepath.Join(dir, n), privatefile.WithoutPath(err))
			}
		}
		return nil
	}
	if err := clean(rel, func(n string) bool { _, ok := keep[n]; return ok }); err != nil {
		return err
	}
	for dir, names := range keep {
		if names == nil {
			continue
		}
		if err := clean(filepath.Join(rel, dir), func(n string) bool { return slices.Contains(names, n) }); err != nil {
			return err
		}
	}
	return nil
}

// openCodePluginPackage is the package OpenCode installs with npm into
// each of its config directories, for plugins to import; Ringlet's does
// not.
const openCodePluginPackage = "@opencode-ai/plugin"

// openCodeDeps marks OpenCode's config directory rel in home as having
// its dependencies: a node_modules directory and a package-lock.json
// whose root lists openCodePluginPackage. Once a config has a plugin,
// OpenCode waits at start for npm to install that package into each
// config directory that lacks it, which a sandbox that reaches only
// Ringlet never lets finish: OpenCode would not start.
func openCodeDeps(home, rel string) error {
	if err := ensureDirs(home, filepath.Join(rel, "node_modules")); err != nil {
		return err
	}
	dir := filepath.Join(home, rel)
	return privatefile.Rewrite(dir, "package-lock.json", maxOpenCodePlugin, func(old []byte) ([]byte, error) {
		lock, err := jsonObject(filepath.Join(dir, "package-lock.json"), old)
		if err != nil {
			lock = map[string]any{} // npm's file, not the user's: start it again
		}
		pkgs, _ := lock["packages"].(map[string]any)
		if pkgs == nil {
			pkgs = map[string]any{}
		}
		root, _ := pkgs[""].(map[string]any)
		if root == nil {
			root = map[string]any{}
		}
		deps, _ := root["dependencies"].(map[string]any)
		if deps == nil {
			deps = map[string]any{}
		}
		if _, ok := deps[openCodePluginPackage]; ok && err == nil {
			return old, nil
		}
		deps[openCodePluginPackage] = "*"
		root["dependencies"], pkgs[""], lock["packages"] = deps, root, pkgs
		out, merr := json.MarshalIndent(lock, "", "  ")
		if merr != nil {
			return nil, merr
		}
		return append(out, '\n'), nil
	})
}

// ensureDirs makes the directories of rel, a path inside home, through an
// os.Root on home: a symbolic link the agent planted on the way is
// refused, not followed.
func ensureDirs(home, rel string) error {
	root, err := os.OpenRoot(home)
	if err != nil {
		return fmt.Errorf("the HOME: %w", privatefile.WithoutPath(err))
	}
	defer root.Close()
	if err := root.MkdirAll(rel, privatefile.DirMode); err != nil {
		return fmt.Errorf("%s in the HOME: %w", rel, privatefile.WithoutPath(err))
	}
	for p := rel; p != "." && p != string(filepath.Separator); p = filepath.Dir(p) {
		fi, err := root.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s in the HOME: %w", p, privatefile.WithoutPath(err))
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s in the HOME is not a directory; remove it", p)
		}
	}
	return nil
}

// trustedPaths are the directories the agent is told the user trusts:
// the profile's workspace, as named and as resolved (an agent may see
// either as its working directory), when the profile says so.
func trustedPaths(p profile.Profile) []string {
	if !p.TrustWorkspace || p.Workspace == "" {
		return nil
	}
	out := []string{p.Workspace}
	if real, err := filepath.EvalSymlinks(p.Workspace); err == nil && real != p.Workspace {
		out = append(out, real)
	}
	return out
}

// maxClaudeJSON bounds the .claude.json Ringlet reads: Claude Code's own
// limit for its config.
const maxClaudeJSON = 8 << 20

// Claude prepares Claude Code's .claude.json in configDir (its
// CLAUDE_CONFIG_DIR), keeping what else Claude Code keeps there:
//
//   - hasCompletedOnboarding is true. Claude Code's first run asks for a
//     theme and a login and checks that it can reach api.anthropic.com
//     directly, which a sandbox that reaches only Ringlet's proxy cannot:
//     it would exit "Unable to connect to Anthropic services".
//   - hasTrustDialogAccepted is true for each of trusted and for no other
//     directory. Claude Code asks whether the user trusts the files of
//     its working directory (or any directory above it) unless its
//     config says so; the answer is the user's, given at 'profiles
//     create --trust-workspace', not one the agent wrote for itself.
func Claude(configDir string, trusted []string) error {
	path := filepath.Join(configDir, ".claude.json")
	return privatefile.Rewrite(configDir, ".claude.json", maxClaudeJSON, func(old []byte) ([]byte, error) {
		cfg, err := jsonObject(path, old)
		if err != nil {
			return nil, err
		}
		cfg["hasCompletedOnboarding"] = true
		projects, ok := cfg["projects"].(map[string]any)
		if !ok {
			// Not an object (or none): no project state Claude Code can
			// read, trust marks included.
			projects = map[string]any{}
		}
		for _, v := range projects {
			if m, ok := v.(map[string]any); ok {
				delete(m, "hasTrustDialogAccepted")
			}
		}
		for _, dir := range trusted {
			m, ok := projects[dir].(map[string]any)
			if !ok {
				m = map[string]any{}
				projects[dir] = m
			}
			m["hasTrustDialogAccepted"] = true
		}
		if len(projects) > 0 || cfg["projects"] != nil {
			cfg["projects"] = projects
		}
		out, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(out, '\n'), nil
	})
}

// maxCodexConfig bounds the config.toml Ringlet reads.
const maxCodexConfig = 1 << 20

// Codex prepares Codex's config.toml in codexHome (its CODEX_HOME on the
// host, which the agent sees as seenHome), keeping the rest of it:
//
//   - projects.<dir>.trust_level is "trusted" for each of trusted and set
//     for no other directory. Codex asks whether the user trusts a git
//     repository it starts in unless its config says so; as for Claude
//     Code, the answer is the one given at 'profiles create'.
//   - The first matcher group of hooks.PreToolUse is adapter, for every
//     tool; an earlier Ringlet group is replaced, the user's own are kept
//     after it. Its hooks.state entry holds its trusted hash and nothing
//     else: Codex runs a hook of this file only once it is trusted, and
//     an agent could have disabled it there (enabled = false) for its
//     next session. Every other hook loses its trust (another hook could
//     rewrite a tool call's input after Ringlet's judged it). A
//     features.hooks (or codex_hooks) that turns hooks off is removed;
//     the catalog turns them on with -c as well.
//
// Its provider, model and the variable that holds the session token are
// not written here: they are -c flags of its command line (the catalog),
// which come before anything in the file and keep Codex in its embedded
// mode. Without them it starts a shared background server, copied into
// CODEX_HOME and left running.
//
// Comments in the file are not kept when it changes.
func Codex(codexHome, seenHome string, adapter hook.CodexHook, trusted []string) error {
	path := filepath.Join(codexHome, "config.toml")
	// Codex's key for the first group of PreToolUse in this file.
	stateKey := filepath.Join(seenHome, "config.toml") + ":pre_tool_use:0:0"
	return privatefile.Rewrite(codexHome, "config.toml", maxCodexConfig, func(old []byte) ([]byte, error) {
		cfg := map[string]any{}
		if err := toml.Unmarshal(old, &cfg); err != nil {
			return nil, fmt.Errorf("%s is not valid TOML (%v); fix or remove it", path, err)
		}
		projects, ok := cfg["projects"].(map[string]any)
		if !ok {
			projects = map[string]any{}
		}
		for _, v := range projects {
			if m, ok := v.(map[string]any); ok {
				delete(m, "trust_level")
			}
		}
		for _, dir := range trusted {
			m, ok := projects[dir].(map[string]any)
			if !ok {
				m = map[string]any{}
				projects[dir] = m
			}
			m["trust_level"] = "trusted"
		}
		if len(projects) > 0 || cfg["projects"] != nil {
			cfg["projects"] = projects
		}
		codexHooks(cfg, adapter, stateKey)
		if old != nil && !changed(old, cfg) {
			return old, nil
		}
		return toml.Marshal(cfg)
	})
}

// codexHooks puts adapter first in cfg's hooks.PreToolUse, trusted under
// stateKey, and hooks on.
func codexHooks(cfg map[string]any, adapter hook.CodexHook, stateKey string) {
	hooks, ok := cfg["hooks"].(map[string]any)
	if !ok {
		hooks = map[string]any{}
	}
	groups := []any{adapter.Group()}
	if cur, ok := hooks["PreToolUse"].([]any); ok {
		for _, g := range cur {
			if !hook.IsCodexEntry(g) {
				groups = append(groups, g)
			}
		}
	}
	hooks["PreToolUse"] = groups
	state, ok := hooks["state"].(map[string]any)
	if !ok {
		state = map[string]any{}
	}
	// Codex runs every trusted hook that matches, together, and takes
	// the tool input another one rewrites (updatedInput) after Ringlet's
	// has judged the original: no other hook keeps its trust from one
	// session to the next, since the agent could have written it.
	for _, v := range state {
		if m, ok := v.(map[string]any); ok {
			delete(m, "trusted_hash")
		}
	}
	state[stateKey] = map[string]any{"trusted_hash": adapter.TrustedHash}
	hooks["state"] = state
	cfg["hooks"] = hooks
	if features, ok := cfg["features"].(map[string]any); ok {
		for _, k := range []string{"hooks", "codex_hooks"} {
			if features[k] == false {
				delete(features, k)
			}
		}
	}
}

// changed reports whether cfg reads differently from the TOML in old:
// an unchanged file is left as it is, comments and all.
func changed(old []byte, cfg map[string]any) bool {
	before := map[string]any{}
	if toml.Unmarshal(old, &before) != nil {
		return true
	}
	a, errA := toml.Marshal(before)
	b, errB := toml.Marshal(cfg)
	return errA != nil || errB != nil || !bytes.Equal(a, b)
}

// jsonObject reads the JSON object in data, the content of path: nil or
// blank is an empty object; numbers keep their exact text.
func jsonObject(path string, data []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(bytes.TrimSpace(data)) == 0 {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s is not a valid JSON object (%v); fix or remove it", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s is not a valid JSON object (text after it); fix or remove it", path)
	}
	if m == nil { // the file held null
		m = map[string]any{}
	}
	return m, nil
}
