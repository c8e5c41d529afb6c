package mcpserver

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
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
	// BySwitch: a prompt or resource no rule names follows its server's
	// 'mcp tools --prompts/--resources on|off' switch.
	BySwitch = "switch"
)

// Limits of a server's tool, prompt and resource rules.
const (
	maxToolRules   = 256
	maxToolPattern = 128
	// A resource pattern is a URI or URI template, or a glob of them.
	maxResourcePattern = 1024
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

// CheckPromptPattern checks one --enable-prompt/--disable-prompt
// pattern: a prompt's name as its server lists it, or a glob.
func CheckPromptPattern(p string) error {
	if err := CheckToolPattern(p); err != nil {
		return fmt.Errorf("invalid prompt pattern %q: give a prompt name or a glob such as 'review_*', at most %d characters", p, maxToolPattern)
	}
	return nil
}

// CheckResourcePattern checks one --enable-resource/--disable-resource
// pattern: a resource's URI or a resource template's URI template as its
// server lists it, or a glob of them (see ResourceMatch).
func CheckResourcePattern(p string) error {
	if p == "" || len(p) > maxResourcePattern || strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("invalid resource pattern %q: give a resource URI, a URI template or a glob such as 'file:///docs/*', at most %d characters, without spaces", p, maxResourcePattern)
	}
	if _, err := resourceGlob(p); err != nil {
		return fmt.Errorf("invalid resource pattern %q: %v", p, err)
	}
	return nil
}

