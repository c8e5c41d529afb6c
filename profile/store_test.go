package profile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/privatefile"
)

type storeEnv struct {
	cat             *Catalog
	store           *Store
	configDir, data string
}

func newStoreEnv(t *testing.T) storeEnv {
	t.Helper()
	root := t.TempDir()
	cfg, data := filepath.Join(root, "config"), filepath.Join(root, "data")
	c, err := LoadCatalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return storeEnv{cat: c, store: NewStore(cfg, data), configDir: cfg, data: data}
}

func TestStoreLifecycle(t *testing.T) {
	t.Parallel()
	e := newStoreEnv(t)
	ws := t.TempDir()
	p, err := e.store.Create(e.cat, Profile{Alias: "work", Agent: "claude", Provider: "anthropic", Model: "claude-sonnet-4-5", Workspace: ws})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if p.Created.IsZero() || time.Since(p.Created) > time.Hour {
		t.Fatalf("Created: got %v, want about now", p.Created)
	}

	home := e.store.Home("work")
	if want := filepath.Join(e.data, "profiles", "work", "home"); home != want {
		t.Fatalf("Home: got %s, want %s", home, want)
	}
	fi, err := os.Stat(home)
	if err != nil {
		t.Fatalf("profile HOME: %v", err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("profile HOME: got mode %v, want a 0700 directory", fi.Mode())
	}
	file := filepath.Join(e.configDir, "profiles", "work.toml")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profile file: got %v, %v; want mode 0600", fi, err)
	}

	got, err := e.store.Get("work")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Alias != "work" || got.Agent != "claude" || got.Provider != "anthropic" || got.Model != "claude-sonnet-4-5" || got.Workspace != ws || !got.Created.Equal(p.Created) {
		t.Fatalf("Get: got %+v, want %+v", got, p)
	}
	if ref := got.CredentialRef(); ref.Provider != "anthropic" || ref.Alias != "work" {
		t.Fatalf("CredentialRef: got %+v, want anthropic/work", ref)
	}

	_, err = e.store.Create(e.cat, Profile{Alias: "work", Agent: "codex", Provider: "openai"})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Create a duplicate: got %v, want ErrExists", err)
	}
	if got, _ := e.store.Get("work"); got.Agent != "claude" {
		t.Fatalf("a refused duplicate changed the profile: got agent %q, want claude", got.Agent)
	}

	for _, alias := range []string{"b-side", "a.one"} {
		if _, err := e.store.Create(e.cat, Profile{Alias: alias, Agent: "generic", Provider: "openai", Command: []string{"aider"}}); err != nil {
			t.Fatalf("Create %s: %v", alias, err)
		}
	}
	// Files that are not profiles are skipped by List.
	writeFile(t, filepath.Join(e.configDir, "profiles", "notes.txt"), "x")
	writeFile(t, filepath.Join(e.configDir, "profiles", "Bad Name.toml"), "x")
	list, err := e.store.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var aliases []string
	for _, p := range list {
		aliases = append(aliases, p.Alias)
	}
	if want := []string{"a.one", "b-side", "work"}; !slices.Equal(aliases, want) {
		t.Fatalf("List: got %v, want %v", aliases, want)
	}

	deleted, err := e.store.Delete("work")
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if deleted.Alias != "work" || deleted.Agent != "claude" {
		t.Fatalf("Delete returned %+v, want the deleted profile", deleted)
	}
	if _, err := os.Stat(filepath.Join(e.data, "profiles", "work")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("profile data dir after Delete: got %v, want it gone", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("profile file after Delete: got %v, want it gone", err)
	}
	if _, err := e.store.Get("work"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := e.store.Delete("work"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: got %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(e.store.Home("b-side")); err != nil {
		t.Fatalf("Delete of work touched the HOME of b-side: %v", err)
	}
	// The alias is free again.
	if _, err := e.store.Create(e.cat, Profile{Alias: "work", Agent: "codex", Provider: "openai"}); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
}

func TestStoreListEmpty(t *testing.T) {
	t.Parallel()
	e := newStoreEnv(t)
	list, err := e.store.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("List of a new store: got %v, %v; want nothing", list, err)
	}
}

func TestStoreGetRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, alias, content string
		mode                 os.FileMode
		want                 string
	}{
		{"invalid alias", "../work", "", 0, "invalid profile name"},
		{"upper case alias", "Work", "", 0, "invalid profile name"},
		{"unknown key", "x", "agent = \"claude\"\nprovider = \"anthropic\"\nkey = \"sk-1\"\n", 0o600, "not valid"},
		{"readable by others", "x", "agent = \"claude\"\nprovider = \"anthropic\"\n", 0o644, "group or others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newStoreEnv(t)
			if tt.content != "" {
				dir := filepath.Join(e.configDir, "profiles")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, tt.alias+".toml")
				writeFile(t, path, tt.content)
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			_, err := e.store.Get(tt.alias)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Get(%q): got %v, want an error containing %q", tt.alias, err, tt.want)
			}
		})
	}
}

