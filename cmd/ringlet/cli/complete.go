package cli

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// completeTimeout bounds how long a completion waits for the daemon: a
// shell must not hang on a TAB.
const completeTimeout = 2 * time.Second

// completeArgs adds the completions of arguments and flag values that
// need more than a fixed list: agents and providers from the catalogs,
// and sessions, terminals, hooks, MCP servers and stored keys from the
// daemon. What only the daemon knows is asked of a daemon that runs;
// completion never starts one (a TAB must not leave a daemon behind), so
// with none running those complete to nothing.
func (a *app) completeArgs(root *cobra.Command) {
	find := func(path ...string) *cobra.Command {
		c, rest, err := root.Find(path)
		if err != nil || len(rest) > 0 || c.Name() != path[len(path)-1] {
			panic("completion for a command that does not exist: ringlet " + strings.Join(path, " "))
		}
		return c
	}
	sandboxNets := fixed(
		cobra.CompletionWithDesc(sandbox.NetProvider, "only Ringlet's proxy (the default)"),
		cobra.CompletionWithDesc(sandbox.NetNone, "no network at all"),
		cobra.CompletionWithDesc(sandbox.NetHost, "the host's network (warned)"),
	)
	mustFlag(find("profiles", "create").RegisterFlagCompletionFunc("network", sandboxNets))
	mustFlag(find("profiles", "set").RegisterFlagCompletionFunc("network", sandboxNets))
	mcpAdd := find("mcp", "add")
	mustFlag(mcpAdd.RegisterFlagCompletionFunc("network", fixed(
		cobra.CompletionWithDesc("none", "loopback only (the default)"),
		cobra.CompletionWithDesc("host", "the host's network"),
	)))
	mustFlag(mcpAdd.RegisterFlagCompletionFunc("credential", func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, e := range a.storedKeys(cmd.Context()) {
			if ref := e.Ref().String(); strings.HasPrefix(ref, toComplete) {
				out = append(out, cobra.CompletionWithDesc(ref, e.Backend))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}))

	mcpImport := find("mcp", "import")
	mustFlag(mcpImport.RegisterFlagCompletionFunc("from", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		// A name of a client, or a file.
		return []cobra.Completion{
			cobra.CompletionWithDesc("claude", "Claude Code: .mcp.json and ~/.claude.json"),
			cobra.CompletionWithDesc("claude-desktop", "Claude Desktop's config"),
			cobra.CompletionWithDesc("codex", "Codex's config.toml"),
			cobra.CompletionWithDesc("vscode", "VS Code's .vscode/mcp.json"),
		}, cobra.ShellCompDirectiveDefault
	}))
	mustFlag(mcpImport.RegisterFlagCompletionFunc("network", fixed(
		cobra.CompletionWithDesc("none", "loopback only (the default)"),
		cobra.CompletionWithDesc("host", "the host's network"),
	)))
	mcpImport.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) != 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.completeAliases(toComplete)
	}
	mcpSet := find("mcp", "set")
	for _, c := range []*cobra.Command{mcpAdd, mcpSet} {
		mustFlag(c.RegisterFlagCompletionFunc("secret", a.completeSecretFlag))
		mustFlag(c.RegisterFlagCompletionFunc("header-secret", a.completeSecretFlag))
	}
	mustFlag(mcpSet.RegisterFlagCompletionFunc("unset-env", a.completeServerNames(func(s mcpserver.Status) map[string]string { return s.Env }, false)))
	mustFlag(mcpSet.RegisterFlagCompletionFunc("unset-secret", a.completeServerNames(func(s mcpserver.Status) map[string]string { return s.Secrets }, false)))
	mustFlag(mcpSet.RegisterFlagCompletionFunc("unset-header", a.completeServerNames(func(s mcpserver.Status) map[string]string { return s.Headers }, true)))
	mustFlag(mcpSet.RegisterFlagCompletionFunc("unset-header-secret", a.completeServerNames(func(s mcpserver.Status) map[string]string { return s.HeaderSecrets }, true)))

	find("profiles", "create").ValidArgsFunction = nthArg(0, a.completeAgents)

	for _, c := range []*cobra.Command{find("sessions", "inspect"), find("sessions", "revoke"), find("sessions", "kill")} {
		c.ValidArgsFunction = nthArg(0, a.completeSessions)
	}
	for _, c := range []*cobra.Command{find("terminal", "info"), find("terminal", "attach"), find("terminal", "kill")} {
		c.ValidArgsFunction = nthArg(0, a.completeTerminals)
	}
	find("hooks", "remove").ValidArgsFunction = profileThen(a, a.completeHooks)
	for _, c := range []*cobra.Command{find("mcp", "remove"), find("mcp", "approve"), find("mcp", "show"), find("mcp", "auth"), mcpSet} {
		c.ValidArgsFunction = profileThen(a, a.completeMCPServers)
	}
	mcpTools := find("mcp", "tools")
	mcpTools.ValidArgsFunction = profileThen(a, a.completeMCPServers)
	for _, f := range []string{"enable", "disable"} {
		mustFlag(mcpTools.RegisterFlagCompletionFunc(f, a.completeMCPTools))
		mustFlag(mcpTools.RegisterFlagCompletionFunc(f+"-prompt", a.completeMCPItems(false)))
		mustFlag(mcpTools.RegisterFlagCompletionFunc(f+"-resource", a.completeMCPItems(true)))
	}
	mustFlag(find("mcp", "approve").RegisterFlagCompletionFunc("tool", a.completeChangedTools))
	for _, f := range []string{"prompt", "resource"} {
		mustFlag(find("mcp", "approve").RegisterFlagCompletionFunc(f, a.completeChangedItems(f)))
	}
	for _, f := range []string{"resources", "prompts"} {
		mustFlag(mcpTools.RegisterFlagCompletionFunc(f, fixed(
			cobra.CompletionWithDesc("on", "offer them to the profile's sessions"),
			cobra.CompletionWithDesc("off", "hide them, and refuse reads of them"),
			cobra.CompletionWithDesc("default", "follow the profile's default (all or none)"),
		)))
	}
	mustFlag(mcpTools.RegisterFlagCompletionFunc("default", fixed(
		cobra.CompletionWithDesc("all", "every tool is served unless disabled (the default)"),
		cobra.CompletionWithDesc("none", "a tool is served only once enabled"),
	)))
	mustFlag(mcpTools.RegisterFlagCompletionFunc("search", fixed(
		cobra.CompletionWithDesc("on", "sessions get search_tools and call_tool instead of every tool"),
		cobra.CompletionWithDesc("off", "every served tool is listed (the default)"),
	)))
	find("keychain", "set").ValidArgsFunction = a.completeKeychainSet
	find("keychain", "remove").ValidArgsFunction = a.completeKeychainRemove
}

