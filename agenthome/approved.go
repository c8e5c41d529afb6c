package agenthome

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/privatefile"
)

// A sandboxed agent can write its HOME, and with it its own
// configuration: through an ordinary file write that Ringlet's hooks
// allow, it could plant a command that its agent CLI runs at the next
// start without any tool call the hooks judge (a Claude Code hook or
// status line, an MCP server, an OpenCode plugin, Codex's notify, a
// shell rc file its shell tool sources, a git config its start-up 'git
// status' obeys). So the parts of that configuration that run code are
// kept as the user approved them (Approved, in Ringlet's own state,
// which no sandbox binds) and put back at every session start (Reset);
// what the agent changed there is moved aside for the user to review.
//
// The parts are found in the agents' own code and docs: Claude Code
// 2.1.332's settings schema (its settings.json keys that name a command
// or script, its plugins, skills, commands and agents), its .claude.json
// (mcpServers, global and per project; the .mcp.json approvals), Codex
// 0.169.0's config.toml (mcp_servers, notify, model_providers and their
// auth command, shell_environment_policy, profiles) and OpenCode
// 1.18.33's config directories (config files, plugin, tool, agent,
// command and mode directories). Everything else the agents keep there
// (history, trust, start counts, caches) is theirs and left alone.

// kind says how a part of an agent's config is compared and put back.
type kind int

const (
	// wholeFile is a file that is configuration only: any change.
	wholeFile kind = iota
	// wholeDir is a directory whose every file is configuration.
	wholeDir
	// jsonKeys are keys of a JSON file the agent also keeps state in.
	jsonKeys
	// tomlKeys are keys of a TOML file the agent also keeps state in.
	tomlKeys
)

// part is one code-running part of an agent's config in its HOME.
type part struct {
	// path is slash-separated and relative to the HOME.
	path string
	kind kind
	// keys (jsonKeys, tomlKeys) are dotted key paths; "*" matches
	// every key at its level.
	keys []string
	// norm (wholeFile) gives the content to compare and keep: Ringlet's
	// own additions taken out; nil means none, as if there were no file.
	norm func([]byte) ([]byte, error)
	// skip (wholeDir) are patterns (path.Match) of the entries right in
	// it that hold the agent's data, not code.
	skip []string
}

// shellFiles are the files a shell reads at start in a HOME: Claude
// Code snapshots the user's shell rc for its Bash tool, Codex runs its
// shell as a login shell, and every agent's shell commands read them.
// Git's config is read by the 'git status' Claude Code and Codex run at
// start, whose core.fsmonitor or core.hooksPath run commands.
var shellFiles = []string{".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile",
	".zshrc", ".zshenv", ".zprofile", ".zlogin", ".gitconfig", ".config/git/config"}

// openCodeDirs are the directories of an OpenCode config directory whose
// files are loaded as code (plugins, tools) or as definitions that can
// name commands (agents, commands, modes).
var openCodeDirs = []string{"plugin", "plugins", "tool", "tools", "agent", "agents", "command", "commands", "mode", "modes", "node_modules"}

// parts are the code-running parts of agent's config in a HOME.
func parts(agent string) []part {
	var out []part
	for _, f := range shellFiles {
		out = append(out, part{path: f, kind: wholeFile})
	}
	switch agent {
	case "claude":
		out = append(out,
			part{path: ".claude/settings.json", kind: wholeFile, norm: claudeSettingsNorm},
			part{path: ".claude/settings.local.json", kind: wholeFile},
			part{path: ".claude/.claude.json", kind: jsonKeys, keys: []string{"mcpServers",
				"projects.*.mcpServers", "projects.*.enabledMcpjsonServers", "projects.*.enableAllProjectMcpServers"}})
		// plugins/store holds what each plugin keeps (JSON data that
		// Claude Code writes at every start), the *-cache.json files
		// what it last fetched (install counts, the catalog); plugins
		// themselves are installed_plugins.json and cache/.
		out = append(out, part{path: ".claude/plugins", kind: wholeDir, skip: []string{"store", "*-cache.json"}})
		for _, d := range []string{"skills", "commands", "agents"} {
			out = append(out, part{path: ".claude/" + d, kind: wholeDir})
		}
	case "codex":
		out = append(out, part{path: ".codex/config.toml", kind: tomlKeys, keys: []string{"mcp_servers", "notify",
			"model_providers", "shell_environment_policy", "profile", "profiles"}})
	case "opencode":
		for _, base := range []string{".config/opencode", ".opencode"} {
			for _, f := range []string{"opencode.json", "opencode.jsonc", "config.json"} {
				out = append(out, part{path: base + "/" + f, kind: wholeFile})
			}
			for _, d := range openCodeDirs {
				out = append(out, part{path: base + "/" + d, kind: wholeDir})
			}
		}
	}
	return out
}

