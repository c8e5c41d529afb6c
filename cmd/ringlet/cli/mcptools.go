package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

func (a *app) mcpToolsCmd() *cobra.Command {
	var enable, disable, enablePrompt, disablePrompt, enableResource, disableResource []string
	var def, search, resources, prompts string
	var reset, asJSON bool
	cmd := &cobra.Command{
		Use:   "tools PROFILE [SERVER] [--enable NAME|GLOB] [--disable NAME|GLOB] [--enable-prompt NAME|GLOB] [--disable-prompt NAME|GLOB] [--enable-resource URI|GLOB] [--disable-resource URI|GLOB] [--resources on|off|default] [--prompts on|off|default] [--default all|none] [--search on|off]",
		Short: "List an MCP server's tools, prompts and resources, and enable or disable them",
		Long: `List the tools of a profile's MCP server as its sessions see them: each
tool's name, the first line of its description, and whether it is enabled
or disabled and why (the profile's default, or a rule); then its prompts,
resources and resource templates the same way, with those hidden until
approved ('mcp approve'). The server is started if it has not run, so
that what it offers is known.

--enable and --disable take tool names or globs ('write_*', as Go's
path.Match reads them; quote them from the shell) and are repeatable. A
disabled tool is absent from the profile's sessions' tools/list (they are
told the list changed) and a call to it is refused with the reason,
audited as tool.call (deny). The last rule that matches a tool decides;
in one command the disables apply first, then the enables, so
'--disable "*" --enable read_file' leaves only read_file. A pattern that
matches none of the server's current tools is stored all the same (a tool
the server adds later follows it), and the command says so. --reset
removes the server's rules first.

--enable-prompt and --disable-prompt do the same for single prompts, by
the name the server lists (or a glob); --enable-resource and
--disable-resource for single resources and resource templates, by the
URI or URI template the server lists, or a glob of them in which '*'
matches any characters, '/' included ('file:///private/*' covers every
depth below it). A resource rule that matches a URI read through a
template decides for that URI too. A disabled prompt or resource is not
listed, and a prompts/get, resources/read, resources/subscribe or
completion/complete of it is refused with the reason and the command
that enables it, audited (mcp.prompt_get / mcp.resource_read, deny), as
is a read of a URI that only a disabled or unapproved template matches.
Separate flags, not a kind prefix in --enable's values, because a
resource URI holds ':' and '/' and a prompt may share a tool's name:
each flag says what it names. --reset removes the prompt and resource
rules too.

--resources and --prompts turn all of the server's resources (with its
resource templates) or prompts on or off for the profile's sessions, or
back to the profile's default (default). They decide for the prompts and
resources no rule of their own names: '--prompts off --enable-prompt
review' offers the prompt review alone. Not set, they follow the
profile's default as a tool no rule names does: with --default none,
nothing of a server is offered until enabled.

--default sets the profile's default for tools no rule names: all (every
tool is served: the default) or none (a tool is served only once enabled).
It needs no SERVER. Every change is audited (mcp.tools).

--search on serves the profile's sessions two tools instead of every
tool of its servers: search_tools (keywords in, the best matching served
tools out, with their input schemas) and call_tool (runs one by name,
through the same hooks, audit and rules as a direct call), so that a
large tool set does not fill the agent's context. --search off (the
default) lists every served tool. It needs no SERVER.`,
		Example: `  ringlet mcp tools work fs
  ringlet mcp tools work fs --disable 'write_*' --disable move_file
  ringlet mcp tools work fs --enable write_note
  ringlet mcp tools work docs --resources on --prompts off
  ringlet mcp tools work docs --disable-prompt 'debug_*' --disable-resource 'file:///private/*'
  ringlet mcp tools work docs --prompts off --enable-prompt review
  ringlet mcp tools work --default none
  ringlet mcp tools work --search on
  ringlet mcp tools work fs --enable read_file --enable 'list_*'
  ringlet mcp tools work fs --reset --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (def != "" || search != "") && len(enable)+len(disable)+len(enablePrompt)+len(disablePrompt)+len(enableResource)+len(disableResource) == 0 && !reset && resources == "" && prompts == "" {
				return nil
			}
			return exactArgs(2, "PROFILE SERVER")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				if p, err = mcpServerArgs(args); err != nil {
					return err
				}
			}
			if def != "" {
				if err := mcpserver.CheckToolsDefault(def); err != nil {
					return usageError{err}
				}
			}
			if search != "" && search != api.SearchOn && search != api.SearchOff {
				return usageError{fmt.Errorf("invalid --search %q; accepted values: on, off", search)}
			}
			ch := api.MCPToolsChange{Enable: enable, Disable: disable, Reset: reset, Resources: resources, Prompts: prompts,
				EnablePrompts: enablePrompt, DisablePrompts: disablePrompt, EnableResources: enableResource, DisableResources: disableResource}
			if err := ch.Check(); err != nil {
				return usageError{err}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if def != "" || search != "" {
				got, err := c.SetMCPToolsDefault(cmd.Context(), p, def, search)
				if err != nil {
					return err
				}
				if len(args) == 1 {
					if asJSON {
						return writeJSONOut(a.stdio.Out, got)
					}
					if def != "" {
						fmt.Fprintf(a.stdio.Out, "the tools of profile %s's MCP servers that no rule names are now %s\n", p, map[string]string{"all": "served (default all)", "none": "disabled until enabled, as are their resources and prompts unless switched on (default none)"}[got.Default])
					}
					if search != "" {
						fmt.Fprintf(a.stdio.Out, "profile %s's sessions %s\n", p, map[string]string{api.SearchOn: "now find its MCP servers' tools with search_tools and run them with call_tool (search on)", api.SearchOff: "are now served every tool of its MCP servers (search off)"}[got.Search])
					}
					return nil
				}
			}
			var out api.MCPTools
			if ch.Empty() {
				out, err = c.MCPTools(cmd.Context(), p, args[1])
			} else {
				out, err = c.SetMCPTools(cmd.Context(), p, args[1], ch)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			a.printMCPTools(out)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&enable, "enable", nil, "NAME|GLOB: serve the matching tools (repeatable)")
	cmd.Flags().StringArrayVar(&disable, "disable", nil, "NAME|GLOB: hide the matching tools and refuse calls to them (repeatable)")
	cmd.Flags().StringArrayVar(&enablePrompt, "enable-prompt", nil, "NAME|GLOB: offer the matching prompts (repeatable)")
	cmd.Flags().StringArrayVar(&disablePrompt, "disable-prompt", nil, "NAME|GLOB: hide the matching prompts and refuse gets of them (repeatable)")
	cmd.Flags().StringArrayVar(&enableResource, "enable-resource", nil, "URI|GLOB: offer the matching resources and resource templates (repeatable)")
	cmd.Flags().StringArrayVar(&disableResource, "disable-resource", nil, "URI|GLOB: hide the matching resources and templates and refuse reads of them (repeatable)")
	cmd.Flags().BoolVar(&reset, "reset", false, "remove the server's tool, prompt and resource rules first: each follows the switches and the profile's default")
	cmd.Flags().StringVar(&resources, "resources", "", "on|off|default: offer the server's resources and resource templates")
	cmd.Flags().StringVar(&prompts, "prompts", "", "on|off|default: offer the server's prompts")
	cmd.Flags().StringVar(&def, "default", "", "all|none: the profile's default for tools no rule names")
	cmd.Flags().StringVar(&search, "search", "", "on|off: serve search_tools and call_tool instead of every tool")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tools, prompts and resources as JSON")
	return cmd
}

func (a *app) printMCPTools(out api.MCPTools) {
	w := a.stdio.Out
	for _, p := range out.Unmatched {
		fmt.Fprintf(a.stdio.Err, "note: %q matches none of %s's current tools, prompts or resources; stored all the same\n", p, out.Server)
	}
	fmt.Fprintf(w, "MCP server %s of profile %s: %s; default %s", out.Server, out.Profile, out.State, out.Default)
	if len(out.Rules) > 0 {
		fmt.Fprintf(w, "; rules %s", toolRules(out.Rules))
	}
	if len(out.PromptRules) > 0 {
		fmt.Fprintf(w, "; prompt rules %s", toolRules(out.PromptRules))
	}
	if len(out.ResourceRules) > 0 {
		fmt.Fprintf(w, "; resource rules %s", toolRules(out.ResourceRules))
	}
	fmt.Fprintln(w)
	if out.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", out.Error)
	}
	onOff := func(s api.MCPCatalogState) string {
		v := "off"
		if s.Enabled {
			v = "on"
		}
		return v + " (" + s.By + ")"
	}
	fmt.Fprintf(w, "  resources: %s; prompts: %s\n", onOff(out.Resources), onOff(out.Prompts))
	if len(out.Tools) == 0 {
		fmt.Fprintln(w, "  no tools known (the server has not listed any)")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TOOL\tSTATE\tWHY\tDESCRIPTION")
		for _, t := range out.Tools {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(t.Name), itemState(t), printable(itemWhy(t)), printable(t.Description))
		}
		_ = tw.Flush() // the terminal went away: nothing to do
	}
	if len(out.Items) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tWHY\tDESCRIPTION")
	for _, it := range out.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Kind, printable(it.Name), itemState(it.ToolStatus), printable(itemWhy(it.ToolStatus)), printable(it.Description))
	}
	_ = tw.Flush() // the terminal went away: nothing to do
}

// itemState is a tool's, prompt's or resource's state as 'mcp tools'
// shows it: enabled or disabled, and hidden until approved ("pending
// approval") or invalid beside it.
func itemState(t mcpserver.ToolStatus) string {
	state := "disabled"
	if t.Enabled {
		state = "enabled"
	}
	switch t.State {
	case mcpserver.ToolChanged:
		state += " (pending approval)"
	case mcpserver.ToolInvalid:
		state += " (invalid)"
	}
	return state
}

// itemWhy says what decided an item's state: the profile's default, its
// server's switch, or a rule.
func itemWhy(t mcpserver.ToolStatus) string {
	switch t.By {
	case mcpserver.ByRule:
		return "explicit: " + t.Rule
	case mcpserver.BySwitch:
		return "the server's switch"
	}
	return t.By
}

// toolRules shows a server's rules in order: +PATTERN enables, -PATTERN
// disables.
func toolRules(rules []mcpserver.ToolRule) string {
	if len(rules) == 0 {
		return "no rules (the profile's default)"
	}
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		sign := "-"
		if r.Enabled {
			sign = "+"
		}
		out = append(out, sign+printable(r.Pattern))
	}
	return strings.Join(out, " ")
}
