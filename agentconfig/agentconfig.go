// Package agentconfig writes an agent's own configuration in a profile's
// HOME (Claude Code's, Codex's, OpenCode's): the MCP server entry of
// 'ringlet connect', which points the agent
// at its session's /mcp with the session token taken from the agent's
// environment when it connects, never written into the file.
//
// The HOMEs it writes are agents' (a sandboxed one is the agent's to
// write): everything is read and written through an os.Root on the HOME,
// never through a symbolic link, and a file the agent made unreadable or
// ambiguous is refused rather than guessed at.
package agentconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/profile"
)

// Server is the name of Ringlet's entry in an agent's MCP servers: Claude
// Code shows its tools as mcp__ringlet__<tool>.
const Server = "ringlet"

// maxFile bounds a configuration file read: Claude Code's .claude.json
// holds its state, per project, and grows.
const maxFile = 16 << 20

// Claude writes Ringlet's entry into the user-scope MCP servers of the
// Claude Code whose CLAUDE_CONFIG_DIR is configDir (its .claude.json):
// streamable HTTP at ${RINGLET_SESSION_URL}/mcp with "Authorization:
// Bearer ${RINGLET_SESSION_TOKEN}", which Claude Code expands from its
// environment when it connects. Everything else in the file is kept. It
// returns the file's path.
func Claude(configDir string) (string, error) {
	entry := map[string]any{
		"type":    "http",
		"url":     "${" + profile.EnvSessionURL + "}/mcp",
		"headers": map[string]any{"Authorization": "Bearer ${" + profile.EnvSessionToken + "}"},
	}
	return edit(filepath.Dir(configDir), filepath.Join(filepath.Base(configDir), ".claude.json"), func(path string, data []byte) ([]byte, error) {
		return withJSONServer(path, data, "mcpServers", entry)
	})
}

// OpenCode writes Ringlet's entry into the MCP servers of OpenCode's
// global config in home, the HOME of the profile's OpenCode
// (.config/opencode/opencode.json, which the catalog also names in
// OPENCODE_CONFIG, so that it is read when OpenCode starts with 'profiles
// env' in another HOME): mcp.ringlet, a remote (streamable HTTP) server at
// {env:RINGLET_SESSION_URL}/mcp with "Authorization: Bearer
// {env:RINGLET_SESSION_TOKEN}", which OpenCode substitutes from its
// environment when it reads the file, and no OAuth (it would otherwise try
// an OAuth sign-in with Ringlet). Everything else in the file is kept; a
// file with comments (JSONC) is refused rather than rewritten without
// them. It returns the file's path.
func OpenCode(home string) (string, error) {
	entry := map[string]any{
		"type":    "remote",
		"url":     "{env:" + profile.EnvSessionURL + "}/mcp",
		"headers": map[string]any{"Authorization": "Bearer {env:" + profile.EnvSessionToken + "}"},
		"oauth":   false,
		"enabled": true,
	}
	return edit(home, OpenCodeConfig, func(path string, data []byte) ([]byte, error) {
		return withJSONServer(path, data, "mcp", entry)
	})
}

// OpenCodeConfig is OpenCode's global config file, relative to its HOME.
const OpenCodeConfig = ".config/opencode/opencode.json"

// withJSONServer is the JSON object in data (the content of path; empty
// for none) with entry as Server in its object under key.
func withJSONServer(path string, data []byte, key string, entry map[string]any) ([]byte, error) {
	doc := map[string]any{}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // numbers keep their exact text
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s is not a JSON object (%v); fix or remove it", path, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s is not a JSON object: text after it; fix or remove it", path)
		}
		if doc == nil {
			doc = map[string]any{}
		}
	}
	servers := map[string]any{}
	switch cur := doc[key].(type) {
	case nil:
	case map[string]any:
		servers = cur
	default:
		return nil, fmt.Errorf("%s: %s is not an object; fix or remove it", path, key)
	}
	servers[Server] = entry
	doc[key] = servers
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// The lines around the block Codex writes into config.toml: the block is
// Ringlet's, replaced whole on every connect; the rest is the user's.
const (
	codexBegin = "# >>> ringlet connect: Ringlet's MCP gateway for this profile's sessions (the token comes from " + profile.EnvSessionToken + ")"
	codexEnd   = "# <<< ringlet connect"
)

