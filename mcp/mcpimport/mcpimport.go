// Package mcpimport reads the MCP servers that other clients are set up
// with — Claude Code (.mcp.json, ~/.claude.json), Claude Desktop
// (claude_desktop_config.json), Codex (config.toml) and VS Code
// (.vscode/mcp.json) — for 'ringlet mcp import'. It only parses: which
// files are read, what is stored and what the daemon is asked is the
// CLI's. The files are the user's, written by other programs, so fields it
// does not use are ignored; what it cannot carry over faithfully (a
// variable only the other client can answer, an SSE server) is reported
// per server, never guessed.
package mcpimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/internal/strictjson"
)

// MaxFile bounds a file read for import: ~/.claude.json holds Claude
// Code's project history besides its servers and grows to megabytes.
const MaxFile = 16 << 20

// Formats of the files read.
const (
	FormatClaude  = "claude"  // {"mcpServers": {...}}: .mcp.json, claude_desktop_config.json
	FormatVSCode  = "vscode"  // {"servers": {...}}, comments allowed
	FormatCodex   = "codex"   // [mcp_servers.NAME] in TOML
	FormatUnknown = "unknown" // none of them
)

// Server is one server as another client's file describes it.
type Server struct {
	// Name is the server's name in the file.
	Name string `json:"name"`
	// From says where it was found: the file, and the part of it.
	From string `json:"from"`
	// Type is stdio, http or sse.
	Type    string   `json:"type"`
	Command []string `json:"command,omitempty"`
	URL     string   `json:"url,omitempty"`
	// Env are its variables, expanded. Headers are an HTTP server's.
	Env     map[string]string `json:"-"`
	Headers map[string]string `json:"-"`
	// Problem, when set, is why the server cannot be carried over as it
	// is; the rest may be incomplete.
	Problem string `json:"problem,omitempty"`
}

// Getenv looks a variable up in the environment the other client would
// have expanded it from: the shell 'ringlet mcp import' runs in.
type Getenv func(string) (string, bool)

// claudeEntry is a server in Claude Code's and Claude Desktop's files,
// and (but for "servers") VS Code's.
type claudeEntry struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	EnvFile string            `json:"envFile"`
}

// decodeJSON checks data as Ringlet checks every JSON it takes (no member
// twice, valid UTF-8) and decodes it.
func decodeJSON(data []byte, v any) error {
	if len(data) > MaxFile {
		return fmt.Errorf("the file is larger than %d MiB", MaxFile>>20)
	}
	if !json.Valid(data) {
		var se *json.SyntaxError
		if err := json.Unmarshal(data, new(any)); errors.As(err, &se) {
			return fmt.Errorf("not valid JSON at byte %d: %v", se.Offset, se)
		}
		return errors.New("not valid JSON")
	}
	if err := strictjson.Check(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// ParseClaude reads a file whose top-level "mcpServers" holds servers:
// Claude Code's .mcp.json, Claude Desktop's config, or a file of that
// shape.
func ParseClaude(data []byte, from string, getenv Getenv) ([]Server, error) {
	var doc struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := decodeJSON(data, &doc); err != nil {
		return nil, err
	}
	return entries(doc.MCPServers, from, getenv, claudeExpand)
}

// ParseClaudeUser reads Claude Code's ~/.claude.json: the servers of the
// project at dir (projects.<dir>.mcpServers), then the user's own
// (top-level mcpServers).
func ParseClaudeUser(data []byte, from, dir string, getenv Getenv) ([]Server, error) {
	var doc struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
		Projects   map[string]struct {
			MCPServers map[string]json.RawMessage `json:"mcpServers"`
		} `json:"projects"`
	}
	if err := decodeJSON(data, &doc); err != nil {
		return nil, err
	}
	var out []Server
	if p, ok := doc.Projects[dir]; ok && dir != "" {
		got, err := entries(p.MCPServers, from+" (project "+dir+")", getenv, claudeExpand)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	got, err := entries(doc.MCPServers, from+" (user)", getenv, claudeExpand)
	if err != nil {
		return nil, err
	}
	return append(out, got...), nil
}

// ParseVSCode reads VS Code's .vscode/mcp.json: "servers", in JSON with
// comments and trailing commas.
func ParseVSCode(data []byte, from string, getenv Getenv) ([]Server, error) {
	if len(data) > MaxFile {
		return nil, fmt.Errorf("the file is larger than %d MiB", MaxFile>>20)
	}
	clean, err := StripJSONC(data)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Servers map[string]json.RawMessage `json:"servers"`
	}
	if err := decodeJSON(clean, &doc); err != nil {
		return nil, err
	}
	return entries(doc.Servers, from, getenv, vscodeExpand)
}

func entries(raw map[string]json.RawMessage, from string, getenv Getenv, expand expander) ([]Server, error) {
	var out []Server
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		var e claudeEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, fmt.Errorf("server %q: %v", name, err)
		}
		s := Server{Name: name, From: from, Type: e.Type, URL: e.URL, Env: e.Env, Headers: e.Headers}
		if e.Command != "" {
			s.Command = append([]string{e.Command}, e.Args...)
		}
		if e.EnvFile != "" {
			s.Problem = "it reads its variables from an envFile, which Ringlet does not read; add it with ringlet mcp add --env/--secret"
		}
		out = append(out, finish(s, getenv, expand))
	}
	return out, nil
}

