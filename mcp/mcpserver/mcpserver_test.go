package mcpserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/toolchain"
)

func TestServerConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    Config
		ok   bool
	}{
		{"minimal", Config{Name: "fs", Command: []string{"npx", "-y", "x"}}, true},
		{"digits and dashes", Config{Name: "my-server-2", Command: []string{"x"}}, true},
		{"underscore", Config{Name: "my_server", Command: []string{"x"}}, false},
		{"upper case", Config{Name: "FS", Command: []string{"x"}}, false},
		{"trailing dash", Config{Name: "fs-", Command: []string{"x"}}, false},
		{"too long", Config{Name: strings.Repeat("a", 33), Command: []string{"x"}}, false},
		{"path", Config{Name: "../fs", Command: []string{"x"}}, false},
		{"no command", Config{Name: "fs"}, false},
		{"empty command", Config{Name: "fs", Command: []string{" "}}, false},
		{"NUL", Config{Name: "fs", Command: []string{"x", "a\x00b"}}, false},
		{"timeout too short", Config{Name: "fs", Command: []string{"x"}, Timeout: time.Millisecond}, false},
		{"timeout too long", Config{Name: "fs", Command: []string{"x"}, Timeout: time.Hour}, false},
		{"url", Config{Name: "fs", URL: "http://127.0.0.1:9/mcp"}, true},
		{"url port out of range", Config{Name: "fs", URL: "http://127.0.0.1:99999/mcp"}, false},
		{"url port zero", Config{Name: "fs", URL: "https://mcp.example.com:0/mcp"}, false},
		{"path and shims", Config{Name: "fs", Command: []string{"x"}, Path: "/a:/b", Shims: map[string]string{"/h/.pyenv/shims/x": "/h/.pyenv/versions/3/bin/x"}}, true},
		{"path with a newline", Config{Name: "fs", Command: []string{"x"}, Path: "/a\n/b"}, false},
		{"a relative shim", Config{Name: "fs", Command: []string{"x"}, Shims: map[string]string{"shims/x": "/v/x"}}, false},
		{"a shim's program as an option", Config{Name: "fs", Command: []string{"x"}, Shims: map[string]string{"/s/x": "--bind"}}, false},
		{"shims for a URL", Config{Name: "fs", URL: "https://mcp.example.com/mcp", Shims: map[string]string{"/s/x": "/v/x"}}, false},
		{"too many shims", Config{Name: "fs", Command: []string{"x"}, Shims: func() map[string]string {
			m := map[string]string{}
			for i := range maxShims + 1 {
				m["/s/"+strings.Repeat("x", i+1)] = "/v/x"
			}
			return m
		}()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
			if err == nil && tc.c.Timeout != DefaultCallTimeout {
				t.Errorf("timeout: got %s, want the default %s", tc.c.Timeout, DefaultCallTimeout)
			}
		})
	}
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	for u, ok := range map[string]bool{
		"https://mcp.example.com/mcp":       true,
		"http://127.0.0.1:9000/mcp":         true,
		"http://localhost:9000/mcp":         true,
		"http://[::1]:9000/mcp":             true,
		"http://mcp.example.com/mcp":        false,
		"http://10.0.0.1/mcp":               false,
		"https://user:pw@mcp.example.com/":  false,
		"https://mcp.example.com/#fragment": false,
		"https://mcp.example.com/?key=sk":   false,
		"ftp://mcp.example.com/":            false,
		"mcp.example.com":                   false,
	} {
		if err := validateURL(u); (err == nil) != ok {
			t.Errorf("%s: got %v, want ok=%v", u, err, ok)
		}
	}
	if err := (&Config{Name: "x", URL: "https://a.example/", Command: []string{"y"}}).Validate(); err == nil {
		t.Error("a server with a command and a URL was accepted")
	}
}

func TestShimFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shim := filepath.Join(dir, ".pyenv", "shims", "python3")
	if err := os.MkdirAll(filepath.Dir(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shim, []byte("#!/usr/bin/env bash\nexec \"/u/.pyenv/libexec/pyenv\" exec \"$program\" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := toolchain.Resolve(shim, toolchain.Options{})
	c := Config{Name: "py", Command: []string{"python3", "my server.py"}, ReadOnly: []string{"/srv/a b"}, Network: NetworkHost}
	want := `python3 is a pyenv shim (` + shim + `); the sandbox cannot run pyenv: add it with the program itself, ` +
		`ringlet mcp add work py --ro '/srv/a b' --network host -- "$(pyenv which python3)" 'my server.py', or with --no-sandbox`
	if got := c.ShimFix(err, "work", true); got == nil || got.Error() != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
	if other := errors.New("other"); c.ShimFix(other, "work", true) != other {
		t.Error("an error that is no shim's changed")
	}
}
