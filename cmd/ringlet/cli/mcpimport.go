package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/mcp/mcpimport"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
)

// Sources of 'mcp import --from'.
const (
	fromClaude        = "claude"
	fromClaudeDesktop = "claude-desktop"
	fromCodex         = "codex"
	fromVSCode        = "vscode"
)

// importFile is one file 'mcp import' reads.
type importFile struct {
	source, path, format string
	// project is, for ~/.claude.json, the directory whose servers it holds.
	project string
	// agentWritable: the file lies where the profile's agents can write
	// (its workspace), so an agent may have written it.
	agentWritable bool
}

// importRow is one server of an import: what it found, and what it does.
type importRow struct {
	Name       string            `json:"name"`
	SourceName string            `json:"source_name"`
	From       string            `json:"from"`
	Transport  string            `json:"transport"`
	Command    []string          `json:"command,omitempty"`
	URL        string            `json:"url,omitempty"`
	Env        []string          `json:"env,omitempty"`
	Secrets    map[string]string `json:"secrets,omitempty"`
	Credential string            `json:"credential,omitempty"`
	// Headers names an HTTP server's plain headers; HeaderSecrets maps
	// each header that carries a key to where the key is stored.
	Headers       []string          `json:"headers,omitempty"`
	HeaderSecrets map[string]string `json:"header_secrets,omitempty"`
	// Action is add, replace or skip (with Reason).
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Result is what happened: added, or failed with Error.
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`

	req   api.MCPServerRequest
	store map[credentials.Ref]string // keys to store first
}

// importOutput is 'mcp import --json'.
type importOutput struct {
	Profile string      `json:"profile"`
	DryRun  bool        `json:"dry_run"`
	Servers []importRow `json:"servers"`
}

func (a *app) mcpImportCmd() *cobra.Command {
	var from, network string
	var yes, dryRun, asJSON, replace bool
	cmd := &cobra.Command{
		Use:   "import PROFILE [--from claude|claude-desktop|codex|vscode|FILE] [--yes] [--dry-run] [--json]",
		Short: "Add the MCP servers other clients are set up with to a profile",
		Long: `Read the MCP servers that other clients are set up with and add them to a
profile:

  claude          Claude Code: .mcp.json in the profile's workspace, and in
                  ~/.claude.json the workspace's project servers and the
                  user's own (mcpServers)
  claude-desktop  Claude Desktop's claude_desktop_config.json
  codex           Codex's ~/.codex/config.toml ([mcp_servers.NAME])
  vscode          VS Code's .vscode/mcp.json in the profile's workspace
  FILE            any file of one of those shapes

Without --from, every one of them that exists. It shows what it will add
(name, transport, command or URL, variables, which of them are secrets)
and asks first; without a terminal it needs --yes. --dry-run only shows.

A variable whose name or value looks like a secret (KEY, TOKEN, SECRET,
PASSWORD ... in its name, or a value that looks like a key) goes to the
credential store, as mcp/<server>-<variable>, and the server gets it with
--secret; Ringlet's files never hold it. So does an HTTP server's
Authorization: Bearer token (as its --credential) and any other header
that holds a key (sent with --header-secret); its other headers are plain. ${VAR} in Claude Code's
and Codex's files, and ${env:VAR} in VS Code's, are read from this shell,
except in files in the workspace, which the profile's agents can write.
Imported stdio servers run sandboxed (no network unless --network host)
and may not run what the profile's agents can write. A server of the same
name is skipped unless --replace; what cannot be carried over (an SSE
server, a VS Code input, a reserved header such as Host) is skipped,
saying why.`,
		Example: `  ringlet mcp import work --dry-run
  ringlet mcp import work --from claude-desktop --network host
  ringlet mcp import work --from ~/.codex/config.toml --yes --json`,
		Args: exactArgs(1, "PROFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			alias, err := profileArg(args)
			if err != nil {
				return err
			}
			if network != "" && network != mcpserver.NetworkNone && network != mcpserver.NetworkHost {
				return usagef("invalid --network %q; accepted values: none, host", network)
			}
			var p *profile.Profile
			for _, q := range a.profiles() {
				if q.Alias == alias {
					p = &q
					break
				}
			}
			if p == nil {
				return fmt.Errorf("no profile %s ('ringlet profiles list' shows them)", alias)
			}
			files, err := a.importFiles(from, p.Workspace)
			if err != nil {
				return err
			}
			var found []mcpimport.Server
			for _, f := range files {
				got, err := a.readImport(f)
				if err != nil {
					return err
				}
				found = append(found, got...)
			}
			// What the profile and the store hold now, from the daemon:
			// a dry run asks one that runs and starts none.
			var c *client.Client
			if dryRun {
				a.askDaemon(cmd.Context(), func(_ context.Context, cl *client.Client) { c = cl })
			} else if c, err = a.ensureDaemon(cmd.Context()); err != nil {
				return err
			}
			existing, keys := map[string]bool{}, map[credentials.Ref]bool{}
			if c != nil {
				servers, err := c.MCPServers(cmd.Context(), alias)
				if err != nil {
					return err
				}
				for _, s := range servers {
					existing[s.Name] = true
				}
				entries, err := c.Keys(cmd.Context())
				if err != nil {
					return err
				}
				for _, e := range entries {
					keys[e.Ref()] = true
				}
			}
			rows := a.planImport(cmd.Context(), alias, network, found, existing, keys, replace)
			out := importOutput{Profile: alias, DryRun: dryRun, Servers: rows}
			if out.Servers == nil {
				out.Servers = []importRow{}
			}
			adding := slices.ContainsFunc(rows, func(r importRow) bool { return r.Action != "skip" })
			if dryRun || !adding {
				if asJSON {
					return writeJSONOut(a.stdio.Out, out)
				}
				a.showImport(a.stdio.Out, rows)
				if len(rows) == 0 {
					fmt.Fprintln(a.stdio.Out, "found no MCP servers in: "+describeFiles(files))
				} else if dryRun {
					fmt.Fprintln(a.stdio.Out, "dry run: nothing was added")
				} else {
					fmt.Fprintln(a.stdio.Out, "nothing to add")
				}
				return nil
			}
			if !yes {
				f, ok := a.stdio.In.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return usagef("refusing to import without confirmation: not a terminal; see what it would add with --dry-run, then pass --yes")
				}
				a.showImport(a.stdio.Err, rows)
				fmt.Fprintf(a.stdio.Err, "Add these to profile %s, storing the secrets in the credential store? [y/N] ", alias)
				line, _ := bufio.NewReader(f).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return errors.New("nothing was imported")
				}
			}
			failed := a.runImport(cmd.Context(), c, alias, rows, existing)
			out.Servers = rows
			if asJSON {
				if err := writeJSONOut(a.stdio.Out, out); err != nil {
					return err
				}
			} else {
				for _, r := range rows {
					switch {
					case r.Result == "added":
						fmt.Fprintf(a.stdio.Out, "added MCP server %s (from %s)\n", r.Name, printable(r.From))
					case r.Error != "":
						fmt.Fprintf(a.stdio.Out, "not added: %s: %s\n", r.Name, printable(r.Error))
					case r.Action == "skip":
						fmt.Fprintf(a.stdio.Out, "skipped %s: %s\n", printable(r.SourceName), printable(r.Reason))
					}
				}
				if network != mcpserver.NetworkHost && slices.ContainsFunc(rows, func(r importRow) bool { return r.Result == "added" && r.Transport == "stdio" }) {
					fmt.Fprintln(a.stdio.Out, "the stdio servers run in the profile's sandbox without network; for one that reaches a service, import it again with --replace --network host")
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of the servers could not be added (above)", failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "claude, claude-desktop, codex, vscode or a FILE (default: every one found)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "add without asking (needed without a terminal)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be added; add and store nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a server of the same name, and a stored key of the same name")
	cmd.Flags().StringVar(&network, "network", "", "for the stdio servers added: none (default; loopback only) or host")
	return cmd
}

// importFiles are the files --from names, in the order they are read.
// A file named explicitly must exist; of the default set, those that do.
func (a *app) importFiles(from, workspace string) ([]importFile, error) {
	home := a.getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no HOME to find the configurations in: %w", err)
		}
		home = h
	}
	if workspace == "" {
		workspace, _ = os.Getwd() // the profile has none: Claude Code's is where it runs
	}
	orEnv := func(name, def string) string {
		if v := a.getenv(name); v != "" {
			return v
		}
		return def
	}
	claudeDir := orEnv("CLAUDE_CONFIG_DIR", home)
	desktop := filepath.Join(orEnv("XDG_CONFIG_HOME", filepath.Join(home, ".config")), "Claude", "claude_desktop_config.json")
	if runtime.GOOS == "darwin" {
		desktop = filepath.Join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json")
	}
	sets := map[string][]importFile{
		fromClaude: {
			{source: fromClaude, path: filepath.Join(workspace, ".mcp.json"), format: mcpimport.FormatClaude, agentWritable: true},
			{source: fromClaude, path: filepath.Join(claudeDir, ".claude.json"), format: "claude-user", project: workspace},
		},
		fromClaudeDesktop: {{source: fromClaudeDesktop, path: desktop, format: mcpimport.FormatClaude}},
		fromCodex:         {{source: fromCodex, path: filepath.Join(orEnv("CODEX_HOME", filepath.Join(home, ".codex")), "config.toml"), format: mcpimport.FormatCodex}},
		fromVSCode:        {{source: fromVSCode, path: filepath.Join(workspace, ".vscode", "mcp.json"), format: mcpimport.FormatVSCode, agentWritable: true}},
	}
	order := []string{fromClaude, fromClaudeDesktop, fromCodex, fromVSCode}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if from == "" {
		var out []importFile
		for _, s := range order {
			for _, f := range sets[s] {
				if exists(f.path) {
					out = append(out, f)
				}
			}
		}
		if len(out) == 0 {
			var all []importFile
			for _, s := range order {
				all = append(all, sets[s]...)
			}
			return nil, fmt.Errorf("found no MCP configuration to import: looked for %s; name a file with --from FILE", describeFiles(all))
		}
		return out, nil
	}
	if set, ok := sets[from]; ok {
		var out []importFile
		for _, f := range set {
			if exists(f.path) {
				out = append(out, f)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("found no %s configuration: looked for %s", from, describeFiles(set))
		}
		return out, nil
	}
	path, err := filepath.Abs(expandHome(from, home))
	if err != nil {
		return nil, usagef("--from %s: %v", from, err)
	}
	if !exists(path) {
		return nil, usagef("--from %s: no such file; give claude, claude-desktop, codex, vscode or a file", from)
	}
	ws, _ := filepath.Abs(workspace)
	within := workspace != "" && (path == ws || strings.HasPrefix(path, ws+string(filepath.Separator)))
	return []importFile{{source: "file", path: path, agentWritable: within}}, nil
}

func expandHome(p, home string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

func describeFiles(files []importFile) string {
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
	}
	return strings.Join(paths, ", ")
}

// readImport reads and parses one file; a file that is not one of the
// formats is an error, in one line.
func (a *app) readImport(f importFile) ([]mcpimport.Server, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", f.path)
	}
	if fi.Size() > mcpimport.MaxFile {
		return nil, fmt.Errorf("%s is larger than %d MiB; that is no MCP configuration", f.path, mcpimport.MaxFile>>20)
	}
	data, err := io.ReadAll(io.LimitReader(fh, mcpimport.MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	if len(data) > mcpimport.MaxFile {
		return nil, fmt.Errorf("%s is larger than %d MiB; that is no MCP configuration", f.path, mcpimport.MaxFile>>20)
	}
	getenv := mcpimport.Getenv(func(name string) (string, bool) {
		v := a.getenv(name)
		return v, v != ""
	})
	if f.agentWritable {
		// An agent could have written this file to have the user's own
		// secrets handed to a server of its choosing.
		getenv = func(name string) (string, bool) { return "", false }
	}
	format := f.format
	if format == "" {
		if format = mcpimport.Detect(f.path, data); format == mcpimport.FormatUnknown {
			return nil, fmt.Errorf("%s is not an MCP configuration Ringlet knows: want JSON with mcpServers (Claude) or servers (VS Code), or Codex's TOML", f.path)
		}
	}
	var got []mcpimport.Server
	switch format {
	case mcpimport.FormatClaude:
		got, err = mcpimport.ParseClaude(data, f.path, getenv)
	case "claude-user":
		got, err = mcpimport.ParseClaudeUser(data, f.path, f.project, getenv)
	case mcpimport.FormatVSCode:
		got, err = mcpimport.ParseVSCode(data, f.path, getenv)
	case mcpimport.FormatCodex:
		got, err = mcpimport.ParseCodex(data, f.path, getenv)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	if f.agentWritable {
		for i := range got {
			if got[i].Problem != "" && strings.Contains(got[i].Problem, "not set in this shell") {
				got[i].Problem = "it takes a variable from your shell, but its file is in the workspace, which the profile's agents can write; add it with ringlet mcp add --secret"
			}
		}
	}
	return got, nil
}

// planImport decides, for each server found, what the import does.
func (a *app) planImport(ctx context.Context, alias, network string, found []mcpimport.Server, existing map[string]bool, keys map[credentials.Ref]bool, replace bool) []importRow {
	var rows []importRow
	taken := map[string]string{}
	for _, s := range found {
		r := importRow{SourceName: s.Name, From: s.From, Transport: s.Type, Command: s.Command, URL: s.URL, Action: "add", store: map[credentials.Ref]string{}}
		skip := func(why string) { r.Action, r.Reason = "skip", why }
		name, ok := mcpimport.RingletName(s.Name)
		r.Name = name
		switch {
		case !ok:
			skip("its name cannot be made a Ringlet server name (letters, digits and '-', at most 32)")
		case s.Problem != "":
			skip(s.Problem)
		case taken[name] != "":
			skip("a server named " + name + " was found first in " + taken[name])
		case existing[name] && !replace:
			skip("profile " + alias + " has an MCP server " + name + " already; --replace replaces it")
		}
		if existing[name] && replace && r.Action == "add" {
			r.Action = "replace"
		}
		if r.Action != "skip" {
			taken[name] = s.From
		}
		r.req = api.MCPServerRequest{Profile: alias, Name: name, Command: s.Command, URL: s.URL, Imported: true}
		for _, v := range slices.Sorted(maps.Keys(s.Env)) {
			r.Env = append(r.Env, v)
			if r.Action == "skip" {
				continue
			}
			if err := mcpserver.CheckEnvName(v); err != nil {
				skip(err.Error())
				continue
			}
			val := s.Env[v]
			if !mcpimport.LooksSecret(v, val) {
				if r.req.Env == nil {
					r.req.Env = map[string]string{}
				}
				r.req.Env[v] = val
				continue
			}
			ref, err := importRef(name, v)
			if err != nil {
				skip(err.Error())
				continue
			}
			if err := credentials.ValidateKey(val); err != nil {
				skip(fmt.Sprintf("the value of %s cannot be stored as a secret: %v", v, err))
				continue
			}
			if keys[ref] && !replace {
				skip(fmt.Sprintf("the credential store has a key %s already; --replace replaces it", ref))
				continue
			}
			if r.Secrets == nil {
				r.Secrets = map[string]string{}
			}
			r.Secrets[v] = ref.String()
			r.store[ref] = val
		}
		r.req.Secrets = r.Secrets
		if s.Type == "http" && r.Action != "skip" {
			for _, h := range slices.Sorted(maps.Keys(s.Headers)) {
				if !r.importHeader(name, h, s.Headers[h], keys, replace) {
					break
				}
			}
		}
		if s.Type == "stdio" {
			r.req.Network = network
		}
		if r.Action != "skip" {
			c := mcpserver.Config{Name: name, Command: slices.Clone(r.req.Command), URL: r.req.URL, Credential: r.req.Credential,
				Env: maps.Clone(r.req.Env), Secrets: maps.Clone(r.req.Secrets), Network: r.req.Network,
				Headers: maps.Clone(r.req.Headers), HeaderSecrets: maps.Clone(r.req.HeaderSecrets)}
			if err := c.Validate(); err != nil {
				skip(err.Error())
			} else if s.Type == "stdio" {
				if err := a.resolveServer(ctx, &r.req, c); err != nil {
					skip(err.Error())
				}
			}
		}
		if r.Action == "skip" {
			r.Secrets, r.Credential, r.HeaderSecrets, r.store = nil, "", nil, nil
		}
		rows = append(rows, r)
	}
	return rows
}

// importSchemeRE is the word an Authorization value puts before its key
// (Bearer, Token), as --header-secret takes it.
var importSchemeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`) })

