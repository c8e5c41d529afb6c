package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/mcp/stdiobridge"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/token"
	"github.com/neullabs/ringlet/toolchain"
)

func (a *app) mcpCmd() *cobra.Command {
	var stdio, admin bool
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "The MCP gateway: upstream MCP servers per profile, and a stdio bridge",
		Long: `The daemon serves MCP (streamable HTTP) at /mcp. With the admin token a
client sees Ringlet's controls as tools; with a session token it sees its
own session and the tools of its profile's MCP servers, as <server>__<tool>.
Every call to those passes the profile's pre-tool-use hooks first.

An MCP server added to a profile runs as a child of the daemon when a
session of the profile first uses MCP, with only PATH, HOME (the
profile's) and LANG in its environment, and the variables and secrets it
was given with --env and --secret ('mcp add', 'mcp set'). The first time Ringlet sees a tool
it pins a hash of its definition; if the server later changes the tool, it
is hidden until 'ringlet mcp approve'. 'ringlet mcp tools' chooses which
tools the profile's sessions are served (--enable, --disable, --default).

'ringlet mcp --stdio' is an MCP server on stdin/stdout for clients that
only spawn stdio servers, bridged to the daemon's /mcp. It serves the
session of the agent that starts it ('profiles run', or a shell where
'profiles env' ran: RINGLET_SESSION, RINGLET_SESSION_TOKEN and
RINGLET_SESSION_URL are in its environment): that session's tools only.
It refuses to start when there is no session in its environment, or the
session's token is missing or no longer valid; it never falls back to the
admin token. Inside a sandbox 'ringlet' is on PATH and reaches the daemon
through the sandbox's forwarder.

'ringlet mcp --stdio --admin', outside any session, serves Ringlet's own
controls with RINGLET_TOKEN, else the admin token in the http_token file:
for your own MCP client, never an agent's.`,
		Example: `  ringlet mcp add work fs -- npx -y @modelcontextprotocol/server-filesystem ~/src/app
  ringlet mcp list work
  ringlet mcp approve work fs
  ringlet mcp tools work fs --disable 'write_*'
  ringlet mcp remove work fs
  # A remote server behind OAuth:
  ringlet mcp add work linear --url https://mcp.linear.app/mcp
  ringlet mcp auth work linear

  # Give a sandboxed Claude Code its session's MCP tools:
  ringlet profiles run work -- mcp add ringlet -- ringlet mcp --stdio
  # ... or one started with profiles env:
  eval "$(ringlet profiles env work)" && claude mcp add ringlet -- ringlet mcp --stdio
  # Ringlet's controls in your own MCP client (never an agent's):
  ringlet mcp --stdio --admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdio {
				if admin {
					return usagef("--admin goes with --stdio")
				}
				return cmd.Help()
			}
			return a.mcpStdio(cmd, admin)
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "serve MCP on stdin/stdout, bridged to the daemon's /mcp (stdout carries only JSON-RPC)")
	cmd.Flags().BoolVar(&admin, "admin", false, "with --stdio: serve Ringlet's own controls with the admin token, for your own MCP client (refused in a session's environment)")
	cmd.AddCommand(a.mcpAddCmd(), a.mcpImportCmd(), a.mcpSetCmd(), a.mcpListCmd(), a.mcpShowCmd(), a.mcpRemoveCmd(), a.mcpApproveCmd(), a.mcpToolsCmd(), a.mcpAuthCmd())
	return cmd
}

// mcpStdio bridges stdin/stdout to /mcp. Nothing but JSON-RPC may reach
// stdout: every message for a human goes to stderr.
//
// It bridges for the session in the environment (an agent started by
// 'profiles run' or 'profiles env') with that session's token alone,
// checked before the first message; a session whose token is missing, not
// one, or no longer valid is refused. The admin token only with --admin,
// and never in a session's environment: with it an agent would see
// Ringlet's controls, its own hooks among them. An agent that passes its
// MCP servers only some variables (Codex does) thus gets a refusal, not
// the admin token file.
func (a *app) mcpStdio(cmd *cobra.Command, admin bool) error {
	var base, tok string
	sess, inSession := a.agentSessionFromEnv()
	switch {
	case inSession && admin:
		return fmt.Errorf("--admin is refused in a Ringlet session's environment (%s): a session's bridge never uses the admin token; run it from your own shell", strings.Join(sess.Shown, ", "))
	case !inSession && !admin:
		return fmt.Errorf("no Ringlet session in the environment (%s, %s, %s): start the agent with 'ringlet profiles run', or in a shell where 'eval \"$(ringlet profiles env PROFILE)\"' ran, and let it pass them to its MCP servers; the bridge never uses the admin token unless asked with --admin, for your own MCP client",
			profile.EnvSession, profile.EnvSessionToken, profile.EnvSessionURL)
	}
	if inSession {
		if err := sess.check(); err != nil {
			return err
		}
		base = sess.URL
		if base == "" {
			// A session exists only in a running daemon: find it, never
			// start one.
			paths, err := a.needPaths()
			if err != nil {
				return err
			}
			if base, err = a.daemonURL(paths); err != nil {
				return err
			}
		}
		tok = sess.Token
		if a.getenv("RINGLET_TOKEN") != "" {
			fmt.Fprintf(a.stdio.Err, "ringlet: mcp --stdio runs for the session in the environment (%s); RINGLET_TOKEN is ignored\n", strings.Join(sess.Shown, ", "))
		}
		if _, err := client.New(base, token.FromString(tok)).OwnSession(cmd.Context()); err != nil {
			var refused *client.Error
			if errors.As(err, &refused) && refused.Status == http.StatusUnauthorized {
				return errSessionEnded
			}
			return fmt.Errorf("check the session's token with the Ringlet daemon at %s: %w", base, err)
		}
	} else if tok = a.getenv("RINGLET_TOKEN"); tok != "" {
		paths, err := a.needPaths()
		if err != nil {
			return err
		}
		if base, err = a.daemonURL(paths); err != nil {
			return err
		}
	} else {
		c, err := a.ensureDaemon(cmd.Context())
		if err != nil {
			return err
		}
		base, tok = c.BaseURL(), c.Token().Value()
	}
	b := &stdiobridge.Bridge{
		URL:   strings.TrimRight(base, "/") + "/mcp",
		Token: tok,
		In:    a.stdio.In,
		Out:   a.stdio.Out,
		Log:   slog.New(slog.NewTextHandler(a.stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	return b.Run(cmd.Context())
}

func (a *app) mcpAddCmd() *cobra.Command {
	var timeout, serverURL, credential, network string
	var ro, rw, envs, secrets, headers, headerSecrets []string
	var noSandbox bool
	cmd := &cobra.Command{
		Use:   "add PROFILE NAME (-- COMMAND [ARGS...] | --url URL)",
		Short: "Add an MCP server to a profile",
		Long: `Add an MCP server to a profile: a stdio server (a command) or a
streamable HTTP server (--url; plain http only on loopback).

A stdio server starts when a session of the profile first uses MCP, as a
child of the daemon, in the profile's workspace (else its HOME), with only
PATH, HOME and LANG in its environment, and its --env and --secret
variables: no other key and no daemon token. It
runs in the profile's sandbox: it sees the system read-only, the profile's
HOME and workspace (and the profile's --ro/--rw paths), what --ro and --rw
add, and no network but loopback unless --network host. --no-sandbox runs
it unconfined (warned and audited). Its tools appear to the profile's
sessions as NAME__TOOL.

COMMAND is found here, on this shell's PATH (kept with the server; the
daemon's own PATH is whatever started it). A version manager's shim
(pyenv, asdf, mise, volta, rustup ...) is replaced by the program the
manager names for it here; a script's #! interpreter is followed the same
way. The install that holds each (~/.pyenv/versions/3.12.1, an nvm
version, a venv) is bound read-only, never HOME or a directory such as
~/.cargo or ~/.config that holds more; add prints what runs and what its
sandbox reads. What cannot be made to run in the sandbox is refused now,
with the command that fixes it.

--env NAME=VALUE gives a stdio server a plain variable (kept in Ringlet's
files and shown by 'mcp list' and 'mcp show'). --secret NAME=PROVIDER/ALIAS
gives it a key from Ringlet's credential store ('ringlet keychain set
PROVIDER ALIAS'; a bare ALIAS is mcp/ALIAS): read when the server starts
and put only in that process's environment, inside its sandbox; Ringlet's
files, listings, logs and audit log name the variable and the reference,
never the value, and the value is redacted from what the server answers.
PATH and HOME cannot be replaced. 'ringlet mcp set' changes them later.

An HTTP server (--url) that takes an API key in a header gets --header
NAME=VALUE (a plain value, kept in Ringlet's files) or --header-secret
NAME=PROVIDER/ALIAS (a stored key, read at each request; Ringlet's files,
listings, logs and audit log name the header and the reference, and the key
is redacted from what the server answers). --header-secret
'Authorization=Token PROVIDER/ALIAS' sends the word, a space and the key.
Headers of HTTP itself and of the MCP protocol (Host, Content-Length,
Connection, Mcp-Session-Id ...) cannot be given, nor Authorization together
with --credential (which sends Authorization: Bearer).`,
		Example: `  ringlet keychain set github work       # the token, read without echo
  ringlet mcp add work github --network host --secret GITHUB_PERSONAL_ACCESS_TOKEN=github/work -- github-mcp-server stdio
  ringlet mcp add work fs --ro /usr/local/lib/node_modules -- node /usr/local/lib/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js ~/src/app
  ringlet mcp add work everything --network host --timeout 2m -- npx -y @modelcontextprotocol/server-everything
  ringlet mcp add work legacy --no-sandbox -- /opt/legacy/mcp-server
  ringlet mcp add work tracker --url https://mcp.example.com/mcp
  ringlet mcp add work search --url https://mcp.example.com/mcp --header-secret X-API-Key=mcp/search
  ringlet mcp add work svc --url https://svc.example.com/mcp --header-secret 'Authorization=Token mcp/svc' --header X-Team=infra`,
		Args: func(cmd *cobra.Command, args []string) error {
			if serverURL != "" {
				if cmd.ArgsLenAtDash() >= 0 || len(args) != 2 {
					return usagef("%s --url needs PROFILE NAME and no command", cmd.CommandPath())
				}
				return nil
			}
			if cmd.ArgsLenAtDash() != 2 || len(args) < 3 {
				return usagef("%s needs PROFILE NAME -- COMMAND [ARGS...], or PROFILE NAME --url URL", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			if ro, err = absPaths(ro); err != nil {
				return err
			}
			if rw, err = absPaths(rw); err != nil {
				return err
			}
			envMap, err := envFlags("--env", envs)
			if err != nil {
				return err
			}
			secretMap, err := envFlags("--secret", secrets)
			if err != nil {
				return err
			}
			headerMap, err := headerFlags("--header", headers)
			if err != nil {
				return err
			}
			headerSecretMap, err := headerFlags("--header-secret", headerSecrets)
			if err != nil {
				return err
			}
			req := api.MCPServerRequest{Profile: p, Name: args[1], Command: args[2:], URL: serverURL, Timeout: timeout, Credential: credential,
				Env: envMap, Secrets: secretMap, Headers: headerMap, HeaderSecrets: headerSecretMap, ReadOnly: ro, ReadWrite: rw, Network: network, NoSandbox: noSandbox}
			c := mcpserver.Config{Name: req.Name, Command: req.Command, URL: req.URL, Credential: credential,
				Env: maps.Clone(envMap), Secrets: maps.Clone(secretMap), Headers: maps.Clone(headerMap), HeaderSecrets: maps.Clone(headerSecretMap),
				ReadOnly: ro, ReadWrite: rw, Network: network, NoSandbox: noSandbox}
			if timeout != "" {
				if c.Timeout, err = time.ParseDuration(timeout); err != nil {
					return usagef("--timeout must be a duration such as 60s")
				}
			}
			if err := c.Validate(); err != nil {
				return usageError{err}
			}
			if serverURL == "" {
				if err := a.resolveServer(cmd.Context(), &req, c); err != nil {
					return err
				}
			}
			cl, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			got, err := cl.AddMCPServer(cmd.Context(), req)
			if err != nil {
				return err
			}
			if noSandbox {
				fmt.Fprintf(a.stdio.Err, "ringlet: warning: MCP server %s runs without a sandbox, with your privileges\n", got.Name)
			}
			fmt.Fprintf(a.stdio.Out, "added MCP server %s to profile %s; its tools appear as %s__<tool> once a session uses them\n", got.Name, p, got.Name)
			if got.Runtime != nil {
				describeRuntime(a.stdio.Out, "  ", got.Runtime, !got.NoSandbox)
			}
			if v := variables(got.Config); v != "" {
				fmt.Fprintf(a.stdio.Out, "  variables: %s\n", v)
			}
			if h := headerList(got.Config); h != "" {
				fmt.Fprintf(a.stdio.Out, "  headers: %s\n", h)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&envs, "env", nil, "for a stdio server: NAME=VALUE, a plain variable it gets (repeatable; not for secrets)")
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "for a stdio server: NAME=PROVIDER/ALIAS, a stored key it gets in NAME when it starts (repeatable)")
	cmd.Flags().StringVar(&timeout, "timeout", "", "refuse a tool call the server has not answered within this long (default 60s)")
	cmd.Flags().StringVar(&serverURL, "url", "", "the endpoint of a streamable HTTP MCP server, instead of a command")
	cmd.Flags().StringArrayVar(&headers, "header", nil, "for --url: NAME=VALUE, a plain header sent with every request (repeatable; not for keys)")
	cmd.Flags().StringArrayVar(&headerSecrets, "header-secret", nil, "for --url: NAME=[SCHEME ]PROVIDER/ALIAS, a stored key sent in header NAME (repeatable)")
	cmd.Flags().StringVar(&credential, "credential", "", "for --url: a stored key (provider/alias) the gateway sends as Authorization: Bearer; the agent never sees it")
	cmd.Flags().StringArrayVar(&ro, "ro", nil, "for a stdio server: a host path it may read (repeatable)")
	cmd.Flags().StringArrayVar(&rw, "rw", nil, "for a stdio server: a host path it may read and write (repeatable)")
	cmd.Flags().StringVar(&network, "network", "", "for a stdio server: none (default; loopback only) or host")
	cmd.Flags().BoolVar(&noSandbox, "no-sandbox", false, "for a stdio server: run it unconfined, with your privileges (warned and audited)")
	return cmd
}

// resolveServer finds the command of the stdio server req (checked as c)
// as this shell finds it, not as the daemon would (its PATH is that of
// whatever started it): the PATH and the version managers' answers go
// with the server.
func (a *app) resolveServer(ctx context.Context, req *api.MCPServerRequest, c mcpserver.Config) error {
	dir, _ := os.Getwd() // only a relative program needs it, and says so
	res, err := toolchain.Resolve(req.Command[0], a.resolveOptions(ctx, dir))
	var nf *toolchain.NotFoundError
	switch {
	case err == nil:
		req.Shims = res.Shims
		if !filepath.IsAbs(req.Command[0]) && strings.Contains(req.Command[0], "/") {
			req.Command[0] = res.Steps[0].Path // it runs in the workspace, not here
		}
	case !req.NoSandbox || errors.As(err, &nf):
		return c.ShimFix(err, req.Profile, true)
	}
	req.Path = a.getenv("PATH")
	return nil
}

// envFlags parses repeated NAME=VALUE flags; a name given twice is
// refused.
func envFlags(flag string, kvs []string) (map[string]string, error) {
	return pairFlags(flag, kvs, mcpserver.ParseEnv)
}

// headerFlags parses repeated NAME=VALUE header flags; a name given
// twice (in any case: ParseHeader returns the canonical name) is refused.
func headerFlags(flag string, kvs []string) (map[string]string, error) {
	return pairFlags(flag, kvs, mcpserver.ParseHeader)
}

func pairFlags(flag string, kvs []string, parse func(flag, kv string) (string, string, error)) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		name, v, err := parse(flag, kv)
		if err != nil {
			return nil, usageError{err}
		}
		if _, ok := out[name]; ok {
			return nil, usagef("%s %s is given twice", flag, name)
		}
		out[name] = v
	}
	return out, nil
}

// headerList names an HTTP server's headers for a listing: a plain one
// as NAME, a secret as NAME=<[SCHEME ]PROVIDER/ALIAS>, never a value.
func headerList(c mcpserver.Config) string {
	var out []string
	for _, name := range c.HeaderNames() {
		if ref, ok := c.HeaderSecrets[name]; ok {
			out = append(out, name+"=<"+ref+">")
		} else {
			out = append(out, name)
		}
	}
	return strings.Join(out, " ")
}

// variables names a server's variables for a listing: a plain one as
// NAME, a secret as NAME=<PROVIDER/ALIAS>, never a value.
func variables(c mcpserver.Config) string {
	var out []string
	for _, name := range c.EnvNames() {
		if ref, ok := c.Secrets[name]; ok {
			out = append(out, name+"=<"+ref+">")
		} else {
			out = append(out, name)
		}
	}
	return strings.Join(out, " ")
}

// sandboxOf says how a server is confined, for mcp list.
func sandboxOf(c mcpserver.Config) string {
	switch {
	case c.URL != "":
		return "-"
	case c.NoSandbox:
		return "OFF"
	case c.Network == mcpserver.NetworkHost:
		return "yes, host network"
	}
	return "yes"
}

// absPaths makes the --ro/--rw paths absolute, from the current directory.
func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, usagef("--ro/--rw %s: %v", p, err)
		}
		out[i] = abs
	}
	return out, nil
}

