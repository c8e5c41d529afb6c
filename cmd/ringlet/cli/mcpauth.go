package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
)

func (a *app) mcpAuthCmd() *cobra.Command {
	var (
		req                       api.MCPAuthRequest
		timeout                   time.Duration
		noBrowser, status, revoke bool
		asJSON                    bool
	)
	cmd := &cobra.Command{
		Use:   "auth PROFILE SERVER",
		Short: "Authorize Ringlet with a remote MCP server through OAuth, in your browser",
		Long: `Authorize Ringlet to use a remote (--url) MCP server that asks for OAuth,
as the MCP authorization specification describes: the daemon finds the
server's authorization server (its 401, its protected resource metadata,
the authorization server's metadata), registers Ringlet with it when it
offers dynamic client registration (else pass --client-id), and listens on
a loopback redirect (127.0.0.1, a free port). This command prints the
authorization URL and opens it in your browser ($BROWSER, else the
desktop's opener; --no-browser only prints it), and waits until the
browser comes back (--timeout, 5m by default).

The tokens and the client registration go to the credential store only
(provider mcp-oauth), never to Ringlet's files, logs, the audit log (which
records that an authorization happened, by server) or an agent. The daemon
sends the token to that server's URL only, refreshes it before it expires
(and once when the server refuses it), and when it cannot the server's
state is needs-auth ('mcp list') and its calls are refused, naming this
command.

--status says whether the server is authorized (--json for JSON);
--revoke deletes the tokens and registration, after sending them to the
authorization server's revocation endpoint when it has one.`,
		Example: `  ringlet mcp add work linear --url https://mcp.linear.app/mcp
  ringlet mcp auth work linear
  ringlet mcp auth work linear --no-browser      # print the URL only
  ringlet mcp auth work linear --client-id my-app --scope read --port 8976
  ringlet mcp auth work linear --status --json
  ringlet mcp auth work linear --revoke`,
		Args: exactArgs(2, "PROFILE SERVER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := mcpServerArgs(args)
			if err != nil {
				return err
			}
			if status && revoke {
				return usagef("--status and --revoke do not go together")
			}
			if (status || revoke) && (req.ClientID != "" || req.ClientSecret != "" || len(req.Scopes) > 0 || req.Port != 0 || noBrowser || cmd.Flags().Changed("timeout")) {
				return usagef("--status and --revoke take no other flag but --json")
			}
			if asJSON && !status && !revoke {
				return usagef("--json goes with --status or --revoke")
			}
			ctx := cmd.Context()
			c, err := a.ensureDaemon(ctx)
			if err != nil {
				return err
			}
			name := args[1]
			switch {
			case status:
				st, err := c.MCPAuthStatus(ctx, p, name, 0)
				if err != nil {
					return err
				}
				return a.printAuthStatus(st, asJSON)
			case revoke:
				st, err := c.RevokeMCPAuth(ctx, p, name)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(a.stdio.Out, st)
				}
				switch {
				case st.Revoked:
					fmt.Fprintf(a.stdio.Out, "revoked the tokens of %s at its authorization server and deleted them\n", name)
				case st.RevokeError != "":
					fmt.Fprintf(a.stdio.Out, "deleted the tokens of %s; the authorization server did not revoke them: %s\n", name, st.RevokeError)
				default:
					fmt.Fprintf(a.stdio.Out, "deleted the tokens of %s (its authorization server has no revocation endpoint)\n", name)
				}
				return nil
			}
			req.Timeout = timeout.String()
			flow, err := c.StartMCPAuth(ctx, p, name, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "Open this URL in your browser to authorize Ringlet for %s:\n\n  %s\n\n", name, flow.AuthorizationURL)
			if !noBrowser {
				if err := a.openBrowser(flow.AuthorizationURL); err != nil {
					fmt.Fprintf(a.stdio.Err, "ringlet: the browser could not be opened (%v); open the URL yourself\n", err)
				}
			}
			fmt.Fprintf(a.stdio.Out, "Waiting for the browser to come back to %s (until %s)...\n", flow.RedirectURI, flow.Expires.Local().Format(time.TimeOnly))
			return a.waitAuth(ctx, c, p, name)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ClientID, "client-id", "", "a client you registered with the authorization server (default: Ringlet registers itself, where the server offers that)")
	f.StringVar(&req.ClientSecret, "client-secret", "", "with --client-id: the client's secret, by its name in the credential store (PROVIDER/ALIAS)")
	f.StringArrayVar(&req.Scopes, "scope", nil, "a scope to ask for (repeatable; default: those the server names)")
	f.IntVar(&req.Port, "port", 0, "the port of the loopback redirect http://127.0.0.1:PORT/callback (default: any free one)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long the browser has to come back")
	f.BoolVar(&noBrowser, "no-browser", false, "print the URL, do not open a browser")
	f.BoolVar(&status, "status", false, "say whether the server is authorized")
	f.BoolVar(&revoke, "revoke", false, "revoke and delete the server's tokens")
	f.BoolVar(&asJSON, "json", false, "with --status or --revoke: print JSON")
	return cmd
}

