package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/provider"
)

func (a *app) pricesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prices",
		Short: "The price table that 'ringlet usage' computes cost with",
		Long: `Ringlet prices provider requests with a table of USD per million tokens
by provider and model. The built-in table is generated from the models.dev
catalog; 'prices import' lays a newer one over it (LiteLLM's
model_prices_and_context_window.json or models.dev's api.json), and
prices.toml in the config dir overrides both. A model none of them prices
shows as "unknown" in 'ringlet usage'.`,
		Example: `  ringlet prices list --model 'claude-*'
  ringlet prices show claude-sonnet-4-20250514
  ringlet prices import model_prices_and_context_window.json --dry-run
  ringlet prices reset`,
	}
	cmd.AddCommand(a.pricesListCmd(), a.pricesShowCmd(), a.pricesImportCmd(), a.pricesResetCmd())
	return cmd
}

// completeModels completes a model name from the built-in table.
func completeModels(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range provider.Builtin().Prices {
		if strings.HasPrefix(e.Model, prefix) && !seen[e.Model] {
			seen[e.Model] = true
			out = append(out, e.Model)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completePriceProviders completes a provider id from the built-in table.
func completePriceProviders(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	seen := map[string]bool{}
	var out []string
	for _, e := range provider.Builtin().Prices {
		if strings.HasPrefix(e.Provider, prefix) && !seen[e.Provider] {
			seen[e.Provider] = true
			out = append(out, e.Provider)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// usd prints a price, "-" for none.
func usd(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func (a *app) pricesListCmd() *cobra.Command {
	var asJSON bool
	var glob, prov string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the prices in effect, USD per million tokens",
		Example: `  ringlet prices list --provider anthropic
  ringlet prices list --model 'gpt-4*' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.Prices(cmd.Context(), glob, prov)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			for _, l := range out.Layers {
				fmt.Fprintf(a.stdio.Out, "# %s: %s\n", l.Layer, printable(l.Source))
			}
			if len(out.Prices) == 0 {
				fmt.Fprintln(a.stdio.Out, "no price matches")
				return nil
			}
			t := newTable(a.stdio.Out)
			t.row("PROVIDER", "MODEL", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "FROM")
			for _, e := range out.Prices {
				p := e.Provider
				if p == "" {
					p = "*"
				}
				t.row(p, e.Model, usd(&e.Input), usd(&e.Output), usd(e.CacheRead), usd(e.CacheWrite), e.Layer)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&glob, "model", "", "only models matching this glob ('claude-*')")
	f.StringVar(&prov, "provider", "", "only this provider's prices")
	mustFlag(cmd.RegisterFlagCompletionFunc("provider", completePriceProviders))
	mustFlag(cmd.RegisterFlagCompletionFunc("model", completeModels))
	return cmd
}

func (a *app) pricesShowCmd() *cobra.Command {
	var asJSON bool
	var prov string
	cmd := &cobra.Command{
		Use:   "show MODEL",
		Short: "Show the price 'ringlet usage' applies to a model, and where it comes from",
		Long: `Show the price of MODEL at --provider (a provider id of the catalog:
anthropic, openai, openrouter, ...) as 'ringlet usage' applies it. A model
is matched by its exact name; prices.toml's entries also by the longest
prefix. Without --provider, or for a provider the table does not list, a
model is priced only where every provider that lists it agrees.`,
		Example: `  ringlet prices show claude-sonnet-4-20250514 --provider anthropic
  ringlet prices show gpt-4o --json`,
		Args:              exactArgs(1, "MODEL"),
		ValidArgsFunction: completeModels,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.LookupPrice(cmd.Context(), prov, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			if !out.Known {
				fmt.Fprintf(a.stdio.Out, "%s: unknown (no price in the table; 'ringlet prices import' a newer one, or add it to prices.toml)\n", printable(args[0]))
				return nil
			}
			m := out.Match
			fmt.Fprintf(a.stdio.Out, "model        %s\n", printable(m.Model))
			if m.Provider != "" {
				fmt.Fprintf(a.stdio.Out, "provider     %s\n", printable(m.Provider))
			}
			fmt.Fprintf(a.stdio.Out, "input        %s USD per million tokens\n", usd(&m.Input))
			fmt.Fprintf(a.stdio.Out, "output       %s\n", usd(&m.Output))
			fmt.Fprintf(a.stdio.Out, "cache read   %s\n", usd(m.CacheRead))
			fmt.Fprintf(a.stdio.Out, "cache write  %s\n", usd(m.CacheWrite))
			fmt.Fprintf(a.stdio.Out, "from         %s: %s\n", m.Layer, printable(m.Source))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&prov, "provider", "", "the provider (default: any that agrees)")
	mustFlag(cmd.RegisterFlagCompletionFunc("provider", completePriceProviders))
	return cmd
}

func (a *app) pricesImportCmd() *cobra.Command {
	var asJSON, dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Lay a price file over the built-in table (LiteLLM or models.dev format)",
		Long: `Read FILE, LiteLLM's model_prices_and_context_window.json or models.dev's
api.json (the format is detected), check every price in it and store it
as the imported table, over the built-in one: a model it prices is priced
by it, the rest as before. A negative, non-numeric or implausibly large
price refuses the whole file. 'prices reset' removes it.`,
		Example: `  ringlet prices import model_prices_and_context_window.json --dry-run
  ringlet prices import api.json --json`,
		Args: exactArgs(1, "FILE"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readPriceFile(args[0])
			if err != nil {
				return err
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.ImportPrices(cmd.Context(), filepath.Base(args[0]), data, dryRun)
			var ce *client.Error
			if errors.As(err, &ce) && ce.Code == "invalid_prices" {
				return fmt.Errorf("%s: %s; nothing imported", printable(args[0]), ce.Message)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			verb, note := "imported", ""
			if dryRun {
				verb, note = "would import", "; dry run: nothing stored"
			}
			fmt.Fprintf(a.stdio.Out, "%s %d prices of %d providers from %s (%s format%s)\n", verb, out.Models, out.Providers, printable(args[0]), out.Format, note)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and say what it holds, storing nothing")
	return cmd
}

// readPriceFile reads a price file of at most provider.MaxImportedPrices
// bytes.
func readPriceFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, below
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, provider.MaxImportedPrices+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > provider.MaxImportedPrices {
		return nil, fmt.Errorf("%s is larger than %d MiB; a price file is a few MiB", name, provider.MaxImportedPrices>>20)
	}
	return data, nil
}

func (a *app) pricesResetCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "reset",
		Short:   "Remove the imported price table: the built-in one applies again",
		Example: "  ringlet prices reset",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.ResetPrices(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, out)
			}
			if out.Removed {
				fmt.Fprintln(a.stdio.Out, "removed the imported prices; the built-in table applies")
			} else {
				fmt.Fprintln(a.stdio.Out, "no imported prices; the built-in table applies")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
