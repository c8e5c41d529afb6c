package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/client"
)

const budgetSpecHelp = `A budget is caps written NAME=VALUE, comma-separated, any of:
  usd=5          USD, priced with 'ringlet prices' (the profile's model needs a price)
  input=2M       input tokens (cache reads and writes included)
  output=200k    output tokens
  requests=100   provider requests
  tools=50       tool calls: the agent's own (through its Ringlet hook) and MCP
                 tools through Ringlet's gateway, each counted once
  runtime=2h     wall-clock time since the session started (sessions only;
                 a timer acts on it when it passes)`

// budgetFlags are the budget flags of 'budgets set' and of 'profiles
// create|set' (there with prefix "budget-").
type budgetFlags struct {
	prefix    string
	specs     map[string]*string
	onExhaust string
	stream    string
}

func (b *budgetFlags) register(cmd *cobra.Command, prefix string) {
	b.prefix, b.specs = prefix, map[string]*string{}
	f := cmd.Flags()
	for _, p := range budget.Periods {
		v := new(string)
		b.specs[p] = v
		what := "each session of the profile"
		if p != budget.PeriodSession {
			what = "the profile per " + p + " (UTC)"
		}
		f.StringVar(v, prefix+p, "", "budget of "+what+", e.g. usd=5,output=200k")
		mustFlag(cmd.RegisterFlagCompletionFunc(prefix+p, completeBudgetSpec))
	}
	f.StringVar(&b.onExhaust, prefixed(prefix, "on-exhaust"), "", "when a budget is exhausted: kill (the default: the session ends) or refuse (its requests are refused)")
	f.StringVar(&b.stream, prefixed(prefix, "stream"), "", "a streamed answer that passes a cap: cut (the default) or finish")
	mustFlag(cmd.RegisterFlagCompletionFunc(prefixed(prefix, "on-exhaust"), fixedCompletion(budget.ActionKill, budget.ActionRefuse)))
	mustFlag(cmd.RegisterFlagCompletionFunc(prefixed(prefix, "stream"), fixedCompletion(budget.StreamCut, budget.StreamFinish)))
}

func prefixed(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return "budget-" + name
}

func fixedCompletion(words ...string) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeBudgetSpec offers the names of the caps.
func completeBudgetSpec(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	head := ""
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		head = toComplete[:i+1]
	}
	var out []cobra.Completion
	for _, n := range []string{"usd=", "input=", "output=", "requests=", "tools=", "runtime="} {
		out = append(out, head+n)
	}
	return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// request is what the flags set; ok is false when none was given.
func (b *budgetFlags) request(fl *pflag.FlagSet) (api.BudgetRequest, bool, error) {
	var req api.BudgetRequest
	set := false
	for _, p := range budget.Periods {
		if !fl.Changed(b.prefix + p) {
			continue
		}
		l, err := budget.Parse(*b.specs[p])
		if err != nil {
			return req, false, usageError{fmt.Errorf("--%s%s: %w", b.prefix, p, err)}
		}
		if req.Limits == nil {
			req.Limits = map[string]budget.Limits{}
		}
		req.Limits[p], set = l, true
	}
	if fl.Changed(prefixed(b.prefix, "on-exhaust")) {
		req.OnExhaust, set = b.onExhaust, true
	}
	if fl.Changed(prefixed(b.prefix, "stream")) {
		req.Stream, set = b.stream, true
	}
	if _, err := req.Apply(budget.Budget{}); err != nil {
		return req, false, usageError{err}
	}
	return req, set, nil
}

func (a *app) budgetsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budgets",
		Short: "Spending caps: per session, and per profile per day, week or month",
		Long: `A budget caps what each session of a profile, or the profile as a whole per
day, week or month (periods begin at midnight UTC; weeks on Monday), may
spend. Ringlet reserves each provider request's worst case before it is
forwarded and refuses, in the provider's own error shape, one that would
pass a cap; a budget that is exhausted ends the session (kill, the
default) or only refuses its requests. The spend survives a restart: it is
read from the audit log. A session may get a tighter budget of its own at
its start ('ringlet profiles run --budget'). See docs/budgets.md.

` + budgetSpecHelp,
		Example: `  ringlet budgets set work --session usd=2,runtime=2h --day usd=20
  ringlet budgets set work --month requests=5000 --on-exhaust refuse
  ringlet budgets show work
  ringlet budgets clear work --period day`,
	}
	cmd.AddCommand(a.budgetsSetCmd(), a.budgetsShowCmd(), a.budgetsClearCmd())
	return cmd
}

