package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/hook"
)

// hooksTestFlip is the exit code of 'hooks test' when a decision would
// change: 0 means none would, 1 is an error.
const hooksTestFlip = 3

func (a *app) hooksTestCmd() *cobra.Command {
	var since, hookFile, inputFile string
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "test PROFILE [--since 7d] [--hook FILE|--all] [--input FILE] [--json]",
		Short: "Replay a profile's pre-tool-use hooks, or a candidate set, against recorded tool calls",
		Long: `Decide the profile's recorded tool calls (the audit log's tool.call records,
pre-tool-use) again with its current hooks (--all, the default) or with the
candidate set in --hook FILE (a JSON array as 'hooks export' writes, or one
hook object), and list the calls whose decision would flip (allow -> deny or
deny -> allow), by record seq.

No hook runs in a replay, and nothing is written: the audit log keeps no
tool input (only its size), so a call is decided from what was recorded.
A candidate hook the same as a current one (event, command, match, timeout)
decides as that hook decided then; a hook that matches the call's tool but
is new, changed, or did not run then makes the call not replayable, and
the answer says so. A call refused before any hook ran (a disabled tool,
a budget) is not the hooks' to change.

With --input FILE (a JSON object with tool_name and tool_input, as Claude
Code's PreToolUse event has them; - for stdin) the hooks run on that one
input, each in a sandbox with no network where nothing is writable
(bubblewrap; Linux), the current ones and, with --hook, the candidates.

Exit status: 0 no decision would flip, 3 some would, 1 an error.`,
		Example: `  ringlet hooks test work --since 7d
  ringlet hooks export work > hooks.json   # edit it, then:
  ringlet hooks test work --hook hooks.json --since 30d --json
  echo '{"tool_name":"Bash","tool_input":{"command":"rm -rf /"}}' | ringlet hooks test work --input -
  ringlet hooks test work --hook hooks.json --input event.json`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profileArg(args)
			if err != nil {
				return err
			}
			if all && hookFile != "" {
				return usageError{fmt.Errorf("--all (the profile's current hooks) and --hook FILE (a candidate set) exclude each other")}
			}
			req := api.HookTest{Since: since}
			if hookFile != "" {
				if req.Hooks, err = a.readCandidate(hookFile); err != nil {
					return err
				}
				req.Candidate = true
			}
			if inputFile != "" {
				data, err := a.readData("@" + inputFile)
				if inputFile == "-" {
					data, err = a.readData("-")
				}
				if err != nil {
					return err
				}
				if !json.Valid(data) {
					return fmt.Errorf("%s is not JSON: give a JSON object with tool_name and tool_input", inputFile)
				}
				req.Input = bytes.TrimSpace(data)
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			progress := a.waitLine(fmt.Sprintf("hooks test: deciding the recorded tool calls of profile %s again…", p))
			res, err := c.TestHooks(cmd.Context(), p, req)
			progress()
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSONOut(a.stdio.Out, res); err != nil {
					return err
				}
			} else {
				a.printHookTest(res, since)
			}
			if len(res.Flips) > 0 || (res.Input != nil && res.Input.Flip) {
				return exitCode(hooksTestFlip)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "replay the calls since then: YYYY-MM-DD, RFC 3339 or a duration (24h, 7d); default the whole log")
	cmd.Flags().StringVar(&hookFile, "hook", "", "a candidate set of hooks (JSON, as 'hooks export' writes) in place of the profile's")
	cmd.Flags().BoolVar(&all, "all", false, "the profile's current hooks (the default)")
	cmd.Flags().StringVar(&inputFile, "input", "", "run the hooks, sandboxed, on one input (JSON with tool_name and tool_input; - for stdin)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagFilename("hook", "json") // completion only; the flag exists
	_ = cmd.MarkFlagFilename("input", "json")
	return cmd
}

// readCandidate reads a candidate set: a hooks file as export writes it,
// or one hook.
func (a *app) readCandidate(file string) ([]hook.Hook, error) {
	data, err := a.readData("@" + file)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	decode := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	var hooks []hook.Hook
	if len(data) > 0 && data[0] == '{' {
		var h hook.Hook
		if err := decode(&h); err != nil {
			return nil, fmt.Errorf("%s is not a hook (a JSON object as in 'ringlet hooks export'): %v", file, err)
		}
		hooks = []hook.Hook{h}
	} else if err := decode(&hooks); err != nil {
		return nil, fmt.Errorf("%s is not a hooks file (a JSON array as written by 'ringlet hooks export'): %v", file, err)
	}
	if hooks == nil {
		hooks = []hook.Hook{}
	}
	return hooks, nil
}

// waitLine shows what is being waited for on stderr when it is a
// terminal; the returned function clears it.
func (a *app) waitLine(text string) func() {
	f, ok := a.stdio.Err.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	fmt.Fprint(f, text)
	return func() { fmt.Fprint(f, "\r\033[K") }
}

func (a *app) printHookTest(res api.HookTestResult, since string) {
	out := a.stdio.Out
	if in := res.Input; in != nil {
		fmt.Fprintf(out, "tool %s\n", in.Tool)
		show := func(label string, d hook.Decision) {
			if d.Allow {
				fmt.Fprintf(out, "%s: allow\n", label)
				return
			}
			fmt.Fprintf(out, "%s: deny: %s\n", label, d.Reason)
		}
		show("current hooks", in.Current)
		if in.Candidate != nil {
			show("candidate hooks", *in.Candidate)
			if in.Flip {
				fmt.Fprintf(out, "the decision would flip: %s -> %s\n", word(in.Current.Allow), word(in.Candidate.Allow))
			} else {
				fmt.Fprintln(out, "the decision would not change")
			}
		}
		return
	}
	window := "in the audit log"
	if since != "" {
		window = "since " + since
	}
	fmt.Fprintf(out, "profile %s: %d pre-tool-use tool call(s) %s; %d replayed, %d unchanged, %d would flip, %d not replayable\n",
		res.Profile, res.Calls, window, res.Replayed, res.Unchanged, len(res.Flips), res.Calls-res.Replayed)
	if res.Truncated {
		fmt.Fprintln(out, "only the newest calls were replayed: narrow --since to see the rest")
	}
	if len(res.Flips) > 0 {
		fmt.Fprintln(out)
		t := newTable(out)
		t.row("SEQ", "TIME", "TOOL", "FROM", "TO", "WHY")
		for _, f := range res.Flips {
			t.row(strconv.FormatInt(f.Seq, 10), f.Time, f.Tool, f.From, f.To, f.Why)
		}
		_ = t.flush() // a failed write to stdout leaves nothing to tell
	}
	if len(res.NotReplayable) > 0 {
		// Grouped by reason: one line each, with the first records.
		groups := map[string][]int64{}
		for _, n := range res.NotReplayable {
			groups[n.Reason] = append(groups[n.Reason], n.Seq)
		}
		reasons := make([]string, 0, len(groups))
		for r := range groups {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool { return groups[reasons[i]][0] < groups[reasons[j]][0] })
		fmt.Fprintln(out, "\nnot replayable:")
		for _, r := range reasons {
			seqs := groups[r]
			shown := make([]string, 0, 10)
			for i, s := range seqs {
				if i == 10 {
					shown = append(shown, "…")
					break
				}
				shown = append(shown, strconv.FormatInt(s, 10))
			}
			fmt.Fprintf(out, "  %d call(s) (seq %s): %s\n", len(seqs), strings.Join(shown, ", "), r)
		}
	}
}

func word(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}
