package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
)

// agentNames are how connect names the agents whose configuration it
// writes, for its messages.
var agentNames = map[string]string{"claude": "Claude Code", "codex": "Codex", "opencode": "OpenCode"}

func (a *app) connectCmd() *cobra.Command {
	var agent string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "connect PROFILE [--agent claude|codex|opencode]",
		Short: "Give a profile's agent its session's MCP tools, in the agent's own configuration",
		Long: `Write Ringlet's MCP server into the profile's agent's own configuration,
in both of the profile's HOMEs (the sandboxed one of 'profiles run' and
the unsandboxed one of 'profiles env'), so that every session of the
agent sees its session's tools (its profile's MCP servers, through its
hooks) and never Ringlet's controls. No token is written: the agent
takes its session's token from its environment when it connects.

  claude  Claude Code's user MCP servers (.claude.json in its config dir):
          streamable HTTP at ${RINGLET_SESSION_URL}/mcp with
          "Authorization: Bearer ${RINGLET_SESSION_TOKEN}", which Claude
          Code expands from its environment. Tools: mcp__ringlet__<tool>.
  codex   Codex's config.toml: [mcp_servers.ringlet] at the daemon as that
          Codex reaches it (the forwarder in the sandbox, the daemon's
          address outside; Codex expands no variable in a URL, so connect
          again when the daemon's address changes), with
          bearer_token_env_var = "RINGLET_SESSION_TOKEN".
  opencode  OpenCode's global config (.config/opencode/opencode.json in
          the HOME, which the catalog names in OPENCODE_CONFIG): mcp.ringlet,
          a remote server at {env:RINGLET_SESSION_URL}/mcp with
          "Authorization: Bearer {env:RINGLET_SESSION_TOKEN}", which
          OpenCode substitutes from its environment; no OAuth.
          Tools: ringlet_<tool>.

The entry is named ringlet and replaced on every connect; the rest of
the configuration is kept. --agent must be the profile's agent (the
default). The change is recorded in the audit log as profile.update.`,
		Example: `  ringlet connect work
  ringlet connect work --agent codex --json
  ringlet connect oc --agent opencode`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			if agent != "" && agentNames[agent] == "" {
				return usagef("--agent must be claude, codex or opencode")
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.Connect(cmd.Context(), p, api.ConnectRequest{Agent: agent})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			fmt.Fprintf(a.stdio.Out, "connected %s of profile %s to its sessions' MCP tools (server %s; no token written)\n", agentNames[out.Agent], out.Profile, out.Server)
			for _, f := range out.Files {
				fmt.Fprintf(a.stdio.Out, "  wrote %s\n", f)
			}
			for _, w := range out.Warnings {
				fmt.Fprintln(a.stdio.Err, "ringlet: "+w)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "the agent whose configuration to write: claude, codex or opencode (default: the profile's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	mustFlag(cmd.RegisterFlagCompletionFunc("agent", cobra.FixedCompletions([]string{"claude", "codex", "opencode"}, cobra.ShellCompDirectiveNoFileComp)))
	return cmd
}
