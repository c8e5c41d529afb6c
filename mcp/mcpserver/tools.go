package mcpserver

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// A profile's default for the tools of its MCP servers that no rule of
// 'ringlet mcp tools' names.
const (
	ToolsAll  = "all"  // every tool is served (the default)
	ToolsNone = "none" // a tool is served only once enabled
)

// Why a tool is enabled or disabled, in ToolStatus.By.
const (
	ByDefault = "default"
	ByRule    = "explicit"
)

// Limits of a server's tool rules.
const (
	maxToolRules   = 256
	maxToolPattern = 128
)

// ToolRule enables or disables the tools whose names match Pattern
// (path.Match: '*', '?', '[...]'; a plain name matches itself).
type ToolRule struct {
	Pattern string `json:"pattern"`
	Enabled bool   `json:"enabled"`
}

// CheckToolsDefault checks a profile's tools default; empty is ToolsAll.
func CheckToolsDefault(d string) error {
	switch d {
	case "", ToolsAll, ToolsNone:
		return nil
	}
	return fmt.Errorf("invalid MCP tools default %q; accepted values: all, none", d)
}

// CheckToolPattern checks one --enable/--disable pattern.
func CheckToolPattern(p string) error {
	if p == "" || len(p) > maxToolPattern || strings.ContainsAny(p, "\x00\n\r/") {
		return fmt.Errorf("invalid tool pattern %q: give a tool name or a glob such as 'write_*', at most %d characters", p, maxToolPattern)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("invalid tool pattern %q: %v", p, err)
	}
	return nil
}

func validateToolRules(rules []ToolRule) error {
	if len(rules) > maxToolRules {
		return fmt.Errorf("more than %d tool rules; replace some with a glob", maxToolRules)
	}
	for i, r := range rules {
		if err := CheckToolPattern(r.Pattern); err != nil {
			return err
		}
		if slices.ContainsFunc(rules[i+1:], func(o ToolRule) bool { return o.Pattern == r.Pattern }) {
			return fmt.Errorf("the tool pattern %q is given twice", r.Pattern)
		}
	}
	return nil
}

// ToolEnabled says whether sessions see tool: the last rule that
// matches it decides (by ByRule, naming the rule's pattern), else the
// profile's default def (ByDefault). A default that is not ToolsAll or
// empty (ToolsNone, or one that could not be read) disables.
func (c Config) ToolEnabled(tool, def string) (enabled bool, by, rule string) {
	for i := len(c.ToolRules) - 1; i >= 0; i-- {
		if ok, _ := path.Match(c.ToolRules[i].Pattern, tool); ok {
			return c.ToolRules[i].Enabled, ByRule, c.ToolRules[i].Pattern
		}
	}
	return def == "" || def == ToolsAll, ByDefault, ""
}

// Settings of Config.Resources and Config.Prompts, and of ToolChange's
// (where SwitchDefault clears the setting).
const (
	SwitchOn      = "on"
	SwitchOff     = "off"
	SwitchDefault = "default"
)

// CatalogEnabled says whether sessions see the server's prompts
// (KindPrompt) or its resources and resource templates (KindResource):
// as set by 'mcp tools --prompts/--resources' (ByRule), else the
// profile's default def (ByDefault), as for a tool no rule names.
func (c Config) CatalogEnabled(kind, def string) (enabled bool, by string) {
	s := c.Resources
	if kind == KindPrompt {
		s = c.Prompts
	}
	switch s {
	case SwitchOn:
		return true, ByRule
	case SwitchOff:
		return false, ByRule
	}
	return def == "" || def == ToolsAll, ByDefault
}

// ToolChange is what 'ringlet mcp tools --enable/--disable' changes:
// the disables are applied first, then the enables, so that in one
// command an enable wins ('--disable "*" --enable read_file').
type ToolChange struct {
	Enable  []string `json:"enable,omitempty"`
	Disable []string `json:"disable,omitempty"`
	// Reset removes every rule first: each tool follows the default.
	Reset bool `json:"reset,omitempty"`
	// Resources and Prompts turn the server's resources (with its
	// resource templates) or prompts SwitchOn or SwitchOff, or back to
	// the profile's default (SwitchDefault); empty leaves them.
	Resources string `json:"resources,omitempty"`
	Prompts   string `json:"prompts,omitempty"`
}

// NothingToChange refuses an empty ToolChange.
const NothingToChange = "nothing to change: give --enable, --disable, --reset, --resources or --prompts"

// Empty reports whether ch changes nothing.
func (ch ToolChange) Empty() bool {
	return len(ch.Enable)+len(ch.Disable) == 0 && !ch.Reset && ch.Resources == "" && ch.Prompts == ""
}

// Check checks the patterns of ch.
func (ch ToolChange) Check() error {
	for _, p := range append(slices.Clone(ch.Enable), ch.Disable...) {
		if err := CheckToolPattern(p); err != nil {
			return err
		}
	}
	for _, p := range ch.Enable {
		if slices.Contains(ch.Disable, p) {
			return fmt.Errorf("the tool pattern %q is both enabled and disabled; give it once", p)
		}
	}
	for _, s := range []struct{ flag, v string }{{"resources", ch.Resources}, {"prompts", ch.Prompts}} {
		switch s.v {
		case "", SwitchOn, SwitchOff, SwitchDefault:
		default:
			return fmt.Errorf("invalid --%s %q; accepted values: on, off, default", s.flag, s.v)
		}
	}
	return nil
}

// Apply changes c's rules: a pattern given again replaces its rule,
// which moves last (it is the newest word on those tools).
func (ch ToolChange) Apply(c *Config) error {
	if err := ch.Check(); err != nil {
		return err
	}
	if ch.Empty() {
		return errors.New(NothingToChange)
	}
	rules := slices.Clone(c.ToolRules)
	if ch.Reset {
		rules = nil
	}
	set := func(p string, on bool) {
		rules = slices.DeleteFunc(rules, func(r ToolRule) bool { return r.Pattern == p })
		rules = append(rules, ToolRule{Pattern: p, Enabled: on})
	}
	for _, p := range ch.Disable {
		set(p, false)
	}
	for _, p := range ch.Enable {
		set(p, true)
	}
	if len(rules) == 0 {
		rules = nil
	}
	c.ToolRules = rules
	set2 := func(to *string, v string) {
		switch v {
		case SwitchDefault:
			*to = ""
		case SwitchOn, SwitchOff:
			*to = v
		}
	}
	set2(&c.Resources, ch.Resources)
	set2(&c.Prompts, ch.Prompts)
	return nil
}

// FirstLine is the first line of a tool's description, as 'mcp tools'
// shows it.
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	// A server's text reaches a terminal: no control characters.
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	const max = 200
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "..."
	}
	return s
}
