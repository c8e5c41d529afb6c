package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/provider"
)

func (a *app) auditTraceCmd() *cobra.Command {
	var (
		db     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "trace TRACE-ID|RECORD",
		Short: "Print the causal tree of one agent turn",
		Long: `Print the trace of one agent turn as a tree: the provider request (model,
tokens, cost), the tool calls its answer asked for (name and a digest of
the input), the hook decisions and tool calls made for each, what the
sandbox did meanwhile, and the next request that carried the results
back. Name the trace by its id (32 hex digits, the trace_id of any of its
records) or by the number of one of its records.

A record linked by an id on the wire (tool_use_id, call_id) is marked
carried; one linked by session, tool name, arguments digest and time is
marked inferred. The database is read directly, as 'audit query' does.`,
		Example: `  ringlet audit trace 1234
  ringlet audit trace 4bf92f3577b34da6a3ce929d0e0e4736 --json
  ringlet audit query --trace 4bf92f3577b34da6a3ce929d0e0e4736`,
		Args:              exactArgs(1, "TRACE-ID|RECORD"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.auditDB(db)
			if err != nil {
				return err
			}
			var cost audit.CostFunc
			if paths, err := a.needPaths(); err == nil {
				if prices, err := provider.LoadPrices(paths.ConfigDir, paths.PricesFile()); err == nil {
					cost = prices.Cost
				}
			}
			t, err := audit.ReadTrace(cmd.Context(), path, args[0], cost)
			if err != nil {
				if strings.HasPrefix(err.Error(), "invalid trace") {
					return usageError{err}
				}
				if errors.Is(err, audit.ErrNoTrace) {
					return fmt.Errorf("%w; 'ringlet audit query --json' shows each record's trace_id", err)
				}
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, t)
			}
			return printTrace(a.stdio.Out, t)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tree as JSON")
	cmd.Flags().StringVar(&db, "db", "", "read this database instead of the daemon's")
	return cmd
}

// printTrace prints a trace's tree, one span a line.
func printTrace(w io.Writer, t audit.Trace) error {
	fmt.Fprintf(w, "trace %s: %d records, $%.4f\n", t.TraceID, t.Records, t.CostUSD)
	var walk func(nodes []*audit.TraceNode, indent string)
	walk = func(nodes []*audit.TraceNode, indent string) {
		for i, n := range nodes {
			branch, next := "├─ ", "│  "
			if i == len(nodes)-1 {
				branch, next = "└─ ", "   "
			}
			fmt.Fprintln(w, indent+branch+printable(traceLine(n)))
			walk(n.Children, indent+next)
		}
	}
	walk(t.Roots, "")
	return nil
}

// traceLine is one span in words, with its record's number.
func traceLine(n *audit.TraceNode) string {
	if n.ToolUse != nil {
		return n.Describe()
	}
	return n.Describe() + " [#" + strconv.FormatInt(n.Record.Seq, 10) + "]"
}
