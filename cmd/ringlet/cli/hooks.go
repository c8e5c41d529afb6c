package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/token"
)

func (a *app) hooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hooks",
		Short: "Guard tool calls with shell hooks that can refuse them",
		Long: `A pre-tool-use hook runs before every tool call an agent of the profile
makes (Claude Code's, Codex's and OpenCode's own tools included, and every
tool called through Ringlet's MCP gateway). It runs as /bin/sh -c in the
profile's HOME with a minimal environment:

  PATH, LANG, HOME (the profile's), RINGLET_EVENT, RINGLET_PROFILE,
  RINGLET_SESSION, RINGLET_TOOL_NAME, RINGLET_TOOL_INPUT (the tool's
  arguments as JSON)

and the same event as JSON on stdin. Exit 0 allows. Any other exit, a
signal, a timeout, a failure to start, more than 64 KiB of output, or
processes left running deny: hooks fail closed. The first line of stderr is
the reason the agent is given. Several hooks must all allow.

A post-tool-use hook runs after the tool, on its result: tool_output in the
JSON on stdin, and RINGLET_TOOL_OUTPUT when it is at most 100 KiB. Through
the MCP gateway a refusal withholds the result from the agent; for Claude
Code's own tools the refusal reaches Claude as the reason (the output
already exists).

Name a script by its absolute path: the hook runs in the profile's HOME.`,
		Example: `  ringlet hooks add work --on pre-tool-use \
    --shell 'echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf"'
  ringlet hooks add work --on pre-tool-use --match '^Bash$' --shell ~/bin/check.sh --timeout 5s
  ringlet hooks add work --on post-tool-use --shell 'grep -qv "BEGIN PRIVATE KEY"'
  ringlet hooks list work
  ringlet hooks export work > hooks.json && ringlet hooks import other hooks.json
  ringlet hooks test work --hook hooks.json --since 7d`,
	}
	cmd.AddCommand(a.hooksAddCmd(), a.hooksListCmd(), a.hooksRemoveCmd(), a.hooksImportCmd(), a.hooksExportCmd(), a.hooksTestCmd())
	return cmd
}

func profileArg(args []string) (string, error) {
	if err := names.Check("profile", args[0]); err != nil {
		return "", usageError{err}
	}
	return args[0], nil
}

func (a *app) hooksAddCmd() *cobra.Command {
	var req api.HookRequest
	cmd := &cobra.Command{
		Use:     "add PROFILE --on pre-tool-use|post-tool-use --shell CMD",
		Short:   "Add a hook to a profile",
		Example: `  ringlet hooks add work --on pre-tool-use --shell 'echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf"'`,
		Args:    exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			// Checked here, not with MarkFlagRequired: cobra checks
			// required flags after PersistentPreRunE, so a missing one
			// would exit 1 instead of 2.
			if req.Event == "" {
				return usagef("--on is required: pre-tool-use or post-tool-use")
			}
			if req.Shell == "" {
				return usagef("--shell is required: the command the hook runs")
			}
			req.Profile = p
			h := hook.Hook{Profile: p, Event: req.Event, Shell: req.Shell, Match: req.Match}
			if req.Timeout != "" {
				if h.Timeout, err = time.ParseDuration(req.Timeout); err != nil || h.Timeout <= 0 {
					return usagef("--timeout must be a duration from 100ms to %s, such as 10s", hook.MaxTimeout)
				}
			}
			if err := h.Validate(); err != nil {
				return usageError{err}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			got, err := c.AddHook(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "added hook %s to profile %s (%s)\n", got.ID, got.Profile, got.Event)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Event, "on", "", "pre-tool-use or post-tool-use (required)")
	cmd.Flags().StringVar(&req.Shell, "shell", "", "the command, run with /bin/sh -c (required)")
	cmd.Flags().StringVar(&req.Match, "match", "", "run only for tools whose name matches this regular expression")
	cmd.Flags().StringVar(&req.Timeout, "timeout", "", "deny if the hook runs longer (default 10s)")
	mustFlag(cmd.RegisterFlagCompletionFunc("on", cobra.FixedCompletions([]string{hook.PreToolUse, hook.PostToolUse}, cobra.ShellCompDirectiveNoFileComp)))
	return cmd
}

func (a *app) hooksListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list PROFILE",
		Short:   "List a profile's hooks in the order they run",
		Example: "  ringlet hooks list work --json",
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
			hooks, err := c.Hooks(cmd.Context(), p)
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, hooks, fmt.Sprintf("profile %s has no hooks", p)); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("ID", "EVENT", "MATCH", "TIMEOUT", "SHELL")
			for _, h := range hooks {
				match := h.Match
				if match == "" {
					match = "*"
				}
				t.row(h.ID, h.Event, match, h.Timeout.String(), h.Shell)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) hooksRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove PROFILE ID",
		Aliases: []string{"rm"},
		Short:   "Remove a hook",
		Example: "  ringlet hooks remove work h_1a2b3c4d",
		Args:    exactArgs(2, "PROFILE ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := c.RemoveHook(cmd.Context(), p, args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "removed hook %s from profile %s\n", args[1], p)
			return nil
		},
	}
}

