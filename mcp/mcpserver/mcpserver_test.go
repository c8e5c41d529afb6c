package mcpserver

import (
	"strings"
	"testing"
	"time"
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
