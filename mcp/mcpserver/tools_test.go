package mcpserver

import (
	"slices"
	"strings"
	"testing"
)

func TestToolEnabled(t *testing.T) {
	t.Parallel()
	c := Config{ToolRules: []ToolRule{{Pattern: "write_*"}, {Pattern: "write_note", Enabled: true}, {Pattern: "read_[ab]"}}}
	for _, tc := range []struct {
		tool, def string
		want      bool
		by, rule  string
	}{
		{"read_file", "", true, ByDefault, ""},
		{"read_file", ToolsAll, true, ByDefault, ""},
		{"read_file", ToolsNone, false, ByDefault, ""},
		{"read_file", "garbled", false, ByDefault, ""},
		{"write_file", ToolsAll, false, ByRule, "write_*"},
		{"write_note", ToolsNone, true, ByRule, "write_note"},
		{"read_a", ToolsAll, false, ByRule, "read_[ab]"},
	} {
		on, by, rule := c.ToolEnabled(tc.tool, tc.def)
		if on != tc.want || by != tc.by || rule != tc.rule {
			t.Errorf("%s (default %q): got %v %s %q, want %v %s %q", tc.tool, tc.def, on, by, rule, tc.want, tc.by, tc.rule)
		}
	}
}

func TestToolChange(t *testing.T) {
	t.Parallel()
	c := Config{ToolRules: []ToolRule{{Pattern: "a"}, {Pattern: "b", Enabled: true}}}
	// A pattern given again moves last; disables apply before enables.
	if err := (ToolChange{Enable: []string{"a"}, Disable: []string{"*"}}).Apply(&c); err != nil {
		t.Fatal(err)
	}
	want := []ToolRule{{Pattern: "b", Enabled: true}, {Pattern: "*"}, {Pattern: "a", Enabled: true}}
	if !slices.Equal(c.ToolRules, want) {
		t.Errorf("rules: got %+v, want %+v", c.ToolRules, want)
	}
	if on, _, _ := c.ToolEnabled("a", ToolsAll); !on {
		t.Error("a: got disabled, want enabled (the enable came after --disable '*')")
	}
	if err := (ToolChange{Reset: true}).Apply(&c); err != nil || c.ToolRules != nil {
		t.Errorf("reset: got %+v, %v, want no rules", c.ToolRules, err)
	}
	for _, tc := range []struct {
		ch   ToolChange
		want string
	}{
		{ToolChange{}, "nothing to change"},
		{ToolChange{Enable: []string{"[a"}}, "invalid tool pattern"},
		{ToolChange{Enable: []string{""}}, "invalid tool pattern"},
		{ToolChange{Disable: []string{"a/b"}}, "invalid tool pattern"},
		{ToolChange{Disable: []string{strings.Repeat("x", 129)}}, "invalid tool pattern"},
		{ToolChange{Enable: []string{"x"}, Disable: []string{"x"}}, "both enabled and disabled"},
	} {
		c := Config{}
		if err := tc.ch.Apply(&c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error with %q", tc.ch, err, tc.want)
		}
	}
	bad := Config{Name: "fs", Command: []string{"x"}, ToolRules: []ToolRule{{Pattern: "a"}, {Pattern: "a", Enabled: true}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a stored pattern twice: got %v, want refused", err)
	}
}

func TestFirstLine(t *testing.T) {
	t.Parallel()
	if got := FirstLine("  Read a file.\nMore text"); got != "Read a file." {
		t.Errorf("got %q", got)
	}
	if got := FirstLine("evil\x1b[31mred\ttab"); strings.ContainsAny(got, "\x1b\t") {
		t.Errorf("control characters kept: %q", got)
	}
}

// FuzzToolRules: any pattern either is refused or, once stored, decides
// consistently: a tool matched by the last rule follows that rule.
func FuzzToolRules(f *testing.F) {
	for _, s := range []string{"write_*", "[a-", "*", "read_[!x]", "a\\", "é*", ""} {
		f.Add(s, "write_file", true)
	}
	f.Fuzz(func(t *testing.T, pattern, tool string, enable bool) {
		ch := ToolChange{Disable: []string{pattern}}
		if enable {
			ch = ToolChange{Enable: []string{pattern}}
		}
		c := Config{Name: "fs", Command: []string{"x"}}
		if err := ch.Apply(&c); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a change Apply took does not validate: %v", err)
		}
		on, by, rule := c.ToolEnabled(tool, ToolsAll)
		if by == ByRule && (on != enable || rule != pattern) {
			t.Fatalf("%q on %q: got %v by %s %q, want %v", pattern, tool, on, by, rule, enable)
		}
		if by == ByDefault && !on {
			t.Fatalf("%q on %q: disabled by the default all", pattern, tool)
		}
	})
}

func TestResourceMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, uri string
		want         bool
	}{
		{"file:///docs/a.md", "file:///docs/a.md", true},
		{"file:///docs/*", "file:///docs/a/b.md", true}, // '*' crosses '/'
		{"file:///docs/*", "file:///doc", false},
		{"test://static/resource/?", "test://static/resource/1", true},
		{"test://static/resource/?", "test://static/resource/12", false},
		{"test://static/resource/[12]", "test://static/resource/2", true},
		{"test://static/resource/[!12]", "test://static/resource/2", false},
		{"test://static/resource/*", "test://static/resource/{id}", true},
		{"a.b", "axb", false}, // '.' is itself
		{`\*`, "*", true},
		{`\*`, "x", false},
	} {
		if got := ResourceMatch(tc.pattern, tc.uri); got != tc.want {
			t.Errorf("ResourceMatch(%q, %q): got %v, want %v", tc.pattern, tc.uri, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a b", "x[", `x\`, "[]", "a\nb", strings.Repeat("x", 1025)} {
		if err := CheckResourcePattern(bad); err == nil {
			t.Errorf("CheckResourcePattern(%q): got nil, want an error", bad)
		}
	}
}

func TestItemEnabled(t *testing.T) {
	t.Parallel()
	c := Config{Prompts: SwitchOff, PromptRules: []ToolRule{{Pattern: "simple_prompt", Enabled: true}},
		ResourceRules: []ToolRule{{Pattern: "test://static/*"}, {Pattern: "test://static/resource/1", Enabled: true}}}
	for _, tc := range []struct {
		kind, name, def string
		want            bool
		by, rule        string
	}{
		{KindPrompt, "simple_prompt", ToolsAll, true, ByRule, "simple_prompt"},
		{KindPrompt, "complex_prompt", ToolsAll, false, BySwitch, ""},
		{KindResource, "test://static/resource/2", ToolsAll, false, ByRule, "test://static/*"},
		{KindResource, "test://static/resource/1", ToolsNone, true, ByRule, "test://static/resource/1"},
		{KindTemplate, "test://static/resource/{id}", ToolsAll, false, ByRule, "test://static/*"},
		{KindResource, "test://other", ToolsAll, true, ByDefault, ""},
		{KindResource, "test://other", ToolsNone, false, ByDefault, ""},
	} {
		on, by, rule := c.ItemEnabled(tc.kind, tc.name, tc.def)
		if on != tc.want || by != tc.by || rule != tc.rule {
			t.Errorf("%s %s (default %q): got %v %s %q, want %v %s %q", tc.kind, tc.name, tc.def, on, by, rule, tc.want, tc.by, tc.rule)
		}
	}
}

func TestToolChangeItems(t *testing.T) {
	t.Parallel()
	c := Config{ToolRules: []ToolRule{{Pattern: "a"}}}
	ch := ToolChange{DisablePrompts: []string{"*"}, EnablePrompts: []string{"simple_prompt"}, DisableResources: []string{"test://static/*"}}
	if err := ch.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if want := []ToolRule{{Pattern: "*"}, {Pattern: "simple_prompt", Enabled: true}}; !slices.Equal(c.PromptRules, want) {
		t.Errorf("prompt rules: got %+v, want %+v", c.PromptRules, want)
	}
	if want := []ToolRule{{Pattern: "test://static/*"}}; !slices.Equal(c.ResourceRules, want) {
		t.Errorf("resource rules: got %+v, want %+v", c.ResourceRules, want)
	}
	if len(c.ToolRules) != 1 {
		t.Errorf("tool rules: got %+v, want them unchanged", c.ToolRules)
	}
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "pattern") {
		t.Errorf("Validate: %v", err)
	}
	if err := (ToolChange{Reset: true}).Apply(&c); err != nil || c.ToolRules != nil || c.PromptRules != nil || c.ResourceRules != nil {
		t.Errorf("reset: got %+v %+v %+v, %v, want no rules", c.ToolRules, c.PromptRules, c.ResourceRules, err)
	}
	for _, tc := range []struct {
		ch   ToolChange
		want string
	}{
		{ToolChange{EnablePrompts: []string{"a/b"}}, "invalid prompt pattern"},
		{ToolChange{DisableResources: []string{"file:///a b"}}, "invalid resource pattern"},
		{ToolChange{EnableResources: []string{"x"}, DisableResources: []string{"x"}}, "both enabled and disabled"},
	} {
		if err := tc.ch.Apply(&Config{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.ch, err, tc.want)
		}
	}
}
