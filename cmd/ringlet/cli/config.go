package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change settings in config.toml",
		Long: `Read and change settings in $XDG_CONFIG_HOME/ringlet/config.toml.

Only the keys below exist; unknown keys and invalid values are refused.
Changes are written atomically. The daemon reads them when it starts: a
change while one runs is written, and the command exits 1 saying that the
running daemon still uses the old value until it is restarted.

` + keyHelp(),
		Example: `  ringlet config list
  ringlet config set daemon.idle_timeout 30m
  ringlet config get credentials.backend
  ringlet config unset daemon.listen`,
	}
	cmd.AddCommand(a.configListCmd(), a.configGetCmd(), a.configSetCmd(), a.configUnsetCmd())
	return cmd
}

func keyHelp() string {
	var b strings.Builder
	b.WriteString("Keys:\n")
	for _, k := range config.Keys {
		fmt.Fprintf(&b, "  %-20s %s", k.Name, k.Help)
		if k.Allowed != nil {
			fmt.Fprintf(&b, " (%s)", strings.Join(k.Allowed, "|"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func completeKeys(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		if k, err := config.LookupKey(args[0]); err == nil && len(args) == 1 {
			return k.Allowed, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, k := range config.Keys {
		out = append(out, k.Name+"\t"+k.Help)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

type configEntry struct {
	Key     string   `json:"key"`
	Value   string   `json:"value"`
	Default string   `json:"default"`
	Set     bool     `json:"set"`
	Allowed []string `json:"allowed,omitempty"`
	Help    string   `json:"help"`
}

func (a *app) entry(cfg *config.Config, k config.Key) configEntry {
	def := k.Default(a.paths)
	v, set := k.Get(cfg)
	if !set {
		v = def
	}
	return configEntry{Key: k.Name, Value: v, Default: def, Set: set, Allowed: k.Allowed, Help: k.Help}
}

func (a *app) configListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List every key with its value and default",
		Example: "  ringlet config list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			entries := make([]configEntry, 0, len(config.Keys))
			for _, k := range config.Keys {
				entries = append(entries, a.entry(cfg, k))
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, entries)
			}
			t := newTable(a.stdio.Out)
			t.row("KEY", "VALUE", "DEFAULT", "SOURCE")
			for _, e := range entries {
				src := "default"
				if e.Set {
					src = "config"
				}
				t.row(e.Key, e.Value, e.Default, src)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) configGetCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "get KEY",
		Short:             "Print the value of a key (its default when unset)",
		Example:           "  ringlet config get daemon.listen",
		Args:              exactArgs(1, "KEY"),
		ValidArgsFunction: completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := config.LookupKey(args[0])
			if err != nil {
				return usageError{err}
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			e := a.entry(cfg, k)
			if asJSON {
				return writeJSONOut(a.stdio.Out, e)
			}
			fmt.Fprintln(a.stdio.Out, printable(e.Value))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) configSetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set a key",
		Example: `  ringlet config set daemon.listen 127.0.0.1:9000
  ringlet config set credentials.backend file`,
		Args:              exactArgs(2, "KEY VALUE"),
		ValidArgsFunction: completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := config.LookupKey(args[0])
			if err != nil {
				return usageError{err}
			}
			if err := k.ValidateValue(args[1]); err != nil {
				return usageError{err}
			}
			return a.updateConfigKey(k, func(cfg *config.Config) error { return k.Set(cfg, args[1]) })
		},
	}
}

func (a *app) configUnsetCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "unset KEY",
		Short:             "Remove a key so its default applies",
		Example:           "  ringlet config unset daemon.idle_timeout",
		Args:              exactArgs(1, "KEY"),
		ValidArgsFunction: completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := config.LookupKey(args[0])
			if err != nil {
				return usageError{err}
			}
			return a.updateConfigKey(k, func(cfg *config.Config) error { k.Unset(cfg); return nil })
		},
	}
}

// updateConfig loads, changes and atomically saves config.toml. A file
// that does not parse is not overwritten: the user has to fix it first,
// so nothing they wrote is lost.
func (a *app) updateConfig(change func(*config.Config) error) error {
	paths, err := a.needPaths()
	if err != nil {
		return err
	}
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		return err
	}
	if err := change(cfg); err != nil {
		return err
	}
	return config.Save(paths.ConfigFile(), cfg)
}

// updateConfigKey is updateConfig for one key. The daemon reads its
// settings when it starts: when one is running and the key's effective
// value changed, the file is written but the command says that the daemon
// still uses the old value and exits 1, since going on as if the change
// were in effect would mislead (a 'keychain set' after changing
// credentials.backend still goes to the old backend).
func (a *app) updateConfigKey(k config.Key, change func(*config.Config) error) error {
	paths, err := a.needPaths()
	if err != nil {
		return err
	}
	before, err := config.Load(paths.ConfigFile())
	if err != nil {
		return err
	}
	old := a.entry(before, k).Value
	if err := a.updateConfig(change); err != nil {
		return err
	}
	after, err := config.Load(paths.ConfigFile())
	if err != nil {
		return err
	}
	st, ok := client.ReadState(paths.StateFile())
	if now := a.entry(after, k).Value; now == old || !ok || !client.ProcessAlive(st.PID) {
		return nil
	}
	return fmt.Errorf("%s is now %q in config.toml, but the running daemon (pid %d) still uses %q: restart it to apply (ringlet daemon stop, then start it again)",
		k.Name, printable(a.entry(after, k).Value), st.PID, printable(old))
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
// argsBetween is cobra.RangeArgs with a message that names the arguments.
func argsBetween(lo, hi int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || hi >= 0 && len(args) > hi {
			return usagef("%s takes %s (got %d argument(s))", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s needs %s (got %d argument(s))", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}
