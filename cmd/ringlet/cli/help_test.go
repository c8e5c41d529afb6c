package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExample: every runnable command's --help shows an
// example, as the README's CLI conventions promise.
func TestEveryCommandHasExample(t *testing.T) {
	a := &app{ctx: context.Background(), stdio: Stdio{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, getenv: func(string) string { return "" }}
	root := a.rootCmd()
	var missing []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		// Groups show their subcommands' examples.
		if c.Runnable() && !c.HasSubCommands() && !c.Hidden && c.Example == "" && c.Name() != "help" && !strings.HasPrefix(c.Name(), "__") {
			missing = append(missing, c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	if len(missing) > 0 {
		t.Errorf("commands without an example in --help: %s", strings.Join(missing, ", "))
	}
}

// TestHelpShowsConfiguredAddress: with daemon.listen set, no help text
// names the default address as the daemon's; the root and daemon help
// name the configured one and this user's token file. (The forwarder's
// fixed port inside the sandbox is another thing and may be named.)
func TestHelpShowsConfiguredAddress(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "cfg")}
	getenv := func(k string) string { return env[k] }
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, getenv, os.Environ, nil); code != 0 {
			t.Fatalf("ringlet %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	token := filepath.Join(home, "cfg", "ringlet", "http_token")
	for _, args := range [][]string{{"--help"}, {"daemon", "--help"}} {
		if out := run(args...); !strings.Contains(out, "127.0.0.1:8765 (the default") || !strings.Contains(out, token) {
			t.Errorf("ringlet %s without a config: got %q, want the default address and %s", strings.Join(args, " "), out, token)
		}
	}

	run("config", "set", "daemon.listen", "127.0.0.1:9999")
	for _, args := range [][]string{{"--help"}, {"daemon", "--help"}, {"help", "daemon"}} {
		if out := run(args...); !strings.Contains(out, "127.0.0.1:9999 (daemon.listen)") {
			t.Errorf("ringlet %s with daemon.listen set: got %q, want it to name 127.0.0.1:9999", strings.Join(args, " "), out)
		}
	}
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		if c.Name() != "help" && !c.Hidden {
			out := run(append(path, "--help")...)
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "8765") && !strings.Contains(out, "inside the sandbox") || strings.Contains(line, listenMark) || strings.Contains(line, tokenMark) {
					t.Errorf("ringlet %s --help: line %q names the default port or a mark; want the configured address", strings.Join(path, " "), line)
				}
			}
		}
		for _, s := range c.Commands() {
			walk(append(slices.Clip(path), s.Name()), s)
		}
	}
	a := &app{getenv: getenv}
	walk(nil, a.rootCmd())
}