func TestStoreCreateRefuses(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "dir")
	file := filepath.Join(root, "file")
	toRoot := filepath.Join(root, "to-root")
	toFile := filepath.Join(root, "to-file")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, "x")
	if err := os.Symlink("/", toRoot); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, toFile); err != nil {
		t.Fatal(err)
	}
	claude := func(mod func(*Profile)) Profile {
		p := Profile{Alias: "p", Agent: "claude", Provider: "anthropic"}
		mod(&p)
		return p
	}
	tests := []struct {
		name string
		p    Profile
		want string
	}{
		{"empty alias", claude(func(p *Profile) { p.Alias = "" }), "invalid profile name"},
		{"alias with slash", claude(func(p *Profile) { p.Alias = "a/b" }), "invalid profile name"},
		{"alias with dots", claude(func(p *Profile) { p.Alias = ".." }), "invalid profile name"},
		{"alias starting with dash", claude(func(p *Profile) { p.Alias = "-x" }), "invalid profile name"},
		{"unknown agent", claude(func(p *Profile) { p.Agent = "cursor" }), "unknown agent"},
		{"unknown provider", claude(func(p *Profile) { p.Provider = "gemini" }), "unknown provider"},
		{"claude on openai", claude(func(p *Profile) { p.Provider = "openai" }), "speaks"},
		{"codex on anthropic", claude(func(p *Profile) { p.Agent = "codex" }), "speaks"},
		{"generic without command", claude(func(p *Profile) { p.Agent = "generic" }), "needs --command"},
		{"claude with command", claude(func(p *Profile) { p.Command = []string{"sh"} }), "only for the generic agent"},
		{"unknown endpoint", claude(func(p *Profile) { p.Endpoint = "eu" }), "no endpoint"},
		{"model with quote", claude(func(p *Profile) { p.Model = `m",x="y` }), "invalid model"},
		{"model with newline", claude(func(p *Profile) { p.Model = "m\nx" }), "invalid model"},
		{"model with an escape", claude(func(p *Profile) { p.Model = "a\x1bb" }), "invalid model"},
		{"model too long", claude(func(p *Profile) { p.Model = strings.Repeat("m", 201) }), "invalid model"},
		{"relative workspace", claude(func(p *Profile) { p.Workspace = "project" }), "clean absolute path"},
		{"unclean workspace", claude(func(p *Profile) { p.Workspace = dir + "/../dir" }), "clean absolute path"},
		{"workspace with trailing slash", claude(func(p *Profile) { p.Workspace = dir + "/" }), "clean absolute path"},
		{"workspace with newline", claude(func(p *Profile) { p.Workspace = dir + "\n/etc" }), "no newlines"},
		{"workspace with NUL", claude(func(p *Profile) { p.Workspace = dir + "\x00" }), "no newlines"},
		{"workspace starting with dash", claude(func(p *Profile) { p.Workspace = "--bind=/" }), "must not start with -"},
		{"missing workspace", claude(func(p *Profile) { p.Workspace = filepath.Join(root, "missing") }), "no such file"},
		{"workspace is a file", claude(func(p *Profile) { p.Workspace = file }), "not a directory"},
		{"workspace is a symlink to a file", claude(func(p *Profile) { p.Workspace = toFile }), "not a directory"},
		{"workspace is a symlink to /", claude(func(p *Profile) { p.Workspace = toRoot }), "root directory"},
		{"workspace is /", claude(func(p *Profile) { p.Workspace = "/" }), "root directory"},
		{"trusted without a workspace", claude(func(p *Profile) { p.TrustWorkspace = true }), "--trust-workspace without --workspace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newStoreEnv(t)
			_, err := e.store.Create(e.cat, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create(%+v): got %v, want an error containing %q", tt.p, err, tt.want)
			}
			if list, err := e.store.List(); err != nil || len(list) != 0 {
				t.Fatalf("a refused profile was stored: got %v, %v", list, err)
			}
			if _, err := os.Stat(filepath.Join(e.data, "profiles")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a refused profile made a HOME: got %v, want no profiles data dir", err)
			}
		})
	}
}

