package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/toolchain"
)

// initFlags are `ringlet init`'s answers given up front.
type initFlags struct {
	agent, provider, alias, workspace, budget string
	keyStdin, skipKey, yes                    bool
}

func (a *app) initCmd() *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Set Ringlet up: find your agent, store its key, create its profile, check the sandbox",
		Long: `The first run, in one command. init
  1. finds the agents of the catalog on your PATH and picks one,
  2. starts the daemon and says where keys will be kept and why (the OS
     keyring, or a 0600 file when no Secret Service is reachable),
  3. stores the provider key (read without echo) unless one is stored,
  4. creates the profile, with the workspace the agent may change, and
     a daily budget if you want one (none by default; see 'ringlet
     budgets --help'),
  5. checks that the sandbox works here,
and prints the command that runs the agent.

On a terminal it asks, with the defaults in brackets (Enter takes them).
With --yes, or when standard input is not a terminal, it asks nothing:
each answer comes from its flag or its default, and the key from standard
input with --key-stdin (or --skip-key to store it later).`,
		Example: `  ringlet init
  printf '%s' "$ANTHROPIC_API_KEY" | ringlet init --yes --agent claude --workspace ~/src/app --key-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runInit(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.agent, "agent", "", "the agent to set up (default: the first found on PATH)")
	fl.StringVar(&f.provider, "provider", "", "its provider (default: the one speaking the agent's API format)")
	fl.StringVar(&f.alias, "profile", "", "the profile's name (default: the agent's id)")
	fl.StringVar(&f.workspace, "workspace", "", "the project directory the agent works in (default: the current directory)")
	fl.BoolVar(&f.keyStdin, "key-stdin", false, "read the provider key from standard input")
	fl.BoolVar(&f.skipKey, "skip-key", false, "do not store a key now")
	fl.BoolVarP(&f.yes, "yes", "y", false, "ask nothing: take the flags and the defaults")
	fl.StringVar(&f.budget, "budget", "", "a daily budget for the profile, e.g. output=2M,requests=2000 (default: none)")
	mustFlag(cmd.RegisterFlagCompletionFunc("budget", completeBudgetSpec))
	mustFlag(cmd.RegisterFlagCompletionFunc("agent", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cat, err := profile.LoadCatalog(a.paths.ConfigDir)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return cat.AgentIDs(), cobra.ShellCompDirectiveNoFileComp
	}))
	mustFlag(cmd.RegisterFlagCompletionFunc("provider", a.completeProviders))
	mustFlag(cmd.MarkFlagDirname("workspace"))
	return cmd
}

// asker reads answers from a terminal; with none, every question takes its
// default.
type asker struct {
	in  *bufio.Reader
	err io.Writer
	tty bool
}

// ask prints question with its default and returns the answer, or def
// for an empty line.
func (q *asker) ask(question, def string) (string, error) {
	if !q.tty {
		return def, nil
	}
	if def != "" {
		fmt.Fprintf(q.err, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(q.err, "%s: ", question)
	}
	line, err := q.in.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	if line = strings.TrimSpace(line); line != "" {
		return line, nil
	}
	return def, nil
}

func (a *app) runInit(ctx context.Context, f initFlags) error {
	if f.keyStdin && f.skipKey {
		return usagef("--key-stdin and --skip-key exclude each other")
	}
	paths, err := a.needPaths()
	if err != nil {
		return err
	}
	in, isFile := a.stdio.In.(*os.File)
	q := &asker{in: bufio.NewReader(a.stdio.In), err: a.stdio.Err, tty: isFile && term.IsTerminal(int(in.Fd())) && !f.yes && !f.keyStdin}
	out := a.stdio.Out
	cat, err := profile.LoadCatalog(paths.ConfigDir)
	if err != nil {
		return err
	}

	// 1. The agent.
	var found []string
	for _, id := range cat.AgentIDs() {
		ag := cat.Agents[id]
		if len(ag.Command) == 0 {
			continue
		}
		if p := toolchain.LookPath(ag.Command[0], a.getenv("PATH")); p != "" {
			found = append(found, id)
			fmt.Fprintf(out, "found %s: %s %s\n", id, p, agentVersion(ctx, p))
		}
	}
	agentID := f.agent
	if agentID == "" {
		if len(found) == 0 {
			return fmt.Errorf("no agent of the catalog (%s) is on PATH; install one (e.g. npm install -g @anthropic-ai/claude-code) or name one with --agent", strings.Join(cat.AgentIDs(), ", "))
		}
		if agentID, err = q.ask("Agent ("+strings.Join(found, ", ")+")", found[0]); err != nil {
			return err
		}
	}
	ag, err := cat.Agent(agentID)
	if err != nil {
		return usageError{err}
	}
	if len(ag.Command) == 0 {
		return usagef("agent %s runs a command you give; use 'ringlet profiles create %s ALIAS --command ...'", agentID, agentID)
	}
	if !slices.Contains(found, agentID) {
		fmt.Fprintf(a.stdio.Err, "ringlet: warning: %s (%s) is not on PATH; install it before 'profiles run'\n", agentID, ag.Command[0])
	}

	// 2. The provider, the profile's name and its workspace.
	prov := f.provider
	if prov == "" {
		prov = defaultProvider(cat, ag)
		if prov, err = q.ask("Provider", prov); err != nil {
			return err
		}
	}
	if _, err := cat.Provider(prov); err != nil {
		return usageError{err}
	}
	alias := f.alias
	if alias == "" {
		if alias, err = q.ask("Profile name", agentID); err != nil {
			return err
		}
	}
	if err := names.Check("profile", alias); err != nil {
		return usageError{err}
	}
	ws := f.workspace
	if ws == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return err
		}
		if ws, err = q.ask("Workspace (the agent may change everything in it)", cwd); err != nil {
			return err
		}
	}
	spec := f.budget
	if spec == "" && q.tty {
		if spec, err = q.ask("Daily budget, e.g. output=2M,requests=2000 (Enter: none)", ""); err != nil {
			return err
		}
	}
	var daily budget.Limits
	if strings.TrimSpace(spec) != "" {
		if daily, err = budget.Parse(spec); err != nil {
			return usageError{fmt.Errorf("budget: %w", err)}
		}
	}
	if ws, err = paths.ExpandHome(ws); err != nil {
		return err
	}
	if ws, err = filepath.Abs(ws); err != nil {
		return err
	}
	if st, err := os.Stat(ws); err != nil || !st.IsDir() {
		return usagef("workspace %s is not a directory", ws)
	}

	// 3. The daemon, and where keys go.
	c, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if h.Keys.Error != "" {
		return errors.New(h.Keys.Error)
	}
	where := "the OS keyring"
	if h.Keys.Backend != credentials.BackendKeyring {
		where = "a 0600 file"
	}
	fmt.Fprintf(out, "keys go to %s: %s\n", where, h.Keys.Why)
	if _, err := c.Profile(ctx, alias); err == nil {
		return fmt.Errorf("profile %s exists already ('ringlet profiles inspect %s'); choose another name with --profile", alias, alias)
	}

	// 4. The key, then the profile.
	ref, err := credentials.NewRef(prov, alias)
	if err != nil {
		return usageError{err}
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	var key string
	switch {
	case hasKey(keys, ref):
		fmt.Fprintf(out, "using the key stored as %s\n", ref)
	case f.skipKey:
	case f.keyStdin || q.tty:
		if key, err = a.readKey(ref, f.keyStdin); err != nil {
			return fmt.Errorf("%w (or pass --skip-key and store it later with 'ringlet keychain set %s %s')", err, ref.Provider, ref.Alias)
		}
	default:
		return usagef("no key is stored as %s: pipe it in with --key-stdin, or pass --skip-key and store it later with 'ringlet keychain set %s %s'", ref, ref.Provider, ref.Alias)
	}
	view, err := c.CreateProfile(ctx, api.ProfileRequest{Alias: alias, Agent: agentID, Provider: prov, Workspace: ws})
	if err != nil {
		return err
	}
	if key != "" {
		if _, err := c.SetKey(ctx, ref, key); err != nil {
			return fmt.Errorf("profile %s was created but its key could not be stored: %w", alias, err)
		}
		view.Key = "stored"
	}
	fmt.Fprintf(out, "created profile %s (%s via %s, workspace %s); key: %s\n", view.Alias, view.Agent, view.Provider, ws, view.Key)
	if !daily.IsZero() {
		if _, err := c.SetBudgets(ctx, alias, api.BudgetRequest{Limits: map[string]budget.Limits{budget.PeriodDay: daily}}); err != nil {
			return fmt.Errorf("profile %s was created without its budget: %w", alias, err)
		}
		fmt.Fprintf(out, "daily budget: %s ('ringlet budgets show %s')\n", daily, alias)
	}

	// 5. The sandbox.
	sandboxOK := true
	for _, s := range doctorSandbox() {
		if s.Status == checkFail {
			sandboxOK = false
			fmt.Fprintf(out, "sandbox: %s\n  fix: %s\n", s.Detail, s.Fix)
		} else if s.Check == "sandbox" {
			fmt.Fprintf(out, "sandbox: %s\n", s.Detail)
		}
	}
	switch {
	case !sandboxOK:
		fmt.Fprintf(out, "next: fix the sandbox, then: ringlet profiles run %s\n", alias)
	case key == "" && !hasKey(keys, ref):
		fmt.Fprintf(out, "next: ringlet keychain set %s %s, then: ringlet profiles run %s\n", ref.Provider, ref.Alias, alias)
	default:
		fmt.Fprintf(out, "next: ringlet profiles run %s\n", alias)
	}
	return nil
}

// defaultProvider is the provider of the agent's first API format: the
// built-in provider of that id, else the first that speaks it.
func defaultProvider(cat *profile.Catalog, ag profile.Agent) string {
	for _, format := range ag.Formats {
		if p, err := cat.Provider(format); err == nil && p.Format == format {
			return p.ID
		}
		for _, id := range cat.ProviderIDs() {
			if cat.Providers[id].Format == format {
				return id
			}
		}
	}
	return ""
}