// resourceGlob compiles a resource pattern. Unlike a tool's (path.Match),
// '*' matches any run of characters, '/' included: a URI is not a file
// path, and '--disable-resource "file:///secret/*"' must hide what lies
// below file:///secret/ at any depth. '?' is one character, '[...]' a
// class ('[^...]' or '[!...]' negated), '\' quotes the next character.
func resourceGlob(p string) (*regexp.Regexp, error) {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		case '\\':
			if i+1 == len(p) {
				return nil, errors.New("it ends with '\\'")
			}
			i++
			re.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case '[':
			end := strings.IndexByte(p[i+1:], ']')
			if end < 0 {
				return nil, errors.New("a '[' is not closed")
			}
			class := p[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			if class == "" || class == "^" {
				return nil, errors.New("an empty '[]'")
			}
			re.WriteString("[" + class + "]")
			i += end + 1
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	return regexp.Compile(re.String())
}

// ResourceMatch reports whether the resource pattern p matches uri (a
// resource's URI or a template's URI template); a pattern that does not
// compile matches nothing.
func ResourceMatch(p, uri string) bool {
	if p == uri {
		return true
	}
	re, err := resourceGlob(p)
	return err == nil && re.MatchString(uri)
}

func validateToolRules(rules []ToolRule) error {
	return validateRules("tool", rules, CheckToolPattern)
}

func validateRules(what string, rules []ToolRule, check func(string) error) error {
	if len(rules) > maxToolRules {
		return fmt.Errorf("more than %d %s rules; replace some with a glob", maxToolRules, what)
	}
	for i, r := range rules {
		if err := check(r.Pattern); err != nil {
			return err
		}
		if slices.ContainsFunc(rules[i+1:], func(o ToolRule) bool { return o.Pattern == r.Pattern }) {
			return fmt.Errorf("the %s pattern %q is given twice", what, r.Pattern)
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
	return DefaultEnables(def), ByDefault, ""
}

// DefaultEnables reports whether the profile's tools default def serves
// a tool no rule names.
func DefaultEnables(def string) bool { return def == "" || def == ToolsAll }

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

// ItemEnabled says whether sessions see one prompt (kind KindPrompt,
// name as the server lists it), resource (KindResource, its URI) or
// resource template (KindTemplate, its URI template): the last of the
// server's prompt or resource rules that matches it decides (ByRule,
// naming the rule's pattern); else the server's --prompts/--resources
// switch (BySwitch); else the profile's default def (ByDefault).
func (c Config) ItemEnabled(kind, name, def string) (enabled bool, by, rule string) {
	rules, match := c.ResourceRules, ResourceMatch
	if kind == KindPrompt {
		rules, match = c.PromptRules, func(p, s string) bool { ok, _ := path.Match(p, s); return ok }
	}
	for i := len(rules) - 1; i >= 0; i-- {
		if match(rules[i].Pattern, name) {
			return rules[i].Enabled, ByRule, rules[i].Pattern
		}
	}
	on, by := c.CatalogEnabled(kind, def)
	if by == ByRule {
		by = BySwitch
	}
	return on, by, ""
}

// ResourceRuleOf is the last of the server's resource rules that matches
// a concrete URI read through a template, if any: a rule disabling
// 'file:///secret/*' refuses reads of those URIs whichever template
// matches them.
func (c Config) ResourceRuleOf(uri string) (rule ToolRule, ok bool) {
	for i := len(c.ResourceRules) - 1; i >= 0; i-- {
		if ResourceMatch(c.ResourceRules[i].Pattern, uri) {
			return c.ResourceRules[i], true
		}
	}
	return ToolRule{}, false
}

// ToolChange is what 'ringlet mcp tools --enable/--disable' changes:
// the disables are applied first, then the enables, so that in one
// command an enable wins ('--disable "*" --enable read_file').
type ToolChange struct {
	Enable  []string `json:"enable,omitempty"`
	Disable []string `json:"disable,omitempty"`
	// EnablePrompts and DisablePrompts are prompt names or globs;
	// EnableResources and DisableResources resource URIs, URI templates
	// or globs of them ('mcp tools --enable-prompt ...'). They apply as
	// Enable and Disable do, each to its own rules.
	EnablePrompts    []string `json:"enable_prompts,omitempty"`
	DisablePrompts   []string `json:"disable_prompts,omitempty"`
	EnableResources  []string `json:"enable_resources,omitempty"`
	DisableResources []string `json:"disable_resources,omitempty"`
	// Reset removes every rule first (of tools, prompts and resources):
	// each follows the server's switches and the profile's default.
	Reset bool `json:"reset,omitempty"`
	// Resources and Prompts turn the server's resources (with its
	// resource templates) or prompts SwitchOn or SwitchOff, or back to
	// the profile's default (SwitchDefault); empty leaves them.
	Resources string `json:"resources,omitempty"`
	Prompts   string `json:"prompts,omitempty"`
}

// NothingToChange refuses an empty ToolChange.
const NothingToChange = "nothing to change: give --enable, --disable, --enable-prompt, --disable-prompt, --enable-resource, --disable-resource, --reset, --resources or --prompts"

// Empty reports whether ch changes nothing.
func (ch ToolChange) Empty() bool {
	return len(ch.Enable)+len(ch.Disable)+len(ch.EnablePrompts)+len(ch.DisablePrompts)+len(ch.EnableResources)+len(ch.DisableResources) == 0 &&
		!ch.Reset && ch.Resources == "" && ch.Prompts == ""
}

// Check checks the patterns of ch.
func (ch ToolChange) Check() error {
	for _, k := range []struct {
		what            string
		enable, disable []string
		check           func(string) error
	}{
		{"tool", ch.Enable, ch.Disable, CheckToolPattern},
		{"prompt", ch.EnablePrompts, ch.DisablePrompts, CheckPromptPattern},
		{"resource", ch.EnableResources, ch.DisableResources, CheckResourcePattern},
	} {
		for _, p := range append(slices.Clone(k.enable), k.disable...) {
			if err := k.check(p); err != nil {
				return err
			}
		}
		for _, p := range k.enable {
			if slices.Contains(k.disable, p) {
				return fmt.Errorf("the %s pattern %q is both enabled and disabled; give it once", k.what, p)
			}
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
	apply := func(rules []ToolRule, enable, disable []string) []ToolRule {
		rules = slices.Clone(rules)
		if ch.Reset {
			rules = nil
		}
		set := func(p string, on bool) {
			rules = slices.DeleteFunc(rules, func(r ToolRule) bool { return r.Pattern == p })
			rules = append(rules, ToolRule{Pattern: p, Enabled: on})
		}
		for _, p := range disable {
			set(p, false)
		}
		for _, p := range enable {
			set(p, true)
		}
		if len(rules) == 0 {
			rules = nil
		}
		return rules
	}
	c.ToolRules = apply(c.ToolRules, ch.Enable, ch.Disable)
	c.PromptRules = apply(c.PromptRules, ch.EnablePrompts, ch.DisablePrompts)
	c.ResourceRules = apply(c.ResourceRules, ch.EnableResources, ch.DisableResources)
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
