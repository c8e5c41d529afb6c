package hook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/neullabs/ringlet/privatefile"
)

// ClaudeAdapterArg is the ringlet subcommand Claude Code runs as its
// PreToolUse hook, ClaudePostAdapterArg the one it runs as its
// PostToolUse hook.
const (
	ClaudeAdapterArg     = "hook claude-pre-tool-use"
	ClaudePostAdapterArg = "hook claude-post-tool-use"
)

// claudeFailClosed follows the adapter in the hook command. Claude Code
// blocks a tool call only when its hook exits 2 and goes ahead on any
// other failure, such as 127 from a ringlet binary that has moved since
// the profile was created or that a sandbox does not show: every failure
// to run the adapter must block too.
const claudeFailClosed = " || exit 2"

// InstallClaude writes, into configDir/settings.json (the profile's Claude
// Code config dir), a PreToolUse hook with matcher "*" that runs
// `<ringlet> hook claude-pre-tool-use`, so every tool call Claude Code
// makes (Bash, Write, Edit and MCP tools alike) is checked against the
// profile's hooks, and a PostToolUse hook that runs `<ringlet> hook
// claude-post-tool-use` on every result. Other settings in the file are
// kept, but for disableAllHooks, which would turn Ringlet's hook off.
//
// It runs at every session start, so a profile keeps the hook (and the
// ringlet path in it) current. The agent can write its HOME: a symlink in
// place of the config dir or the file is refused rather than followed, so
// the daemon never writes where the agent points it; an unchanged file is
// not rewritten, and numbers keep their exact text.
func InstallClaude(configDir, ringlet string) error {
	return privatefile.Rewrite(configDir, "settings.json", maxSettings, func(data []byte) ([]byte, error) {
		return claudeSettings(filepath.Join(configDir, "settings.json"), data, ringlet)
	})
}

// claudeSettings is the settings.json at path, whose content is data (nil
// when there is none), with Ringlet's hooks.
func claudeSettings(path string, data []byte, ringlet string) ([]byte, error) {
	settings := map[string]any{}
	if data != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&settings); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON; fix it so Ringlet can add its hook: %v", path, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("%s is not valid JSON; fix it so Ringlet can add its hook: text after the settings object", path)
		}
		if settings == nil { // the file held null
			settings = map[string]any{}
		}
	}
	hooks, _ := settings["hooks"].(map[string]any)
	if hooks == nil {
		hooks = map[string]any{}
	}
	for event, arg := range map[string]string{"PreToolUse": ClaudeAdapterArg, "PostToolUse": ClaudePostAdapterArg} {
		command := shellQuote(ringlet) + " " + arg + claudeFailClosed
		entry := map[string]any{
			"matcher": "*",
			"hooks":   []any{map[string]any{"type": "command", "command": command, "timeout": 600}},
		}
		// Replace an earlier Ringlet entry, keep the user's own.
		var kept []any
		if cur, ok := hooks[event].([]any); ok {
			for _, e := range cur {
				if !isRingletEntry(e) {
					kept = append(kept, e)
				}
			}
		}
		hooks[event] = append([]any{entry}, kept...)
	}
	settings["hooks"] = hooks
	// Claude Code runs no hooks at all, Ringlet's included, when user
	// settings say disableAllHooks; an agent that can write its HOME could
	// set it for its next session.
	delete(settings, "disableAllHooks")
	out, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// maxSettings bounds the settings.json Ringlet reads.
const maxSettings = 1 << 20

// IsClaudeEntry reports whether e, a matcher group of Claude Code's
// hooks, is one Ringlet writes (InstallClaude), whatever ringlet path it
// names.
func IsClaudeEntry(e any) bool { return isRingletEntry(e) }

func isRingletEntry(e any) bool {
	return groupRuns(e, func(c string) bool {
		c = strings.TrimSuffix(c, claudeFailClosed)
		return strings.HasSuffix(c, ClaudeAdapterArg) || strings.HasSuffix(c, ClaudePostAdapterArg)
	})
}

// groupRuns reports whether a matcher group of an agent's hook settings
// ({"matcher": ..., "hooks": [{"command": ...}]}, the shape Claude Code and
// Codex share) has a command that is.
func groupRuns(group any, is func(command string) bool) bool {
	m, ok := group.(map[string]any)
	if !ok {
		return false
	}
	hs, _ := m["hooks"].([]any)
	for _, h := range hs {
		if hm, ok := h.(map[string]any); ok {
			if c, _ := hm["command"].(string); is(c) {
				return true
			}
		}
	}
	return false
}

func shellQuote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}
