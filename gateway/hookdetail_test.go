package gateway

import (
	"bytes"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// TestToolCallDetail: a tool.call record's detail is byte for byte what
// encoding/json writes of the map it replaces, whether or not a string
// needs escaping.
func TestToolCallDetail(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		event, reason, via string
		hooks              int
	}{
		{"pre-tool-use", "", "mcp", 0},
		{"post-tool-use", "a Ringlet hook refused this tool call", "agent", 3},
		{"pre-tool-use", `no "rm" <here> & \ there` + "\n\x00\xff é", "mcp", -1},
		{"", "", "", 0},
	} {
		got := toolCallDetail(c.event, c.hooks, c.reason, c.via)
		want := audit.DetailJSON(map[string]any{"event": c.event, "hooks": c.hooks, "reason": c.reason, "via": c.via})
		if !bytes.Equal(got, want) {
			t.Errorf("detail of %+v: got %s, want %s", c, got, want)
		}
	}
}

func FuzzToolCallDetail(f *testing.F) {
	f.Add("pre-tool-use", 0, "", "mcp")
	f.Add("post-tool-use", 2, `x"<y`+"\n", "agent")
	f.Fuzz(func(t *testing.T, event string, hooks int, reason, via string) {
		got := toolCallDetail(event, hooks, reason, via)
		want := audit.DetailJSON(map[string]any{"event": event, "hooks": hooks, "reason": reason, "via": via})
		if !bytes.Equal(got, want) {
			t.Fatalf("detail of %q %d %q %q: got %s, want %s", event, hooks, reason, via, got, want)
		}
	})
}

func BenchmarkToolCallDetail(b *testing.B) {
	b.Run("appended", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			toolCallDetail("pre-tool-use", 0, "", "mcp")
		}
	})
	b.Run("DetailJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			audit.DetailJSON(map[string]any{"event": "pre-tool-use", "hooks": 0, "reason": "", "via": "mcp"})
		}
	})
}