func (a *app) hooksImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "import PROFILE FILE",
		Short:   "Add the hooks in a JSON file (as written by export); all or none",
		Example: "  ringlet hooks import work hooks.json",
		Args:    exactArgs(2, "PROFILE FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			data, err := a.readData("@" + args[1])
			if args[1] == "-" {
				data, err = a.readData("-")
			}
			if err != nil {
				return err
			}
			var hooks []hook.Hook
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&hooks); err != nil {
				return fmt.Errorf("%s is not a hooks file (a JSON array as written by 'ringlet hooks export'): %v", args[1], err)
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			added, err := c.ImportHooks(cmd.Context(), p, hooks)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "imported %d hook(s) into profile %s\n", len(added), p)
			return nil
		},
	}
}

func (a *app) hooksExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "export PROFILE",
		Short:   "Print a profile's hooks as JSON",
		Example: "  ringlet hooks export work > hooks.json",
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
			raw, err := c.ExportHooks(cmd.Context(), p)
			if err != nil {
				return err
			}
			_, err = a.stdio.Out.Write(raw)
			return err
		},
	}
}

// hookAdapterCmd is what agents run as their own hook. Claude Code runs
// `ringlet hook claude-pre-tool-use` before every tool call (Ringlet
// writes it into the profile's .claude/settings.json), Codex `ringlet
// hook codex-pre-tool-use` (in the profile's .codex/config.toml), and
// Ringlet's OpenCode plugin `ringlet hook opencode-pre-tool-use`.
func (a *app) hookAdapterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Adapters that agents run as their own hooks",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "claude-pre-tool-use",
		Short: "Claude Code PreToolUse hook: ask Ringlet whether the tool call may run",
		Long: `Reads Claude Code's PreToolUse event JSON on stdin, asks the daemon to run
the profile's pre-tool-use hooks on tool_name and tool_input with the
session token, and answers in Claude Code's protocol: exit 0 allows; exit 2
with the reason on stderr blocks (Claude Code blocks only on exit 2). If
the daemon cannot be asked, it blocks.

It finds the daemon and the session through RINGLET_SESSION_URL and
RINGLET_SESSION_TOKEN, which 'ringlet profiles env' and 'ringlet profiles
run' set (or else ANTHROPIC_BASE_URL, …/proxy, and ANTHROPIC_AUTH_TOKEN or
ANTHROPIC_API_KEY, the session token); RINGLET_HOOK_URL overrides the
address.`,
		Args:    cobra.NoArgs,
		Example: `  echo '{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}' | ringlet hook claude-pre-tool-use`,
		RunE:    a.claudeHookRun("Claude Code", hook.PreToolUse),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "codex-pre-tool-use",
		Short: "Codex PreToolUse hook: ask Ringlet whether the tool call may run",
		Long: `Reads Codex's PreToolUse event JSON on stdin (Claude Code's form: tool_name,
such as Bash or apply_patch, and tool_input), asks the daemon to run the
profile's pre-tool-use hooks with the session token, and answers in
Codex's protocol: exit 0 allows; exit 2 with the reason on stderr blocks,
and Codex shows the reason. If the daemon cannot be asked, it blocks.

It finds the daemon and the session like claude-pre-tool-use.`,
		Args:    cobra.NoArgs,
		Example: `  echo '{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}' | ringlet hook codex-pre-tool-use`,
		RunE:    a.claudeHookRun("Codex", hook.PreToolUse),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "claude-post-tool-use",
		Short: "Claude Code PostToolUse hook: run the profile's post-tool-use hooks on a result",
		Long: `Reads Claude Code's PostToolUse event JSON on stdin and asks the daemon to
run the profile's post-tool-use hooks on tool_name, tool_input and
tool_response. Exit 0 when they allow; exit 2 with the reason on stderr
when one refuses or the daemon cannot be asked: Claude Code then shows the
reason to the model. The tool has already run, and Claude Code has its
result: a post-tool-use hook can object to it, not withhold it (through
Ringlet's MCP gateway, a refused result is withheld).

It finds the daemon and the session like claude-pre-tool-use.`,
		Args:    cobra.NoArgs,
		Example: `  echo '{"hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"ls"},"tool_response":{"stdout":"a"}}' | ringlet hook claude-post-tool-use`,
		RunE:    a.claudeHookRun("Claude Code", hook.PostToolUse),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "opencode-pre-tool-use",
		Short: "OpenCode tool.execute.before: ask Ringlet whether the tool call may run",
		Long: `Reads the tool call that Ringlet's OpenCode plugin passes on stdin
({"tool", "sessionID", "callID", "args"}), asks the daemon to run the
profile's pre-tool-use hooks with the session token, and exits 0 to allow
or 2 with the reason on stderr to refuse; the plugin then throws the
reason, and OpenCode refuses the call. If the daemon cannot be asked, it
refuses.

OpenCode's own tools take Claude Code's names and key spelling (bash is
Bash with command; write is Write with file_path and content; edit is Edit
with file_path, old_string and new_string); other tools keep OpenCode's
name and arguments. It finds the daemon and the session like
claude-pre-tool-use.`,
		Args:    cobra.NoArgs,
		Example: `  echo '{"tool":"bash","args":{"command":"ls"}}' | ringlet hook opencode-pre-tool-use`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reason, allow := a.openCodeToolUse(cmd.Context())
			if allow {
				return nil
			}
			fmt.Fprintln(a.stdio.Err, reason)
			return exitCode(2)
		},
	})
	return cmd
}

