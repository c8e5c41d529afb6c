package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/names"
)

// profilesConfigCmd is 'profiles config': the agent config in a
// profile's sandboxed HOME that Ringlet keeps as the user approved it.
func (a *app) profilesConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Approve the agent config that runs code in a profile's sandboxed HOME",
		Long: `A sandboxed agent can write its HOME, its own config included. At every
sandboxed start Ringlet puts the parts of that config that run code back
to what you approved: Claude Code's settings files, plugins, skills,
commands, agents and MCP servers; Codex's MCP servers, notify, model
providers, shell environment and profiles; OpenCode's config files and
plugin, tool, agent, command and mode directories; shell rc files and git
config. What the agent changed there is moved aside under the profile's
directory (outside the sandbox), recorded as agent.config.reset, and named
in one line on stderr. Other state the agent keeps (history, trust,
caches) is left alone. 'profiles create' and 'connect' approve what they
write.`,
		Example: `  ringlet profiles config approve work
  ringlet profiles config approve work --json`,
	}
	cmd.AddCommand(a.profilesConfigApproveCmd())
	return cmd
}

func (a *app) profilesConfigApproveCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "approve ALIAS",
		Short: "Approve the code-running agent config in the profile's sandboxed HOME as it is now",
		Long: `Approve, as they are now, the parts of the agent's config in the profile's
sandboxed HOME (see 'ringlet profiles inspect ALIAS', home) that run code:
edit them there (or copy back what a reset moved aside), then approve.
Later sandboxed starts put them back to this. A symbolic link in one of
those places is refused: replace it with the file itself.`,
		Example: `  $EDITOR "$(ringlet profiles inspect work --json | jq -r .home)/.claude/settings.json"
  ringlet profiles config approve work`,
		Args: exactArgs(1, "ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.ApproveConfig(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			fmt.Fprintf(a.stdio.Out, "approved the %s config that runs code in the sandboxed HOME of profile %s (%d items)\n", out.Agent, out.Profile, len(out.Items))
			for _, it := range out.Items {
				fmt.Fprintf(a.stdio.Out, "  %s\n", it)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
