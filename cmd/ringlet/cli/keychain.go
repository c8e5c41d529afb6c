package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/credentials"
)

func (a *app) keychainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keychain",
		Short: "Store provider API keys in the OS keychain (or a 0600 file)",
		Long: `Store provider API keys as ringlet/<provider>/<alias> in the OS credential store:
the macOS Keychain, the Secret Service on Linux (GNOME Keyring, KWallet), or
Windows Credential Manager. On a machine without one (headless Linux), keys
go to ~/.config/ringlet/credentials.toml with mode 0600.

credentials.backend chooses: auto (default: the keyring when one is
reachable, else the file), keyring, or file. A keyring that exists but
fails (locked, D-Bus error) is an error, never a silent fall back.

Keys are never printed, not even in part, and never taken from the command
line or an environment variable.

The daemon keeps the keys: these commands ask it, starting it in the
background when it is not running, so that a replaced or removed key also
ends the sessions that hold the old one, and every change is in its audit
log.`,
		Example: `  ringlet keychain set anthropic work          # prompts without echo
  pass show anthropic | ringlet keychain set anthropic work
  ringlet keychain list
  ringlet keychain remove anthropic work
  ringlet config set credentials.backend file   # force the file on a headless server
  ringlet keychain migrate --to file`,
	}
	cmd.AddCommand(a.keychainListCmd(), a.keychainSetCmd(), a.keychainRemoveCmd(), a.keychainMigrateCmd())
	return cmd
}

