// Package mcpserver describes an upstream MCP server of a profile: its
// definition as the daemon stores it and the API takes it, the checks on
// that definition, and its status as 'ringlet mcp list' shows it. The CLI
// shares it with package mcp without linking the gateway that runs the
// servers.
package mcpserver

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neullabs/ringlet/internal/outbound"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
)

// Limits of an upstream definition.
const (
	DefaultCallTimeout = 60 * time.Second
	MaxCallTimeout     = 30 * time.Minute
	maxArgv            = 256
	maxArgvBytes       = 64 << 10
	maxShims           = 16
	// MaxEnv bounds the variables (plain and secret) a stdio server is
	// given besides Ringlet's own.
	MaxEnv      = 64
	maxEnvValue = 32 << 10
)

// SecretProvider is the provider part of a secret referenced by a bare
// name (--secret NAME=github-token is mcp/github-token): where 'ringlet
// mcp import' stores the secrets it finds.
const SecretProvider = "mcp"

// OAuthProvider is the provider of the OAuth authorizations 'mcp auth'
// keeps in the credential store (mcp/oauth.Provider): records of tokens
// and a client, never a key to give a server by name.
const OAuthProvider = "mcp-oauth"

// checkNotOAuth refuses a reference to an OAuth record: given as a key,
// the whole record (refresh token, client secret) would go to the server.
func checkNotOAuth(what, ref string) error {
	if strings.HasPrefix(ref, OAuthProvider+"/") {
		return fmt.Errorf("%s %q is the OAuth authorization of an MCP server, not a key to give one; 'ringlet mcp auth' sends its token", what, ref)
	}
	return nil
}

// envNameRE is a variable name as POSIX shells write it.
var envNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`) })

// ReservedEnv are the variables Ringlet sets for every stdio server and
// that --env and --secret may not replace: PATH is the one the server was
// added with, by which its program was found and its sandbox's read-only
// installs chosen; HOME is the profile's (its sandboxed HOME, or the
// unsandboxed one of a --no-sandbox server), which the sandbox binds.
var ReservedEnv = []string{"PATH", "HOME"}

// serverNameRE is what <server> in <server>__<tool> may be. No
// underscore, so the first "__" of an exposed name always ends the server
// name, and short, so the exposed name stays within 128 characters.
var serverNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$`) })

