package gateway

import (
	"path"
	"testing"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// TestGlobQuote: the MCP page's toggle of a tool names that tool alone,
// whatever glob characters its server put in its name (a tool named "*"
// must not disable every tool).
func TestGlobQuote(t *testing.T) {
	others := []string{"alpha", "beta", "a", "x*y", "[ab]", `a\b`, "?"}
	for _, name := range []string{"*", "?", "[ab]", "x*y", `a\b`, "alpha", "a]b", "[", `\`} {
		p := globQuote(name)
		if err := mcpserver.CheckToolPattern(p); err != nil {
			t.Errorf("globQuote(%q) = %q: not a valid rule: %v", name, p, err)
			continue
		}
		if m, err := path.Match(p, name); err != nil || !m {
			t.Errorf("globQuote(%q) = %q does not match the tool itself (%v)", name, p, err)
		}
		for _, o := range others {
			if o == name {
				continue
			}
			if m, _ := path.Match(p, o); m {
				t.Errorf("globQuote(%q) = %q also matches %q", name, p, o)
			}
		}
	}
}