// claudeSettingsNorm is Claude Code's settings.json without what
// Ringlet writes there at every start (its hook entries; the
// disableAllHooks it removes): the rest is the user's, or the agent's.
func claudeSettingsNorm(data []byte) ([]byte, error) {
	m, err := jsonObject("settings.json", data)
	if err != nil {
		return nil, err
	}
	delete(m, "disableAllHooks")
	if hooks, ok := m["hooks"].(map[string]any); ok {
		for ev, groups := range hooks {
			cur, ok := groups.([]any)
			if !ok {
				continue
			}
			kept := slices.DeleteFunc(slices.Clone(cur), hook.IsClaudeEntry)
			if len(kept) == 0 {
				delete(hooks, ev)
			} else {
				hooks[ev] = kept
			}
		}
		if len(hooks) == 0 {
			delete(m, "hooks")
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

// Approved is the code-running configuration of a profile's agent as the
// user approved it: each item (a file, a file in a directory, a key of a
// file) by name, with its content. An item that is not there was not
// there when approved. It is kept in Ringlet's own state, never in the
// HOME.
type Approved struct {
	Agent string            `json:"agent"`
	Items map[string][]byte `json:"items"`
}

// Names are the items of a, sorted.
func (a Approved) Names() []string {
	out := make([]string, 0, len(a.Items))
	for k := range a.Items {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Limits of what an approval keeps.
const (
	maxItem      = 8 << 20
	maxApproved  = 32 << 20
	maxDirFiles  = 10000
	approvedFile = "approved-config.json"
)

// ApprovedPath is the file in which a profile's approval is kept, in dir,
// the profile's own directory outside its HOME.
func ApprovedPath(dir string) string { return filepath.Join(dir, approvedFile) }

// Snapshot reads the code-running configuration of agent in home, as it
// is now: what the user approves. A symbolic link or other odd file in
// one of its places is refused: Ringlet would not know what it approves.
func Snapshot(home, agent string) (Approved, error) {
	root, err := os.OpenRoot(home)
	if err != nil {
		return Approved{}, fmt.Errorf("the HOME: %w", privatefile.WithoutPath(err))
	}
	defer root.Close()
	a := Approved{Agent: agent, Items: map[string][]byte{}}
	total := 0
	for _, p := range parts(agent) {
		items, odd, err := p.read(root)
		if err != nil {
			return Approved{}, err
		}
		if len(odd) > 0 {
			return Approved{}, fmt.Errorf("%s in the HOME is a symbolic link, not a regular file or larger than %d bytes; Ringlet approves no such file: replace it with the file itself or remove it", odd[0], maxItem)
		}
		for k, v := range items {
			total += len(v)
			a.Items[k] = v
		}
	}
	if total > maxApproved {
		return Approved{}, fmt.Errorf("the agent's code-running configuration in the HOME holds more than %d bytes; Ringlet keeps no copy that large: remove what is not needed", maxApproved)
	}
	return a, nil
}

// SaveApproved keeps a in dir (ApprovedPath), 0600.
func SaveApproved(dir string, a Approved) error {
	if err := privatefile.WriteJSON(ApprovedPath(dir), a); err != nil {
		return fmt.Errorf("keep the approved agent config: %w", err)
	}
	return nil
}

// LoadApproved reads the approval kept in dir. None (a profile from
// before approvals) approves nothing of agent's: its code-running
// configuration is all reset.
func LoadApproved(dir, agent string) (Approved, error) {
	var a Approved
	ok, err := privatefile.ReadJSON(ApprovedPath(dir), maxApproved*2, &a)
	if err != nil {
		return Approved{}, fmt.Errorf("the approved agent config: %w", err)
	}
	if !ok || a.Agent != agent {
		// None, or one of another agent (the profile's agent changed).
		return Approved{Agent: agent, Items: map[string][]byte{}}, nil
	}
	if a.Items == nil {
		a.Items = map[string][]byte{}
	}
	return a, nil
}

// Differs names the items of the code-running configuration of a's agent
// in home that differ from a, without changing anything: what Reset
// would reset, for the record that must be written before it.
func Differs(home string, a Approved) ([]string, error) {
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, fmt.Errorf("the HOME: %w", privatefile.WithoutPath(err))
	}
	defer root.Close()
	var items []string
	for _, p := range parts(a.Agent) {
		got, err := p.reset(root, a.Items, nil)
		if err != nil {
			return items, err
		}
		items = append(items, got...)
	}
	return items, nil
}

// Reset puts the code-running configuration of a's agent in home back to
// a, and moves what differs aside into a new directory under quarantine
// (outside the HOME). It names each item it reset (files, and keys as
// "file#key"; never a value) and the directory it moved them to ("" when
// nothing differed). Nothing is followed out of home; a symbolic link in
// a place it resets is removed (its target noted aside), not followed.
func Reset(home string, a Approved, quarantine string) (items []string, moved string, err error) {
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, "", fmt.Errorf("the HOME: %w", privatefile.WithoutPath(err))
	}
	defer root.Close()
	q := &aside{base: quarantine}
	for _, p := range parts(a.Agent) {
		got, err := p.reset(root, a.Items, q)
		if err != nil {
			return items, q.dir, err
		}
		items = append(items, got...)
	}
	if err := q.flushKeys(); err != nil {
		return items, q.dir, err
	}
	return items, q.dir, nil
}

// read gives p's items as they are in root, and the items that are not
// regular files (symbolic links, devices).
func (p part) read(root *os.Root) (map[string][]byte, []string, error) {
	out := map[string][]byte{}
	rel := filepath.FromSlash(p.path)
	switch p.kind {
	case wholeFile:
		data, ok, odd, err := readItem(root, rel)
		if err != nil || odd {
			return nil, oddIf(odd, p.path), err
		}
		if ok && p.norm != nil {
			norm, err := p.norm(data)
			if err != nil {
				// Not what Claude Code reads as settings either: it
				// differs from any approved content, and is put back.
				norm = append([]byte("\x00invalid\x00"), data...)
			}
			data, ok = norm, norm != nil
		}
		if ok {
			out[p.path] = data
		}
	case wholeDir:
		var odd []string
		n := 0
		err := walkRoot(root, rel, func(r string, de fs.DirEntry) error {
			name := filepath.ToSlash(r)
			first, _, _ := strings.Cut(strings.TrimPrefix(name, p.path+"/"), "/")
			if slices.ContainsFunc(p.skip, func(pat string) bool { ok, _ := path.Match(pat, first); return ok }) {
				return nil
			}
			if !de.Type().IsRegular() {
				odd = append(odd, name)
				return nil
			}
			if n++; n > maxDirFiles {
				return fmt.Errorf("%s in the HOME holds more than %d files; remove what is not needed", p.path, maxDirFiles)
			}
			data, ok, isOdd, err := readItem(root, r)
			switch {
			case err != nil:
				return err
			case isOdd:
				odd = append(odd, name)
			case ok:
				out[name] = data
			}
			return nil
		})
		return out, odd, err
	case jsonKeys, tomlKeys:
		data, ok, odd, err := readItem(root, rel)
		if err != nil || odd || !ok {
			return out, oddIf(odd, p.path), err
		}
		cfg, err := p.decode(data)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range p.keys {
			for _, kp := range matchKeys(cfg, strings.Split(k, ".")) {
				v, _ := lookup(cfg, kp)
				enc, err := json.Marshal(v)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %w", p.path, err)
				}
				out[keyItem(p.path, kp)] = enc
			}
		}
	}
	return out, nil, nil
}

func oddIf(odd bool, name string) []string {
	if odd {
		return []string{name}
	}
	return nil
}

// reset puts p back to approved in root; q takes what differs. With no q
// it only names what differs.
func (p part) reset(root *os.Root, approved map[string][]byte, q *aside) ([]string, error) {
	cur, odd, err := p.read(root)
	if err != nil {
		return nil, err
	}
	prefix := p.path
	mine := func(name string) bool {
		switch p.kind {
		case wholeDir:
			return strings.HasPrefix(name, prefix+"/")
		case jsonKeys, tomlKeys:
			return strings.HasPrefix(name, prefix+"#")
		}
		return name == prefix
	}
	if len(odd) > 0 && (p.kind == jsonKeys || p.kind == tomlKeys) {
		// The agent's state is in that file too: not removed, refused.
		return nil, fmt.Errorf("%s in the HOME is a symbolic link, not a regular file or larger than %d bytes; Ringlet does not follow or read it: remove it", p.path, maxItem)
	}
	differ := slices.Clone(odd)
	for name, v := range cur {
		if w, ok := approved[name]; !ok || !bytes.Equal(v, w) {
			differ = append(differ, name)
		}
	}
	for name := range approved {
		if _, ok := cur[name]; !ok && mine(name) && !slices.Contains(differ, name) {
			differ = append(differ, name)
		}
	}
	if len(differ) == 0 {
		return nil, nil
	}
	slices.Sort(differ)
	if q == nil {
		return differ, nil
	}
	switch p.kind {
	case wholeFile, wholeDir:
		for _, name := range differ {
			if err := q.file(root, name); err != nil {
				return nil, err
			}
			rel := filepath.FromSlash(name)
			if err := root.RemoveAll(rel); err != nil {
				return nil, fmt.Errorf("%s in the HOME: %w", name, privatefile.WithoutPath(err))
			}
			if data, ok := approved[name]; ok {
				if err := writeItem(root, rel, data); err != nil {
					return nil, err
				}
			}
		}
	case jsonKeys, tomlKeys:
		if err := p.resetKeys(root, differ, approved, q); err != nil {
			return nil, err
		}
	}
	return differ, nil
}

// resetKeys sets each of the key items differ in p's file to its
// approved value, or removes it.
func (p part) resetKeys(root *os.Root, differ []string, approved map[string][]byte, q *aside) error {
	rel := filepath.FromSlash(p.path)
	data, _, _, err := readItem(root, rel)
	if err != nil {
		return err
	}
	cfg, err := p.decode(data)
	if err != nil {
		return err
	}
	for _, name := range differ {
		var kp []string
		if err := json.Unmarshal([]byte(strings.TrimPrefix(name, p.path+"#")), &kp); err != nil {
			return fmt.Errorf("approved item %s: %w", name, err)
		}
		if v, ok := lookup(cfg, kp); ok {
			q.key(name, v)
		}
		if enc, ok := approved[name]; ok {
			v, err := p.value(enc)
			if err != nil {
				return fmt.Errorf("approved item %s: %w", name, err)
			}
			set(cfg, kp, v)
		} else {
			del(cfg, kp)
		}
	}
	var out []byte
	if p.kind == tomlKeys {
		out, err = toml.Marshal(cfg)
	} else {
		out, err = json.MarshalIndent(cfg, "", "  ")
		out = append(out, '\n')
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	return writeItem(root, rel, out)
}

func (p part) decode(data []byte) (map[string]any, error) {
	if p.kind == tomlKeys {
		cfg := map[string]any{}
		if err := toml.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("%s in the HOME is not valid TOML (%v); fix or remove it", p.path, err)
		}
		return cfg, nil
	}
	return jsonObject(p.path+" in the HOME", data)
}

// value decodes an approved key's JSON for p's file: TOML wants its own
// numbers, JSON keeps the exact text.
func (p part) value(enc []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(enc))
	if p.kind == tomlKeys {
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		return tomlValue(v), nil
	}
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

// tomlValue turns JSON's float64 whole numbers back into TOML integers.
func tomlValue(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = tomlValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = tomlValue(e)
		}
	}
	return v
}