func (a *app) mcpListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list PROFILE",
		Short: "List a profile's MCP servers, their state and their tools",
		Long: `List a profile's MCP servers: whether each runs, and if not why; and each
tool: visible, changed (hidden until 'ringlet mcp approve') or invalid
(with the reason).`,
		Example: "  ringlet mcp list work --json",
		Args:    exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			servers, err := c.MCPServers(cmd.Context(), p)
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, servers, fmt.Sprintf("profile %s has no MCP servers", p)); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("NAME", "STATE", "TOOLS", "SANDBOX", "VARIABLES", "COMMAND OR URL")
			for _, s := range servers {
				visible := 0
				for _, tl := range s.Tools {
					if tl.State == mcpserver.ToolVisible {
						visible++
					}
				}
				state := s.State
				if s.Error != "" {
					state += ": " + s.Error
				}
				if s.Failures > 1 {
					state += fmt.Sprintf(" (%d failures in a row)", s.Failures)
				}
				target := s.URL
				if target == "" {
					target = strings.Join(s.Command, " ")
				}
				vars := variables(s.Config)
				if s.URL != "" {
					vars = headerList(s.Config) // an HTTP server's are its headers
				}
				t.row(s.Name, state, fmt.Sprintf("%d/%d", visible, len(s.Tools)), sandboxOf(s.Config), orDefault(vars, "-"), target)
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, s := range servers {
				disabled := 0
				for _, tl := range s.Tools {
					switch tl.State {
					case mcpserver.ToolVisible:
					case mcpserver.ToolDisabled:
						disabled++
					default:
						fmt.Fprintf(a.stdio.Out, "%s: tool %s is %s: %s\n", s.Name, printable(tl.Name), tl.State, printable(tl.Reason))
					}
				}
				if disabled > 0 {
					fmt.Fprintf(a.stdio.Out, "%s: %d tool(s) disabled ('ringlet mcp tools %s %s' lists them)\n", s.Name, disabled, p, s.Name)
				}
				for _, i := range s.PendingItems {
					fmt.Fprintf(a.stdio.Out, "%s: %s %s is %s: hidden until 'ringlet mcp approve %s %s'\n", s.Name, i.Kind, printable(i.Name), i.Change, p, s.Name)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) mcpShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PROFILE NAME",
		Short: "Show one MCP server: its state, what runs and what its sandbox reads",
		Long: `Show one of a profile's MCP servers: its state and definition, and for a
stdio server what runs (the program, found on the PATH it was added with,
through any version manager's shim and #! interpreter) and what its
sandbox reads of yours besides the system, as a start now would find it.`,
		Example: "  ringlet mcp show work fs\n  ringlet mcp show work fs --json",
		Args:    exactArgs(2, "PROFILE NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := mcpServerArgs(args)
			if err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			servers, err := c.MCPServers(cmd.Context(), p)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(servers, func(s mcpserver.Status) bool { return s.Name == args[1] })
			if i < 0 {
				return fmt.Errorf("profile %s has no MCP server %s ('ringlet mcp list %s' shows them)", p, args[1], p)
			}
			s := servers[i]
			if asJSON {
				return writeJSONOut(a.stdio.Out, s)
			}
			t := newTable(a.stdio.Out)
			t.row("name", s.Name)
			state := s.State
			if s.Error != "" {
				state += ": " + s.Error
			}
			t.row("state", state)
			if s.URL != "" {
				t.row("url", s.URL)
				t.row("credential", s.Credential)
				label := "headers"
				for _, name := range s.HeaderNames() {
					if ref, ok := s.HeaderSecrets[name]; ok {
						t.row(label, name+": secret "+ref)
					} else {
						t.row(label, name+": "+printable(s.Headers[name]))
					}
					label = ""
				}
			} else {
				t.row("command", strings.Join(s.Command, " "))
				t.row("sandbox", sandboxOf(s.Config))
				t.row("ro", strings.Join(s.ReadOnly, " "))
				t.row("rw", strings.Join(s.ReadWrite, " "))
				label := "env"
				for _, name := range s.EnvNames() {
					if ref, ok := s.Secrets[name]; ok {
						t.row(label, name+" = secret "+ref)
					} else {
						t.row(label, name+"="+printable(s.Env[name]))
					}
					label = ""
				}
			}
			if len(s.Tools) > 0 || len(s.ToolRules) > 0 {
				t.row("tool rules", toolRules(s.ToolRules)+" ('ringlet mcp tools "+p+" "+s.Name+"' lists them)")
			}
			if r := s.Runtime; r != nil {
				t.row("runs", r.Program)
				label := "found as"
				for _, st := range r.Steps {
					t.row(label, st.Path+" ("+st.How+")")
					label = ""
				}
				if !s.NoSandbox {
					t.row("reads", orDefault(strings.Join(r.Binds, " "), "nothing more of yours"))
					t.row("path first", strings.Join(r.Path, ":"))
				}
			}
			if s.Pin != nil && s.Pin.Identity != nil {
				t.row("pinned", printable(s.Pin.Identity.String())+" ('ringlet mcp approve "+p+" "+s.Name+" --dry-run' shows what changed)")
			}
			t.row("timeout", s.Timeout.String())
			t.row("tools", strconv.Itoa(len(s.Tools)))
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) mcpSetCmd() *cobra.Command {
	var envs, unsetEnv, secrets, unsetSecrets, headers, unsetHeaders, headerSecrets, unsetHeaderSecrets []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set PROFILE NAME [--env NAME=VALUE] [--unset-env NAME] [--secret NAME=PROVIDER/ALIAS] [--unset-secret NAME] [--header NAME=VALUE] [--unset-header NAME] [--header-secret NAME=[SCHEME ]PROVIDER/ALIAS] [--unset-header-secret NAME]",
		Short: "Change the variables and secrets of a stdio MCP server, or the headers of an HTTP one",
		Long: `Change what a stdio MCP server gets in its environment: plain variables
(--env, --unset-env) and secrets from Ringlet's credential store (--secret
NAME=PROVIDER/ALIAS, a bare ALIAS being mcp/ALIAS; --unset-secret). Unsets
apply first, then sets; a plain variable does not become a secret (or back)
unless it is unset in the same command. A secret must be stored already
('ringlet keychain set'). A running server is stopped and started again
with its new environment; the change is audited (mcp.update) by names and
references, never a value.

An HTTP server's headers change the same way: --header NAME=VALUE and
--unset-header NAME for plain values, --header-secret NAME=[SCHEME
]PROVIDER/ALIAS and --unset-header-secret NAME for stored keys. Its
connection is made again with the new headers.`,
		Example: `  ringlet mcp set work github --secret GITHUB_PERSONAL_ACCESS_TOKEN=github/other
  ringlet mcp set work github --env GITHUB_TOOLSETS=repos,issues --unset-env DEBUG
  ringlet mcp set work github --unset-secret GITHUB_PERSONAL_ACCESS_TOKEN
  ringlet mcp set work search --header-secret X-API-Key=mcp/search-2 --unset-header X-Debug`,
		Args: exactArgs(2, "PROFILE NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := mcpServerArgs(args)
			if err != nil {
				return err
			}
			var ch api.MCPServerChange
			if ch.Env, err = envFlags("--env", envs); err != nil {
				return err
			}
			if ch.Secrets, err = envFlags("--secret", secrets); err != nil {
				return err
			}
			for _, n := range append(append([]string{}, unsetEnv...), unsetSecrets...) {
				if err := mcpserver.CheckEnvName(n); err != nil {
					return usageError{err}
				}
			}
			ch.UnsetEnv, ch.UnsetSecrets = unsetEnv, unsetSecrets
			if ch.Headers, err = headerFlags("--header", headers); err != nil {
				return err
			}
			if ch.HeaderSecrets, err = headerFlags("--header-secret", headerSecrets); err != nil {
				return err
			}
			for _, n := range append(append([]string{}, unsetHeaders...), unsetHeaderSecrets...) {
				if _, err := mcpserver.CheckHeaderName(n); err != nil {
					return usageError{err}
				}
			}
			ch.UnsetHeaders, ch.UnsetHeaderSecrets = unsetHeaders, unsetHeaderSecrets
			if ch.Empty() {
				return usagef("%s needs --env, --unset-env, --secret or --unset-secret (a stdio server), or --header, --unset-header, --header-secret or --unset-header-secret (an HTTP server)", cmd.CommandPath())
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			got, err := c.SetMCPServer(cmd.Context(), p, args[1], ch)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, got)
			}
			if got.URL != "" {
				fmt.Fprintf(a.stdio.Out, "changed MCP server %s of profile %s; it is connected again with its new headers\n", got.Name, p)
				fmt.Fprintf(a.stdio.Out, "  headers: %s\n", orDefault(headerList(got), "none"))
				return nil
			}
			fmt.Fprintf(a.stdio.Out, "changed MCP server %s of profile %s; a run of it restarts with its new environment\n", got.Name, p)
			fmt.Fprintf(a.stdio.Out, "  variables: %s\n", orDefault(variables(got), "none"))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&envs, "env", nil, "NAME=VALUE: set a plain variable (repeatable; not for secrets)")
	cmd.Flags().StringArrayVar(&unsetEnv, "unset-env", nil, "NAME: remove a plain variable (repeatable)")
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "NAME=PROVIDER/ALIAS: give a stored key in NAME (repeatable)")
	cmd.Flags().StringArrayVar(&unsetSecrets, "unset-secret", nil, "NAME: stop giving a secret (repeatable)")
	cmd.Flags().StringArrayVar(&headers, "header", nil, "NAME=VALUE: send a plain header to an HTTP server (repeatable; not for keys)")
	cmd.Flags().StringArrayVar(&unsetHeaders, "unset-header", nil, "NAME: stop sending a plain header (repeatable)")
	cmd.Flags().StringArrayVar(&headerSecrets, "header-secret", nil, "NAME=[SCHEME ]PROVIDER/ALIAS: send a stored key in header NAME (repeatable)")
	cmd.Flags().StringArrayVar(&unsetHeaderSecrets, "unset-header-secret", nil, "NAME: stop sending a secret header (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server as stored, as JSON")
	return cmd
}

