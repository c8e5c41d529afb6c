package mcpimport

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzStripJSONC: it never panics, and leaves JSON (which has no
// comments or trailing commas) as it is.
func FuzzStripJSONC(f *testing.F) {
	for _, s := range []string{`{"a": 1,}`, `{"a": "/*"} // x`, `/* open`, `"\\`, `[1, /* c */ 2,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := StripJSONC(data)
		if json.Valid(data) && (err != nil || !bytes.Equal(out, data)) {
			t.Fatalf("valid JSON %q became %q, %v", data, out, err)
		}
	})
}

// FuzzParse: no file makes a parser panic, and every server it returns
// has a name.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"mcpServers": {"a": {"command": "x", "env": {"K": "${V:-d}"}}}}`, `{"servers": {"a": {"url": "${env:U}"}}}`,
		"[mcp_servers.a]\ncommand = \"x\"\nenv_vars = [\"V\"]", `{"projects": {"/p": {"mcpServers": {"a": {}}}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		getenv := func(name string) (string, bool) { return "v", name == "V" }
		for _, parse := range []func() ([]Server, error){
			func() ([]Server, error) { return ParseClaude(data, "f", getenv) },
			func() ([]Server, error) { return ParseClaudeUser(data, "f", "/p", getenv) },
			func() ([]Server, error) { return ParseVSCode(data, "f", getenv) },
			func() ([]Server, error) { return ParseCodex(data, "f", getenv) },
		} {
			servers, err := parse()
			for _, s := range servers {
				if err == nil && s.Type == "" && s.Problem == "" {
					t.Fatalf("server %q has no type and no problem", s.Name)
				}
			}
		}
		_ = Detect("f", data)
	})
}
