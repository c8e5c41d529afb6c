package cli

import (
	"bytes"
	"context"
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
