package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/toolchain"
)

// resolveOptions find a command as this shell does: on its PATH, from dir
// (its working directory), asking a version manager for the program
// behind its shim here, in the user's environment, where
// .python-version and .tool-versions pick a version. The daemon gets the
// answers (Options.Shims) and never asks a manager itself.
func (a *app) resolveOptions(ctx context.Context, dir string) toolchain.Options {
	return toolchain.Options{
		Path: a.getenv("PATH"), Dir: dir, Homes: []string{a.getenv("HOME")},
		Ask: func(s toolchain.Shim) (string, error) { return s.Ask(ctx, a.environ(), dir) },
	}
}

// describeRuntime says what runs and, in a sandbox, what it reads of
// yours, each line after indent.
func describeRuntime(w io.Writer, indent string, res *toolchain.Resolution, sandboxed bool) {
	fmt.Fprintf(w, "%sruns %s\n", indent, printable(res.Program))
	if len(res.Steps) > 1 {
		hops := make([]string, len(res.Steps))
		for i, s := range res.Steps {
			hops[i] = printable(s.Path) + " (" + printable(s.How) + ")"
		}
		fmt.Fprintf(w, "%sfound as %s\n", indent, strings.Join(hops, " -> "))
	}
	if !sandboxed {
		return
	}
	if len(res.Binds) > 0 {
		fmt.Fprintf(w, "%sits sandbox also reads, read-only: %s\n", indent, printable(strings.Join(res.Binds, " ")))
	}
	if len(res.Path) > 0 {
		fmt.Fprintf(w, "%sfirst on its PATH: %s\n", indent, printable(strings.Join(res.Path, ":")))
	}
}

// agentCommand is the command a profile's agent runs: its own, else its
// agent's from the catalog; nil when neither is known here.
func (a *app) agentCommand(p profile.Profile) []string {
	if len(p.Command) > 0 {
		return p.Command
	}
	cat, err := profile.LoadCatalog(a.paths.ConfigDir)
	if err != nil {
		return nil
	}
	ag, err := cat.Agent(p.Agent)
	if err != nil {
		return nil
	}
	return ag.Command
}

// agentShims are the version managers' answers for the shims on the way
// to the profile's agent, asked here for the daemon, which builds the
// sandbox but never runs a manager. An error only for a manager that
// could not answer; anything else the daemon reports when it checks the
// launch.
func (a *app) agentShims(ctx context.Context, c *client.Client, alias, dir string) (map[string]string, error) {
	v, err := c.Profile(ctx, alias)
	if err != nil {
		return nil, nil //nolint:nilerr // the daemon says what is wrong with the profile
	}
	command := a.agentCommand(v.Profile)
	if len(command) == 0 {
		return nil, nil
	}
	res, err := toolchain.Resolve(command[0], a.resolveOptions(ctx, dir))
	var se *toolchain.ShimError
	switch {
	case errors.As(err, &se) && se.Err != nil:
		return nil, fmt.Errorf("%w: make `%s` name the program, or run it with --no-sandbox", err, se.Shim.Which())
	case err != nil:
		return nil, nil
	}
	return res.Shims, nil
}

// checkAgentCommand resolves the command of a profile being created: a
// shim whose manager cannot answer, or a script whose #! line cannot be
// followed, is refused now rather than at every run. A program that is
// not installed yet is only noted. The resolution is nil then.
func (a *app) checkAgentCommand(ctx context.Context, p profile.Profile, dir string) (*toolchain.Resolution, error) {
	command := a.agentCommand(p)
	if len(command) == 0 {
		return nil, nil
	}
	res, err := toolchain.Resolve(command[0], a.resolveOptions(ctx, dir))
	var se *toolchain.ShimError
	var nf *toolchain.NotFoundError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &se):
		if words := se.Words(command); words != nil && len(p.Command) > 0 {
			return nil, fmt.Errorf("%w: give the program itself, --command \"%s\", or run the profile with --no-sandbox", err, strings.Join(words, " "))
		}
		if w := se.Shim.Which(); w != "" {
			return nil, fmt.Errorf("%w: make `%s` name the program, or run the profile with --no-sandbox", err, w)
		}
		return nil, fmt.Errorf("%w: give the program's own path, or run the profile with --no-sandbox", err)
	case errors.As(err, &nf) && nf.Via == "":
		fmt.Fprintf(a.stdio.Err, "ringlet: note: %s; 'ringlet profiles run %s' looks for it again when it starts\n", printable(err.Error()), p.Alias)
		return nil, nil
	}
	return nil, err
}
