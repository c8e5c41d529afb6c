package hook

import "testing"

// TestRuns: whether Evaluate would run (or refuse for) any hook, which
// decides whether the gateway prepares a hook environment at all.
func TestRuns(t *testing.T) {
	t.Parallel()
	pre := func(match string) Hook { return Hook{Event: PreToolUse, Match: match, Shell: "true"} }
	cases := []struct {
		name  string
		hooks []Hook
		want  bool
	}{
		{"no hooks", nil, false},
		{"another event", []Hook{{Event: PostToolUse, Shell: "true"}}, false},
		{"a match for other tools", []Hook{pre("^fs__write"), pre("git")}, false},
		{"a match for this tool", []Hook{pre("^fs__write"), pre("^up__")}, true},
		{"no match: every tool", []Hook{pre("")}, true},
		{"an invalid match refuses", []Hook{pre("(")}, true},
		{"an invalid match of another event", []Hook{{Event: PostToolUse, Match: "(", Shell: "true"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Twice: the second answer comes from the compiled patterns.
			for range 2 {
				if got := Runs(c.hooks, PreToolUse, "up__echo"); got != c.want {
					t.Fatalf("Runs: got %v, want %v", got, c.want)
				}
			}
		})
	}
}
