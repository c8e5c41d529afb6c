package mcp

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/mcp/internal/testserver"
)

// upstreamArg0 makes the test binary an upstream MCP server (see
// testserver): the tests run `<test binary> ringlet-test-upstream [flags]`
// as a profile's stdio server, so upstream behaviour is real processes,
// pipes and exits.
const upstreamArg0 = "ringlet-test-upstream"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == upstreamArg0 {
		os.Exit(testserver.Run(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// upstreamCommand is the argv of a test upstream with flags.
func upstreamCommand(t *testing.T, flags ...string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{exe, upstreamArg0}, flags...)
}

// recorded returns the raw params.arguments of every tools/call the
// recording upstream received, byte for byte.
func recorded(t *testing.T, path string) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []json.RawMessage
	for _, line := range strings.Split(string(data), "\n") {
		var m struct {
			Method string `json:"method"`
			Params struct {
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Method == "tools/call" {
			out = append(out, m.Params.Arguments)
		}
	}
	return out
}