// Codex writes Ringlet's entry into the config.toml of the Codex whose
// CODEX_HOME is codexHome: [mcp_servers.ringlet], streamable HTTP at
// base/mcp (base is the daemon as that Codex reaches it: Codex expands
// no variables in a URL) with its bearer token read from
// RINGLET_SESSION_TOKEN when it connects. The block is Ringlet's and
// replaced whole; the rest of the file is kept as it is, and an entry
// named ringlet of the user's own is refused. It returns the file's path.
func Codex(codexHome, base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("the daemon's address %q is not a base URL such as http://127.0.0.1:8765", base)
	}
	block := strings.Join([]string{codexBegin,
		"[mcp_servers." + Server + "]",
		"url = " + strconv.Quote(base+"/mcp"),
		"bearer_token_env_var = " + strconv.Quote(profile.EnvSessionToken),
		codexEnd, ""}, "\n")
	return edit(filepath.Dir(codexHome), filepath.Join(filepath.Base(codexHome), "config.toml"), func(path string, data []byte) ([]byte, error) {
		rest, err := withoutBlock(path, string(data))
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if err := toml.Unmarshal([]byte(rest), &doc); err != nil {
			return nil, fmt.Errorf("%s is not valid TOML (%v); fix it so Ringlet can add its MCP server", path, err)
		}
		if servers, ok := doc["mcp_servers"].(map[string]any); ok {
			if cur, ok := servers[Server]; ok {
				if !isCodexEntry(cur) {
					return nil, fmt.Errorf("%s already has an MCP server named %s of its own; remove it so Ringlet can add its own", path, Server)
				}
				// Ringlet's own entry without its block's lines: the
				// session start rewrote the file as TOML (package
				// agenthome), which keeps no comments. Replaced, as the
				// block would be; the rest is written as TOML too.
				delete(servers, Server)
				if len(servers) == 0 {
					delete(doc, "mcp_servers")
				}
				out, err := toml.Marshal(doc)
				if err != nil {
					return nil, err
				}
				rest = string(out)
			}
		}
		if rest != "" && !strings.HasSuffix(rest, "\n") {
			rest += "\n"
		}
		out := rest + block
		if err := toml.Unmarshal([]byte(out), &doc); err != nil {
			return nil, fmt.Errorf("%s cannot take Ringlet's [mcp_servers.%s] (%v); fix it", path, Server, err)
		}
		return []byte(out), nil
	})
}

// isCodexEntry reports whether an [mcp_servers.ringlet] table is one
// Ringlet's block wrote: a URL ending in /mcp and the token's variable,
// nothing else.
func isCodexEntry(v any) bool {
	m, ok := v.(map[string]any)
	u, _ := m["url"].(string)
	return ok && len(m) == 2 && strings.HasSuffix(u, "/mcp") && m["bearer_token_env_var"] == profile.EnvSessionToken
}

// withoutBlock is text without Ringlet's block, if it has one.
func withoutBlock(path, text string) (string, error) {
	i := strings.Index(text, codexBegin)
	if i < 0 {
		if strings.Contains(text, codexEnd) {
			return "", fmt.Errorf("%s has the end of Ringlet's block without its start; fix it", path)
		}
		return text, nil
	}
	j := strings.Index(text[i:], codexEnd)
	if j < 0 || strings.Contains(text[i+len(codexBegin):], codexBegin) {
		return "", fmt.Errorf("%s has a broken block of Ringlet's (its start without one end); fix it", path)
	}
	end := i + j + len(codexEnd)
	if end < len(text) && text[end] == '\n' {
		end++
	}
	return text[:i] + text[end:], nil
}

// edit replaces home/rel, a file in an agent's HOME, with what change
// makes of its content (empty when it is missing), creating the
// directories on the way. None of them, nor the file, may be a symbolic
// link, and nothing is read or written out of the HOME (an os.Root on
// it). An unchanged file is not rewritten.
func edit(home, rel string, change func(path string, data []byte) ([]byte, error)) (string, error) {
	path := filepath.Join(home, rel)
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s is not inside the agent's HOME", path)
	}
	if err := privatefile.EnsureDir(home); err != nil {
		return "", err
	}
	root, err := os.OpenRoot(home)
	if err != nil {
		return "", err
	}
	defer root.Close()
	dir := "."
	for _, part := range strings.Split(filepath.Dir(rel), string(filepath.Separator)) {
		if part == "." {
			continue
		}
		dir = filepath.Join(dir, part)
		fi, err := root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Mkdir(dir, privatefile.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("create %s: %w", filepath.Join(home, dir), privatefile.WithoutPath(err))
			}
			continue
		case err != nil:
			return "", fmt.Errorf("%s: %w", filepath.Join(home, dir), privatefile.WithoutPath(err))
		}
		if err := notALink(filepath.Join(home, dir), fi); err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory; remove it", filepath.Join(home, dir))
		}
	}
	if fi, err := root.Lstat(rel); err == nil {
		if err := notALink(path, fi); err != nil {
			return "", err
		}
	}
	data, _, err := privatefile.ReadInRoot(root, rel, maxFile)
	if err != nil {
		return "", fmt.Errorf("%s: %w; fix or remove it", filepath.Dir(path), err)
	}
	out, err := change(path, data)
	if err != nil {
		return "", err
	}
	if bytes.Equal(out, data) {
		return path, nil
	}
	return path, privatefile.WriteInRoot(root, rel, out)
}

// notALink refuses fi, what Lstat says of path, when it is a symbolic
// link: the agent's configuration is never written where the agent
// points.
func notALink(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; Ringlet does not follow it to write the agent's configuration: remove it", path)
	}
	return nil
}
