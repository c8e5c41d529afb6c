package hook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// CodexAdapterArg is the ringlet subcommand Codex runs as its PreToolUse
// hook.
const CodexAdapterArg = "hook codex-pre-tool-use"

// codexFailClosed follows the adapter in the hook command, as for Claude
// Code: Codex blocks a tool call when its hook exits 2 and goes ahead on
// other failures, such as 127 from a ringlet binary it cannot find.
const codexFailClosed = " || exit 2"

// CodexTimeout is the hook's timeout in seconds, as Codex's hook
// configuration takes it: a pre-tool-use hook may wait for the user.
const CodexTimeout = 600

// CodexHook is Ringlet's PreToolUse hook for Codex: the command that runs
// the adapter, and the hash Codex's hook review records when a user
// trusts that hook ([hooks.state."<key>"].trusted_hash in config.toml).
// Codex runs a hook of the user's config.toml only once it is trusted
// under its current hash; Ringlet, having written it, marks it trusted.
type CodexHook struct {
	Command     string
	TrustedHash string
}

// NewCodexHook is the hook that runs ringlet, an absolute path seen the
// same in and out of the agent's sandbox. A path that Codex would not
// read back as written (control characters, line or paragraph
// separators) is refused: its hash would not be Codex's, and the hook
// would not run.
func NewCodexHook(ringlet string) (CodexHook, error) {
	if !strings.HasPrefix(ringlet, "/") || strings.ContainsFunc(ringlet, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == unicode.ReplacementChar
	}) {
		return CodexHook{}, fmt.Errorf("the ringlet binary's path %q cannot be written into a Codex hook; install ringlet at a plain absolute path", ringlet)
	}
	cmd := shellQuote(ringlet) + " " + CodexAdapterArg + codexFailClosed
	hash, err := CodexTrustHash(cmd)
	if err != nil {
		return CodexHook{}, err
	}
	return CodexHook{Command: cmd, TrustedHash: hash}, nil
}

// Group is the hook as the one matcher group of hooks.PreToolUse that
// Ringlet writes, for every tool ("*").
func (h CodexHook) Group() map[string]any {
	return map[string]any{
		"matcher": "*",
		"hooks":   []any{map[string]any{"type": "command", "command": h.Command, "timeout": int64(CodexTimeout)}},
	}
}

// IsCodexEntry reports whether a matcher group of Codex's hooks runs
// Ringlet's adapter (at any ringlet path): the one Ringlet replaces.
func IsCodexEntry(group any) bool {
	return groupRuns(group, func(c string) bool {
		return strings.HasSuffix(strings.TrimSuffix(c, codexFailClosed), CodexAdapterArg)
	})
}

// CodexTrustHash is the trust hash Codex computes for a command hook of
// PreToolUse with matcher "*", the given command and no other setting: SHA-256 of the
// hook's normalised identity (event, matcher, the handler with its
// defaults filled in) as JSON with sorted keys and no spaces, in hex
// after "sha256:". The pinned Codex of the end-to-end tests checks it: a
// Codex that hashes otherwise shows the hook as modified in /hooks.
func CodexTrustHash(command string) (string, error) {
	identity := map[string]any{
		"event_name": "pre_tool_use",
		"matcher":    "*",
		"hooks":      []any{map[string]any{"type": "command", "command": command, "timeout": CodexTimeout, "async": false}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // serde_json escapes only what JSON requires
	if err := enc.Encode(identity); err != nil {
		return "", fmt.Errorf("hash the Codex hook: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
