// Package cli builds the ringlet command line. Commands are made by
// constructors over one app value; there is no global command state, so
// tests can run Main many times in one process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/config"
)

// Exit codes, the same for every command.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command failed; stderr has one line saying why
	ExitUsage = 2 // the command line was wrong (unknown flag, missing argument)
)

// Stdio are the streams a command reads and writes.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// app is the state shared by all commands of one invocation.
type app struct {
	ctx     context.Context
	stdio   Stdio
	getenv  func(string) string
	environ func() []string

	daemon Daemon

	paths    config.Paths
	pathsErr error
	ran      bool // set once a command's RunE starts: later errors are not usage errors
	notified bool // the "started the daemon" line was printed
	remote   bool // profiles run --remote
	// runBudget is profiles run --budget.
	runBudget *budget.Limits
}

// usageError marks an error in how the command was invoked (exit 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Main runs the ringlet command line with args (without the program name)
// and returns the process exit code. d is the daemon side of the binary,
// for 'ringlet daemon' and 'ringlet audit new-epoch'.
func Main(ctx context.Context, args []string, stdio Stdio, getenv func(string) string, environ func() []string, d Daemon) int {
	a := &app{ctx: ctx, stdio: stdio, getenv: getenv, environ: environ, daemon: d}
	a.paths, a.pathsErr = config.PathsFromEnv(getenv)
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if errors.As(err, new(silentExit)) {
		return ExitError
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	var ue usageError
	// Cobra checks required flags after the pre-run hook that sets ran.
	if errors.As(err, &ue) || !a.ran || strings.HasPrefix(err.Error(), "required flag(s)") {
		path := "ringlet"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stdio.Err, "ringlet: %s (see '%s --help')\n", oneLine(err), path)
		return ExitUsage
	}
	fmt.Fprintln(stdio.Err, "ringlet: "+oneLine(err))
	return ExitError
}

// oneLine folds a (possibly joined) error into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ringlet",
		Short: "Ringlet stands between AI coding agents and the keys, tools and machine they touch",
		Long: `Ringlet is one local daemon between AI coding agents and everything they touch:
provider APIs (it injects your keys so agents never see them), MCP tool
servers (every call can be vetoed by a hook), and your machine (agents run
in a sandbox). Every action lands in an audit log.

Every request to the daemon needs its bearer token. Commands that need the
daemon start it in the background when it is not running.
  address:  ` + listenMark + `
  token:    ` + tokenMark + `

Environment:
  RINGLET_URL     daemon address for scripts (default from the config)
  RINGLET_TOKEN   bearer token for scripts (default: the http_token file)
  XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_DATA_HOME   where files live

Exit codes: 0 success, 1 error, 2 usage error.`,
		Example: `  ringlet daemon                 # run the daemon in the foreground
  ringlet daemon status          # is it running, where, for how long
  ringlet config list            # every setting with its default
  ringlet completion bash > /etc/bash_completion.d/ringlet`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	a.helpShowsSettings(root)
	root.AddCommand(a.daemonCmd(), a.configCmd(), a.keychainCmd(), a.auditCmd(), a.profilesCmd(), a.providersCmd(), a.agentsCmd(), a.sessionsCmd(), a.usageCmd(), a.pricesCmd(), a.budgetsCmd(), a.rateLimitsCmd(), a.hooksCmd(), a.hookAdapterCmd(), a.mcpCmd(), a.connectCmd(), a.sandboxCmd(), a.terminalCmd(), a.initCmd(), a.doctorCmd(), a.versionCmd(), a.apiCmd(), a.uiCmd())
	strictGroups(root)
	a.completeArgs(root)
	a.completeProfiles(root)
	return root
}

// completeProfiles completes profile aliases wherever a command takes one
// (its first argument is ALIAS or PROFILE, or a --profile flag), from the
// profile files in the config dir: no daemon is needed to complete.
func (a *app) completeProfiles(root *cobra.Command) {
	aliases := a.completeAliases
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := strings.Fields(c.Use); len(f) > 1 && (f[1] == "ALIAS" || f[1] == "PROFILE") && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return aliases(toComplete)
			}
		}
		if c.Flags().Lookup("profile") != nil {
			mustFlag(c.RegisterFlagCompletionFunc("profile", func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return aliases(toComplete)
			}))
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// Marks in help texts, replaced when the help is shown by this user's
// settings: the daemon's address and the token file.
const (
	listenMark = "<listen>"
	tokenMark  = "<token-file>"
)

// helpShowsSettings makes every help text show the daemon address and
// token file that apply to this user (config.toml and the XDG variables)
// where it mentions them, rather than the defaults. The config is read
// only when help is shown; a broken one shows the default and says so.
func (a *app) helpShowsSettings(root *cobra.Command) {
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		if strings.Contains(c.Long, listenMark) || strings.Contains(c.Long, tokenMark) {
			c.Long = strings.NewReplacer(listenMark, a.listenHelp(), tokenMark, a.tokenHelp()).Replace(c.Long)
		}
		help(c, args)
	})
}

// listenHelp says where the daemon listens: daemon.listen, or the default.
func (a *app) listenHelp() string {
	cfg, err := a.loadConfig()
	if err != nil {
		_ = err // 'ringlet config list' says what is wrong; help does not fail for it
		return config.DefaultListen + " unless daemon.listen says otherwise (config.toml has an error: see 'ringlet config list')"
	}
	if cfg.Daemon.Listen == "" {
		return config.DefaultListen + " (the default; 'ringlet config set daemon.listen' changes it)"
	}
	return cfg.Listen() + " (daemon.listen)"
}

// tokenHelp is the path of the token file.
func (a *app) tokenHelp() string {
	p, err := a.needPaths()
	if err != nil {
		return "~/.config/ringlet/http_token"
	}
	return p.TokenFile()
}

var completionExamples = map[string]string{
	"bash":       "  ringlet completion bash > /etc/bash_completion.d/ringlet\n  source <(ringlet completion bash)",
	"zsh":        "  ringlet completion zsh > \"${fpath[1]}/_ringlet\"",
	"fish":       "  ringlet completion fish > ~/.config/fish/completions/ringlet.fish",
	"powershell": "  ringlet completion powershell | Out-String | Invoke-Expression",
}

// strictGroups makes a mistyped subcommand a usage error (exit 2) under
// every command group, as it is at the top: cobra would print the group's
// help and exit 0. 'ringlet help' with an unknown topic is one too.
func strictGroups(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			for _, sh := range c.Commands() {
				sh.Example = completionExamples[sh.Name()]
			}
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && c.HasSubCommands() && !c.Runnable() {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return nil
				}
				hint := ""
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					hint = "; did you mean " + s[0] + "?"
				}
				return usagef("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)
			}
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for _, c := range root.Commands() {
		if c.Name() != "help" {
			continue
		}
		c.Run = nil
		c.RunE = func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			return cmd.Help()
		}
	}
}

// needPaths returns the resolved paths or the reason they could not be.
func (a *app) needPaths() (config.Paths, error) {
	return a.paths, a.pathsErr
}

// loadConfig reads config.toml.
func (a *app) loadConfig() (*config.Config, error) {
	p, err := a.needPaths()
	if err != nil {
		return nil, err
	}
	return config.Load(p.ConfigFile())
}