// waitAuth waits for the daemon to say how the authorization ended.
func (a *app) waitAuth(ctx context.Context, c *client.Client, p, name string) error {
	for {
		st, err := c.MCPAuthStatus(ctx, p, name, 20*time.Second)
		if err != nil {
			return err
		}
		if st.Pending {
			continue
		}
		if st.Error != "" {
			return errors.New(st.Error)
		}
		if !st.Authorized {
			return fmt.Errorf("the authorization of %s ended without a token; run 'ringlet mcp auth %s %s' again", name, p, name)
		}
		fmt.Fprintf(a.stdio.Out, "authorized: Ringlet now sends %s its token (%s)\n", name, authSummary(st))
		return nil
	}
}

func authSummary(st api.MCPAuthStatus) string {
	parts := []string{"issuer " + st.Issuer}
	if st.Expires != nil {
		parts = append(parts, "expires "+st.Expires.Local().Format(time.DateTime))
	}
	if st.Refreshable {
		parts = append(parts, "refreshed automatically")
	} else {
		parts = append(parts, "no refresh token: authorize again when it expires")
	}
	if len(st.Scopes) > 0 {
		parts = append(parts, "scopes "+strings.Join(st.Scopes, " "))
	}
	return strings.Join(parts, ", ")
}

func (a *app) printAuthStatus(st api.MCPAuthStatus, asJSON bool) error {
	if asJSON {
		return writeJSONOut(a.stdio.Out, st)
	}
	switch {
	case st.Pending:
		fmt.Fprintf(a.stdio.Out, "%s: an authorization is waiting for the browser\n", st.Server)
	case st.Authorized:
		fmt.Fprintf(a.stdio.Out, "%s: authorized (%s); state %s\n", st.Server, authSummary(st), st.State)
	default:
		fmt.Fprintf(a.stdio.Out, "%s: not authorized; state %s; 'ringlet mcp auth %s %s' authorizes it\n", st.Server, st.State, st.Profile, st.Server)
	}
	if st.Error != "" {
		fmt.Fprintf(a.stdio.Out, "the last authorization failed: %s\n", st.Error)
	}
	return nil
}

// openBrowser opens url with $BROWSER (a command, the URL its last
// argument), else the desktop's opener, without waiting for it.
func (a *app) openBrowser(url string) error {
	var argv []string
	if b := strings.Fields(a.getenv("BROWSER")); len(b) > 0 {
		argv = append(b, url)
	} else {
		switch runtime.GOOS {
		case "darwin":
			argv = []string{"open", url}
		default:
			if a.getenv("DISPLAY") == "" && a.getenv("WAYLAND_DISPLAY") == "" {
				return errors.New("no desktop session (DISPLAY and WAYLAND_DISPLAY are unset)")
			}
			argv = []string{"xdg-open", url}
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	cmd := exec.Command(path, argv[1:]...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reaped whenever it ends; its outcome is the browser's
	return nil
}
