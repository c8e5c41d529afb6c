package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/names"
)

func (a *app) sessionsKillCmd() *cobra.Command {
	var all, yes, asJSON bool
	var prof, reason string
	cmd := &cobra.Command{
		Use:   "kill ID | --profile P | --all",
		Short: "Kill sessions: token, streams, MCP calls and the agent's processes, at once",
		Long: `The kill switch. For each session killed, at once and in this order:

  * its token is refused, its provider streams and MCP calls are cut, and
    its sandbox's socket (the sandbox's only way out) is closed;
  * its sandbox's whole process tree is killed (SIGKILL to its PID
    namespace, found by the daemon itself: the launcher's help is not
    needed), and a --remote agent's terminal with it;
  * its profile's running stdio MCP servers are killed (they start again
    when another session of the profile uses them);
  * one session.killed record in the audit log says who and why.

An agent run with --no-sandbox is stopped by 'profiles run', which the
daemon tells at once. 'sessions revoke' ends the token and streams only;
the agent of a revoked 'profiles run' session is then stopped by its
launcher, with a few seconds' grace.

On a terminal --profile and --all ask first; scripts pass --yes.`,
		Example: `  ringlet sessions kill s_1a2b3c4d5e6f7a8b --reason "looping on the same edit"
  ringlet sessions kill --profile work --yes
  ringlet sessions kill --all --yes --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && prof != "":
				return usagef("pass --profile or --all, not both")
			case (all || prof != "") && len(args) > 0:
				return usagef("pass a session ID, --profile or --all, only one")
			case !all && prof == "" && len(args) != 1:
				return usagef("pass the session ID to kill, --profile P or --all ('ringlet sessions list' shows them)")
			case len(reason) > api.MaxKillReason || strings.ContainsAny(reason, "\r\n"):
				return usagef("--reason must be one line of at most %d bytes", api.MaxKillReason)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if prof != "" {
				if err := names.Check("profile", prof); err != nil {
					return usageError{err}
				}
			}
			req := api.SessionKill{Profile: prof, All: all, Reason: reason, Via: "cli"}
			var out api.SessionsKilled
			if len(args) == 1 {
				// The kill is the only request: no probe before it.
				err := a.callDaemon(ctx, func(c *client.Client) (err error) {
					out, err = c.KillSession(ctx, args[0], req)
					return err
				})
				if err != nil {
					return err
				}
				return a.sessionsKilled(out, asJSON)
			}
			if !yes {
				f, ok := a.stdio.In.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return usagef("refusing to kill sessions without confirmation: pass --yes")
				}
				c, err := a.ensureDaemon(ctx)
				if err != nil {
					return err
				}
				live, err := c.Sessions(ctx)
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
					return a.sessionsKilled(api.SessionsKilled{Sessions: []api.KilledSession{}}, asJSON)
				}
				what := strconv.Itoa(n) + " live session"
				if n != 1 {
					what += "s"
				}
				if prof != "" {
					what += " of profile " + prof
				}
				fmt.Fprintf(a.stdio.Err, "Kill %s? Their agents' processes are killed at once. [y/N] ", what)
				line, _ := bufio.NewReader(f).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return errors.New("not killed")
				}
			}
			err := a.callDaemon(ctx, func(c *client.Client) (err error) {
				out, err = c.KillSessions(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			return a.sessionsKilled(out, asJSON)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "kill every live session")
	cmd.Flags().StringVar(&prof, "profile", "", "kill every live session of this profile")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log (one line)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with --profile or --all: do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the killed sessions as JSON")
	return cmd
}

// sessionsKilled prints what a kill ended.
func (a *app) sessionsKilled(out api.SessionsKilled, asJSON bool) error {
	if asJSON {
		return writeJSONOut(a.stdio.Out, out)
	}
	if len(out.Sessions) == 0 {
		_, err := fmt.Fprintln(a.stdio.Out, "no live sessions")
		return err
	}
	n := strconv.Itoa(len(out.Sessions)) + " session"
	if len(out.Sessions) != 1 {
		n += "s"
	}
	fmt.Fprintf(a.stdio.Out, "killed %s\n", n)
	t := newTable(a.stdio.Out)
	t.row("ID", "PROFILE", "AGENT", "SANDBOX", "MCP SERVERS", "TOOK")
	for _, s := range out.Sessions {
		took, err := time.ParseDuration(s.Took)
		if err == nil {
			s.Took = took.Round(time.Millisecond / 10).String()
		}
		t.row(s.ID, s.Profile, s.Agent, s.Sandbox, strconv.Itoa(s.MCPServers), s.Took)
	}
	return t.flush()
}