func TestStoreCreateAccepts(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	ws := filepath.Join(root, "project")
	if err := os.Mkdir(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(ws, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    Profile
	}{
		{"claude with a workspace", Profile{Alias: "a", Agent: "claude", Provider: "anthropic", Workspace: ws}},
		{"claude with a trusted workspace", Profile{Alias: "a", Agent: "claude", Provider: "anthropic", Workspace: ws, TrustWorkspace: true}},
		{"workspace through a symlink to a directory", Profile{Alias: "a", Agent: "claude", Provider: "anthropic", Workspace: link}},
		{"codex on openrouter", Profile{Alias: "a", Agent: "codex", Provider: "openrouter", Model: "openai/gpt-5"}},
		{"generic with a command", Profile{Alias: "a", Agent: "generic", Provider: "anthropic", Command: []string{"my-agent", "--flag"}}},
		{"opencode on openai", Profile{Alias: "a", Agent: "opencode", Provider: "openai"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newStoreEnv(t)
			created, err := e.store.Create(e.cat, tt.p)
			if err != nil {
				t.Fatalf("Create(%+v): %v", tt.p, err)
			}
			got, err := e.store.Get(tt.p.Alias)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.Agent != tt.p.Agent || got.Provider != tt.p.Provider || got.Model != tt.p.Model || got.Workspace != tt.p.Workspace || got.TrustWorkspace != tt.p.TrustWorkspace || !slices.Equal(got.Command, tt.p.Command) || !got.Created.Equal(created.Created) {
				t.Fatalf("Get: got %+v, want %+v", got, created)
			}
		})
	}
}

func TestCheckWorkspace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := CheckWorkspace(dir); err != nil {
		t.Fatalf("CheckWorkspace(%q): got %v, want nil", dir, err)
	}
	for _, w := range []string{"", ".", "-", "/tmp/../", dir + "/.", dir + "\r"} {
		if err := CheckWorkspace(w); err == nil {
			t.Errorf("CheckWorkspace(%q): got nil, want an error", w)
		}
	}
}