// Config is one upstream MCP server of a profile, as the daemon stores it
// and as the API takes and shows it.
type Config struct {
	Name string `json:"name"`
	// Command is the argv of a stdio server, started by the daemon.
	Command []string `json:"command,omitempty"`
	// URL is the endpoint of a streamable HTTP server (instead of Command).
	URL string `json:"url,omitempty"`
	// Credential names a key in the credential store (provider/alias)
	// that the gateway sends to an HTTP server as Authorization: Bearer.
	// The key is read when a request is made and never reaches the agent.
	Credential string `json:"credential,omitempty"`
	// Env are variables a stdio server gets besides PATH, HOME and LANG:
	// plain values, kept in Ringlet's files and shown by 'mcp list' and
	// 'mcp show'. A secret goes in Secrets.
	Env map[string]string `json:"env,omitempty"`
	// Secrets maps a variable a stdio server gets to the key in the
	// credential store (provider/alias) that is its value: read from the
	// store at each start and given only to that process's environment
	// (inside its sandbox), never to its command line, Ringlet's files,
	// logs, listings or the audit log, which name the variable and the
	// reference alone. What the server answers has the values redacted.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Timeout bounds one tool call. Zero means DefaultCallTimeout.
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	// A stdio server runs in the profile's sandbox: the system read-only,
	// the profile's HOME and workspace (and its --ro/--rw paths), and
	// ReadOnly and ReadWrite besides; Network is "none" (the default:
	// loopback only) or "host". NoSandbox runs it as a plain child of the
	// daemon instead: an explicit, audited opt-out.
	ReadOnly  []string `json:"ro,omitempty"`
	ReadWrite []string `json:"rw,omitempty"`
	Network   string   `json:"network,omitempty"`
	NoSandbox bool     `json:"no_sandbox,omitempty"`
	// Path is where a bare program name of Command, and an interpreter a
	// script finds with `#!/usr/bin/env NAME`, are found: the PATH of the
	// shell that added the server (the daemon's own is that of whatever
	// started it). Empty (servers added before, or through the API
	// without one): the daemon's PATH.
	Path string `json:"path,omitempty"`
	// Shims are the version managers' answers when the server was added,
	// asked in the user's shell: a shim's path (~/.pyenv/shims/python3),
	// and the program it stood for (~/.pyenv/versions/3.12.1/bin/python3),
	// which runs in its place. The daemon never asks a manager.
	Shims   map[string]string `json:"shims,omitempty"`
	Created time.Time         `json:"created"`
	// Pin is the server as first seen or last approved: what runs and
	// every tool it lists. Only the daemon writes it.
	Pin *Pin `json:"pin,omitempty"`
	// Pins are the pins of versions before Pin: each tool's name to the
	// hash of its definition. A server's first start moves them into Pin
	// (see docs/mcp.md, "Pinning").
	Pins map[string]string `json:"pins,omitempty"`
	// Approved is when 'ringlet mcp approve' last re-pinned the tools.
	Approved *time.Time `json:"approved,omitempty"`
	// Headers are sent to an HTTP server with every request: plain
	// values, kept in Ringlet's files and shown by 'mcp show --json'. A
	// key goes in HeaderSecrets. Names are in canonical form.
	Headers map[string]string `json:"headers,omitempty"`
	// HeaderSecrets maps a header sent to an HTTP server to the stored
	// key that is its value: "PROVIDER/ALIAS", or "SCHEME PROVIDER/ALIAS"
	// for a value the key follows ("Token mcp/linear" sends "Token <key>").
	// The key is read from the credential store at each request and never
	// reaches Ringlet's files, logs, listings or the audit log, which name
	// the header and the reference alone; what the server answers has it
	// redacted.
	HeaderSecrets map[string]string `json:"header_secrets,omitempty"`
	// ToolRules are 'ringlet mcp tools --enable/--disable', in the order
	// given: the last rule whose pattern matches a tool decides whether
	// sessions see it; a tool no rule matches follows the profile's
	// default (ToolsAll or ToolsNone).
	ToolRules []ToolRule `json:"tool_rules,omitempty"`
	// Resources and Prompts are 'ringlet mcp tools --resources/--prompts':
	// SwitchOn or SwitchOff serves or hides all of the server's resources
	// (and resource templates), or prompts; empty follows the profile's
	// default as a tool no rule names does.
	Resources string `json:"resources,omitempty"`
	Prompts   string `json:"prompts,omitempty"`
	// PromptRules and ResourceRules are 'ringlet mcp tools
	// --enable-prompt/--disable-prompt' and
	// '--enable-resource/--disable-resource', in the order given: the
	// last rule that matches a prompt's name (or a resource's URI, or a
	// template's URI template) decides; one no rule names follows the
	// switch above, then the profile's default (Config.ItemEnabled).
	PromptRules   []ToolRule `json:"prompt_rules,omitempty"`
	ResourceRules []ToolRule `json:"resource_rules,omitempty"`
}

// Networks of a sandboxed stdio server.
const (
	NetworkNone = "none" // loopback only (the default)
	NetworkHost = "host" // the host's network
)