func keyItem(file string, kp []string) string {
	enc, _ := json.Marshal(kp) // strings only: cannot fail
	return file + "#" + string(enc)
}

// matchKeys are the key paths in cfg that pattern ("*" any key) names.
func matchKeys(cfg map[string]any, pattern []string) [][]string {
	var out [][]string
	var walk func(m map[string]any, at int, got []string)
	walk = func(m map[string]any, at int, got []string) {
		seg := pattern[at]
		var names []string
		if seg == "*" {
			for k := range m {
				names = append(names, k)
			}
			slices.Sort(names)
		} else if _, ok := m[seg]; ok {
			names = []string{seg}
		}
		for _, k := range names {
			kp := append(slices.Clone(got), k)
			if at == len(pattern)-1 {
				out = append(out, kp)
			} else if sub, ok := m[k].(map[string]any); ok {
				walk(sub, at+1, kp)
			}
		}
	}
	walk(cfg, 0, nil)
	return out
}

func lookup(m map[string]any, kp []string) (any, bool) {
	var cur any = m
	for _, k := range kp {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func set(m map[string]any, kp []string, v any) {
	for _, k := range kp[:len(kp)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[kp[len(kp)-1]] = v
}

func del(m map[string]any, kp []string) {
	for _, k := range kp[:len(kp)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = sub
	}
	delete(m, kp[len(kp)-1])
}

// readItem reads rel in root: ok false when it is missing, odd when it
// is there but not a regular file.
func readItem(root *os.Root, rel string) (data []byte, ok, odd bool, err error) {
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil, false, false, nil
	case err != nil:
		return nil, false, false, fmt.Errorf("%s in the HOME: %w", rel, privatefile.WithoutPath(err))
	case !fi.Mode().IsRegular(), fi.Size() > maxItem:
		// Not a file Ringlet reads, nor approves: odd, removed by a
		// reset rather than refusing every session until then.
		return nil, false, true, nil
	}
	data, ok, err = privatefile.ReadInRoot(root, rel, maxItem)
	return data, ok, false, err
}

// writeItem writes data at rel in root, making its directories.
func writeItem(root *os.Root, rel string, data []byte) error {
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, privatefile.DirMode); err != nil {
			return fmt.Errorf("%s in the HOME: %w", dir, privatefile.WithoutPath(err))
		}
	}
	return privatefile.WriteInRoot(root, rel, data)
}