// codexEntry is a [mcp_servers.NAME] table of Codex's config.toml.
type codexEntry struct {
	Command           string            `toml:"command"`
	Args              []string          `toml:"args"`
	Env               map[string]string `toml:"env"`
	EnvVars           []string          `toml:"env_vars"`
	URL               string            `toml:"url"`
	BearerTokenEnvVar string            `toml:"bearer_token_env_var"`
	HTTPHeaders       map[string]string `toml:"http_headers"`
	Enabled           *bool             `toml:"enabled"`
}

// ParseCodex reads Codex's config.toml: its [mcp_servers.NAME] tables.
// env_vars (variables Codex passes from its own environment) and
// bearer_token_env_var are read from getenv, as Codex would.
func ParseCodex(data []byte, from string, getenv Getenv) ([]Server, error) {
	if len(data) > MaxFile {
		return nil, fmt.Errorf("the file is larger than %d MiB", MaxFile>>20)
	}
	var doc struct {
		MCPServers map[string]codexEntry `toml:"mcp_servers"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("not valid TOML at line %d, column %d: %s", row, col, de.Error())
		}
		return nil, fmt.Errorf("not valid TOML: %v", err)
	}
	var out []Server
	for _, name := range slices.Sorted(maps.Keys(doc.MCPServers)) {
		e := doc.MCPServers[name]
		s := Server{Name: name, From: from, URL: e.URL, Env: maps.Clone(e.Env), Headers: maps.Clone(e.HTTPHeaders), Type: "stdio"}
		if e.URL != "" {
			s.Type = "http"
		}
		if e.Command != "" {
			s.Command = append([]string{e.Command}, e.Args...)
		}
		for _, v := range e.EnvVars {
			val, ok := getenv(v)
			if !ok {
				s.Problem = fmt.Sprintf("it passes %s from Codex's environment, which is not set in this shell", v)
				break
			}
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			s.Env[v] = val
		}
		if v := e.BearerTokenEnvVar; v != "" && s.Problem == "" {
			val, ok := getenv(v)
			if !ok {
				s.Problem = fmt.Sprintf("its bearer token is in %s, which is not set in this shell", v)
			} else {
				if s.Headers == nil {
					s.Headers = map[string]string{}
				}
				s.Headers["Authorization"] = "Bearer " + val
			}
		}
		if e.Enabled != nil && !*e.Enabled && s.Problem == "" {
			s.Problem = "it is disabled in Codex's config"
		}
		// Codex expands no variables in its config.
		out = append(out, finish(s, getenv, nil))
	}
	return out, nil
}

// Detect says which format a file named path holding data is in: TOML by
// its name, JSON by its top-level member.
func Detect(path string, data []byte) string {
	if strings.HasSuffix(path, ".toml") {
		return FormatCodex
	}
	clean, err := StripJSONC(data)
	var doc map[string]json.RawMessage
	if err != nil || json.Unmarshal(clean, &doc) != nil {
		if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
			// Broken JSON: its parser says where.
			return FormatClaude
		}
		return FormatUnknown
	}
	if _, ok := doc["mcpServers"]; ok {
		return FormatClaude
	}
	if _, ok := doc["servers"]; ok {
		return FormatVSCode
	}
	return FormatUnknown
}

// finish works out the server's type and expands its variables; what
// cannot be done becomes its Problem.
func finish(s Server, getenv Getenv, expand expander) Server {
	switch {
	case s.Type == "" && len(s.Command) > 0:
		s.Type = "stdio"
	case s.Type == "" && s.URL != "":
		s.Type = "http"
	case s.Type == "streamable-http", s.Type == "streamableHttp":
		s.Type = "http"
	}
	if s.Problem != "" {
		return s
	}
	switch s.Type {
	case "stdio":
		if len(s.Command) == 0 || strings.TrimSpace(s.Command[0]) == "" {
			s.Problem = "it has no command"
		}
	case "http":
		if s.URL == "" {
			s.Problem = "it has no URL"
		}
	case "sse":
		s.Problem = "it uses the SSE transport, which Ringlet's gateway does not speak (streamable HTTP only)"
	default:
		s.Problem = fmt.Sprintf("its type %q is not one Ringlet knows (stdio, http)", s.Type)
	}
	if s.Problem != "" || expand == nil {
		return s
	}
	var err error
	for i := range s.Command {
		if s.Command[i], err = expand(s.Command[i], getenv); err != nil {
			s.Problem = "its command " + err.Error()
			return s
		}
	}
	if s.URL, err = expand(s.URL, getenv); err != nil {
		s.Problem = "its URL " + err.Error()
		return s
	}
	for _, m := range []map[string]string{s.Env, s.Headers} {
		for k, v := range m {
			if m[k], err = expand(v, getenv); err != nil {
				s.Problem = k + " " + err.Error()
				return s
			}
		}
	}
	return s
}

type expander func(string, Getenv) (string, error)

var claudeVarRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{([^}]*)\}`) })