func (a *app) budgetsSetCmd() *cobra.Command {
	var bf budgetFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set PROFILE",
		Short: "Set a profile's budgets (each period named replaces that period's caps)",
		Long: `Set the budgets of PROFILE. Each of --session, --day, --week and --month
replaces that period's caps; the periods not named stay as they are. A USD
cap needs a price for the profile's model: without one it is refused, with
the fix ('ringlet prices import FILE', or prices.toml).

` + budgetSpecHelp,
		Example: `  ringlet budgets set work --session usd=2,runtime=2h --day usd=20
  ringlet budgets set work --day output=1M,requests=2000 --stream finish
  ringlet budgets set work --on-exhaust refuse --json`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, set, err := bf.request(cmd.Flags())
			if err != nil {
				return err
			}
			if !set {
				return usageError{fmt.Errorf("nothing to set: give --session, --day, --week or --month (e.g. --day usd=20), --on-exhaust or --stream")}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			v, err := c.SetBudgets(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, v)
			}
			return printBudgets(a.stdio.Out, v)
		},
	}
	bf.register(cmd, "")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) budgetsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PROFILE",
		Short: "Show a profile's budgets: spent, reserved by requests in flight, remaining",
		Example: `  ringlet budgets show work
  ringlet budgets show work --json`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			v, err := c.Budgets(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, v)
			}
			return printBudgets(a.stdio.Out, v)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) budgetsClearCmd() *cobra.Command {
	var asJSON bool
	var periods []string
	cmd := &cobra.Command{
		Use:   "clear PROFILE",
		Short: "Remove a profile's budgets (all, or those of --period)",
		Example: `  ringlet budgets clear work
  ringlet budgets clear work --period day --period week`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range periods {
				if (&budget.Budget{}).Of(p) == nil {
					return usageError{fmt.Errorf("--period %q: want session, day, week or month", p)}
				}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			v, err := c.ClearBudgets(cmd.Context(), args[0], periods)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, v)
			}
			return printBudgets(a.stdio.Out, v)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringSliceVar(&periods, "period", nil, "only this period's budget: session, day, week or month (repeatable)")
	mustFlag(cmd.RegisterFlagCompletionFunc("period", fixedCompletion(budget.Periods...)))
	return cmd
}

// setProfileBudgets applies the --budget-* flags of 'profiles create|set'.
func setProfileBudgets(cmd *cobra.Command, c *client.Client, alias string, bf *budgetFlags) error {
	req, set, err := bf.request(cmd.Flags())
	if err != nil || !set {
		return err
	}
	if _, err := c.SetBudgets(cmd.Context(), alias, req); err != nil {
		return fmt.Errorf("budget of profile %s: %w", alias, err)
	}
	return nil
}

func printBudgets(w io.Writer, v api.BudgetView) error {
	if v.Budget.IsZero() && len(v.States) == 0 {
		fmt.Fprintf(w, "profile %s has no budget ('ringlet budgets set %s --day usd=20' sets one)\n", printable(v.Profile), printable(v.Profile))
		return nil
	}
	fmt.Fprintf(w, "profile %s: on exhaust %s; a stream past a cap: %s\n", printable(v.Profile), v.OnExhaust, v.Stream)
	for _, p := range budget.Periods {
		if l := *v.Budget.Of(p); !l.IsZero() {
			fmt.Fprintf(w, "  %-8s %s\n", p, l.String())
		}
	}
	if len(v.States) == 0 {
		return nil
	}
	t := newTable(w)
	t.row("BUDGET", "SINCE", "CAP", "LIMIT", "SPENT", "RESERVED", "REMAINING")
	for _, st := range v.States {
		since := "-"
		if !st.Since.IsZero() {
			since = st.Since.Format(time.DateOnly)
		}
		for _, r := range budgetRows(st) {
			t.row(printable(st.Key), since, r[0], r[1], r[2], r[3], r[4])
		}
	}
	return t.flush()
}

// budgetRows are the capped fields of st: name, limit, spent, reserved,
// remaining.
func budgetRows(st budget.State) [][5]string {
	var out [][5]string
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	money := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	if st.Limits.USD > 0 {
		out = append(out, [5]string{"usd", f(st.Limits.USD), money(st.Spent.USD), money(st.Reserved.USD), money(st.Remaining.USD)})
	}
	for _, c := range []struct {
		n                       string
		lim, spent, res, remain int64
	}{
		{"input_tokens", st.Limits.InputTokens, st.Spent.InputTokens, st.Reserved.InputTokens, st.Remaining.InputTokens},
		{"output_tokens", st.Limits.OutputTokens, st.Spent.OutputTokens, st.Reserved.OutputTokens, st.Remaining.OutputTokens},
		{"requests", st.Limits.Requests, st.Spent.Requests, st.Reserved.Requests, st.Remaining.Requests},
		{"tool_calls", st.Limits.ToolCalls, st.Spent.ToolCalls, st.Reserved.ToolCalls, st.Remaining.ToolCalls},
	} {
		if c.lim > 0 {
			out = append(out, [5]string{c.n, strconv.FormatInt(c.lim, 10), strconv.FormatInt(c.spent, 10), strconv.FormatInt(c.res, 10), strconv.FormatInt(c.remain, 10)})
		}
	}
	if st.Limits.Runtime > 0 {
		out = append(out, [5]string{"runtime", time.Duration(st.Limits.Runtime).String(), "-", "-", "-"})
	}
	return out
}