// ValidateName checks <server>.
func ValidateName(name string) error {
	if !serverNameRE().MatchString(name) {
		return fmt.Errorf("invalid MCP server name %q: use 1 to 32 lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

var credentialRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^` + names.Pattern + `/` + names.Pattern + `$`) })

// SendsAuthorization reports whether the server is sent an Authorization
// header of the user's own (--credential, --header or --header-secret):
// an OAuth token from 'mcp auth' is then not sent.
func (c *Config) SendsAuthorization() bool {
	if c.Credential != "" {
		return true
	}
	for _, m := range []map[string]string{c.Headers, c.HeaderSecrets} {
		for name := range m {
			if strings.EqualFold(name, "Authorization") {
				return true
			}
		}
	}
	return false
}

// Validate checks a definition and fills the default timeout.
func (c *Config) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	switch {
	case c.URL != "" && len(c.Command) > 0:
		return errors.New("an MCP server has a command or a URL, not both")
	case c.URL != "":
		if err := validateURL(c.URL); err != nil {
			return err
		}
	case len(c.Command) == 0 || strings.TrimSpace(c.Command[0]) == "":
		return errors.New("an MCP server needs a command or a URL: ringlet mcp add PROFILE NAME -- COMMAND [ARGS...], or --url URL")
	}
	if c.Credential != "" {
		if c.URL == "" {
			return errors.New("--credential is for HTTP servers (--url); a stdio server gets no keys")
		}
		if !credentialRE().MatchString(c.Credential) {
			return fmt.Errorf("invalid --credential %q: want <provider>/<alias>", c.Credential)
		}
		if err := checkNotOAuth("--credential", c.Credential); err != nil {
			return err
		}
	}
	if err := c.validateEnv(); err != nil {
		return err
	}
	if err := c.validateHeaders(); err != nil {
		return err
	}
	if c.URL != "" && (len(c.ReadOnly)+len(c.ReadWrite) > 0 || c.Network != "" || c.NoSandbox) {
		return errors.New("--ro, --rw, --network and --no-sandbox are for stdio servers; an HTTP server runs elsewhere")
	}
	switch c.Network {
	case "", NetworkNone, NetworkHost:
	default:
		return fmt.Errorf("invalid --network %q; accepted values: none, host", c.Network)
	}
	if c.NoSandbox && (len(c.ReadOnly)+len(c.ReadWrite) > 0 || c.Network != "") {
		return errors.New("--no-sandbox runs the server unconfined; --ro, --rw and --network do not apply")
	}
	for _, p := range append(append([]string{}, c.ReadOnly...), c.ReadWrite...) {
		if err := sandbox.CheckPath("--ro/--rw path", p); err != nil {
			return err
		}
	}
	if c.URL != "" && (c.Path != "" || len(c.Shims) > 0) {
		return errors.New("an HTTP server has no PATH or shims")
	}
	if len(c.Path) > maxArgvBytes || strings.ContainsAny(c.Path, "\x00\n\r") {
		return errors.New("the PATH is longer than 64 KiB or contains a newline or NUL")
	}
	if len(c.Shims) > maxShims {
		return fmt.Errorf("more than %d shims", maxShims)
	}
	for shim, program := range c.Shims {
		if err := errors.Join(sandbox.CheckPath("shim", shim), sandbox.CheckPath("shim's program", program)); err != nil {
			return err
		}
	}
	if len(c.Command) > maxArgv {
		return fmt.Errorf("the command has more than %d arguments", maxArgv)
	}
	n := 0
	for _, a := range c.Command {
		n += len(a)
		if strings.ContainsRune(a, 0) {
			return errors.New("the command contains a NUL byte")
		}
	}
	if n > maxArgvBytes {
		return fmt.Errorf("the command is longer than %d KiB", maxArgvBytes>>10)
	}
	if err := errors.Join(validateToolRules(c.ToolRules), validateRules("prompt", c.PromptRules, CheckPromptPattern),
		validateRules("resource", c.ResourceRules, CheckResourcePattern)); err != nil {
		return err
	}
	for _, s := range []string{c.Resources, c.Prompts} {
		if s != "" && s != SwitchOn && s != SwitchOff {
			return fmt.Errorf("invalid resources/prompts setting %q; accepted values: on, off", s)
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCallTimeout
	}
	if c.Timeout < time.Second || c.Timeout > MaxCallTimeout {
		return fmt.Errorf("timeout must be from 1s to %s", MaxCallTimeout)
	}
	return nil
}

// ParseEnv parses NAME=value (of --env, --secret); value may be empty.
func ParseEnv(flag, kv string) (name, value string, err error) {
	name, value, ok := strings.Cut(kv, "=")
	if !ok {
		return "", "", fmt.Errorf("invalid %s %q: want NAME=VALUE", flag, kv)
	}
	if err := CheckEnvName(name); err != nil {
		return "", "", err
	}
	return name, value, nil
}

// CheckEnvName checks the name of a variable given to a server.
func CheckEnvName(name string) error {
	if !envNameRE().MatchString(name) {
		return fmt.Errorf("invalid variable name %q: use letters, digits and '_', not starting with a digit, at most 128", name)
	}
	if slices.Contains(ReservedEnv, name) {
		return fmt.Errorf("%s is set by Ringlet for every MCP server and cannot be replaced: the server keeps the PATH of the shell that added it, and its HOME is the profile's", name)
	}
	return nil
}

// SecretRef is the credential a --secret value names: <provider>/<alias>,
// or a bare <alias>, which is mcp/<alias>.
func SecretRef(s string) (string, error) {
	if !strings.Contains(s, "/") && names.Valid(s) {
		return SecretProvider + "/" + s, nil
	}
	if !credentialRE().MatchString(s) {
		return "", fmt.Errorf("invalid secret reference %q: want <provider>/<alias> or <alias> (a key stored with 'ringlet keychain set')", s)
	}
	if err := checkNotOAuth("secret", s); err != nil {
		return "", err
	}
	return s, nil
}

// validateEnv checks Env and Secrets and puts every secret reference in
// its full form.
func (c *Config) validateEnv() error {
	if len(c.Env)+len(c.Secrets) == 0 {
		return nil
	}
	if c.URL != "" {
		return errors.New("--env and --secret are for stdio servers; an HTTP server gets a key with --credential")
	}
	if len(c.Env)+len(c.Secrets) > MaxEnv {
		return fmt.Errorf("more than %d variables", MaxEnv)
	}
	n := 0
	for name, v := range c.Env {
		if err := CheckEnvName(name); err != nil {
			return err
		}
		if _, ok := c.Secrets[name]; ok {
			return fmt.Errorf("%s is both a plain variable (--env) and a secret (--secret); give it once", name)
		}
		if strings.ContainsRune(v, 0) || len(v) > maxEnvValue {
			return fmt.Errorf("the value of %s is longer than %d KiB or contains a NUL byte", name, maxEnvValue>>10)
		}
		n += len(name) + len(v)
	}
	if n > maxArgvBytes {
		return fmt.Errorf("the variables are longer than %d KiB", maxArgvBytes>>10)
	}
	for name, ref := range c.Secrets {
		if err := CheckEnvName(name); err != nil {
			return err
		}
		full, err := SecretRef(ref)
		if err != nil {
			return fmt.Errorf("--secret %s: %w", name, err)
		}
		c.Secrets[name] = full
	}
	return nil
}

// EnvChange is what 'ringlet mcp set' changes of a stdio server: the
// variables to remove, then those to set (replacing a variable of the same
// kind; a plain variable never silently becomes a secret or back).
type EnvChange struct {
	Env          map[string]string `json:"env,omitempty"`
	UnsetEnv     []string          `json:"unset_env,omitempty"`
	Secrets      map[string]string `json:"secrets,omitempty"`
	UnsetSecrets []string          `json:"unset_secrets,omitempty"`
	// The headers of an HTTP server, the same way: plain, and secrets
	// ("[SCHEME ]PROVIDER/ALIAS").
	Headers            map[string]string `json:"headers,omitempty"`
	UnsetHeaders       []string          `json:"unset_headers,omitempty"`
	HeaderSecrets      map[string]string `json:"header_secrets,omitempty"`
	UnsetHeaderSecrets []string          `json:"unset_header_secrets,omitempty"`
}

// Empty reports whether ch changes nothing.
func (ch EnvChange) Empty() bool {
	return len(ch.Env)+len(ch.UnsetEnv)+len(ch.Secrets)+len(ch.UnsetSecrets)+
		len(ch.Headers)+len(ch.UnsetHeaders)+len(ch.HeaderSecrets)+len(ch.UnsetHeaderSecrets) == 0
}

// Apply changes c's variables; c.Validate checks the result.
func (ch EnvChange) Apply(c *Config) error {
	for _, name := range ch.UnsetEnv {
		if _, ok := c.Env[name]; !ok {
			return fmt.Errorf("MCP server %s has no variable %s to unset ('ringlet mcp show' lists them)", c.Name, name)
		}
		delete(c.Env, name)
	}
	for _, name := range ch.UnsetSecrets {
		if _, ok := c.Secrets[name]; !ok {
			return fmt.Errorf("MCP server %s has no secret %s to unset ('ringlet mcp show' lists them)", c.Name, name)
		}
		delete(c.Secrets, name)
	}
	for name, v := range ch.Env {
		if _, ok := c.Secrets[name]; ok {
			return fmt.Errorf("%s is a secret of MCP server %s; unset it with --unset-secret %s to give it a plain value", name, c.Name, name)
		}
		if c.Env == nil {
			c.Env = map[string]string{}
		}
		c.Env[name] = v
	}
	for name, ref := range ch.Secrets {
		if _, ok := c.Env[name]; ok {
			return fmt.Errorf("%s is a plain variable of MCP server %s; unset it with --unset-env %s to make it a secret", name, c.Name, name)
		}
		if c.Secrets == nil {
			c.Secrets = map[string]string{}
		}
		c.Secrets[name] = ref
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
	if len(c.Secrets) == 0 {
		c.Secrets = nil
	}
	return ch.applyHeaders(c)
}

// EnvNames are the names of the variables given to the server besides
// Ringlet's own, plain and secret, sorted.
func (c Config) EnvNames() []string {
	out := slices.Collect(maps.Keys(c.Env))
	for n := range c.Secrets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// SearchPath is where the server's program is found: the PATH it was
// added with, else daemon (the daemon's own).
func (c Config) SearchPath(daemon string) string {
	if c.Path != "" {
		return c.Path
	}
	return daemon
}

// ShimFix adds to err, why the server's program cannot run in its
// sandbox, what the user can do: for a shim without an answer, the command
// that adds the server with the program itself in the shim's place.
// adding says whether the server is being added (else it has to be
// removed first); alias is its profile.
func (cfg Config) ShimFix(err error, alias string, adding bool) error {
	var se *toolchain.ShimError
	if !errors.As(err, &se) {
		return err
	}
	how := "add it"
	if !adding {
		how = fmt.Sprintf("remove it (ringlet mcp remove %s %s) and add it again", alias, cfg.Name)
	}
	flags := ""
	for _, p := range cfg.ReadOnly {
		flags += " --ro " + toolchain.Quote(p)
	}
	for _, p := range cfg.ReadWrite {
		flags += " --rw " + toolchain.Quote(p)
	}
	if cfg.Network != "" {
		flags += " --network " + cfg.Network
	}
	if fix := se.Fix(cfg.Command); fix != "" {
		return fmt.Errorf("%w: %s with the program itself, ringlet mcp add %s %s%s -- %s, or with --no-sandbox", err, how, alias, cfg.Name, flags, fix)
	}
	return fmt.Errorf("%w: %s with the program's own path in place of %s, or with --no-sandbox", err, how, se.Shim.Path)
}

// validateURL checks the endpoint of an HTTP server: what a tool call
// carries, and its credential, must not cross a network in the clear.
func validateURL(s string) error {
	_, err := outbound.ParseURL("MCP server URL", s)
	return err
}

// Tool states in Status.
const (
	ToolVisible = "visible" // served to the profile's sessions
	ToolChanged = "changed" // new, changed or renamed since approved, or its server's program changed: hidden until approved
	ToolInvalid = "invalid" // cannot be served (name or schema)
	// ToolDisabled: turned off with 'ringlet mcp tools' (or by the
	// profile's default): not listed, and a call is refused.
	ToolDisabled = "disabled"
)

// Status is an upstream server as 'ringlet mcp list' shows it.
type Status struct {
	Config
	State   string     `json:"state"`
	Error   string     `json:"error,omitempty"`
	RetryAt *time.Time `json:"retry_at,omitempty"`
	// Failures counts its failures in a row while it is not running: a
	// crash-looping server shows a growing count (and backoff).
	Failures int `json:"failures,omitempty"`
	// Runtime is, for a stdio server, what runs and what its sandbox
	// reads besides the system, found as it would be at a start now.
	Runtime *toolchain.Resolution `json:"runtime,omitempty"`
	Tools   []ToolStatus          `json:"tools"`
	// Items are its prompts, resources and resource templates with their
	// state, as the last check found them (as Tools are its tools).
	Items []ItemStatus `json:"items,omitempty"`
	// PendingItems are its prompts, resources and resource templates
	// hidden until approved (added or changed since), as the last check
	// found them.
	PendingItems []PendingItem `json:"pending_items,omitempty"`
}

// PendingItem is a prompt, resource or resource template hidden until
// approved: its kind (KindPrompt, KindResource, KindTemplate), its name
// (or URI, or URI template) as the server lists it, and the change.
type PendingItem struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Change string `json:"change"`
}

// ItemStatus is one prompt, resource or resource template of an
// upstream server: its Kind (KindPrompt, KindResource, KindTemplate),
// then as a tool's status, Name being the prompt's name, the resource's
// URI or the template's URI template as the server lists it, and
// Exposed what sessions see.
type ItemStatus struct {
	Kind string `json:"kind"`
	ToolStatus
}

// ToolStatus is one tool of an upstream server.
type ToolStatus struct {
	Name    string `json:"name"`              // as the server lists it
	Exposed string `json:"exposed,omitempty"` // <server>__<tool>
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	// Description is the first line of the tool's description.
	Description string `json:"description,omitempty"`
	// Enabled is whether 'mcp tools' lets sessions see it; By says why:
	// ByDefault (the profile's default) or ByRule (Rule, a pattern).
	Enabled bool   `json:"enabled"`
	By      string `json:"by,omitempty"`
	Rule    string `json:"rule,omitempty"`
	// Change is, for a tool hidden until approved (ToolChanged), what
	// changed: ChangeAdded, ChangeChanged, ChangeRenamed or
	// ChangeIdentity (the server's program).
	Change string `json:"change,omitempty"`
}

// Clone returns a copy of c that shares no slice, map or pointer with it,
// so a caller may change what it was given without changing the store's
// copy.
func (c Config) Clone() Config {
	c.Command = slices.Clone(c.Command)
	c.ReadOnly = slices.Clone(c.ReadOnly)
	c.ReadWrite = slices.Clone(c.ReadWrite)
	c.Shims = maps.Clone(c.Shims)
	c.Pins = maps.Clone(c.Pins)
	c.Pin = c.Pin.Clone()
	c.Env = maps.Clone(c.Env)
	c.Secrets = maps.Clone(c.Secrets)
	c.Headers = maps.Clone(c.Headers)
	c.HeaderSecrets = maps.Clone(c.HeaderSecrets)
	c.ToolRules = slices.Clone(c.ToolRules)
	c.PromptRules = slices.Clone(c.PromptRules)
	c.ResourceRules = slices.Clone(c.ResourceRules)
	if c.Approved != nil {
		t := *c.Approved
		c.Approved = &t
	}
	return c
}