// walkRoot calls fn for each entry below the directory rel of root that
// is not a directory, never following a symbolic link. A missing rel,
// or one that is not a directory, is walked as holding itself.
func walkRoot(root *os.Root, rel string, fn func(rel string, de fs.DirEntry) error) error {
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s in the HOME: %w", rel, privatefile.WithoutPath(err))
	}
	if !fi.IsDir() {
		return fn(rel, fs.FileInfoToDirEntry(fi))
	}
	return fs.WalkDir(root.FS(), filepath.ToSlash(rel), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%s in the HOME: %w", p, privatefile.WithoutPath(err))
		}
		if de.IsDir() {
			return nil
		}
		return fn(filepath.FromSlash(p), de)
	})
}

// aside is the quarantine directory of one reset, made at its first use.
type aside struct {
	base string
	dir  string
	keys map[string]any
}

func (q *aside) ensure() error {
	if q.dir != "" {
		return nil
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	dir := filepath.Join(q.base, time.Now().UTC().Format("20060102T150405Z")+"-"+hex.EncodeToString(b[:]))
	if err := privatefile.EnsureDir(dir); err != nil {
		return fmt.Errorf("the quarantine directory: %w", err)
	}
	q.dir = dir
	return nil
}

// file keeps a copy of the item name of root: its content, or for a
// symbolic link its target, in name.symlink.
func (q *aside) file(root *os.Root, name string) error {
	rel := filepath.FromSlash(name)
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // approved, and gone: nothing to keep
	}
	if err != nil {
		return fmt.Errorf("%s in the HOME: %w", name, privatefile.WithoutPath(err))
	}
	if err := q.ensure(); err != nil {
		return err
	}
	dst := filepath.Join(q.dir, "home", rel)
	if err := privatefile.EnsureDir(filepath.Dir(dst)); err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := root.Readlink(rel)
		if err != nil {
			return fmt.Errorf("%s in the HOME: %w", name, privatefile.WithoutPath(err))
		}
		return privatefile.Create(dst+".symlink", []byte(target+"\n"))
	case fi.Mode().IsRegular() && fi.Size() > maxItem:
		return privatefile.Create(dst+".toolarge", fmt.Appendf(nil, "%d bytes, removed unread\n", fi.Size()))
	case fi.Mode().IsRegular():
		data, _, err := privatefile.ReadInRoot(root, rel, maxItem)
		if err != nil {
			return err
		}
		return privatefile.Create(dst, data)
	case fi.IsDir():
		return walkRoot(root, rel, func(r string, _ fs.DirEntry) error { return q.file(root, filepath.ToSlash(r)) })
	}
	return nil // a device or pipe: removed, nothing to keep
}

// key keeps the value of a key item, written with flushKeys.
func (q *aside) key(name string, v any) {
	if q.keys == nil {
		q.keys = map[string]any{}
	}
	q.keys[name] = v
}

func (q *aside) flushKeys() error {
	if len(q.keys) == 0 {
		return nil
	}
	if err := q.ensure(); err != nil {
		return err
	}
	return privatefile.WriteJSON(filepath.Join(q.dir, "keys.json"), q.keys)
}

// maxDescribed is how many files Describe names.
const maxDescribed = 5

// Describe is the items of a reset for a person, in one short line: the
// files, and for keys the file and the key's first part.
func Describe(items []string) string {
	var out []string
	for _, it := range items {
		file, key, ok := strings.Cut(it, "#")
		name := "~/" + file
		var kp []string
		if ok && json.Unmarshal([]byte(key), &kp) == nil && len(kp) > 0 {
			name += " (" + kp[0] + ")"
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	// One line: a plugin directory can hold many files.
	if len(out) > maxDescribed {
		out = append(out[:maxDescribed], fmt.Sprintf("%d more", len(out)-maxDescribed))
	}
	return strings.Join(out, ", ")
}
