package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// TestMCPServerRuntime: a stdio server is resolved when it is added, on
// the PATH and with the version managers' answers it comes with: a shim
// without an answer is refused with the command that adds it right, one
// with an answer runs the program it names with that install bound, and
// only the answers it needs are kept. A server without a sandbox may not
// run what the profile's agents can write.
func TestMCPServerRuntime(t *testing.T) {
	w := newMCPWorld(t)
	home := t.TempDir()
	shims := filepath.Join(home, ".pyenv", "shims")
	shim := filepath.Join(shims, "python3")
	root := filepath.Join(home, ".pyenv", "versions", "3.12.1")
	real := filepath.Join(root, "bin", "python3")
	for p, content := range map[string]string{
		shim:                          "#!/usr/bin/env bash\nexec \"" + filepath.Join(home, ".pyenv", "libexec", "pyenv") + "\" exec \"$program\" \"$@\"\n",
		real:                          "\x7fELF",
		filepath.Join(w.home, "evil"): "\x7fELF",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	add := func(body map[string]any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		return w.rest(t, testToken, "POST", "/api/mcp/servers", string(b))
	}

	status, text := add(map[string]any{"profile": "work", "name": "py", "command": []string{"python3", "s.py"}, "path": shims})
	if want := `ringlet mcp add work py -- \"$(pyenv which python3)\" s.py, or with --no-sandbox`; status != http.StatusBadRequest ||
		!strings.Contains(text, "python3 is a pyenv shim") || !strings.Contains(text, want) {
		t.Errorf("a shim without an answer: got %d %s, want 400 with %s", status, text, want)
	}

	status, text = add(map[string]any{"profile": "work", "name": "py", "command": []string{"python3", "s.py"}, "path": shims,
		"shims": map[string]string{shim: real, "/unused/shim": real}})
	var added api.MCPServerAdded
	if err := json.Unmarshal([]byte(text), &added); status != http.StatusCreated || err != nil {
		t.Fatalf("with the answer: got %d %s, want 201", status, text)
	}
	if added.Runtime == nil || added.Runtime.Program != real || !slices.Equal(added.Runtime.Binds, []string{root}) {
		t.Errorf("runtime: got %+v, want %s with %s bound", added.Runtime, real, root)
	}
	if len(added.Shims) != 1 || added.Shims[shim] != real || added.Path != shims {
		t.Errorf("stored: got shims %v, path %q; want only the answer it needs, and its PATH", added.Shims, added.Path)
	}
	_, text = w.rest(t, testToken, "GET", "/api/mcp/servers?profile=work", "")
	var list api.MCPServerList
	if err := json.Unmarshal([]byte(text), &list); err != nil || len(list.Servers) != 1 || list.Servers[0].Runtime == nil || list.Servers[0].Runtime.Program != real {
		t.Errorf("GET: got %s, want the server with its runtime", text)
	}

	// A server stored without the answer (added before servers kept
	// them): mcp list says what its start would, and how to fix it.
	if _, err := w.s.mcp.srv.AddServer("work", mcpserver.Config{Name: "old", Command: []string{"python3"}, Path: shims}); err != nil {
		t.Fatal(err)
	}
	_, text = w.rest(t, testToken, "GET", "/api/mcp/servers?profile=work", "")
	if err := json.Unmarshal([]byte(text), &list); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list.Servers, func(s mcpserver.Status) bool { return s.Name == "old" })
	if i < 0 || !strings.Contains(list.Servers[i].Error, "python3 is a pyenv shim") || !strings.Contains(list.Servers[i].Error, "ringlet mcp remove work old") {
		t.Errorf("a stored shim without its answer: got %s, want its error naming the shim and the fix", text)
	}

	for name, body := range map[string]map[string]any{
		"no sandbox, in the profile's HOME": {"profile": "work", "name": "evil", "no_sandbox": true, "command": []string{filepath.Join(w.home, "evil")}},
		"no sandbox, an argument there":     {"profile": "work", "name": "evil", "no_sandbox": true, "command": []string{"true", filepath.Join(w.home, "evil")}},
		"HTTP with shims":                   {"profile": "work", "name": "web", "url": "https://mcp.example.com/mcp", "shims": map[string]string{shim: real}},
		"a relative answer":                 {"profile": "work", "name": "rel", "command": []string{"python3"}, "path": shims, "shims": map[string]string{shim: "python3"}},
		"not found":                         {"profile": "work", "name": "nf", "command": []string{"no-such-program-here"}},
		"no sandbox, a variable naming a file there": {"profile": "work", "name": "evil", "no_sandbox": true, "command": []string{"true"},
			"env": map[string]string{"LD_PRELOAD": filepath.Join(w.home, "evil")}},
		"imported, sandboxed, in the profile's HOME": {"profile": "work", "name": "evil", "imported": true, "command": []string{filepath.Join(w.home, "evil")}},
	} {
		if status, text := add(body); status != http.StatusBadRequest {
			t.Errorf("%s: got %d %s, want 400", name, status, text)
		}
	}
	if status, text := add(map[string]any{"profile": "work", "name": "ok", "no_sandbox": true, "command": []string{"true"}}); status != http.StatusCreated {
		t.Errorf("no sandbox, a system program: got %d %s, want 201", status, text)
	}
	// Nor may a variable set later make it run what an agent wrote.
	if status, text := w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/ok", `{"env":{"NODE_OPTIONS":"--require `+filepath.Join(w.home, "evil")+`"}}`); status != http.StatusBadRequest ||
		!strings.Contains(text, "agents of profile work can write") {
		t.Errorf("no sandbox, a variable set to a file there: got %d %s, want 400", status, text)
	}
}
