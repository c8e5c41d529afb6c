package mcp

import (
	"encoding/json"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// TestJSONSize: a result's size as recorded is the length of its JSON
// encoding, escapes included.
func TestJSONSize(t *testing.T) {
	t.Parallel()
	structured := mcpgo.NewToolResultText("x")
	structured.StructuredContent = map[string]any{"n": 1, "s": "a\"b"}
	for _, res := range []*mcpgo.CallToolResult{
		mcpgo.NewToolResultText(`{"text":"hello"}`),
		mcpgo.NewToolResultText("<b>&amp;</b> é \u2028 \x01"),
		mcpgo.NewToolResultError("refused"),
		structured,
		{},
	} {
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := jsonSize(res); err != nil || got != len(want) {
			t.Errorf("jsonSize of %s: got %d (%v), want %d", want, got, err, len(want))
		}
	}
}
