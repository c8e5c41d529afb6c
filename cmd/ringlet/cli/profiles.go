package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
)

func (a *app) profilesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "profiles",
		Aliases: []string{"profile"},
		Short:   "Create and manage profiles: an agent, a provider, a model and a workspace",
		Long: `A profile binds a coding agent (claude, codex, opencode, or any command)
to a provider and its key, a model and a workspace, under an alias. Each
profile has its own HOME ($XDG_DATA_HOME/ringlet/profiles/<alias>/home),
so agent config, history and caches never mix between profiles. Agents run
without the sandbox ('profiles env', 'run --no-sandbox') get another one
(.../<alias>/home-unsandboxed): nothing a sandboxed agent writes in its
HOME ever runs outside the sandbox.

The key lives in the credential store as <provider>/<alias>; the agent
only ever gets a session token, which the daemon swaps for the key.`,
		Example: `  ringlet profiles create claude work --provider anthropic --model claude-sonnet-4-5
  eval "$(ringlet profiles env work)" && claude
  ringlet profiles list
  ringlet profiles inspect work --json
  ringlet profiles delete work --yes --purge-key`,
	}
	cmd.AddCommand(a.profilesCreateCmd(), a.profilesListCmd(), a.profilesInspectCmd(), a.profilesDeleteCmd(), a.profilesEnvCmd(), a.profilesRunCmd(), a.profilesSetCmd(), a.profilesConfigCmd())
	return cmd
}

