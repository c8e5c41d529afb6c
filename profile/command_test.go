package profile

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`sh -c "echo hi there"`, []string{"sh", "-c", "echo hi there"}},
		{`python agent.py`, []string{"python", "agent.py"}},
		{`  python   agent.py  `, []string{"python", "agent.py"}},
		{`sh -c 'echo "$HOME" | wc -c'`, []string{"sh", "-c", `echo "$HOME" | wc -c`}},
		{`a\ b 'c d' "e\"f" "g\\h" "i\j"`, []string{"a b", "c d", `e"f`, `g\h`, `i\j`}},
		{`'it'\''s' ""`, []string{"it's", ""}},
		{`"a$"`, []string{"a$"}},
		{`\$HOME \*.go '*.go' '~'`, []string{"$HOME", "*.go", "*.go", "~"}},
		{"a\\\nb", []string{"ab"}},
		{`env FOO=bar agent --x=1 a#b`, []string{"env", "FOO=bar", "agent", "--x=1", "a#b"}},
	} {
		got, err := ParseCommand(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseCommand(%q): got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestParseCommandRefuses: what a shell would expand, run or reject is an
// error that says what is wrong, never a literal word or a silent split.
func TestParseCommandRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`sh -c "echo hi`, "without closing quote"},
		{`sh -c 'echo hi`, "without closing quote"},
		{``, "empty"},
		{`   `, "empty"},
		{`# only`, "only a comment"},
		{`agent # note`, "comment"},
		{`agent $HOME`, "$VARIABLE"},
		{`agent "${HOME}/x"`, "$VARIABLE"},
		{`agent $(id)`, "$(command)"},
		{"agent `id`", "`command`"},
		{`agent "$(id)"`, "$(command)"},
		{`agent $((1+1))`, "arithmetic"},
		{`agent *.go`, "glob"},
		{`agent file?`, "glob"},
		{`agent [ab]`, "glob"},
		{`agent {a,b}`, "brace"},
		{`agent ~/x`, "~ is not expanded"},
		{`agent $'x'`, "starts an expansion"},
		{`a; b`, "more than one command"},
		{"a\nb", "more than one command"},
		{`a & b`, "more than one command"},
		{`a &`, "not a simple command"},
		{`a;`, "not a simple command"},
		{`a | b`, "not a simple command"},
		{`a && b`, "not a simple command"},
		{`(a)`, "not a simple command"},
		{`! a`, "not a simple command"},
		{`if a; then b; fi`, "not a simple command"},
		{`a > out`, "redirections"},
		{`a < in`, "redirections"},
		{`FOO=1 a`, "assignments"},
		{"a\x00b", "NUL"},
	} {
		got, err := ParseCommand(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseCommand(%q): got %q, %v; want an error containing %q", c.in, got, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseCommand(%q): error %q has more than one line", c.in, err)
		}
	}
}

func TestQuoteCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"sh", "-c", "echo hi there"}, `sh -c 'echo hi there'`},
		{[]string{"python", "agent.py", "--x=1"}, `python agent.py --x=1`},
		{[]string{"it's", "", "$HOME", "~"}, `'it'\''s' '' '$HOME' '~'`},
		{[]string{"A=", "B=1"}, `'A=' B=1`}, // NAME=value first is an assignment
	} {
		if got := QuoteCommand(c.in); got != c.want {
			t.Errorf("QuoteCommand(%q): got %q, want %q", c.in, got, c.want)
		}
		if back, err := ParseCommand(QuoteCommand(c.in)); err != nil || !slices.Equal(back, c.in) {
			t.Errorf("ParseCommand(QuoteCommand(%q)): got %q, %v", c.in, back, err)
		}
	}
}

// FuzzParseCommand: an accepted command line has at least one word, and
// quoting its words gives a line that parses back to the same words.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`sh -c "echo hi there"`, `a\ b 'c d' "e\"f"`, `agent $HOME`, `'it'\''s'`, "a\\\nb", `x "a$"`, `"unterminated`, `A"="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := ParseCommand(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseCommand(%q): error %q has more than one line", s, err)
			}
			return
		}
		if len(words) == 0 {
			t.Fatalf("ParseCommand(%q): no words and no error", s)
		}
		q := QuoteCommand(words)
		back, err := ParseCommand(q)
		if err != nil || !slices.Equal(back, words) {
			t.Fatalf("ParseCommand(%q) = %q; quoted %q parses to %q, %v", s, words, q, back, err)
		}
	})
}
