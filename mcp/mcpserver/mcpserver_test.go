package mcpserver

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
		{"env and secrets", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"DEBUG": "1", "_X": ""}, Secrets: map[string]string{"GITHUB_TOKEN": "github/work", "B": "token"}}, true},
		{"env for a URL", Config{Name: "fs", URL: "https://mcp.example.com/mcp", Env: map[string]string{"A": "b"}}, false},
		{"a secret for a URL", Config{Name: "fs", URL: "https://mcp.example.com/mcp", Secrets: map[string]string{"A": "p/a"}}, false},
		{"PATH replaced", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"PATH": "/tmp"}}, false},
		{"HOME as a secret", Config{Name: "fs", Command: []string{"x"}, Secrets: map[string]string{"HOME": "p/a"}}, false},
		{"a name with a dash", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"A-B": "1"}}, false},
		{"a name starting with a digit", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"1A": "1"}}, false},
		{"a name with =", Config{Name: "fs", Command: []string{"x"}, Secrets: map[string]string{"A=B": "p/a"}}, false},
		{"a value with NUL", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"A": "a\x00b"}}, false},
		{"a value too long", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"A": strings.Repeat("a", maxEnvValue+1)}}, false},
		{"both plain and secret", Config{Name: "fs", Command: []string{"x"}, Env: map[string]string{"A": "1"}, Secrets: map[string]string{"A": "p/a"}}, false},
		{"a reference that climbs", Config{Name: "fs", Command: []string{"x"}, Secrets: map[string]string{"A": "../a"}}, false},
		{"a reference with three parts", Config{Name: "fs", Command: []string{"x"}, Secrets: map[string]string{"A": "p/a/b"}}, false},
		{"an upper-case reference", Config{Name: "fs", Command: []string{"x"}, Secrets: map[string]string{"A": "GitHub/work"}}, false},
		{"too many variables", Config{Name: "fs", Command: []string{"x"}, Env: func() map[string]string {
			m := map[string]string{}
			for i := range MaxEnv + 1 {
				m["V"+strings.Repeat("X", i)] = "1"
			}
			return m
		}()}, false},
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

func TestSecretRefs(t *testing.T) {
	t.Parallel()
	c := Config{Name: "gh", Command: []string{"x"}, Secrets: map[string]string{"A": "github/work", "B": "token"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Secrets["A"] != "github/work" || c.Secrets["B"] != SecretProvider+"/token" {
		t.Errorf("references: got %v, want github/work and mcp/token", c.Secrets)
	}
	if got := c.EnvNames(); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("EnvNames: got %v", got)
	}
}

func TestEnvChangeApply(t *testing.T) {
	t.Parallel()
	base := func() Config {
		return Config{Name: "gh", Command: []string{"x"}, Env: map[string]string{"DEBUG": "1"}, Secrets: map[string]string{"TOKEN": "p/a"}}
	}
	for _, tc := range []struct {
		name        string
		ch          EnvChange
		env, secret map[string]string
		wantErr     string
	}{
		{"set both", EnvChange{Env: map[string]string{"MODE": "x"}, Secrets: map[string]string{"OTHER": "p/b"}},
			map[string]string{"DEBUG": "1", "MODE": "x"}, map[string]string{"TOKEN": "p/a", "OTHER": "p/b"}, ""},
		{"replace", EnvChange{Env: map[string]string{"DEBUG": "0"}, Secrets: map[string]string{"TOKEN": "p/c"}},
			map[string]string{"DEBUG": "0"}, map[string]string{"TOKEN": "p/c"}, ""},
		{"unset all", EnvChange{UnsetEnv: []string{"DEBUG"}, UnsetSecrets: []string{"TOKEN"}}, nil, nil, ""},
		{"a plain variable becomes a secret", EnvChange{Secrets: map[string]string{"DEBUG": "p/a"}}, nil, nil, "--unset-env DEBUG"},
		{"a secret becomes plain", EnvChange{Env: map[string]string{"TOKEN": "v"}}, nil, nil, "--unset-secret TOKEN"},
		{"unset then make it plain", EnvChange{UnsetSecrets: []string{"TOKEN"}, Env: map[string]string{"TOKEN": "v"}},
			map[string]string{"DEBUG": "1", "TOKEN": "v"}, nil, ""},
		{"unset what is not there", EnvChange{UnsetEnv: []string{"NOPE"}}, nil, nil, "no variable NOPE"},
		{"unset a secret that is not there", EnvChange{UnsetSecrets: []string{"DEBUG"}}, nil, nil, "no secret DEBUG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			err := tc.ch.Apply(&c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(c.Env, tc.env) || !maps.Equal(c.Secrets, tc.secret) {
				t.Errorf("got env %v secrets %v, want %v %v", c.Env, c.Secrets, tc.env, tc.secret)
			}
		})
	}
}