// claudeHookRun answers a hook event for event in Claude Code's protocol,
// which agent (Claude Code, or Codex, which took it over) sends: exit 0
// allows, exit 2 with the reason on stderr refuses.
func (a *app) claudeHookRun(agent, event string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		reason, allow := a.claudeToolUse(cmd.Context(), agent, event)
		if allow {
			return nil
		}
		fmt.Fprintln(a.stdio.Err, reason)
		return exitCode(2)
	}
}

// exitCode ends the command with a given code, having printed its output.
type exitCode int

func (e exitCode) Error() string { return "" }

// claudeToolUse answers one PreToolUse or PostToolUse event of agent
// (event says which of the profile's hooks run) through the daemon.
func (a *app) claudeToolUse(ctx context.Context, agent, event string) (reason string, allow bool) {
	blocked := "ringlet: blocked: "
	if event == hook.PostToolUse {
		blocked = "ringlet: refused the result: "
	}
	// A PostToolUse event carries the tool's result, which hooks are
	// given up to hook.MaxToolOutput.
	data, err := io.ReadAll(io.LimitReader(a.stdio.In, hook.MaxToolOutput+1<<20))
	if err != nil {
		return blocked + "could not read the hook event", false
	}
	var ev struct {
		HookEventName string          `json:"hook_event_name"`
		ToolName      string          `json:"tool_name"`
		ToolInput     json.RawMessage `json:"tool_input"`
		ToolResponse  json.RawMessage `json:"tool_response"`
		ToolUseID     string          `json:"tool_use_id"`
	}
	if err := json.Unmarshal(data, &ev); err != nil || ev.ToolName == "" {
		return blocked + "the hook event from " + agent + " is not valid JSON with a tool_name", false
	}
	check := api.HookCheck{Event: event, ToolName: ev.ToolName, ToolInput: ev.ToolInput, ToolUseID: ev.ToolUseID}
	if event == hook.PostToolUse {
		check.ToolOutput = ev.ToolResponse
	}
	return a.checkToolUse(ctx, check)
}