// importHeader plans header h of an imported HTTP server: Authorization:
// Bearer becomes its --credential; another Authorization value, or one
// that looks like a key, is stored and sent with --header-secret (after
// its scheme word, as in "Token <key>"); the rest are plain headers. It
// reports false when the server is skipped.
func (r *importRow) importHeader(server, h, val string, keys map[credentials.Ref]bool, replace bool) bool {
	skip := func(why string) bool { r.Action, r.Reason = "skip", why; return false }
	name, err := mcpserver.CheckHeaderName(h)
	if err != nil {
		return skip(err.Error())
	}
	scheme, key, hasScheme := strings.Cut(val, " ")
	if !hasScheme || name != "Authorization" || !importSchemeRE().MatchString(scheme) {
		scheme, key = "", val
	}
	if name != "Authorization" && !mcpimport.LooksSecret(strings.ReplaceAll(name, "-", "_"), val) {
		if r.req.Headers == nil {
			r.req.Headers = map[string]string{}
		}
		r.req.Headers[name] = val
		r.Headers = append(r.Headers, name)
		return true
	}
	ref, err := importRef(server, name)
	if err != nil {
		return skip(err.Error())
	}
	if err := credentials.ValidateKey(key); err != nil {
		return skip("the key in its header " + name + " cannot be stored: " + err.Error())
	}
	if keys[ref] && !replace {
		return skip(fmt.Sprintf("the credential store has a key %s already; --replace replaces it", ref))
	}
	r.store[ref] = key
	if name == "Authorization" && scheme == "Bearer" {
		r.Credential, r.req.Credential = ref.String(), ref.String()
		return true
	}
	if r.HeaderSecrets == nil {
		r.HeaderSecrets = map[string]string{}
	}
	r.HeaderSecrets[name] = strings.TrimSpace(scheme + " " + ref.String())
	r.req.HeaderSecrets = r.HeaderSecrets
	return true
}