// claudeExpand expands ${VAR} and ${VAR:-default}, as Claude Code does in
// .mcp.json.
func claudeExpand(s string, getenv Getenv) (string, error) {
	return expandWith(s, func(ref string) (string, error) {
		name, def, hasDef := strings.Cut(ref, ":-")
		if v, ok := getenv(name); ok {
			return v, nil
		}
		if hasDef {
			return def, nil
		}
		return "", fmt.Errorf("uses ${%s}, which is not set in this shell", name)
	})
}

// vscodeExpand expands ${env:VAR}; VS Code's other variables (an input
// it prompts for, the workspace folder) only VS Code can answer.
func vscodeExpand(s string, getenv Getenv) (string, error) {
	return expandWith(s, func(ref string) (string, error) {
		name, ok := strings.CutPrefix(ref, "env:")
		if !ok {
			return "", fmt.Errorf("uses ${%s}, which only VS Code can answer; add it with ringlet mcp add", ref)
		}
		if v, ok := getenv(name); ok {
			return v, nil
		}
		return "", fmt.Errorf("uses ${env:%s}, which is not set in this shell", name)
	})
}

func expandWith(s string, lookup func(string) (string, error)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var firstErr error
	out := claudeVarRE().ReplaceAllStringFunc(s, func(m string) string {
		v, err := lookup(m[2 : len(m)-1])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	return out, firstErr
}

// StripJSONC turns JSON with comments (// and /* */) and trailing commas,
// as VS Code writes its settings, into JSON. Strings are left as they are.
func StripJSONC(data []byte) ([]byte, error) {
	out, err := scanJSONC(data, func(out, data []byte, i int) ([]byte, int, error) {
		switch {
		case data[i] == '/' && i+1 < len(data) && data[i+1] == '/':
			for i < len(data) && data[i] != '\n' {
				i++
			}
			return append(out, '\n'), i, nil
		case data[i] == '/' && i+1 < len(data) && data[i+1] == '*':
			end := bytes.Index(data[i+2:], []byte("*/"))
			if end < 0 {
				return nil, 0, errors.New("not valid JSON: a comment does not end")
			}
			return append(out, ' '), i + end + 3, nil
		}
		return append(out, data[i]), i, nil
	})
	if err != nil {
		return nil, err
	}
	// Then a comma before a closing bracket, past white space.
	return scanJSONC(out, func(out, data []byte, i int) ([]byte, int, error) {
		if data[i] == ',' {
			j := i + 1
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j < len(data) && (data[j] == '}' || data[j] == ']') {
				return out, i, nil
			}
		}
		return append(out, data[i]), i, nil
	})
}

// scanJSONC copies data's strings as they are and hands every other byte
// to step, which appends what it keeps and returns the last index it
// consumed.
func scanJSONC(data []byte, step func(out, data []byte, i int) ([]byte, int, error)) ([]byte, error) {
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		if data[i] == '"' {
			j := i + 1
			for ; j < len(data) && data[j] != '"'; j++ {
				if data[j] == '\\' {
					j++
				}
			}
			if j >= len(data) {
				return nil, errors.New("not valid JSON: a string does not end")
			}
			out = append(out, data[i:j+1]...)
			i = j
			continue
		}
		var err error
		if out, i, err = step(out, data, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// serverNameRE is what mcpserver.ValidateName accepts.
var serverNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$`) })

// RingletName is name as a Ringlet server name: lower case, '_', '.' and
// spaces as '-', nothing else but letters, digits and '-', at most 32.
func RingletName(name string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-', r == '_', r == '.', r == ' ':
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	if len(out) > 32 {
		out = strings.TrimRight(out[:32], "-")
	}
	return out, serverNameRE().MatchString(out)
}

// secretNameRE matches a variable's name that says it holds a secret.
var secretNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|PRIVATE|SESSION|SIGNATURE|(^|_)(PAT|PWD|PASS|DSN|CERT)(_|$))`)
})

// keyPrefixes begin the keys of well-known services.
var keyPrefixes = []string{"sk-", "sk_", "pk_live_", "rk_live_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxa-", "xoxb-", "xoxp-", "xapp-",
	"AKIA", "ASIA", "AIza", "ya29.", "lin_api_", "ntn_", "secret_", "sntrys_", "shpat_", "npm_", "hf_", "dop_v1_", "Bearer ", "eyJ"}

// LooksSecret reports whether a variable, by its name or its value,
// looks like it holds a secret: such values go to the credential store.
// In doubt it says yes: a plain value kept as a secret costs nothing.
func LooksSecret(name, value string) bool {
	if secretNameRE().MatchString(name) {
		return true
	}
	for _, p := range keyPrefixes {
		if strings.HasPrefix(value, p) && len(value) > len(p)+8 {
			return true
		}
	}
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return looksRandom(value)
}

// looksRandom: a long run of letters, digits and the characters of
// base64 and hex, with both letters and digits, that is no path, URL or
// list.
func looksRandom(v string) bool {
	if len(v) < 20 || strings.ContainsAny(v, " ,;") || strings.HasPrefix(v, "/") || strings.HasPrefix(v, "~") || strings.HasPrefix(v, ".") || strings.Contains(v, "://") {
		return false
	}
	letters, digits := 0, 0
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("-_+/=.:", r):
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}
