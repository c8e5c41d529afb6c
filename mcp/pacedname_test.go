package mcp

import (
	"testing"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
)

// TestPacedName: what a paced request is recorded as calling, whether
// read from the message jsonrpc.Check decoded (a tools/call) or from the
// body.
func TestPacedName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__echo","arguments":{}}}`, "up__echo"},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__\u00e9cho"}}`, "up__écho"},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"up__greet"}}`, "up__greet"},
		{`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}`, "file:///a"},
		{`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"up__greet"}}}`, "up__greet"},
		{`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///b"}}}`, "file:///b"},
	} {
		m, err := jsonrpc.Check([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if got := pacedName(m, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.body, got, tc.want)
		}
	}
}
