package gateway

import (
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/hook"
)

// TestReplay decides recorded calls again without running a hook: what
// a known hook decided stands, one known refusal decides, a hook that
// did not run makes the call not replayable, and calls refused before
// any hook ran are not the hooks' to change.
func TestReplay(t *testing.T) {
	t.Parallel()
	a := hook.Hook{ID: "h_a", Event: hook.PreToolUse, Match: "^Bash$", Shell: "guard-a"}
	b := hook.Hook{ID: "h_b", Event: hook.PreToolUse, Shell: "guard-b"}
	current := []hook.Hook{a, b}
	calls := []recordedCall{
		{seq: 1, tool: "Bash", allow: false, hooks: 1, ran: []recordedHook{{"h_a", false}}, reason: "a says no"},
		{seq: 2, tool: "Bash", allow: true, hooks: 2, ran: []recordedHook{{"h_a", true}, {"h_b", true}}},
		{seq: 3, tool: "Write", allow: false, hooks: 1, ran: []recordedHook{{"h_b", false}}, reason: "b says no"},
		{seq: 4, tool: "up__x", allow: false, hooks: 0, disabled: true, reason: "disabled"},
		{seq: 5, tool: "Bash", allow: true, hooks: -1},
	}
	changedB := b
	changedB.ID, changedB.Shell = "", "guard-b2"
	cases := []struct {
		name                string
		candidate           []hook.Hook
		flips               map[int64]string // seq: to
		notReplayable       []int64
		replayed, unchanged int
	}{
		{"the current hooks", current, nil, []int64{4, 5}, 3, 3},
		// Call 1: with a gone, b (which stopped at a's refusal) would judge it.
		{"a removed", []hook.Hook{b}, nil, []int64{1, 4, 5}, 2, 2},
		// A hook that matches only other tools: a's refusal is lifted.
		{"a narrowed to another tool", []hook.Hook{{ID: "h_a", Event: hook.PreToolUse, Match: "^Edit$", Shell: "guard-a"}}, map[int64]string{1: "allow", 3: "allow"}, []int64{4, 5}, 3, 1},
		{"no hooks at all", []hook.Hook{}, map[int64]string{1: "allow", 3: "allow"}, []int64{4, 5}, 3, 1},
		// b after a refusal did not run on call 1, but a's refusal decides.
		{"reordered", []hook.Hook{b, a}, nil, []int64{4, 5}, 3, 3},
		// b without its id, as a hand-written candidate: known by its definition.
		{"b without an id", []hook.Hook{a, {Event: hook.PreToolUse, Shell: "guard-b"}}, nil, []int64{4, 5}, 3, 3},
		// b changed: calls it judges and a does not refuse are unknown.
		{"b changed", []hook.Hook{a, changedB}, nil, []int64{2, 3, 4, 5}, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := api.HookTestResult{}
			replay(&out, calls, current, c.candidate)
			if out.Calls != len(calls) || out.Replayed != c.replayed || out.Unchanged != c.unchanged {
				t.Errorf("counts: got calls %d replayed %d unchanged %d, want %d %d %d", out.Calls, out.Replayed, out.Unchanged, len(calls), c.replayed, c.unchanged)
			}
			got := map[int64]string{}
			for _, f := range out.Flips {
				got[f.Seq] = f.To
			}
			if len(got) != len(c.flips) {
				t.Errorf("flips: got %v, want %v", out.Flips, c.flips)
			}
			for seq, to := range c.flips {
				if got[seq] != to {
					t.Errorf("flip of seq %d: got %q, want %q (all %+v)", seq, got[seq], to, out.Flips)
				}
			}
			var nr []int64
			for _, n := range out.NotReplayable {
				nr = append(nr, n.Seq)
				if n.Seq == 2 && !strings.Contains(n.Reason, "keeps no tool input") {
					t.Errorf("not replayable seq 2: reason %q, want it to say the input is not kept", n.Reason)
				}
			}
			if len(nr) != len(c.notReplayable) {
				t.Errorf("not replayable: got %v, want %v", nr, c.notReplayable)
			}
			for i := range nr {
				if i < len(c.notReplayable) && nr[i] != c.notReplayable[i] {
					t.Errorf("not replayable: got %v, want %v", nr, c.notReplayable)
					break
				}
			}
		})
	}
}