// importRef is where the secret variable of an imported server is stored:
// mcp/<server>-<variable>, in the names' rule.
func importRef(server, variable string) (credentials.Ref, error) {
	alias := server + "-" + strings.ToLower(strings.ReplaceAll(variable, "_", "-"))
	alias = strings.Trim(alias, "-._")
	if len(alias) > 64 {
		alias = strings.TrimRight(alias[:64], "-._")
	}
	if !names.Valid(alias) {
		return credentials.Ref{}, fmt.Errorf("%s cannot be named in the credential store", variable)
	}
	return credentials.NewRef(mcpserver.SecretProvider, alias)
}

// runImport stores each server's secrets, then adds it; a server that
// cannot be added has the keys stored for it removed again. It returns
// how many failed.
func (a *app) runImport(ctx context.Context, c *client.Client, alias string, rows []importRow, existing map[string]bool) int {
	failed := 0
	for i := range rows {
		r := &rows[i]
		if r.Action == "skip" {
			continue
		}
		err := func() error {
			var stored []credentials.Ref
			undo := func() {
				for _, ref := range stored {
					_, _ = c.RemoveKey(ctx, ref) // best effort: a key of a server not added
				}
			}
			for _, ref := range slices.SortedFunc(maps.Keys(r.store), func(x, y credentials.Ref) int { return strings.Compare(x.String(), y.String()) }) {
				if _, err := c.SetKey(ctx, ref, r.store[ref]); err != nil {
					undo()
					return fmt.Errorf("store %s: %w", ref, err)
				}
				stored = append(stored, ref)
			}
			if r.Action == "replace" && existing[r.Name] {
				if _, err := c.RemoveMCPServer(ctx, alias, r.Name); err != nil {
					undo()
					return err
				}
			}
			if _, err := c.AddMCPServer(ctx, r.req); err != nil {
				undo()
				return err
			}
			return nil
		}()
		if err != nil {
			r.Error = err.Error()
			failed++
			continue
		}
		r.Result = "added"
	}
	return failed
}

