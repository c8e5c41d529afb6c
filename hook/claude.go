package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/neullabs/ringlet/privatefile"
)

// ClaudeAdapterArg is the ringlet subcommand Claude Code runs as its
// PreToolUse hook.
const ClaudeAdapterArg = "hook claude-pre-tool-use"

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
// profile's hooks. Other settings in the file are kept.
//
// It runs at every session start, so a profile keeps the hook (and the
// ringlet path in it) current. The agent can write its HOME: a symlink in
// place of the config dir or the file is refused rather than followed, so
// the daemon never writes where the agent points it; an unchanged file is
// not rewritten, and numbers keep their exact text.
func InstallClaude(configDir, ringlet string) error {
	for _, p := range []string{configDir, filepath.Join(configDir, "settings.json")} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; Ringlet does not follow it to add its Claude Code hook: remove it", p)
		}
	}
	if err := privatefile.EnsureDir(configDir); err != nil {
		return err
	}
	path := filepath.Join(configDir, "settings.json")
	settings := map[string]any{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&settings); err != nil {
			return fmt.Errorf("%s is not valid JSON; fix it so Ringlet can add its hook: %v", path, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return fmt.Errorf("%s is not valid JSON; fix it so Ringlet can add its hook: text after the settings object", path)
		}
		if settings == nil { // the file held null
			settings = map[string]any{}
		}
	}
	hooks, _ := settings["hooks"].(map[string]any)
	if hooks == nil {
		hooks = map[string]any{}
	}
	command := shellQuote(ringlet) + " " + ClaudeAdapterArg + claudeFailClosed
	entry := map[string]any{
		"matcher": "*",
		"hooks":   []any{map[string]any{"type": "command", "command": command, "timeout": 600}},
	}
	// Replace an earlier Ringlet entry, keep the user's own.
	var kept []any
	if pre, ok := hooks["PreToolUse"].([]any); ok {
		for _, e := range pre {
			if !isRingletEntry(e) {
				kept = append(kept, e)
			}
		}
	}
	hooks["PreToolUse"] = append([]any{entry}, kept...)
	settings["hooks"] = hooks
	out, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	out = append(out, '\n')
	if bytes.Equal(out, data) {
		return nil
	}
	return privatefile.WriteAtomic(path, out, privatefile.FileMode)
}

func isRingletEntry(e any) bool {
	m, ok := e.(map[string]any)
	if !ok {
		return false
	}
	hs, _ := m["hooks"].([]any)
	for _, h := range hs {
		if hm, ok := h.(map[string]any); ok {
			c, _ := hm["command"].(string)
			if strings.HasSuffix(strings.TrimSuffix(c, claudeFailClosed), ClaudeAdapterArg) {
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