func (a *app) keychainListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored keys: names, backend, status and dates, never the key",
		Long: `List stored keys. STATUS is ok (the key is there), missing (the index
names it but the backend no longer has it: set it again or remove it) or
unavailable (the backend cannot be asked right now). Why a key is
unavailable or unindexed is said below the table, once for all the keys
it concerns; --json gives it with each key.`,
		Example: "  ringlet keychain list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			entries, err := c.Keys(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, entries, "no keys stored; add one with 'ringlet keychain set <provider> <alias>'"); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("PROVIDER", "ALIAS", "BACKEND", "STATUS", "CREATED", "UPDATED")
			for _, e := range entries {
				t.row(e.Provider, e.Alias, e.Backend, e.Status, e.Created.Format(time.DateTime), e.Updated.Format(time.DateTime))
			}
			if err := t.flush(); err != nil {
				return err
			}
			// A backend that cannot be asked gives every key in it the
			// same long reason: it is said once, below the table.
			notes := keychainNotes(entries)
			if len(notes) > 0 {
				fmt.Fprintln(a.stdio.Out)
			}
			for _, n := range notes {
				fmt.Fprintln(a.stdio.Out, printable(n))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// keychainNotes says each distinct reason of the entries' statuses once,
// with how many keys it concerns, in the order the entries first give it.
func keychainNotes(entries []credentials.Entry) []string {
	type note struct{ status, backend, detail string }
	var order []note
	count := map[note]int{}
	for _, e := range entries {
		if e.Detail == "" {
			continue
		}
		n := note{e.Status, e.Backend, e.Detail}
		if count[n] == 0 {
			order = append(order, n)
		}
		count[n]++
	}
	out := make([]string, 0, len(order))
	for _, n := range order {
		keys := "1 key"
		if c := count[n]; c > 1 {
			keys = strconv.Itoa(c) + " keys"
		}
		out = append(out, fmt.Sprintf("%s (%s in the %s backend): %s", n.status, keys, n.backend, n.detail))
	}
	return out
}

func refArgs(args []string) (credentials.Ref, error) {
	r, err := credentials.NewRef(args[0], args[1])
	if err != nil {
		return credentials.Ref{}, usageError{err}
	}
	return r, nil
}

func (a *app) keychainSetCmd() *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "set PROVIDER ALIAS",
		Short: "Store a key, read from the terminal without echo or from stdin",
		Long: `Store the key for PROVIDER/ALIAS, replacing any earlier one. On a terminal
the key is read without echo; otherwise (or with --from-stdin) it is read
from standard input, one line. There is deliberately no flag or variable
for the key itself: argv and the environment leak into shell history and
process listings.`,
		Example: `  ringlet keychain set anthropic work
  printf '%s' "$KEY" | ringlet keychain set openai personal --from-stdin`,
		Args: exactArgs(2, "PROVIDER ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := refArgs(args)
			if err != nil {
				return err
			}
			key, err := a.readKey(r, fromStdin)
			if err != nil {
				return err
			}
			c, err := a.keyDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.SetKey(cmd.Context(), r, key)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Err, "ringlet: credentials: using the %s backend (through the running daemon)\n", out.Backend)
			fmt.Fprintf(a.stdio.Out, "stored %s in the %s backend%s\n", r, out.Backend, sessionsEnded(out, "the old key"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "from-stdin", false, "read the key from standard input even on a terminal")
	return cmd
}

// readKey reads a key without echo from a terminal, or one line from a
// pipe, and validates it.
func (a *app) readKey(r credentials.Ref, fromStdin bool) (string, error) {
	var key string
	if f, ok := a.stdio.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !fromStdin {
		b, err := readHidden(int(f.Fd()), func() { fmt.Fprintf(a.stdio.Err, "Key for %s (input hidden): ", r) })
		fmt.Fprintln(a.stdio.Err)
		if err != nil {
			return "", fmt.Errorf("read the key from the terminal: %w", err)
		}
		key = string(b)
	} else {
		b, err := io.ReadAll(io.LimitReader(bufio.NewReader(a.stdio.In), credentials.MaxKeyLen+3))
		if err != nil {
			return "", fmt.Errorf("read the key from stdin: %w", err)
		}
		key = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if err := credentials.ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

func (a *app) keychainRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove PROVIDER ALIAS",
		Aliases: []string{"rm"},
		Short:   "Remove a stored key from its backend and the index",
		Example: "  ringlet keychain remove anthropic work",
		Args:    exactArgs(2, "PROVIDER ALIAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := refArgs(args)
			if err != nil {
				return err
			}
			c, err := a.keyDaemon(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.RemoveKey(cmd.Context(), r)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "removed %s from the %s backend%s\n", r, out.Backend, sessionsEnded(out, "the key"))
			return nil
		},
	}
}

// sessionsEnded says how many sessions a key change ended, if any.
func sessionsEnded(k api.KeychainChange, what string) string {
	switch k.SessionsEnded {
	case 0:
		return ""
	case 1:
		return "; ended 1 live session that held " + what
	}
	return fmt.Sprintf("; ended %d live sessions that held %s", k.SessionsEnded, what)
}

// keyDaemon is ensureDaemon for a key change. Only the daemon changes the
// credential store, so that it also ends the sessions that hold the old
// key; a daemon that runs but refuses to be asked (a stale RINGLET_TOKEN)
// leaves the key as it is.
func (a *app) keyDaemon(ctx context.Context) (*client.Client, error) {
	c, err := a.ensureDaemon(ctx)
	var refused *client.Error
	if errors.As(err, &refused) {
		return nil, fmt.Errorf("could not ask the ringlet daemon to change the key (%v); the key is not changed behind its back", err)
	}
	return c, err
}

func (a *app) keychainMigrateCmd() *cobra.Command {
	var to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate --to file|keyring",
		Short: "Move every stored key to another backend",
		Long: `Move every stored key to the file or keyring backend. Each key is read back
from its new place and compared before it is deleted from the old one; on
an error the command stops and that key stays where it was.

New keys still go where credentials.backend says; change it too if you
want them in the new place.`,
		Example: `  ringlet keychain migrate --to keyring
  ringlet keychain migrate --to file && ringlet config set credentials.backend file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to != credentials.BackendFile && to != credentials.BackendKeyring {
				return usagef("--to must be file or keyring (got %q)", to)
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			results, err := c.MigrateKeys(cmd.Context(), to)
			if err != nil {
				return err
			}
			if asJSON {
				if results == nil {
					results = []credentials.MigrateResult{}
				}
				return writeJSONOut(a.stdio.Out, results)
			}
			for _, r := range results {
				fmt.Fprintf(a.stdio.Out, "%-8s %s\n", r.Result, r.Entry.Ref())
			}
			fmt.Fprintf(a.stdio.Out, "every key is now in the %s backend\n", to)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target backend: file or keyring (required)")
	mustFlag(cmd.MarkFlagRequired("to"))
	mustFlag(cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]string{"file", "keyring"}, cobra.ShellCompDirectiveNoFileComp)))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