func (a *app) mcpRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove PROFILE NAME",
		Aliases: []string{"rm"},
		Short:   "Stop and remove a profile's MCP server",
		Example: "  ringlet mcp remove work fs",
		Args:    exactArgs(2, "PROFILE NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := mcpServerArgs(args)
			if err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := c.RemoveMCPServer(cmd.Context(), p, args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "removed MCP server %s from profile %s\n", args[1], p)
			return nil
		},
	}
}

func (a *app) mcpApproveCmd() *cobra.Command {
	var tools, prompts, resources []string
	var yes, dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "approve PROFILE SERVER [--tool NAME]... [--prompt NAME]... [--resource URI]... [--dry-run] [--yes] [--json]",
		Short: "Show what an MCP server changed since it was approved, and approve it",
		Long: `A server is pinned as a whole: the program that runs (its path and the
SHA-256 of its file, and of the script an interpreter runs; an HTTP
server's URL) and every tool it lists (name, title, description, input and
output schemas, annotations), prompt (name, title, description, arguments),
resource (URI, name, title, description, MIME type; not what it holds,
which is data read when asked) and resource template (URI template, name,
title, description, MIME type), as first seen or last approved. A tool added,
removed, renamed or changed, or the same tools served by another program,
is a change: the tools it touches (for another program, all of them) are
hidden from the profile's sessions and a call to them is refused until
approved here. A prompt, resource or template added or changed is hidden
likewise (a removed one is shown, and its pin dropped when approved).

approve shows the change: the program before and after, each tool added,
removed, renamed-looking (the definition of a removed tool under a new
name) or changed, with a compact diff of the fields that changed. On a
terminal it then asks; otherwise it refuses without --yes. --tool approves
only the named tools (repeatable; a removed tool's name drops its pin),
--prompt the named prompts and --resource the resources or templates of
that URI (or URI template), as the server names them; a changed program
is approved whole. --dry-run only shows. --json prints the
structured diff (with --dry-run, or with --yes to approve). The approval is
refused if the server changes again between the diff shown and the
answer. Sessions see the approved tools at once (tools/list_changed).
Each approval is audited (mcp.approve).`,
		Example: `  ringlet mcp approve work fs
  ringlet mcp approve work fs --dry-run --json
  ringlet mcp approve work fs --tool read_file --yes
  ringlet mcp approve work docs --prompt summarize --resource 'docs://index' --yes`,
		Args: exactArgs(2, "PROFILE SERVER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := mcpServerArgs(args)
			if err != nil {
				return err
			}
			if asJSON && !yes && !dryRun {
				return usagef("--json needs --dry-run (show the diff) or --yes (approve it)")
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			shown, err := c.ApproveMCPServer(cmd.Context(), p, args[1], api.MCPApproveRequest{DryRun: true})
			if err != nil {
				return err
			}
			if dryRun || shown.Diff.Empty() {
				if asJSON {
					return writeJSONOut(a.stdio.Out, shown)
				}
				if shown.Diff.Empty() {
					fmt.Fprintf(a.stdio.Out, "%s serves what was approved: its program and its %d tool(s) are unchanged\n", args[1], shown.Tools)
					return nil
				}
				showPinDiff(a.stdio.Out, shown)
				fmt.Fprintln(a.stdio.Out, "dry run: nothing was approved")
				return nil
			}
			req := api.MCPApproveRequest{Tools: tools, Prompts: prompts, Resources: resources, Observed: shown.Diff.Observed}
			sel := req.Selection()
			if err := shown.Diff.CheckApprove(sel); err != nil {
				return usageError{err}
			}
			if !yes {
				f, ok := a.stdio.In.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return usagef("refusing to approve without confirmation: not a terminal; see the diff with --dry-run, then pass --yes")
				}
				showPinDiff(a.stdio.Err, shown)
				what := "these changes"
				if len(sel) > 0 {
					what = "the changes of " + printable(strings.Join(sel, ", "))
				}
				fmt.Fprintf(a.stdio.Err, "Approve %s of %s for profile %s? [y/N] ", what, args[1], p)
				line, _ := bufio.NewReader(f).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return errors.New("nothing was approved")
				}
			}
			out, err := c.ApproveMCPServer(cmd.Context(), p, args[1], req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			if yes {
				showPinDiff(a.stdio.Out, out)
			}
			what := slices.Clone(out.Approved)
			if out.Diff.Identity != nil {
				what = append([]string{"its program " + out.Diff.Identity.After.String()}, what...)
			}
			fmt.Fprintf(a.stdio.Out, "approved %s: %s\n", args[1], printable(strings.Join(what, ", ")))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&tools, "tool", nil, "approve only this tool's change (repeatable)")
	cmd.Flags().StringArrayVar(&prompts, "prompt", nil, "approve only this prompt's change, by the server's name for it (repeatable)")
	cmd.Flags().StringArrayVar(&resources, "resource", nil, "approve only the change of this resource URI or resource template (repeatable)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "approve without asking")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the diff only")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the structured diff and answer as JSON")
	return cmd
}

