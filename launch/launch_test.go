package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

func writeExec(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFindProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, other := filepath.Join(dir, "bin"), filepath.Join(dir, "other")
	writeExec(t, filepath.Join(bin, "agent"))
	writeExec(t, filepath.Join(other, "agent"))
	writeExec(t, filepath.Join(dir, "work", "tools", "local"))
	if err := os.WriteFile(filepath.Join(bin, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prog, path, dir, want, err string
	}{
		{"first on PATH", "agent", bin + ":" + other, "", filepath.Join(bin, "agent"), ""},
		{"PATH order", "agent", other + ":" + bin, "", filepath.Join(other, "agent"), ""},
		{"relative PATH entries are skipped", "agent", "bin:" + other, dir, filepath.Join(other, "agent"), ""},
		{"empty PATH entries are skipped", "agent", ":" + other, dir, filepath.Join(other, "agent"), ""},
		{"not executable", "plain", bin, "", "", `cannot find the agent's program "plain" on PATH`},
		{"missing", "nope", bin, "", "", `cannot find the agent's program "nope" on PATH: install it first`},
		{"absolute", filepath.Join(bin, "agent"), "", "", filepath.Join(bin, "agent"), ""},
		{"relative to the launcher's directory", "./tools/local", "", filepath.Join(dir, "work"), filepath.Join(dir, "work", "tools", "local"), ""},
		{"relative without a directory", "./tools/local", "", "", "", "the launcher's directory is unknown"},
		{"a directory", bin, "", "", "", "missing or not executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := findProgram(tc.prog, tc.path, tc.dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCheckOwn(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	config, data := filepath.Join(root, "config"), filepath.Join(root, "data")
	home := filepath.Join(data, "profiles", "work", "home")
	for _, d := range []string{config, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b := New(Options{OwnPaths: []string{config, data}})
	for _, tc := range []struct {
		name  string
		path  string
		home  string
		wantE bool
	}{
		{"a project", filepath.Join(root, "project"), "", false},
		{"the config dir", config, "", true},
		{"inside the config dir", filepath.Join(config, "http_token"), "", true},
		{"a directory holding them", root, "", true},
		{"the profile's own HOME", home, home, false},
		{"inside the profile's own HOME", filepath.Join(home, ".claude"), home, false},
		{"another profile's HOME", filepath.Join(data, "profiles", "other", "home"), home, true},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := b.CheckOwn(tc.home, tc.path)
			if (err != nil) != tc.wantE {
				t.Fatalf("CheckOwn(%q, %q): got %v, want error %v", tc.home, tc.path, err, tc.wantE)
			}
			if err != nil && !strings.Contains(err.Error(), "Ringlet's own files") {
				t.Errorf("got %q, want it to name Ringlet's own files", err)
			}
		})
	}
}

// agentWorld is a workspace, a profile HOME, Ringlet's own directories
// and an agent program on a PATH.
type agentWorld struct {
	b                      *Builder
	ws, home, config, path string
	program                string
}

func newAgentWorld(t *testing.T) *agentWorld {
	t.Helper()
	root := t.TempDir()
	w := &agentWorld{ws: filepath.Join(root, "ws"), home: filepath.Join(root, "data", "home"), config: filepath.Join(root, "config"), path: filepath.Join(root, "bin")}
	for _, d := range []string{w.ws, w.home, w.config} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w.program = filepath.Join(w.path, "agent")
	writeExec(t, w.program)
	state := filepath.Join(root, "state")
	empty, err := sandbox.EmptyFile(state)
	if err != nil {
		t.Fatal(err)
	}
	w.b = New(Options{OwnPaths: []string{w.config, filepath.Join(root, "data")}, StateDir: state, EmptyFile: empty})
	return w
}

func (w *agentWorld) profile() profile.Profile {
	return profile.Profile{Alias: "work", Agent: "generic", Provider: "p", Workspace: w.ws, Command: []string{"agent", "--flag"}}
}

// TestAgentRefusedBeforeSession: what the sandbox would refuse is refused
// by Agent, which runs before the session starts.
func TestAgentRefusedBeforeSession(t *testing.T) {
	t.Parallel()
	w := newAgentWorld(t)
	for _, tc := range []struct {
		name   string
		change func(p *profile.Profile, r *Request)
		want   string
	}{
		{"no command", func(p *profile.Profile, r *Request) { p.Command = nil }, "has no command to run"},
		{"program not on PATH", func(p *profile.Profile, r *Request) { r.Path = "/nonexistent" }, "cannot find the agent's program"},
		{"missing workspace", func(p *profile.Profile, r *Request) { p.Workspace = w.ws + "-missing" }, "no such file or directory"},
		{"workspace with a newline", func(p *profile.Profile, r *Request) { p.Workspace = w.ws + "\n--share-net" }, "invalid workspace"},
		{"no workspace and no directory", func(p *profile.Profile, r *Request) { p.Workspace = "" }, "invalid workspace"},
		{"workspace holding Ringlet's files", func(p *profile.Profile, r *Request) { p.Workspace = filepath.Dir(w.ws) }, "Ringlet's own files"},
		{"ro path starting with --", func(p *profile.Profile, r *Request) { p.ReadOnly = []string{"--bind"} }, "starts with '-'"},
		{"rw path inside Ringlet's config", func(p *profile.Profile, r *Request) { p.ReadWrite = []string{w.config} }, "Ringlet's own files"},
		{"an argument with a NUL byte", func(p *profile.Profile, r *Request) { r.Args = []string{"a\x00--bind"} }, "NUL"},
		{"TERM with a NUL byte", func(p *profile.Profile, r *Request) { r.Term = "xterm\x00" }, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := w.profile()
			req := Request{Path: w.path}
			tc.change(&p, &req)
			a, err := w.b.Agent(p, profile.Agent{}, w.home, req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %+v, %v; want an error with %q", a, err, tc.want)
			}
		})
	}
}

// TestAgentWithoutSandbox: --no-sandbox is warned, runs the program with
// the session's HOME in the workspace, and skips the own-files check
// (nothing is bound).
func TestAgentWithoutSandbox(t *testing.T) {
	t.Parallel()
	w := newAgentWorld(t)
	p := w.profile()
	p.Workspace = ""
	a, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Dir: w.ws, Args: []string{"extra"}, Path: w.path, Home: "/home/me", NoSandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Sandboxed() || a.Socket() || a.BaseURL() != "" || a.HomePath() != "" || a.Workspace() != w.ws {
		t.Errorf("got sandboxed %v, socket %v, base URL %q, home path %q, workspace %q; want none but the launcher's directory",
			a.Sandboxed(), a.Socket(), a.BaseURL(), a.HomePath(), a.Workspace())
	}
	if len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "WITHOUT a sandbox") {
		t.Errorf("warnings: got %q, want the one about running without a sandbox", a.Warnings)
	}
	unsandboxed := filepath.Join(filepath.Dir(w.home), "home-unsandboxed")
	plan, err := w.b.Plan(a, Session{Home: unsandboxed, Launch: profile.Launch{Args: []string{"--model", "m"},
		Env: []profile.EnvVar{{Name: "ANTHROPIC_API_KEY", Value: "rlt_token"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Release()
	if want := []string{w.program, "--flag", "--model", "m", "extra"}; !slices.Equal(plan.Argv, want) {
		t.Errorf("argv: got %q, want %q", plan.Argv, want)
	}
	if want := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + unsandboxed, "LANG=C.UTF-8", "ANTHROPIC_API_KEY=rlt_token"}; !slices.Equal(plan.Env, want) {
		t.Errorf("env: got %q, want %q", plan.Env, want)
	}
	if plan.Sandboxed || plan.Dir != w.ws || len(plan.Files) != 0 || len(plan.Trees) != 0 {
		t.Errorf("got sandboxed %v, dir %q, %d files, trees %q; want the workspace as the directory and nothing else", plan.Sandboxed, plan.Dir, len(plan.Files), plan.Trees)
	}
	if plan.Summary["sandbox"] != false || plan.Summary["command"] != w.program || plan.Summary["workspace"] != w.ws {
		t.Errorf("summary: got %v, want sandbox false, the program and the workspace", plan.Summary)
	}
	// Without a sandbox, the workspace may hold what no sandbox may show.
	p.Workspace = filepath.Dir(w.ws)
	if _, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Path: w.path, NoSandbox: true}); err != nil {
		t.Errorf("a workspace holding Ringlet's files without a sandbox: got %v, want it allowed (nothing is bound)", err)
	}
}