// openCodeToolUse answers the tool call that Ringlet's OpenCode plugin
// passes on stdin ({"tool", "sessionID", "callID", "args"}) through the
// daemon, its tool and arguments named as hooks see them
// (hook.OpenCodeEvent).
func (a *app) openCodeToolUse(ctx context.Context) (reason string, allow bool) {
	const blocked = "ringlet: blocked: "
	data, err := io.ReadAll(io.LimitReader(a.stdio.In, hook.MaxToolOutput+1<<20))
	if err != nil {
		return blocked + "could not read the tool call from OpenCode", false
	}
	var call struct {
		Tool string          `json:"tool"`
		Args json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(data, &call); err != nil {
		return blocked + "the tool call from OpenCode is not valid JSON with a tool", false
	}
	name, input, err := hook.OpenCodeEvent(call.Tool, call.Args)
	if err != nil {
		return blocked + "the tool call from OpenCode could not be read: " + err.Error(), false
	}
	return a.checkToolUse(ctx, api.HookCheck{Event: hook.PreToolUse, ToolName: name, ToolInput: input})
}

// checkToolUse asks the daemon of the session in the environment to run
// the profile's hooks of check.Event on check.
func (a *app) checkToolUse(ctx context.Context, check api.HookCheck) (reason string, allow bool) {
	event := check.Event
	blocked := "ringlet: blocked: "
	if event == hook.PostToolUse {
		blocked = "ringlet: refused the result: "
	}
	sess, _ := a.agentSessionFromEnv()
	base, tok := a.getenv("RINGLET_HOOK_URL"), sess.Token
	if base == "" {
		base = sess.URL
	}
	if base == "" || !strings.HasPrefix(tok, api.SessionTokenPrefix) {
		return blocked + "no Ringlet session in the environment (RINGLET_SESSION_URL and RINGLET_SESSION_TOKEN, from 'ringlet profiles env' or 'ringlet profiles run')", false
	}
	if _, err := url.Parse(base + "/session/hooks/check"); err != nil {
		return blocked + "invalid Ringlet address", false
	}
	ctx, cancel := context.WithTimeout(ctx, 11*time.Minute)
	defer cancel()
	d, err := client.New(base, token.FromString(tok)).CheckHooks(ctx, check)
	var refused *client.Error
	switch {
	case errors.As(err, &refused) && refused.Code != client.CodeUnknown:
		// The daemon's own refusal (a tool input it will not judge, such
		// as one with a key twice) says what is wrong.
		return fmt.Sprintf("%sthe Ringlet daemon refused to check the hooks (HTTP %d): %s", blocked, refused.Status, refused.Message), false
	case errors.As(err, &refused):
		return fmt.Sprintf("%sthe Ringlet daemon could not check the hooks (HTTP %d)", blocked, refused.Status), false
	case errors.Is(err, client.ErrBadAnswer):
		return fmt.Sprintf("%sthe Ringlet daemon could not check the hooks (HTTP %d)", blocked, http.StatusOK), false
	case err != nil:
		return blocked + "could not reach the Ringlet daemon to check the hooks", false
	}
	if d.Allow {
		return "", true
	}
	if d.Reason == "" {
		d.Reason = "a Ringlet hook refused this tool call"
		if event == hook.PostToolUse {
			d.Reason = "a Ringlet post-tool-use hook refused this tool's result"
		}
	}
	return d.Reason, false
}
