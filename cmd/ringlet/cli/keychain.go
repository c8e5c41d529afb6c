package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/gateway"
)

// sessionBus is the D-Bus session bus address the keyring would use, or ""
// when there is none; go-keyring finds the same one.
func (a *app) sessionBus() string {
	if v := a.getenv("DBUS_SESSION_BUS_ADDRESS"); v != "" && v != "autolaunch:" {
		return v
	}
	if rd := a.getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rd) {
		p := filepath.Join(rd, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return "unix:path=" + p
		}
	}
	return ""
}

// keyStore opens the credential store as configured. Which backend it
// picked, and why, is said once on stderr when it is first used.
func (a *app) keyStore() (*keystore.Store, error) {
	paths, err := a.needPaths()
	if err != nil {
		return nil, err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return keystore.Open(keystore.Options{
		Dir:        paths.ConfigDir,
		Backend:    cfg.Credentials.Backend,
		SessionBus: a.sessionBus(),
		OnChoose: func(backend, why string) {
			fmt.Fprintf(a.stdio.Err, "ringlet: credentials: using the %s backend (%s)\n", backend, why)
		},
	})
}

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
line or an environment variable.`,
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
unavailable (the backend cannot be asked right now; DETAIL says why).`,
		Example: "  ringlet keychain list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.keyStore()
			if err != nil {
				return err
			}
			entries, err := s.List()
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, entries, "no keys stored; add one with 'ringlet keychain set <provider> <alias>'"); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("PROVIDER", "ALIAS", "BACKEND", "STATUS", "CREATED", "UPDATED")
			for _, e := range entries {
				status := e.Status
				if e.Detail != "" {
					status += ": " + e.Detail
				}
				t.row(e.Provider, e.Alias, e.Backend, status, e.Created.Format(time.DateTime), e.Updated.Format(time.DateTime))
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
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
			c, err := a.runningDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if c != nil {
				var out gateway.KeychainChange
				if err := c.Do(cmd.Context(), "PUT", "/api/keychain/"+r.Provider+"/"+r.Alias, map[string]string{"key": key}, &out); err != nil {
					return err
				}
				fmt.Fprintf(a.stdio.Err, "ringlet: credentials: using the %s backend (through the running daemon)\n", out.Backend)
				fmt.Fprintf(a.stdio.Out, "stored %s in the %s backend%s\n", r, out.Backend, sessionsEnded(out, "the old key"))
				return nil
			}
			s, err := a.keyStore()
			if err != nil {
				return err
			}
			if err := a.recordCLI(cmd.Context(), audit.Record{Kind: audit.KindCredentialSet, Target: r.String(), Decision: audit.Allow}); err != nil {
				return err
			}
			e, err := s.Set(r, credentials.NewSecret(key))
			if err != nil {
				a.recordCLIFailure(cmd.Context(), audit.KindCredentialSet, r, err)
				return err
			}
			fmt.Fprintf(a.stdio.Out, "stored %s in the %s backend\n", r, e.Backend)
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
		fmt.Fprintf(a.stdio.Err, "Key for %s (input hidden): ", r)
		b, err := term.ReadPassword(int(f.Fd()))
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
			c, err := a.runningDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if c != nil {
				var out gateway.KeychainChange
				if err := c.Do(cmd.Context(), "DELETE", "/api/keychain/"+r.Provider+"/"+r.Alias, nil, &out); err != nil {
					return err
				}
				fmt.Fprintf(a.stdio.Out, "removed %s from the %s backend%s\n", r, out.Backend, sessionsEnded(out, "the key"))
				return nil
			}
			s, err := a.keyStore()
			if err != nil {
				return err
			}
			if err := a.recordCLI(cmd.Context(), audit.Record{Kind: audit.KindCredentialRemove, Target: r.String(), Decision: audit.Allow}); err != nil {
				return err
			}
			e, err := s.Remove(r)
			if err != nil {
				a.recordCLIFailure(cmd.Context(), audit.KindCredentialRemove, r, err)
				return err
			}
			fmt.Fprintf(a.stdio.Out, "removed %s from the %s backend\n", r, e.Backend)
			return nil
		},
	}
}

// sessionsEnded says how many sessions a key change ended, if any.
func sessionsEnded(k gateway.KeychainChange, what string) string {
	switch k.SessionsEnded {
	case 0:
		return ""
	case 1:
		return "; ended 1 live session that held " + what
	}
	return fmt.Sprintf("; ended %d live sessions that held %s", k.SessionsEnded, what)
}

// runningDaemon returns a client for the running daemon, or nil when none
// runs. A key is stored or removed through a running daemon, so that it
// also ends the sessions that hold the old key; with no daemon there are
// no sessions, and the CLI uses the store itself. A daemon that runs but
// cannot be asked (a stale RINGLET_TOKEN, a missing token file) is an
// error: changing the store behind its back would leave its sessions on
// the old key.
func (a *app) runningDaemon(ctx context.Context) (*client.Client, error) {
	c, err := a.daemonClient()
	if err == nil {
		if err = c.Do(ctx, "GET", "/api/version", nil, nil); err == nil {
			return c, nil
		}
	}
	if errors.Is(err, client.ErrNotRunning) && a.getenv("RINGLET_URL") == "" {
		if paths, perr := a.needPaths(); perr == nil {
			if st, ok := readState(paths); ok && processAlive(st.PID) {
				return nil, fmt.Errorf("a ringlet daemon runs (pid %d) but does not answer (%v); the key is not changed behind its back: fix that or stop it with 'ringlet daemon stop', then try again", st.PID, err)
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("could not ask the ringlet daemon to change the key (%v); the key is not changed behind its back", err)
}

// recordCLIFailure follows an allowed record whose action then failed.
func (a *app) recordCLIFailure(ctx context.Context, kind string, r credentials.Ref, err error) {
	_ = a.recordCLI(ctx, audit.Record{Kind: kind, Target: r.String(), Decision: audit.Error, Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
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
			s, err := a.keyStore()
			if err != nil {
				return err
			}
			var results []credentials.MigrateResult
			err = s.Migrate(to, func(r credentials.MigrateResult) {
				results = append(results, r)
				if !asJSON {
					fmt.Fprintf(a.stdio.Out, "%-8s %s\n", r.Result, r.Entry.Ref())
				}
			})
			if asJSON {
				if results == nil {
					results = []credentials.MigrateResult{}
				}
				if werr := writeJSONOut(a.stdio.Out, results); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			if !asJSON {
				fmt.Fprintf(a.stdio.Out, "every key is now in the %s backend\n", to)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target backend: file or keyring (required)")
	cmd.MarkFlagRequired("to")
	cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]string{"file", "keyring"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