// TestEnsureHomeDirs creates an agent's directories in the profile's HOME
// and refuses to follow a symlink the agent planted there.
func TestEnsureHomeDirs(t *testing.T) {
	t.Parallel()
	e := newStoreEnv(t)
	if _, err := e.store.Create(e.cat, Profile{Alias: "cx", Agent: "codex", Provider: "openai"}); err != nil {
		t.Fatal(err)
	}
	home := e.store.Home("cx")
	if err := e.store.EnsureHomeDirs(e.store.Home("cx"), []string{".codex", "a/b"}); err != nil {
		t.Fatalf("EnsureHomeDirs: %v", err)
	}
	for _, d := range []string{".codex", "a", "a/b"} {
		fi, err := os.Lstat(filepath.Join(home, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: got %v (err %v), want a 0700 directory", d, fi, err)
		}
	}
	// Again: nothing to do, no error.
	if err := e.store.EnsureHomeDirs(e.store.Home("cx"), []string{".codex"}); err != nil {
		t.Errorf("EnsureHomeDirs on existing directories: %v", err)
	}

	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(home, ".evil")); err != nil {
		t.Fatal(err)
	}
	err := e.store.EnsureHomeDirs(e.store.Home("cx"), []string{".evil/x"})
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("through a planted symlink: got %v, want an error naming the symlink", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the symlink's target got %d entries, want none", len(entries))
	}
	if err := e.store.EnsureHomeDirs(e.store.Home("cx"), []string{"../x"}); err == nil {
		t.Error("a directory outside HOME: got no error, want one")
	}
}

// TestStorePathIsJoin: path concatenates where it can; what it gives is
// still what filepath.Join gives.
func TestStorePathIsJoin(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"/", "/etc/ringlet/", "rel/../cfg", ".", ""} {
		s := NewStore(dir, dir)
		for _, alias := range []string{"work", "", ".", "..", "a/b", "../x", "a..b", "-x"} {
			if got, want := s.path(alias), filepath.Join(s.dir, alias+".toml"); got != want {
				t.Errorf("path(%q) under %q: got %q, want %q", alias, s.dir, got, want)
			}
		}
	}
}

// TestStoreRacyFileReadAgain: a profile file changed within
// privatefile.RacyWindow of its read may change again within the same
// tick of its times, leaving its stamp as it was (simulated here by
// giving the kept entry the edited file's stamp): the next Get still sees
// the edit, as a hand edit tightening the profile must reach the next
// request. Once the file is older, what was parsed of it is kept and its
// contents are no longer read.
func TestStoreRacyFileReadAgain(t *testing.T) {
	t.Parallel()
	e := newStoreEnv(t)
	if _, err := e.store.Create(e.cat, Profile{Alias: "work", Agent: "claude", Provider: "anthropic", Model: "claude-sonnet-4-5", Workspace: t.TempDir()}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	file := filepath.Join(e.configDir, "profiles", "work.toml")
	entry := func() parsedProfile {
		e.store.mu.Lock()
		defer e.store.mu.Unlock()
		return e.store.parsed["work"]
	}
	if _, err := e.store.Get("work"); err != nil {
		t.Fatal(err)
	}
	if c := entry(); c.settled || c.data == nil {
		t.Fatalf("a profile file written just now: kept settled=%v with data=%v, want unsettled with its contents", c.settled, c.data != nil)
	}
	// An edit of the same size whose times did not tick.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "claude-sonnet-4-5", "claude-sonnet-4-6", 1)
	if edited == string(data) {
		t.Fatalf("the profile file has no model to edit:\n%s", data)
	}
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	st, ok := privatefile.StampOf(file)
	if !ok {
		t.Fatal("no stamp")
	}
	e.store.mu.Lock()
	c := e.store.parsed["work"]
	c.stamp = st
	e.store.parsed["work"] = c
	e.store.mu.Unlock()
	p, err := e.store.Get("work")
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != "claude-sonnet-4-6" {
		t.Fatalf("after an edit that left the stamp as it was: model %q, want the edited claude-sonnet-4-6", p.Model)
	}

	// Older than the window: kept, its contents dropped.
	e.store.now = func() time.Time { return time.Now().Add(time.Hour) }
	for range 2 {
		if p, err := e.store.Get("work"); err != nil || p.Model != "claude-sonnet-4-6" {
			t.Fatalf("Get: %v, %v; want the edited model", p.Model, err)
		}
	}
	if c := entry(); !c.settled || c.data != nil {
		t.Fatalf("a profile file older than the racy window: kept settled=%v with data=%v, want settled without its contents", c.settled, c.data != nil)
	}
}
