// Package agentconfig writes an agent's own configuration in a profile's
// HOME: the MCP server entry of 'ringlet connect', which points the agent
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
	return edit(configDir, ".claude.json", func(path string, data []byte) ([]byte, error) {
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
		switch cur := doc["mcpServers"].(type) {
		case nil:
		case map[string]any:
			servers = cur
		default:
			return nil, fmt.Errorf("%s: mcpServers is not an object; fix or remove it", path)
		}
		servers[Server] = entry
		doc["mcpServers"] = servers
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(out, '\n'), nil
	})
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
	return edit(codexHome, "config.toml", func(path string, data []byte) ([]byte, error) {
		rest, err := withoutBlock(path, string(data))
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if err := toml.Unmarshal([]byte(rest), &doc); err != nil {
			return nil, fmt.Errorf("%s is not valid TOML (%v); fix it so Ringlet can add its MCP server", path, err)
		}
		if servers, ok := doc["mcp_servers"].(map[string]any); ok {
			if _, ok := servers[Server]; ok {
				return nil, fmt.Errorf("%s already has an MCP server named %s of its own; remove it so Ringlet can add its own", path, Server)
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

// edit replaces dir/name, a file in an agent's HOME (dir's parent), with
// what change makes of its content (empty when it is missing). Neither
// dir nor the file may be a symbolic link, and nothing is read or written
// out of the HOME. An unchanged file is not rewritten.
func edit(dir, name string, change func(path string, data []byte) ([]byte, error)) (string, error) {
	path := filepath.Join(dir, name)
	for _, p := range []string{dir, path} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a symbolic link; Ringlet does not follow it to write the agent's configuration: remove it", p)
		}
	}
	home := filepath.Dir(dir)
	if err := privatefile.EnsureDir(home); err != nil {
		return "", err
	}
	root, err := os.OpenRoot(home)
	if err != nil {
		return "", err
	}
	defer root.Close()
	base := filepath.Base(dir)
	if err := root.Mkdir(base, privatefile.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create %s: %w", dir, privatefile.WithoutPath(err))
	}
	rel := filepath.Join(base, name)
	data, _, err := privatefile.ReadInRoot(root, rel, maxFile)
	if err != nil {
		return "", fmt.Errorf("%s: %w; fix or remove it", dir, err)
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