// showImport prints the plan as a table: never a value.
func (a *app) showImport(w io.Writer, rows []importRow) {
	if len(rows) == 0 {
		return
	}
	t := newTable(w)
	t.row("NAME", "ACTION", "TRANSPORT", "COMMAND OR URL", "VARIABLES", "SECRETS (STORED AS)", "FROM")
	for _, r := range rows {
		target := r.URL
		if target == "" {
			target = profile.QuoteCommand(r.Command)
		}
		var secrets []string
		for _, v := range slices.Sorted(maps.Keys(r.Secrets)) {
			secrets = append(secrets, v+"="+r.Secrets[v])
		}
		if r.Credential != "" {
			secrets = append(secrets, "bearer="+r.Credential)
		}
		for _, h := range slices.Sorted(maps.Keys(r.HeaderSecrets)) {
			secrets = append(secrets, "header "+h+"="+r.HeaderSecrets[h])
		}
		var plain []string
		for _, v := range r.Env {
			if _, ok := r.Secrets[v]; !ok {
				plain = append(plain, v)
			}
		}
		for _, h := range r.Headers {
			plain = append(plain, "header "+h)
		}
		t.row(orDefault(r.Name, r.SourceName), r.Action, r.Transport, target, orDefault(strings.Join(plain, " "), "-"), orDefault(strings.Join(secrets, " "), "-"), r.From)
	}
	_ = t.flush() // a terminal or pipe: what failed to print cannot be told anywhere
	for _, r := range rows {
		if r.Action == "skip" {
			fmt.Fprintf(w, "skip %s: %s\n", printable(r.SourceName), printable(r.Reason))
		}
	}
}