// completer completes one argument from the arguments before it.
type completer func(ctx context.Context, args []string, toComplete string) []cobra.Completion

func fixed(choices ...cobra.Completion) cobra.CompletionFunc {
	return cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp)
}

// nthArg completes argument n with f, and nothing else.
func nthArg(n int, f completer) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) != n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd.Context(), args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// profileThen completes PROFILE, then the second argument with f.
func profileThen(a *app, f completer) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return a.completeAliases(toComplete)
		case 1:
			return f(cmd.Context(), args, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeAliases completes profile aliases from the profile files in
// the config dir: no daemon is needed.
func (a *app) completeAliases(toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, p := range a.profiles() {
		if strings.HasPrefix(p.Alias, toComplete) {
			out = append(out, cobra.CompletionWithDesc(p.Alias, p.Agent+" via "+p.Provider))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) profiles() []profile.Profile {
	paths, err := a.needPaths()
	if err != nil {
		return nil
	}
	list, _ := profile.NewStore(paths.ConfigDir, paths.DataDir).List()
	return list
}

// completeAgents completes agent ids from the catalogs.
func (a *app) completeAgents(_ context.Context, _ []string, toComplete string) []cobra.Completion {
	cat, err := profile.LoadCatalog(a.paths.ConfigDir)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, id := range cat.AgentIDs() {
		if strings.HasPrefix(id, toComplete) {
			out = append(out, cobra.CompletionWithDesc(id, cat.Agents[id].Name))
		}
	}
	return out
}

// askDaemon calls f with a client of the running daemon and a context
// bounded for a completion. With no daemon running, by its state file (or
// RINGLET_URL, which names one the user runs), it does nothing: it never
// starts one, nor sends the token to whatever else listens on the port.
func (a *app) askDaemon(ctx context.Context, f func(context.Context, *client.Client)) {
	paths, err := a.needPaths()
	if err != nil {
		return
	}
	if st, ok := client.ReadState(paths.StateFile()); a.getenv("RINGLET_URL") == "" && (!ok || !client.ProcessAlive(st.PID)) {
		return
	}
	c, err := a.daemonClient()
	if err != nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	f(ctx, c)
}

func (a *app) completeSessions(ctx context.Context, _ []string, toComplete string) []cobra.Completion {
	var sessions []api.SessionInfo
	a.askDaemon(ctx, func(ctx context.Context, c *client.Client) { sessions, _ = c.Sessions(ctx) })
	var out []cobra.Completion
	for _, s := range sessions {
		if strings.HasPrefix(s.ID, toComplete) {
			out = append(out, cobra.CompletionWithDesc(s.ID, s.Profile+", until "+s.Expires.Local().Format(time.DateTime)))
		}
	}
	return out
}

func (a *app) completeTerminals(ctx context.Context, _ []string, toComplete string) []cobra.Completion {
	var terminals []api.TerminalInfo
	a.askDaemon(ctx, func(ctx context.Context, c *client.Client) { terminals, _ = c.Terminals(ctx) })
	var out []cobra.Completion
	for _, t := range terminals {
		if strings.HasPrefix(t.Session, toComplete) {
			state := "running"
			if !t.Running {
				state = "exited"
			}
			out = append(out, cobra.CompletionWithDesc(t.Session, t.Profile+", "+state))
		}
	}
	return out
}

func (a *app) completeHooks(ctx context.Context, args []string, toComplete string) []cobra.Completion {
	var hooks []hook.Hook
	a.askDaemon(ctx, func(ctx context.Context, c *client.Client) { hooks, _ = c.Hooks(ctx, args[0]) })
	var out []cobra.Completion
	for _, h := range hooks {
		if strings.HasPrefix(h.ID, toComplete) {
			out = append(out, cobra.CompletionWithDesc(h.ID, h.Event+": "+completionDesc(h.Shell)))
		}
	}
	return out
}

func (a *app) completeMCPServers(ctx context.Context, args []string, toComplete string) []cobra.Completion {
	var servers []mcpserver.Status
	a.askDaemon(ctx, func(ctx context.Context, c *client.Client) { servers, _ = c.MCPServers(ctx, args[0]) })
	var out []cobra.Completion
	for _, s := range servers {
		if strings.HasPrefix(s.Name, toComplete) {
			target := s.URL
			if target == "" {
				target = profile.QuoteCommand(s.Command)
			}
			out = append(out, cobra.CompletionWithDesc(s.Name, completionDesc(target)))
		}
	}
	return out
}

// mcpServerArg is the status of the server that args (PROFILE SERVER)
// name, as the running daemon knows it (no server is started for it):
// none when args are not those two or the daemon does not know it.
func (a *app) mcpServerArg(cmd *cobra.Command, args []string) []mcpserver.Status {
	if len(args) != 2 {
		return nil
	}
	var servers []mcpserver.Status
	a.askDaemon(cmd.Context(), func(ctx context.Context, c *client.Client) { servers, _ = c.MCPServers(ctx, args[0]) })
	for _, s := range servers {
		if s.Name == args[1] {
			return []mcpserver.Status{s}
		}
	}
	return nil
}

// completeMCPTools completes --enable/--disable with the tools of the
// server named by the arguments, as the running daemon knows them (no
// server is started for it).
func (a *app) completeMCPTools(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, s := range a.mcpServerArg(cmd, args) {
		for _, t := range s.Tools {
			if strings.HasPrefix(t.Name, toComplete) {
				state := "disabled"
				if t.Enabled {
					state = "enabled"
				}
				out = append(out, cobra.CompletionWithDesc(t.Name, state+": "+completionDesc(t.Description)))
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeMCPItems completes --enable-prompt/--disable-prompt (or, for
// resources, --enable-resource/--disable-resource) with the server's
// prompts (its resources' URIs and templates' URI templates), as the
// running daemon knows them.
func (a *app) completeMCPItems(resources bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, s := range a.mcpServerArg(cmd, args) {
			for _, it := range s.Items {
				if (it.Kind != mcpserver.KindPrompt) != resources || !strings.HasPrefix(it.Name, toComplete) {
					continue
				}
				state := "disabled"
				if it.Enabled {
					state = "enabled"
				}
				out = append(out, cobra.CompletionWithDesc(it.Name, it.Kind+", "+state+": "+completionDesc(it.Description)))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeChangedTools completes 'mcp approve --tool': the server's
// tools hidden until approved.
func (a *app) completeChangedTools(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) != 2 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var servers []mcpserver.Status
	a.askDaemon(cmd.Context(), func(ctx context.Context, c *client.Client) { servers, _ = c.MCPServers(ctx, args[0]) })
	var out []cobra.Completion
	for _, s := range servers {
		for _, t := range s.Tools {
			if s.Name == args[1] && t.State == mcpserver.ToolChanged && strings.HasPrefix(t.Name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(t.Name, t.Change+": "+completionDesc(t.Description)))
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeChangedItems completes 'mcp approve --prompt' or '--resource'
// (flag): the server's prompts, or resources and templates, with a
// change, from its diff.
func (a *app) completeChangedItems(flag string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) != 2 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var shown api.MCPApproved
		a.askDaemon(cmd.Context(), func(ctx context.Context, c *client.Client) {
			shown, _ = c.ApproveMCPServer(ctx, args[0], args[1], api.MCPApproveRequest{DryRun: true})
		})
		var out []cobra.Completion
		for _, i := range shown.Diff.Items {
			if (i.Kind == mcpserver.KindPrompt) == (flag == "prompt") && strings.HasPrefix(i.Name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(i.Name, i.Change+" "+i.Kind))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeSecretFlag completes --secret NAME=PROVIDER/ALIAS: after the
// '=', the stored keys' references.
func (a *app) completeSecretFlag(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	name, ref, ok := strings.Cut(toComplete, "=")
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	// --header-secret 'NAME=SCHEME PROVIDER/ALIAS': the key follows the word.
	prefix := name + "="
	if scheme, rest, ok := strings.Cut(ref, " "); ok {
		prefix, ref = prefix+scheme+" ", rest
	}
	var out []cobra.Completion
	for _, e := range a.storedKeys(cmd.Context()) {
		if r := e.Ref().String(); strings.HasPrefix(r, ref) {
			out = append(out, cobra.CompletionWithDesc(prefix+r, e.Backend))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeServerNames completes the names in one of the maps (variables,
// secrets, headers) of the server that PROFILE NAME names; fold matches
// without case, as header names are.
func (a *app) completeServerNames(of func(mcpserver.Status) map[string]string, fold bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) < 2 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var servers []mcpserver.Status
		a.askDaemon(cmd.Context(), func(ctx context.Context, c *client.Client) { servers, _ = c.MCPServers(ctx, args[0]) })
		var out []cobra.Completion
		for _, s := range servers {
			if s.Name != args[1] {
				continue
			}
			for _, n := range slices.Sorted(maps.Keys(of(s))) {
				if strings.HasPrefix(n, toComplete) || fold && strings.HasPrefix(strings.ToLower(n), strings.ToLower(toComplete)) {
					out = append(out, n)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// storedKeys lists the stored keys, from a running daemon only.
func (a *app) storedKeys(ctx context.Context) []credentials.Entry {
	var keys []credentials.Entry
	a.askDaemon(ctx, func(ctx context.Context, c *client.Client) { keys, _ = c.Keys(ctx) })
	return keys
}

// completeKeychainSet completes PROVIDER from the catalogs, then ALIAS
// from the profiles of that provider (a profile's key is
// <provider>/<alias>).
func (a *app) completeKeychainSet(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		ids, dir := a.completeProviders(cmd, args, toComplete)
		return ids, dir
	case 1:
		var out []cobra.Completion
		for _, p := range a.profiles() {
			if p.Provider == args[0] && strings.HasPrefix(p.Alias, toComplete) {
				out = append(out, cobra.CompletionWithDesc(p.Alias, "profile "+p.Alias+" ("+p.Agent+")"))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeKeychainRemove completes the PROVIDER and ALIAS of stored keys,
// as a running daemon lists them.
func (a *app) completeKeychainRemove(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	seen := map[string]bool{}
	for _, e := range a.storedKeys(cmd.Context()) {
		switch {
		case len(args) == 0 && !seen[e.Provider] && strings.HasPrefix(e.Provider, toComplete):
			seen[e.Provider] = true
			out = append(out, cobra.Completion(e.Provider))
		case len(args) == 1 && e.Provider == args[0] && strings.HasPrefix(e.Alias, toComplete):
			out = append(out, cobra.CompletionWithDesc(e.Alias, e.Backend+", "+e.Status))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completionDesc fits text on one short line of a completion menu.
func completionDesc(s string) string {
	r := []rune(strings.Join(strings.Fields(printable(s)), " "))
	if len(r) > 60 {
		r = append(r[:57], []rune("...")...)
	}
	return string(r)
}