func (a *app) profilesCreateCmd() *cobra.Command {
	var req api.ProfileRequest
	var command string
	var skipKey bool
	var lim limitFlags
	var bf budgetFlags
	var rf rateLimitFlagSet
	cmd := &cobra.Command{
		Use:   "create AGENT ALIAS --provider ID",
		Short: "Create a profile (asks for the provider key if it is not stored yet)",
		Long: `Create a profile. AGENT is one of 'ringlet agents list' (generic needs
--command). When no key is stored under <provider>/<alias>, it is read
without echo from the terminal, or from standard input when that is not a
terminal; --skip-key creates the profile without one.

--command is split into words and unquoted the way sh would do it
('sh -c "echo hi there"' is three words), but nothing in it is expanded:
$VARIABLES, $(commands), globs, ~, pipes and redirections are refused with
the reason. For those, run a shell on purpose: --command 'sh -c "..."'.

The agent's program is found on this shell's PATH, now and again at each
'profiles run'. A version manager's shim (pyenv, asdf, mise, volta, rustup
...) runs the program the manager names for it here, and a script's #!
interpreter is followed the same way; the sandbox binds the install that
holds each read-only (~/.pyenv/versions/3.12.1, an nvm version, a venv),
never HOME or a directory such as ~/.cargo or ~/.config. create prints
what runs, and refuses a shim whose manager cannot name the program.`,
		Example: `  ringlet profiles create claude work --provider anthropic --workspace ~/src/app
  ringlet profiles create claude work --provider anthropic --workspace ~/src/app --trust-workspace
  printf '%s' "$KEY" | ringlet profiles create codex oa --provider openai --model gpt-4.1
  ringlet profiles create generic bot --provider openai --command 'python agent.py'
  ringlet profiles create generic sh --provider anthropic --command 'sh -c "echo hi there"'
  ringlet profiles create claude capped --provider anthropic --budget-day output=2M --rate-session-requests 60`,
		Args: exactArgs(2, "AGENT ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Agent, req.Alias = args[0], args[1]
			if err := names.Check("profile", req.Alias); err != nil {
				return usageError{err}
			}
			if req.Provider == "" {
				return usagef("--provider is required ('ringlet providers list' shows them)")
			}
			if req.TrustWorkspace && req.Workspace == "" {
				return usagef("--trust-workspace needs --workspace: Ringlet marks only a named workspace as trusted")
			}
			// Flag values are usage errors (exit 2) here, as in set.
			if err := profile.CheckNetwork(req.Network); err != nil {
				return usageError{err}
			}
			for _, h := range req.AllowHosts {
				if err := profile.CheckAllowHost(h); err != nil {
					return usageError{err}
				}
			}
			if _, err := sandbox.ProtectedPaths(req.Protect, req.Unprotect); err != nil {
				return usageError{err}
			}
			var err error
			if req.MaxProcs, req.MaxMemory, req.TmpSize, err = lim.values(); err != nil {
				return err
			}
			if cmd.Flags().Changed("command") {
				if req.Command, err = profile.ParseCommand(command); err != nil {
					return usagef("--command: %v", err)
				}
			}
			if req.Workspace != "" {
				w, err := filepath.Abs(req.Workspace)
				if err != nil {
					return err
				}
				req.Workspace = w
			}
			for _, list := range [][]string{req.ReadOnly, req.ReadWrite} {
				for i, d := range list {
					if abs, err := filepath.Abs(d); err == nil && !strings.ContainsAny(d, "\n\r") && !strings.HasPrefix(d, "-") {
						list[i] = abs
					}
				}
			}
			dir, _ := os.Getwd() // only a relative program needs it, and says so
			res, err := a.checkAgentCommand(cmd.Context(), profile.Profile{Alias: req.Alias, Agent: req.Agent, Command: req.Command}, dir)
			if err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			ref, err := credentials.NewRef(req.Provider, req.Alias)
			if err != nil {
				return usageError{err}
			}
			keys, err := c.Keys(cmd.Context())
			if err != nil {
				return err
			}
			var key string
			if !skipKey && !hasKey(keys, ref) {
				key, err = a.readKey(ref, false)
				if err != nil {
					return fmt.Errorf("%w (or pass --skip-key and store it later with 'ringlet keychain set %s %s')", err, ref.Provider, ref.Alias)
				}
			}
			if _, _, err := bf.request(cmd.Flags()); err != nil {
				return err
			}
			if _, _, err := rf.update(cmd); err != nil {
				return err
			}
			view, err := c.CreateProfile(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := setProfileBudgets(cmd, c, req.Alias, &bf); err != nil {
				return fmt.Errorf("profile %s was created without a budget: %w", req.Alias, err)
			}
			if err := setProfileRateLimits(cmd, c, req.Alias, &rf); err != nil {
				return fmt.Errorf("profile %s was created without rate limits: %w", req.Alias, err)
			}
			if key != "" {
				if _, err := c.SetKey(cmd.Context(), ref, key); err != nil {
					return fmt.Errorf("profile %s was created but its key could not be stored: %w", req.Alias, err)
				}
				view.Key = "stored"
			}
			fmt.Fprintf(a.stdio.Out, "created profile %s (%s via %s); key: %s; home: %s\n", view.Alias, view.Agent, view.Provider, view.Key, view.Home)
			if res != nil {
				describeRuntime(a.stdio.Out, "  ", res, true)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Provider, "provider", "", "provider id (required)")
	f.StringVar(&req.Model, "model", "", "model to use")
	f.StringVar(&req.Workspace, "workspace", "", "the project directory the agent works in")
	f.StringVar(&req.Endpoint, "endpoint", "", "a named endpoint of the provider instead of its base URL")
	f.StringVar(&command, "command", "", "for the generic agent: the command to run, split and quoted as sh would (no $VARIABLES, globs or pipes: for those, sh -c '...')")
	f.BoolVar(&skipKey, "skip-key", false, "do not ask for the key now")
	f.StringVar(&req.Network, "network", "", "sandbox network for 'profiles run': provider (default: only Ringlet's proxy), none, or host (warned)")
	f.StringArrayVar(&req.ReadOnly, "ro", nil, "extra path bound read-only into the sandbox (repeatable)")
	f.StringArrayVar(&req.ReadWrite, "rw", nil, "extra path bound read-write into the sandbox (repeatable)")
	f.BoolVar(&req.AllowGitConfig, "allow-git-config", false, "let the sandboxed agent write .git/hooks and .git/config")
	f.BoolVar(&req.TrustWorkspace, "trust-workspace", false, trustWorkspaceUsage)
	f.BoolVar(&req.StrictHooks, "strict-hooks", false, strictHooksUsage)
	f.StringArrayVar(&req.AllowHosts, "allow-host", nil, "a host the sandboxed agent may reach over HTTPS through Ringlet's CONNECT proxy (repeatable; host or host:port)")
	f.StringArrayVar(&req.Protect, "protect", nil, "a path in the workspace to keep read-only in the sandbox besides the defaults, e.g. .github/workflows/ (repeatable; '/' at the end for a directory)")
	f.StringArrayVar(&req.Unprotect, "unprotect", nil, "a default protected path the sandboxed agent may write, e.g. .vscode/ (repeatable)")
	lim.register(cmd)
	bf.register(cmd, "budget-")
	rf.register(cmd, "rate-")
	mustFlag(cmd.RegisterFlagCompletionFunc("provider", a.completeProviders))
	return cmd
}

func hasKey(entries []credentials.Entry, ref credentials.Ref) bool {
	for _, e := range entries {
		if e.Ref() == ref && (e.Status == "ok" || e.Status == "unindexed") {
			return true
		}
	}
	return false
}

func (a *app) completeProviders(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cat, err := profile.LoadCatalog(a.paths.ConfigDir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return cat.ProviderIDs(), cobra.ShellCompDirectiveNoFileComp
}

func (a *app) profilesListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List profiles",
		Example: "  ringlet profiles list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			profiles, err := c.Profiles(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, profiles, "no profiles; create one with 'ringlet profiles create <agent> <alias> --provider <id>'"); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("ALIAS", "AGENT", "PROVIDER", "MODEL", "KEY", "SESSIONS", "WORKSPACE")
			for _, p := range profiles {
				t.row(p.Alias, p.Agent, p.Provider, p.Model, p.Key, strconv.Itoa(p.Sessions), p.Workspace)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) profilesInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "inspect ALIAS",
		Short:   "Show a profile; the key only as stored or missing",
		Example: "  ringlet profiles inspect work",
		Args:    exactArgs(1, "ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			v, err := c.Profile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// What 'profiles run' would start from here, found as it
			// would find it: on this shell's PATH.
			out := inspected{ProfileView: v}
			if command := a.agentCommand(v.Profile); len(command) > 0 {
				dir, _ := os.Getwd() // only a relative program needs it, and says so
				if out.Runtime, err = toolchain.Resolve(command[0], a.resolveOptions(cmd.Context(), dir)); err != nil {
					out.RuntimeError = err.Error()
				}
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			t := newTable(a.stdio.Out)
			t.row("alias", v.Alias)
			t.row("agent", v.Agent)
			t.row("provider", v.Provider)
			t.row("model", v.Model)
			t.row("endpoint", v.Endpoint)
			t.row("workspace", v.Workspace)
			t.row("command", profile.QuoteCommand(v.Command))
			if r := out.Runtime; r != nil {
				t.row("runs", r.Program)
				label := "found as"
				for _, st := range r.Steps {
					t.row(label, st.Path+" ("+st.How+")")
					label = ""
				}
				t.row("reads", orDefault(strings.Join(r.Binds, " "), "nothing more of yours"))
				t.row("path first", strings.Join(r.Path, ":"))
			} else if out.RuntimeError != "" {
				t.row("runs", "? "+out.RuntimeError)
			}
			// The sandbox: what the agent may reach and see.
			t.row("network", orDefault(v.Network, "provider"))
			t.row("ro", strings.Join(v.ReadOnly, " "))
			t.row("rw", strings.Join(v.ReadWrite, " "))
			t.row("allow_hosts", strings.Join(v.AllowHosts, " "))
			t.row("allow_git_config", strconv.FormatBool(v.AllowGitConfig))
			t.row("trust_workspace", strconv.FormatBool(v.TrustWorkspace))
			t.row("strict_hooks", strconv.FormatBool(v.StrictHooks))
			t.row("protected", strings.Join(v.Protected, " "))
			t.row("max_procs", orDefault(nonZero(int64(v.MaxProcs), func(n int64) string { return strconv.FormatInt(n, 10) }), fmt.Sprintf("default (%d)", sandbox.DefaultProcs)))
			t.row("max_memory", orDefault(nonZero(v.MaxMemory, fmtSize), "default ("+profile.FormatSize(sandbox.DefaultMemory)+")"))
			t.row("tmp_size", orDefault(nonZero(v.TmpSize, fmtSize), "default ("+profile.FormatSize(sandbox.DefaultTmp)+")"))
			t.row("key", v.Key)
			t.row("home", v.Home)
			t.row("unsandboxed_home", v.UnsandboxedHome)
			t.row("sessions", strconv.Itoa(v.Sessions))
			t.row("created", v.Created.Format(time.RFC3339))
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// inspected is a profile as 'profiles inspect' shows it: with what its
// agent would run, found here.
type inspected struct {
	api.ProfileView
	// Runtime is what 'profiles run' would start from this shell, and
	// what its sandbox would read of yours besides the system.
	Runtime      *toolchain.Resolution `json:"runtime,omitempty"`
	RuntimeError string                `json:"runtime_error,omitempty"`
}

func (a *app) profilesDeleteCmd() *cobra.Command {
	var yes, purge bool
	cmd := &cobra.Command{
		Use:   "delete ALIAS",
		Short: "Delete a profile and its HOME (and, with --purge-key, its key)",
		Long: `Delete a profile and its HOME directory, ending its sessions. On a terminal
it asks first; scripts pass --yes.`,
		Example: "  ringlet profiles delete work --yes --purge-key",
		Args:    exactArgs(1, "ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			alias := args[0]
			if err := names.Check("profile", alias); err != nil {
				return usageError{err}
			}
			if !yes {
				f, ok := a.stdio.In.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return usagef("refusing to delete profile %s without confirmation: pass --yes", alias)
				}
				what := "its HOME directory"
				if purge {
					what += " and its key"
				}
				fmt.Fprintf(a.stdio.Err, "Delete profile %s, %s? [y/N] ", alias, what)
				line, _ := bufio.NewReader(f).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return errors.New("not deleted")
				}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.DeleteProfile(cmd.Context(), alias, purge)
			if err != nil {
				return err
			}
			msg := "deleted profile " + alias + " and its HOME"
			if out.KeyRemoved {
				msg += "; removed its key"
			}
			fmt.Fprintln(a.stdio.Out, msg)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&purge, "purge-key", false, "also remove the profile's key from the credential store")
	return cmd
}

func (a *app) profilesEnvCmd() *cobra.Command {
	var ttl, idle string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "env ALIAS",
		Short: "Start a session and print the shell exports an agent needs",
		Long: `Start a session for the profile and print the environment its agent needs
to reach the provider through Ringlet: the base URL of the daemon's proxy
and the session token in place of the key. The real key is never printed.

The session ends once it has served no request for --idle (default 2h,
config sessions.idle_timeout); each request renews it, up to --ttl (default
12h, config sessions.max_ttl). 'ringlet sessions revoke' ends it at once. It
outlives a restart of the daemon: the agent keeps working after an upgrade.

It also prints RINGLET_SESSION, RINGLET_SESSION_TOKEN and
RINGLET_SESSION_URL, by which Ringlet's commands that the agent runs
('ringlet mcp --stdio', the Claude Code hook) act for this session alone.

The agent runs without Ringlet's sandbox this way, with the profile's
unsandboxed HOME (never the one its sandboxed runs write).`,
		Example: `  eval "$(ringlet profiles env work)" && claude
  eval "$(ringlet profiles env work)" && claude mcp add ringlet -- ringlet mcp --stdio
  ringlet profiles env work --ttl 1h --json
  ringlet profiles env ci --idle 0 --ttl 8h`,
		Args: exactArgs(1, "ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			req := api.SessionRequest{Profile: args[0]}
			if ttl != "" {
				if d, err := time.ParseDuration(ttl); err != nil || d < time.Minute || d > 720*time.Hour {
					return usagef("--ttl must be a duration from 1m to 720h, such as 8h")
				}
				req.TTL = ttl
			}
			if idle != "" {
				if d, err := time.ParseDuration(idle); idle != "0" && (err != nil || d < time.Minute || d > 720*time.Hour) {
					return usagef("--idle must be a duration from 1m to 720h, such as 30m, or 0 for never")
				}
				req.Idle = idle
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.StartSession(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, st)
			}
			fmt.Fprintf(a.stdio.Out, "# ringlet session %s for profile %s, %s; end it with: ringlet sessions revoke %s\n",
				st.ID, st.Profile, lifetime(st.SessionInfo), st.ID)
			for _, e := range st.Launch.Env {
				fmt.Fprintf(a.stdio.Out, "export %s=%s\n", e.Name, shellQuote(e.Value))
			}
			if len(st.Launch.Args) > 0 && len(st.Launch.Command) > 0 {
				quoted := make([]string, 0, len(st.Launch.Args))
				for _, arg := range st.Launch.Args {
					quoted = append(quoted, shellQuote(arg))
				}
				fmt.Fprintf(a.stdio.Out, "alias %s=%s\n", st.Launch.Command[0], shellQuote(st.Launch.Command[0]+" "+strings.Join(quoted, " ")))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "the most the session lives (1m to 720h; default sessions.max_ttl, 12h)")
	cmd.Flags().StringVar(&idle, "idle", "", "end the session after this long with no request (1m to 720h, or 0 for never; default sessions.idle_timeout, 2h)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the session as JSON (includes the token)")
	return cmd
}

// lifetime says how long a session lives.
func lifetime(s api.SessionInfo) string {
	deadline := s.Deadline.Local().Format(time.RFC3339)
	if s.Idle == "" {
		return "until " + deadline
	}
	return "until " + s.Expires.Local().Format(time.RFC3339) + " unless used (each request renews it for " + s.Idle + "), " + deadline + " at the latest"
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (a *app) providersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "providers",
		Short: "List, inspect and add LLM providers",
		Example: `  ringlet providers list
  ringlet providers add local --base-url http://127.0.0.1:8080 --format openai --auth bearer`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Example: "  ringlet providers list\n  ringlet providers list --json",
		Short:   "List providers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := profile.LoadCatalog(a.paths.ConfigDir)
			if err != nil {
				return err
			}
			var out []profile.Provider
			for _, id := range cat.ProviderIDs() {
				out = append(out, cat.Providers[id])
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			t := newTable(a.stdio.Out)
			t.row("ID", "FORMAT", "AUTH", "BASE URL", "SOURCE")
			for _, p := range out {
				src := "providers.toml"
				if p.Builtin {
					src = "built-in"
				}
				t.row(p.ID, p.Format, p.Auth, p.BaseURL, src)
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var inspectJSON bool
	inspect := &cobra.Command{
		Use:               "inspect ID",
		Example:           "  ringlet providers inspect anthropic --json",
		Short:             "Show a provider",
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: a.completeProviders,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := profile.LoadCatalog(a.paths.ConfigDir)
			if err != nil {
				return err
			}
			p, err := cat.Provider(args[0])
			if err != nil {
				return err
			}
			if inspectJSON {
				return writeJSONOut(a.stdio.Out, p)
			}
			t := newTable(a.stdio.Out)
			t.row("id", p.ID)
			t.row("name", p.Name)
			t.row("base url", p.BaseURL)
			t.row("format", p.Format)
			t.row("auth", p.Auth)
			for name, u := range p.Endpoints {
				t.row("endpoint "+name, u)
			}
			return t.flush()
		},
	}
	inspect.Flags().BoolVar(&inspectJSON, "json", false, "print JSON")
	var p profile.Provider
	var replace bool
	add := &cobra.Command{
		Use:   "add ID --base-url URL --format anthropic|openai --auth x-api-key|bearer",
		Short: "Add a provider to providers.toml (--replace to replace one of the same id)",
		Long: `Add a provider. The base URL is where the proxy sends requests; the agent's
SDK path is appended to it (for OpenAI-style APIs include /v1). Plain http
is accepted only for loopback hosts.

An ID that is already taken, by a built-in provider or one added before, is
refused unless --replace is given: replacing the built-in anthropic sends
the key of every anthropic profile to the new base URL. The built-in comes
back when its entry is removed from providers.toml.`,
		Example: `  ringlet providers add fake --base-url http://127.0.0.1:9999 --format anthropic --auth x-api-key
  ringlet providers add anthropic --replace --base-url https://llm-gw.example.com --format anthropic --auth x-api-key`,
		Args: exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.ID = args[0]
			if err := p.Validate(); err != nil {
				return usageError{err}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			got, err := c.AddProvider(cmd.Context(), api.ProviderRequest{ID: p.ID, Name: p.Name, BaseURL: p.BaseURL, Format: p.Format, Auth: p.Auth, Replace: replace})
			if err != nil {
				return err
			}
			if old := got.Replaced; old != nil {
				what, back := "provider", ""
				if old.Builtin {
					what = "built-in provider"
					back = fmt.Sprintf("; remove [providers.%s] from %s to get the built-in back", old.ID, filepath.Join(a.paths.ConfigDir, "providers.toml"))
				}
				fmt.Fprintf(a.stdio.Out, "replaced the %s %s (%s, %s, %s) with %s (%s, %s)%s\n", what, old.ID, old.BaseURL, old.Format, old.Auth, got.BaseURL, got.Format, got.Auth, back)
				return nil
			}
			fmt.Fprintf(a.stdio.Out, "added provider %s (%s, %s) at %s\n", got.ID, got.Format, got.Auth, got.BaseURL)
			return nil
		},
	}
	add.Flags().BoolVar(&replace, "replace", false, "replace a provider of the same id (a built-in one included)")
	add.Flags().StringVar(&p.BaseURL, "base-url", "", "the provider's API base URL (required)")
	add.Flags().StringVar(&p.Format, "format", "", "wire format: anthropic or openai (required)")
	add.Flags().StringVar(&p.Auth, "auth", "", "how the key is sent: x-api-key or bearer (required)")
	add.Flags().StringVar(&p.Name, "name", "", "display name")
	for _, f := range []string{"base-url", "format", "auth"} {
		mustFlag(add.MarkFlagRequired(f))
	}
	mustFlag(add.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"anthropic", "openai"}, cobra.ShellCompDirectiveNoFileComp)))
	mustFlag(add.RegisterFlagCompletionFunc("auth", cobra.FixedCompletions([]string{"x-api-key", "bearer"}, cobra.ShellCompDirectiveNoFileComp)))
	cmd.AddCommand(list, inspect, add)
	return cmd
}

func (a *app) agentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "List the coding agents Ringlet knows how to launch"}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List agents and how each is pointed at Ringlet",
		Example: "  ringlet agents list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := profile.LoadCatalog(a.paths.ConfigDir)
			if err != nil {
				return err
			}
			var out []profile.Agent
			for _, id := range cat.AgentIDs() {
				out = append(out, cat.Agents[id])
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			t := newTable(a.stdio.Out)
			t.row("ID", "NAME", "COMMAND", "FORMATS")
			for _, ag := range out {
				cmdline := profile.QuoteCommand(ag.Command)
				if cmdline == "" {
					cmdline = "(--command)"
				}
				t.row(ag.ID, ag.Name, cmdline, strings.Join(ag.Formats, ","))
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list)
	return cmd
}

func (a *app) sessionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List, inspect, prune, revoke and kill agent sessions",
		Long: `A session is the credential scope of one agent run: its token works only
on the provider proxy of its profile, never on the admin API. Revoking it
takes effect at once, open streams included.

A session that no launcher holds ('profiles env') ends after
sessions.idle_timeout (2h) with no request, each request renewing it, and
after sessions.max_ttl (12h) at the latest; it outlives a restart of the
daemon. A 'profiles run' session ends with its agent. These commands start
the daemon when none runs: the sessions it kept while stopped are its.`,
		Example: `  ringlet sessions list
  ringlet sessions prune --dry-run
  ringlet sessions revoke s_1a2b3c4d5e6f7a8b
  ringlet sessions revoke --all --profile work --yes
  ringlet sessions kill s_1a2b3c4d5e6f7a8b --reason "runaway loop"`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Example: "  ringlet sessions list\n  ringlet sessions list --json",
		Short:   "List live sessions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A stopped daemon keeps the sessions of 'profiles env' for
			// its next start: they are its to list.
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			sessions, err := c.Sessions(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, sessions, "no live sessions"); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("ID", "PROFILE", "AGENT", "PROVIDER", "REQUESTS", "STARTED", "LAST USED", "EXPIRES")
			for _, s := range sessions {
				t.row(s.ID, s.Profile, s.Agent, s.Provider, strconv.FormatInt(s.Requests, 10), s.Created.Local().Format(time.DateTime),
					s.LastUsed.Local().Format(time.DateTime), s.Expires.Local().Format(time.DateTime))
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var inspectJSON bool
	inspect := &cobra.Command{
		Use:     "inspect ID",
		Example: "  ringlet sessions inspect s_0123456789abcdef --json",
		Short:   "Show a live session",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			s, err := c.Session(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if inspectJSON {
				return writeJSONOut(a.stdio.Out, s)
			}
			t := newTable(a.stdio.Out)
			t.row("id", s.ID)
			t.row("profile", s.Profile)
			t.row("agent", s.Agent)
			t.row("provider", s.Provider)
			t.row("requests", strconv.FormatInt(s.Requests, 10))
			t.row("started", s.Created.Format(time.RFC3339))
			t.row("last used", s.LastUsed.Format(time.RFC3339))
			t.row("expires", s.Expires.Format(time.RFC3339))
			t.row("deadline", s.Deadline.Format(time.RFC3339))
			t.row("idle timeout", orDefault(s.Idle, "none"))
			t.row("kept across restarts", strconv.FormatBool(s.Durable))
			if s.Budget != nil {
				// spent / reserved / remaining of each capped field.
				for _, r := range budgetRows(*s.Budget) {
					t.row("budget "+r[0], r[2]+" spent, "+r[3]+" reserved, "+r[4]+" left of "+r[1])
				}
			}
			for _, l := range s.RateLimits {
				// What its bucket holds now, of a minute's worth.
				t.row("rate limit "+l.Scope+" "+l.Limit, fmt.Sprintf("%s left of %d a minute, throttled %d", strconv.FormatFloat(l.Available, 'f', -1, 64), l.PerMinute, l.Throttled))
			}
			return t.flush()
		},
	}
	inspect.Flags().BoolVar(&inspectJSON, "json", false, "print JSON")
	cmd.AddCommand(list, inspect, a.sessionsPruneCmd(), a.sessionsRevokeCmd(), a.sessionsKillCmd())
	return cmd
}

func (a *app) sessionsPruneCmd() *cobra.Command {
	var idle string
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "End the sessions that are over or left behind",
		Long: `End, and audit as revoked, the sessions that:

  * have expired, and their timer has not ended them yet;
  * belong to a profile that is gone;
  * were started for 'profiles run' whose launcher never took them up
    (killed before it did);
  * no launcher holds ('profiles env') and have served no request for
    --idle (default 1h; 0 leaves them).

A 'profiles run' session whose agent runs is never pruned. --dry-run says
what would end and ends nothing.`,
		Example: `  ringlet sessions prune --dry-run
  ringlet sessions prune --idle 15m
  ringlet sessions prune --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.SessionPrune{Idle: idle, DryRun: dryRun}
			if idle != "" {
				if d, err := time.ParseDuration(idle); idle != "0" && (err != nil || d < time.Second || d > 720*time.Hour) {
					return usagef("--idle must be a duration from 1s to 720h, such as 30m, or 0 to leave unused sessions")
				}
			}
			// Started when none runs: it admits again, or ends, the
			// sessions it kept while stopped.
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.PruneSessions(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.sessionsEnded(out, asJSON, "ended", "no sessions to prune")
		},
	}
	cmd.Flags().StringVar(&idle, "idle", "", "also end sessions no launcher holds that served no request for this long (default 1h; 0 for none)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would end, and end nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) sessionsRevokeCmd() *cobra.Command {
	var all, yes, asJSON bool
	var prof string
	cmd := &cobra.Command{
		Use:   "revoke [ID | --all [--profile P]]",
		Short: "End sessions now: their tokens stop working and their streams are cut",
		Long: `End one session, or with --all every live session (of --profile only, when
given): each is audited as a revoke. On a terminal --all asks first;
scripts pass --yes.`,
		Example: `  ringlet sessions revoke "$RINGLET_SESSION"
  ringlet sessions revoke --all
  ringlet sessions revoke --all --profile work --yes --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usagef("pass a session ID or --all, not both")
			case !all && (prof != "" || asJSON):
				return usagef("--profile and --json go with --all")
			case !all && len(args) != 1:
				return usagef("pass the session ID to revoke, or --all ('ringlet sessions list' shows them)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !all {
				c, err := a.ensureDaemon(cmd.Context())
				if err != nil {
					return err
				}
				if _, err := c.RevokeSession(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdio.Out, "revoked session %s\n", args[0])
				return nil
			}
			if prof != "" {
				if err := names.Check("profile", prof); err != nil {
					return usageError{err}
				}
			}
			if !yes {
				if f, ok := a.stdio.In.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
					return usagef("refusing to revoke every session without confirmation: pass --yes")
				}
			}
			// Started when none runs: the sessions a stopped daemon kept
			// are revoked too, not admitted again at its next start.
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if !yes {
				f, _ := a.stdio.In.(*os.File) // a terminal, checked above
				live, err := c.Sessions(cmd.Context())
				if err != nil {
					return err
				}
				n := 0
				for _, s := range live {
					if prof == "" || s.Profile == prof {
						n++
					}
				}
				if n == 0 {
					return a.sessionsEnded(api.SessionsEnded{Sessions: []api.EndedSession{}}, asJSON, "revoked", "no live sessions")
				}
				what := strconv.Itoa(n) + " live session"
				if n != 1 {
					what += "s"
				}
				if prof != "" {
					what += " of profile " + prof
				}
				fmt.Fprintf(a.stdio.Err, "Revoke %s? Their agents lose the provider at once. [y/N] ", what)
				line, _ := bufio.NewReader(f).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return errors.New("not revoked")
				}
			}
			out, err := c.RevokeSessions(cmd.Context(), api.SessionRevokeAll{Profile: prof})
			if err != nil {
				return err
			}
			return a.sessionsEnded(out, asJSON, "revoked", "no live sessions")
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "revoke every live session (of --profile only, when given)")
	cmd.Flags().StringVar(&prof, "profile", "", "with --all: only this profile's sessions")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with --all: do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --all: print the revoked sessions as JSON")
	return cmd
}

// sessionsEnded prints the sessions a prune or revoke ended (verb).
func (a *app) sessionsEnded(out api.SessionsEnded, asJSON bool, verb, none string) error {
	if asJSON {
		return writeJSONOut(a.stdio.Out, out)
	}
	if len(out.Sessions) == 0 {
		_, err := fmt.Fprintln(a.stdio.Out, none)
		return err
	}
	n := strconv.Itoa(len(out.Sessions)) + " session"
	if len(out.Sessions) != 1 {
		n += "s"
	}
	if out.DryRun {
		fmt.Fprintf(a.stdio.Out, "would end %s (dry run: nothing ended)\n", n)
	} else {
		fmt.Fprintf(a.stdio.Out, "%s %s\n", verb, n)
	}
	t := newTable(a.stdio.Out)
	t.row("ID", "PROFILE", "AGENT", "REQUESTS", "LAST USED", "REASON")
	for _, s := range out.Sessions {
		t.row(s.ID, s.Profile, s.Agent, strconv.FormatInt(s.Requests, 10), s.LastUsed.Local().Format(time.DateTime), s.Reason)
	}
	return t.flush()
}

func (a *app) usageCmd() *cobra.Command {
	var since, until, prof, by, db string
	var asJSON, asCSV bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Token usage and cost from the provider requests in the audit log",
		Long: `Sum the tokens that providers reported for requests through the proxy,
by day (UTC), model or profile, with the cost where the model's price is
known ('ringlet prices list' shows the table: prices.toml in the config
dir over an imported table over the built-in one); "unknown" where it is
not.`,
		Example: `  ringlet usage --since 7d --by model
  ringlet usage --profile work --since 2026-05-01 --csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && asCSV {
				return usagef("--json and --csv contradict each other; pass one")
			}
			if by != "day" && by != "model" && by != "profile" {
				return usagef("--by must be day, model or profile")
			}
			q := url.Values{}
			if since != "" {
				q.Set("since", since)
			}
			if until != "" {
				q.Set("until", until)
			}
			if prof != "" {
				q.Set("profile", prof)
			}
			f, err := audit.ParseFilter(q, time.Now(), time.Local)
			if err != nil {
				return usageError{err}
			}
			path, err := a.auditDB(db)
			if err != nil {
				return err
			}
			prices, err := provider.LoadPrices(a.paths.ConfigDir, a.paths.PricesFile())
			if err != nil {
				return err
			}
			rows, err := audit.UsageReport(cmd.Context(), path, f, by, prices.Cost)
			if err != nil {
				return err
			}
			cost := func(r audit.UsageRow) string {
				if r.CostUSD == nil {
					return "unknown"
				}
				s := fmt.Sprintf("%.4f", *r.CostUSD)
				if r.Unpriced > 0 {
					s += fmt.Sprintf(" (+%d unpriced)", r.Unpriced)
				}
				return s
			}
			switch {
			case asJSON:
				if rows == nil {
					rows = []audit.UsageRow{}
				}
				return writeJSONOut(a.stdio.Out, api.Usage{By: by, Rows: rows})
			case asCSV:
				fmt.Fprintln(a.stdio.Out, by+",requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cost_usd")
				for _, r := range rows {
					fmt.Fprintf(a.stdio.Out, "%s,%d,%d,%d,%d,%d,%s\n", printable(r.Key), r.Requests, r.Input, r.Output, r.CacheRead, r.CacheWrite, cost(r))
				}
				return nil
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdio.Out, "no provider requests in that range")
				return nil
			}
			t := newTable(a.stdio.Out)
			t.row(strings.ToUpper(by), "REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST USD")
			for _, r := range rows {
				t.row(r.Key, strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.Input, 10), strconv.FormatInt(r.Output, 10), strconv.FormatInt(r.CacheRead, 10), strconv.FormatInt(r.CacheWrite, 10), cost(r))
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "from this time (YYYY-MM-DD, RFC 3339, or 24h / 7d ago)")
	f.StringVar(&until, "until", "", "before this time")
	f.StringVar(&prof, "profile", "", "only this profile")
	f.StringVar(&by, "by", "day", "group by day, model or profile")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&asCSV, "csv", false, "print CSV")
	f.StringVar(&db, "db", "", "read this audit database instead of the daemon's")
	mustFlag(cmd.RegisterFlagCompletionFunc("by", cobra.FixedCompletions([]string{"day", "model", "profile"}, cobra.ShellCompDirectiveNoFileComp)))
	return cmd
}

func (a *app) profilesSetCmd() *cobra.Command {
	var model, workspace, endpoint, network string
	var ro, rw, allowHosts, protect, unprotect []string
	var allowGit, trust, strictHooks bool
	var lim limitFlags
	var bf budgetFlags
	var rf rateLimitFlagSet
	cmd := &cobra.Command{
		Use:   "set ALIAS [flags]",
		Short: "Change a profile's model, workspace, endpoint or sandbox settings",
		Long: `Change the given settings of a profile; the others stay as they are. --ro
and --rw replace the whole list (pass --ro '' to clear it). Live sessions
keep the settings they started with.`,
		Example: `  ringlet profiles set work --model claude-opus-4-1
  ringlet profiles set work --network none --ro /usr/share/dict
  ringlet profiles set work --allow-git-config=false
  ringlet profiles set work --trust-workspace
  ringlet profiles set work --strict-hooks
  ringlet profiles set work --protect .github/workflows/ --unprotect .vscode/
  ringlet profiles set work --max-procs 512 --max-memory 4G --tmp-size 2G
  ringlet profiles set work --budget-session tools=200 --rate-session-tool-calls 30`,
		Args: exactArgs(1, "ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			alias := args[0]
			if err := names.Check("profile", alias); err != nil {
				return usageError{err}
			}
			var u api.ProfileUpdate
			fl := cmd.Flags()
			if fl.NFlag() == 0 {
				return usagef("nothing to change: pass at least one of --model, --workspace, --endpoint, --network, --ro, --rw, --allow-git-config, --trust-workspace, --strict-hooks, --allow-host, --protect, --unprotect, --max-procs, --max-memory, --tmp-size, --budget-*, --rate-*")
			}
			if fl.Changed("model") {
				u.Model = &model
			}
			if fl.Changed("workspace") {
				w, err := filepath.Abs(workspace)
				if err != nil || workspace == "" {
					return usagef("--workspace needs a directory")
				}
				u.Workspace = &w
			}
			if fl.Changed("endpoint") {
				u.Endpoint = &endpoint
			}
			if fl.Changed("network") {
				if err := profile.CheckNetwork(network); err != nil {
					return usageError{err}
				}
				u.Network = &network
			}
			paths := func(in []string) *[]string {
				out := []string{}
				for _, d := range in {
					if d == "" {
						continue
					}
					if abs, err := filepath.Abs(d); err == nil && !strings.ContainsAny(d, "\n\r") && !strings.HasPrefix(d, "-") {
						d = abs
					}
					out = append(out, d)
				}
				return &out
			}
			if fl.Changed("ro") {
				u.ReadOnly = paths(ro)
			}
			if fl.Changed("rw") {
				u.ReadWrite = paths(rw)
			}
			if fl.Changed("allow-git-config") {
				u.AllowGitConfig = &allowGit
			}
			if fl.Changed("trust-workspace") {
				u.TrustWorkspace = &trust
			}
			if fl.Changed("strict-hooks") {
				u.StrictHooks = &strictHooks
			}
			if fl.Changed("allow-host") {
				hosts := []string{}
				for _, h := range allowHosts {
					if h != "" {
						if err := profile.CheckAllowHost(h); err != nil {
							return usageError{err}
						}
						hosts = append(hosts, h)
					}
				}
				u.AllowHosts = &hosts
			}
			entries := func(in []string) *[]string {
				out := []string{}
				for _, e := range in {
					if e != "" {
						out = append(out, e)
					}
				}
				return &out
			}
			if fl.Changed("protect") {
				u.Protect = entries(protect)
			}
			if fl.Changed("unprotect") {
				u.Unprotect = entries(unprotect)
			}
			if u.Protect != nil || u.Unprotect != nil {
				var add, lift []string
				if u.Protect != nil {
					add = *u.Protect
				}
				if u.Unprotect != nil {
					lift = *u.Unprotect
				}
				if _, err := sandbox.ProtectedPaths(add, lift); err != nil {
					return usageError{err}
				}
			}
			procs, memory, tmp, err := lim.values()
			if err != nil {
				return err
			}
			if fl.Changed("max-procs") {
				u.MaxProcs = &procs
			}
			if fl.Changed("max-memory") {
				u.MaxMemory = &memory
			}
			if fl.Changed("tmp-size") {
				u.TmpSize = &tmp
			}
			if _, _, err := bf.request(fl); err != nil {
				return err
			}
			if _, _, err := rf.update(cmd); err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if u != (api.ProfileUpdate{}) {
				if _, err := c.UpdateProfile(cmd.Context(), alias, u); err != nil {
					return err
				}
			}
			if err := setProfileBudgets(cmd, c, alias, &bf); err != nil {
				return err
			}
			if err := setProfileRateLimits(cmd, c, alias, &rf); err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "updated profile %s\n", alias)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model to use (empty for the agent's default)")
	f.StringVar(&workspace, "workspace", "", "the project directory the agent works in")
	f.StringVar(&endpoint, "endpoint", "", "a named endpoint of the provider (empty for its base URL)")
	f.StringVar(&network, "network", "", "sandbox network: provider, none or host")
	f.StringArrayVar(&ro, "ro", nil, "extra read-only path (repeatable; replaces the list)")
	f.StringArrayVar(&rw, "rw", nil, "extra read-write path (repeatable; replaces the list)")
	f.BoolVar(&allowGit, "allow-git-config", false, "let the sandboxed agent write .git/hooks and .git/config")
	f.BoolVar(&trust, "trust-workspace", false, trustWorkspaceUsage)
	f.BoolVar(&strictHooks, "strict-hooks", false, strictHooksUsage+"; --strict-hooks=false turns it off")
	f.StringArrayVar(&allowHosts, "allow-host", nil, "hosts the sandboxed agent may reach over HTTPS (repeatable; replaces the list; '' clears it)")
	f.StringArrayVar(&protect, "protect", nil, "workspace paths kept read-only besides the defaults ('/' at the end for a directory; repeatable; replaces the list; '' clears it)")
	f.StringArrayVar(&unprotect, "unprotect", nil, "default protected paths the sandboxed agent may write (repeatable; replaces the list; '' clears it)")
	lim.register(cmd)
	bf.register(cmd, "budget-")
	rf.register(cmd, "rate-")
	return cmd
}

// strictHooksUsage is the help of --strict-hooks.
const strictHooksUsage = "refuse an MCP tool call of a Claude Code session that no PreToolUse check allowed under its tool_use_id (default: allow it and record hook.bypass)"

// trustWorkspaceUsage is the help of --trust-workspace.
const trustWorkspaceUsage = "tell the agent you trust the workspace's files, so Claude Code and Codex do not ask (needs --workspace)"

// limitFlags are --max-procs, --max-memory and --tmp-size.
type limitFlags struct {
	procs       int
	memory, tmp string
}

func (l *limitFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&l.procs, "max-procs", 0, fmt.Sprintf("processes and threads the sandbox may run (0: the default, %d)", sandbox.DefaultProcs))
	f.StringVar(&l.memory, "max-memory", "0", "memory of the sandbox (systemd scope) or of each of its processes (rlimit), e.g. 4G (0: the default, "+profile.FormatSize(sandbox.DefaultMemory)+")")
	f.StringVar(&l.tmp, "tmp-size", "0", "size of the sandbox's /tmp, /var/tmp and /dev/shm each, e.g. 1G (0: the default, "+profile.FormatSize(sandbox.DefaultTmp)+")")
}

// values checks the flags: a bad one is a usage error that says the form.
func (l *limitFlags) values() (procs int, memory, tmp int64, err error) {
	if memory, err = profile.ParseSize(l.memory); err != nil {
		return 0, 0, 0, usageError{fmt.Errorf("--max-memory: %w", err)}
	}
	if tmp, err = profile.ParseSize(l.tmp); err != nil {
		return 0, 0, 0, usageError{fmt.Errorf("--tmp-size: %w", err)}
	}
	if err := profile.CheckLimits(l.procs, memory, tmp); err != nil {
		return 0, 0, 0, usageError{err}
	}
	return l.procs, memory, tmp, nil
}

func nonZero(n int64, format func(int64) string) string {
	if n == 0 {
		return ""
	}
	return format(n)
}

func fmtSize(n int64) string { return profile.FormatSize(n) }
