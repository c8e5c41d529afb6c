package launch

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// TestAgentPlan: a sandboxed agent's plan is bubblewrap with its options
// and seccomp filter on descriptors, never the session token on the
// command line, and a lease that makes the missing protected paths for as
// long as the plan holds it.
func TestAgentPlan(t *testing.T) {
	// Not parallel: a child another test forks holds a copy of the
	// lease's lock until it execs, and the cleanup would see a holder.
	requireSandbox(t)
	w := newAgentWorld(t)
	ringlet := filepath.Join(filepath.Dir(w.program), "ringlet")
	writeExec(t, ringlet)
	w.b.opts.Executable = ringlet
	p := w.profile()
	p.AllowHosts = []string{"example.com"}
	a, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Path: w.path, Home: "/home/me", Term: "xterm", Args: []string{"extra"}})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Sandboxed() || !a.Socket() || a.BaseURL() != "http://127.0.0.1:8765/proxy" || a.HomePath() != "/home/me" {
		t.Errorf("got sandboxed %v, socket %v, base URL %q, home path %q; want a sandbox on the provider network with the forwarder's URL and the launcher's HOME",
			a.Sandboxed(), a.Socket(), a.BaseURL(), a.HomePath())
	}
	const tok = "rlt_secret-session-token"
	socket := filepath.Join(t.TempDir(), "s.sock")
	plan, err := w.b.Plan(a, Session{Home: w.home, Socket: socket, Launch: profile.Launch{Env: []profile.EnvVar{{Name: "ANTHROPIC_API_KEY", Value: tok}}}})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			plan.Release()
		}
	}()
	if !plan.Sandboxed || len(plan.Env) != 0 || plan.Dir != "" || plan.Workspace != w.ws || !slices.Equal(plan.Trees, []string{w.ws}) {
		t.Errorf("got sandboxed %v, env %q, dir %q, workspace %q, trees %q; want a sandbox with no environment of its own, the workspace its one tree",
			plan.Sandboxed, plan.Env, plan.Dir, plan.Workspace, plan.Trees)
	}
	if strings.Contains(strings.Join(plan.Argv, "\x00"), tok) {
		t.Errorf("argv %q holds the session token, want it only on a descriptor", plan.Argv)
	}
	bwrap, _ := sandbox.Find()
	i := slices.Index(plan.Argv, bwrap)
	if i < 0 || !slices.Equal(plan.Argv[i+1:i+4], []string{"--args", "3", "--"}) {
		t.Fatalf("argv: got %q, want bwrap with --args 3", plan.Argv)
	}
	if want := []string{sandbox.InsideBinary, "sandbox", "forward"}; !slices.Equal(plan.Argv[i+4:i+7], want) {
		t.Errorf("argv: got %q after bwrap's options, want the forwarder %q first", plan.Argv[i+4:], want)
	}
	if !slices.Equal(plan.Argv[len(plan.Argv)-3:], []string{w.program, "--flag", "extra"}) {
		t.Errorf("argv: got %q, want the agent's program, its own arguments and the launcher's last", plan.Argv)
	}
	filter, _ := sandbox.SeccompFilter()
	if len(plan.Files) != 2 || !bytes.Equal(plan.Files[1], filter) {
		t.Fatalf("files: got %d, want bwrap's options and the seccomp filter", len(plan.Files))
	}
	opts := strings.Split(string(plan.Files[0]), "\x00")
	for _, want := range [][]string{{"--setenv", "ANTHROPIC_API_KEY", tok}, {"--setenv", "HOME", "/home/me"}, {"--setenv", "TERM", "xterm"},
		{"--setenv", "HTTPS_PROXY", "http://127.0.0.1:8765"}, {"--setenv", "http_proxy", "http://127.0.0.1:8765"}, {"--setenv", "NO_PROXY", "127.0.0.1,localhost"}, {"--bind", w.home, "/home/me"}, {"--ro-bind", filepath.Dir(socket), sandbox.InsideSocketDir},
		// 'ringlet' on PATH is the daemon's binary, read-only.
		{"--setenv", "PATH", sandbox.InsideBinDir + ":/usr/local/bin:/usr/bin:/bin"}, {"--ro-bind", ringlet, sandbox.InsideBinary}} {
		if !containsRun(opts, want) {
			t.Errorf("bwrap's options: got %q, want %q in them", opts, want)
		}
	}
	if plan.Summary["sandbox"] != true || plan.Summary["network"] != sandbox.NetProvider || plan.Summary["command"] != w.program {
		t.Errorf("summary: got %v, want sandbox true, network provider and the agent's program", plan.Summary)
	}
	// .envrc is protected and missing: the lease made it, empty, as the
	// mount point of its read-only stand-in, and takes it away again.
	envrc := filepath.Join(w.ws, ".envrc")
	if fi, err := os.Lstat(envrc); err != nil || fi.Size() != 0 {
		t.Errorf("%s while the plan holds its lease: got %v, want an empty placeholder", envrc, err)
	}
	plan.Release()
	released = true
	if _, err := os.Lstat(envrc); err == nil {
		t.Errorf("%s after the plan let go: still there, want it removed", envrc)
	}
}

// containsRun reports whether want appears in s as consecutive elements.
func containsRun(s, want []string) bool {
	for i := 0; i+len(want) <= len(s); i++ {
		if slices.Equal(s[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// TestProbes: the probes are built like an agent's sandbox without a
// network, and say what must not appear on the host.
func TestProbes(t *testing.T) {
	t.Parallel()
	requireSandbox(t)
	w := newAgentWorld(t)
	w.b.opts.Executable, w.b.opts.ConfigDir = w.program, w.config
	ws, home := filepath.Join(t.TempDir(), "ws"), filepath.Join(t.TempDir(), "home")
	for _, d := range []string{ws, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	probes, err := w.b.Probes(ProbeRequest{Workspace: ws, Home: home, HostHome: "/home/me", DaemonPort: "8765"})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Probe{}
	for _, p := range probes.Probes {
		names[p.Name] = p
		if len(p.Plan.Files) != 2 || !p.Plan.Sandboxed {
			t.Errorf("probe %q: got %d files, want bwrap's options and the seccomp filter", p.Name, len(p.Plan.Files))
		}
		if opts := string(p.Plan.Files[0]); strings.Contains(opts, "--share-net") || !strings.Contains(opts, "--bind\x00"+ws+"\x00"+ws) {
			t.Errorf("probe %q: got options %q, want the workspace bound and no network", p.Name, opts)
		}
	}
	for _, want := range []string{"Ringlet's config dir (token, keys) is not visible", "the daemon's TCP port is unreachable", "no core dumps"} {
		if _, ok := names[want]; !ok {
			t.Errorf("probes: got %v, want %q", probes.Probes, want)
		}
	}
	if p := names["writes outside the workspace never reach the host"]; !slices.Contains(p.Absent, "/home/me/.ringlet-probe-escape") || !slices.Contains(p.Absent, "/.ringlet-probe-escape") {
		t.Errorf("absent: got %q, want the escape files in / and in the host's HOME", p.Absent)
	}
	if _, err := w.b.Probes(ProbeRequest{Workspace: w.config, Home: home}); err == nil || !strings.Contains(err.Error(), "Ringlet's own files") {
		t.Errorf("probes in Ringlet's config dir: got %v, want them refused", err)
	}
}