// showPinDiff prints how a server differs from what was approved.
func showPinDiff(w io.Writer, a api.MCPApproved) {
	d := a.Diff
	if d.Identity != nil {
		fmt.Fprintf(w, "program of %s changed: all its tools are hidden until approved\n  was: %s\n  now: %s\n",
			a.Server, printable(d.Identity.Before.String()), printable(d.Identity.After.String()))
		if d.Identity.After.Note != "" {
			fmt.Fprintf(w, "  note: %s\n", printable(d.Identity.After.Note))
		}
	}
	for _, t := range d.Tools {
		switch t.Change {
		case mcpserver.ChangeRenamed:
			fmt.Fprintf(w, "renamed? %s -> %s (the same definition under a new name)\n", printable(t.From), printable(t.Name))
		case mcpserver.ChangeAdded:
			fmt.Fprintf(w, "added: %s\n", printable(t.Name))
		default:
			fmt.Fprintf(w, "changed: %s (%s)\n", printable(t.Name), strings.Join(t.Fields, ", "))
		}
		if t.Diff != "" {
			for _, l := range strings.Split(strings.TrimSuffix(t.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", printable(l))
			}
		}
	}
	for _, r := range d.Removed {
		fmt.Fprintf(w, "removed: %s\n", printable(r))
	}
	for _, i := range d.Items {
		switch i.Change {
		case mcpserver.ChangeChanged:
			fmt.Fprintf(w, "changed %s: %s (%s)\n", i.Kind, printable(i.Name), strings.Join(i.Fields, ", "))
		default:
			fmt.Fprintf(w, "%s %s: %s\n", i.Change, i.Kind, printable(i.Name))
		}
		if i.Diff != "" {
			for _, l := range strings.Split(strings.TrimSuffix(i.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", printable(l))
			}
		}
	}
}

// mcpServerArgs checks the PROFILE and server NAME arguments.
func mcpServerArgs(args []string) (string, error) {
	p, err := profileArg(args)
	if err != nil {
		return "", err
	}
	if err := mcpserver.ValidateName(args[1]); err != nil {
		return "", usageError{err}
	}
	return p, nil
}
