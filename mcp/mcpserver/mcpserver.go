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
)

// serverNameRE is what <server> in <server>__<tool> may be. No
// underscore, so the first "__" of an exposed name always ends the server
// name, and short, so the exposed name stays within 128 characters.
var serverNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$`)

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
	// Pins maps each upstream tool name to the hash of its definition
	// when it was first seen or last approved.
	Pins map[string]string `json:"pins,omitempty"`
	// Approved is when 'ringlet mcp approve' last re-pinned the tools.
	Approved *time.Time `json:"approved,omitempty"`
}

// Networks of a sandboxed stdio server.
const (
	NetworkNone = "none" // loopback only (the default)
	NetworkHost = "host" // the host's network
)

// ValidateName checks <server>.
func ValidateName(name string) error {
	if !serverNameRE.MatchString(name) {
		return fmt.Errorf("invalid MCP server name %q: use 1 to 32 lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

var credentialRE = regexp.MustCompile(`^` + names.Pattern + `/` + names.Pattern + `$`)

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
		if !credentialRE.MatchString(c.Credential) {
			return fmt.Errorf("invalid --credential %q: want <provider>/<alias>", c.Credential)
		}
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
	if c.Timeout == 0 {
		c.Timeout = DefaultCallTimeout
	}
	if c.Timeout < time.Second || c.Timeout > MaxCallTimeout {
		return fmt.Errorf("timeout must be from 1s to %s", MaxCallTimeout)
	}
	return nil
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
	ToolChanged = "changed" // differs from its pin: hidden until approved
	ToolInvalid = "invalid" // cannot be served (name or schema)
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
}

// ToolStatus is one tool of an upstream server.
type ToolStatus struct {
	Name    string `json:"name"`              // as the server lists it
	Exposed string `json:"exposed,omitempty"` // <server>__<tool>
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
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
	if c.Approved != nil {
		t := *c.Approved
		c.Approved = &t
	}
	return c
}
