package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
)

// rateLimitFlags are the flags of 'ratelimits set', one per limit.
var rateLimitFlags = []struct {
	name, help string
	field      func(*api.RateLimitsUpdate) **int64
	value      func(profile.RateLimits) int64
}{
	{"session-requests", "provider requests a minute, per session", func(u *api.RateLimitsUpdate) **int64 { return &u.SessionRequests }, func(l profile.RateLimits) int64 { return l.SessionRequests }},
	{"session-tokens", "input and output tokens a minute, per session", func(u *api.RateLimitsUpdate) **int64 { return &u.SessionTokens }, func(l profile.RateLimits) int64 { return l.SessionTokens }},
	{"session-tool-calls", "tool calls a minute, per session (the agent's own and through Ringlet's MCP gateway)", func(u *api.RateLimitsUpdate) **int64 { return &u.SessionToolCalls }, func(l profile.RateLimits) int64 { return l.SessionToolCalls }},
	{"profile-requests", "provider requests a minute, all sessions of the profile together", func(u *api.RateLimitsUpdate) **int64 { return &u.ProfileRequests }, func(l profile.RateLimits) int64 { return l.ProfileRequests }},
	{"profile-tokens", "input and output tokens a minute, all sessions together", func(u *api.RateLimitsUpdate) **int64 { return &u.ProfileTokens }, func(l profile.RateLimits) int64 { return l.ProfileTokens }},
	{"profile-tool-calls", "tool calls a minute, all sessions together", func(u *api.RateLimitsUpdate) **int64 { return &u.ProfileToolCalls }, func(l profile.RateLimits) int64 { return l.ProfileToolCalls }},
}

func (a *app) rateLimitsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ratelimits",
		Short: "Pace a profile's sessions: requests, tokens and tool calls a minute",
		Long: `Rate limits pace a profile's agents, per session and for the profile as a
whole, each a minute (a token bucket that refills continuously, a minute's
worth at most). Before a provider request is forwarded, an MCP tool call
reaches its server, or the agent's hook asks about one of its own tool
calls, the daemon takes it from the session's and the profile's buckets;
when one is empty the request is refused with 429, Retry-After and the
provider's own error body (an MCP tool call with a JSON-RPC error, an
agent's own call with a hook denial that names the limit), so the agent
waits and retries. Tokens are what the
provider reports at the end of each answer: a session over its tokens a
minute waits until the debt is paid off. Refusals are audited
(rate.limited), counted (ringlet_rate_limited_total) and on the event
stream. Changes apply from the next request, live sessions included.`,
		Example: `  ringlet ratelimits set work --session-requests 60 --profile-tokens 400000
  ringlet ratelimits show work --json
  ringlet ratelimits clear work
  ringlet profiles set work --rate-session-tool-calls 30`,
	}
	show := a.rateLimitsReadCmd("show PROFILE", "Show a profile's rate limits", "  ringlet ratelimits show work\n  ringlet ratelimits show work --json", "print JSON",
		func(ctx context.Context, c *client.Client, alias string) (api.RateLimits, error) {
			return c.RateLimits(ctx, alias)
		})
	var setJSON bool
	var rf rateLimitFlagSet
	set := &cobra.Command{
		Use:   "set PROFILE --session-requests N ...",
		Short: "Set some of a profile's rate limits (0 removes one)",
		Example: `  ringlet ratelimits set work --session-requests 60
  ringlet ratelimits set work --profile-tokens 400000 --session-tool-calls 30 --json`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			u, ok, err := rf.update(cmd)
			if err != nil {
				return err
			}
			if !ok {
				return usagef("nothing to set: pass at least one of --session-requests, --session-tokens, --session-tool-calls, --profile-requests, --profile-tokens, --profile-tool-calls")
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.SetRateLimits(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			return a.printRateLimits(out, setJSON)
		},
	}
	rf.register(set, "")
	set.Flags().BoolVar(&setJSON, "json", false, "print the limits as JSON")
	clear := a.rateLimitsReadCmd("clear PROFILE", "Remove every rate limit of a profile", "  ringlet ratelimits clear work", "print the limits as JSON",
		func(ctx context.Context, c *client.Client, alias string) (api.RateLimits, error) {
			return c.ClearRateLimits(ctx, alias)
		})
	cmd.AddCommand(show, set, clear)
	return cmd
}

// rateLimitFlagSet are the rate-limit flags of 'ratelimits set' and, with
// prefix "rate-", of 'profiles create|set'.
type rateLimitFlagSet struct {
	prefix string
	vals   []int64
}

func (rf *rateLimitFlagSet) register(cmd *cobra.Command, prefix string) {
	rf.prefix, rf.vals = prefix, make([]int64, len(rateLimitFlags))
	for i, f := range rateLimitFlags {
		cmd.Flags().Int64Var(&rf.vals[i], prefix+f.name, 0, f.help+" (0: none)")
	}
}

// update is what the flags given change; ok is false when none was.
func (rf *rateLimitFlagSet) update(cmd *cobra.Command) (u api.RateLimitsUpdate, ok bool, err error) {
	for i, f := range rateLimitFlags {
		if !cmd.Flags().Changed(rf.prefix + f.name) {
			continue
		}
		if rf.vals[i] < 0 || rf.vals[i] > profile.MaxRateLimit {
			return u, false, usagef("--%s%s must be from 0 (no limit) to %d a minute", rf.prefix, f.name, profile.MaxRateLimit)
		}
		*f.field(&u) = &rf.vals[i]
	}
	return u, !u.IsZero(), nil
}

// setProfileRateLimits applies the --rate-* flags of 'profiles
// create|set'.
func setProfileRateLimits(cmd *cobra.Command, c *client.Client, alias string, rf *rateLimitFlagSet) error {
	u, ok, err := rf.update(cmd)
	if err != nil || !ok {
		return err
	}
	if _, err := c.SetRateLimits(cmd.Context(), alias, u); err != nil {
		return fmt.Errorf("rate limits of profile %s: %w", alias, err)
	}
	return nil
}

func (a *app) printRateLimits(out api.RateLimits, asJSON bool) error {
	if asJSON {
		return writeJSONOut(a.stdio.Out, out)
	}
	t := newTable(a.stdio.Out)
	t.row("LIMIT", "PER MINUTE")
	for _, f := range rateLimitFlags {
		v := "none"
		if n := f.value(out.RateLimits); n > 0 {
			v = strconv.FormatInt(n, 10)
		}
		t.row(f.name, v)
	}
	return t.flush()
}

// rateLimitsReadCmd is 'ratelimits show' or 'clear': one profile's limits,
// as call answers them, printed (--json: as JSON).
func (a *app) rateLimitsReadCmd(use, short, example, jsonHelp string, call func(context.Context, *client.Client, string) (api.RateLimits, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := call(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return a.printRateLimits(out, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, jsonHelp)
	return cmd
}
