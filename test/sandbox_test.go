//go:build linux

package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/test/fakeprovider"
)

// The security page's contract, probed from inside `ringlet profiles run`
// with the real binary and real bubblewrap: the agent is /bin/sh, and
// each probe is a script it runs. A probe prints what it managed to do;
// the test checks that output, the exit code and the host.

// requireSandbox skips the test when bubblewrap is missing or cannot
// create a sandbox here, saying why; in CI (CI=true) that is a failure.
func requireSandbox(t *testing.T) {
	t.Helper()
	bwrap, err := sandbox.Find()
	if err == nil {
		err = sandbox.Check(bwrap)
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the sandbox tests must run in CI: %v", err)
	}
	t.Skipf("skipping the sandbox tests: %v", err)
}

// sbWorld is one user's daemon with a fake provider, and profiles
// whose agent is /bin/sh:
//
//	p: workspace ws (a git repository), network provider
//	q: another profile, to look for its HOME from p
//	g: workspace gws (a git repository), --allow-git-config
type sbWorld struct {
	e        *env
	d        *daemon
	fake     *fakeprovider.Provider
	key      string // p's real provider key
	ws, gws  string
	outside  string // host files outside every workspace
	pHome    string // p's HOME on the host
	qHome    string // q's HOME on the host
	sockets  []string
	asNobody bool
}

func sbRandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newSBWorld builds the world, as root or, with cred, as that user
// (every directory of the world is then handed to it).
func newSBWorld(t *testing.T, cred *syscall.Credential) *sbWorld {
	t.Helper()
	e := newEnv(t)
	w := &sbWorld{e: e, fake: fakeprovider.New(), asNobody: cred != nil}
	w.ws = filepath.Join(e.Root, "ws")
	w.gws = filepath.Join(e.Root, "gws")
	w.outside = filepath.Join(e.Root, "outside")
	for _, d := range []string{w.ws, w.gws, w.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, ws := range []string{w.ws, w.gws} {
		writeFile(t, filepath.Join(ws, ".git", "HEAD"), "ref: refs/heads/main\n", 0o644)
		writeFile(t, filepath.Join(ws, ".git", "config"), "[core]\n\trepositoryformatversion = 0\n", 0o644)
		writeFile(t, filepath.Join(ws, ".git", "hooks", "pre-commit.sample"), "#!/bin/sh\n", 0o755)
	}
	// What an agent must never reach: an SSH key in the host's HOME, and
	// the agent sockets a desktop session has.
	writeFile(t, filepath.Join(e.Home, ".ssh", "id_ed25519"), "SSH-CANARY-"+sbRandomHex(8), 0o600)
	// Not $XDG_RUNTIME_DIR/bus: the daemon's keyring would wait on it.
	runtimeDir := filepath.Join(e.Root, "run-user")
	if err := os.MkdirAll(filepath.Join(runtimeDir, "gnupg"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{filepath.Join(e.Home, ".ssh", "agent.sock"), filepath.Join(runtimeDir, "gnupg", "S.gpg-agent")} {
		ln, err := net.Listen("unix", s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		w.sockets = append(w.sockets, s)
	}
	e.ExtraEnv = []string{"PATH=/usr/bin:/bin", "SSH_AUTH_SOCK=" + w.sockets[0], "XDG_RUNTIME_DIR=" + runtimeDir}

	if cred != nil {
		// The user must reach its world: open the way down to it, and
		// give it everything in it.
		chmod(t, filepath.Dir(e.Root), 0o755)
		chmod(t, e.Root, 0o755)
		err := filepath.WalkDir(e.Root, func(path string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, int(cred.Uid), int(cred.Gid))
		})
		if err != nil {
			t.Fatal(err)
		}
		e.Cred = cred
	}

	w.d = e.StartDaemon()
	srv := httptest.NewServer(w.fake)
	t.Cleanup(srv.Close)
	w.mustRun(t, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	w.key = "sk-ant-sandbox-canary-" + sbRandomHex(16)
	w.fake.AddKey(w.key)
	w.create(t, w.key, "p", "--workspace", w.ws)
	w.create(t, "sk-ant-q-"+sbRandomHex(8), "q", "--workspace", w.ws)
	w.create(t, "sk-ant-g-"+sbRandomHex(8), "g", "--workspace", w.gws, "--allow-git-config")
	profiles := filepath.Join(e.DataHome, "ringlet", "profiles")
	w.pHome, w.qHome = filepath.Join(profiles, "p", "home"), filepath.Join(profiles, "q", "home")
	for _, h := range []string{w.pHome, w.qHome} {
		if _, err := os.Stat(h); err != nil {
			t.Fatalf("profile HOME: %v", err)
		}
	}
	return w
}

// create creates a generic profile whose agent is /bin/sh, with key on
// standard input.
func (w *sbWorld) create(t *testing.T, key, alias string, args ...string) {
	t.Helper()
	args = append([]string{"profiles", "create", "generic", alias, "--provider", "fake", "--command", "/bin/sh"}, args...)
	stdout, stderr, code, err := w.e.execInput(strings.NewReader(key), args...)
	if err != nil || code != 0 || !strings.Contains(stdout, "key: stored") {
		t.Fatalf("ringlet %s: exit %d, err %v, stdout %q, stderr %q; want exit 0 and the key stored", strings.Join(args, " "), code, err, stdout, stderr)
	}
}

func (w *sbWorld) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code, err := w.e.exec(args...)
	if err != nil || code != 0 {
		t.Fatalf("ringlet %s: exit %d, err %v; want exit 0; stderr %q", strings.Join(args, " "), code, err, stderr)
	}
	return stdout
}

// sh runs script with /bin/sh -c inside profile alias; args are $1, ...
func (w *sbWorld) sh(t *testing.T, alias, script string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	argv := append([]string{"profiles", "run", alias, "--", "-c", script, "probe"}, args...)
	stdout, stderr, code, err := w.e.exec(argv...)
	if err != nil {
		t.Fatalf("ringlet profiles run %s: %v\nstdout:\n%s\nstderr:\n%s", alias, err, stdout, stderr)
	}
	return stdout, stderr, code
}

// bash is sh for scripts that need bash (/dev/tcp).
func (w *sbWorld) bash(t *testing.T, alias, script string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return w.sh(t, alias, `s=$1; shift; exec /bin/bash -c "$s" probe "$@"`, append([]string{script}, args...)...)
}

// mustProbe is sh that wants exit 0.
func (w *sbWorld) mustProbe(t *testing.T, alias, script string, args ...string) string {
	t.Helper()
	stdout, stderr, code := w.sh(t, alias, script, args...)
	if code != 0 {
		t.Fatalf("probe: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	return stdout
}

// sbAudit is an audit record as `audit query --json` prints it.
type sbAudit struct {
	Kind    string         `json:"kind"`
	Profile string         `json:"profile"`
	Session string         `json:"session"`
	Detail  map[string]any `json:"detail"`
}

func (w *sbWorld) audit(t *testing.T, args ...string) []sbAudit {
	t.Helper()
	out := w.mustRun(t, append([]string{"audit", "query", "--json", "--limit", "1000"}, args...)...)
	var page struct{ Records []sbAudit }
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit query: %v; got %.300q", err, out)
	}
	return page.Records
}

func TestSandbox(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	t.Run("probes", func(t *testing.T) { w.probes(t) })

	// After every probe: no session is left, whatever way its agent
	// ended.
	t.Run("exit code and session end", func(t *testing.T) {
		_, stderr, code := w.sh(t, "p", "exit 7")
		if code != 7 {
			t.Fatalf("got exit %d, want the agent's 7; stderr %q", code, stderr)
		}
		if out := strings.TrimSpace(w.mustRun(t, "sessions", "list", "--json")); out != "[]" {
			t.Errorf("sessions list --json: got %s, want [] (every session ended)", out)
		}
		recs := w.audit(t, "--profile", "p")
		// Newest first: the session of exit 7.
		var launch, end *sbAudit
		for i := range recs {
			switch r := &recs[i]; {
			case r.Kind == "profile.launch" && launch == nil:
				launch = r
			case r.Kind == "session.end" && end == nil:
				end = r
			}
		}
		if launch == nil || end == nil || launch.Session != end.Session {
			t.Fatalf("audit: got launch %+v and end %+v, want both for one session", launch, end)
		}
		d := launch.Detail
		if d["sandbox"] != true || d["network"] != "provider" || d["workspace"] != w.ws || d["command"] != "/bin/sh" {
			t.Errorf("profile.launch detail: got %v, want sandbox true, network provider, workspace %s, command /bin/sh", d, w.ws)
		}
		if names, _ := d["env"].([]any); !slices.Contains(names, any("ANTHROPIC_API_KEY")) {
			t.Errorf("profile.launch env: got %v, want the variable names", d["env"])
		}
		if reason, _ := end.Detail["reason"].(string); !strings.Contains(reason, "code 7") {
			t.Errorf("session.end reason: got %q, want the exit code 7", reason)
		}
		all, _ := json.Marshal(recs)
		for _, secret := range []string{w.key, "rlt_"} {
			if bytes.Contains(all, []byte(secret)) {
				t.Errorf("audit: got %q in the records of p, want no key or session token", secret)
			}
		}
	})

	t.Run("no-sandbox is warned and audited", func(t *testing.T) {
		stdout, stderr, code, err := w.e.exec("profiles", "run", "p", "--no-sandbox", "--", "-c", "echo RAN-UNSANDBOXED")
		if err != nil || code != 0 || !strings.Contains(stdout, "RAN-UNSANDBOXED") {
			t.Fatalf("got exit %d, err %v, stdout %q, stderr %q; want the agent to run", code, err, stdout, stderr)
		}
		if !strings.Contains(stderr, "WITHOUT a sandbox") {
			t.Errorf("stderr: got %q, want a warning", stderr)
		}
		recs := w.audit(t, "--profile", "p", "--kind", "profile.launch", "--limit", "1")
		if len(recs) != 1 || recs[0].Detail["sandbox"] != false {
			t.Errorf("latest profile.launch: got %+v, want sandbox false", recs)
		}
	})

	t.Run("a generic agent's whole command line runs", func(t *testing.T) {
		stdout, stderr, code, err := w.e.execInput(strings.NewReader(w.key), "profiles", "create", "generic", "argv", "--provider", "fake",
			"--command", "/bin/echo hello from the agent", "--workspace", w.ws)
		if err != nil || code != 0 {
			t.Fatalf("profiles create: exit %d, err %v, stdout %q, stderr %q", code, err, stdout, stderr)
		}
		for _, extra := range [][]string{nil, {"--no-sandbox"}} {
			args := append(append([]string{"profiles", "run", "argv"}, extra...), "--", "and more")
			stdout, stderr, code, err := w.e.exec(args...)
			if err != nil || code != 0 || strings.TrimSpace(stdout) != "hello from the agent and more" {
				t.Errorf("ringlet %s: exit %d, err %v, stdout %q, stderr %q; want the command's own arguments, then the extra one",
					strings.Join(args, " "), code, err, stdout, stderr)
			}
		}
	})

	t.Run("sandbox check", func(t *testing.T) { sbCheck(t, w.e) })
}

// TestSandboxUnprivileged runs the probes as an unprivileged user
// (uid 65534): bubblewrap then builds its sandbox in a user namespace.
func TestSandboxUnprivileged(t *testing.T) {
	requireSandbox(t)
	if os.Geteuid() != 0 {
		t.Skip("running as a user already; the root half of the suite is the other test")
	}
	t.Parallel()
	cred := &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nobody)}

	t.Run("sandbox check", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		chmod(t, filepath.Dir(e.Root), 0o755)
		chmod(t, e.Root, 0o755)
		for _, p := range []string{e.Root, e.Home} {
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
		e.ExtraEnv = []string{"PATH=/usr/bin:/bin"}
		e.Cred = cred
		sbCheck(t, e)
	})
	t.Run("probes", func(t *testing.T) {
		t.Parallel()
		newSBWorld(t, cred).probes(t)
	})
}

// sbCheck wants `ringlet sandbox check` to pass every probe.
func sbCheck(t *testing.T, e *env) {
	t.Helper()
	stdout, stderr, code, err := e.exec("sandbox", "check")
	if err != nil || code != 0 {
		t.Fatalf("sandbox check: exit %d, err %v, want 0\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	rows := lines(stdout)
	if len(rows) < 9 || !strings.HasPrefix(rows[0], "sandbox: ") || !strings.Contains(rows[0], "seccomp filter") || !strings.HasPrefix(rows[1], "limits: ") {
		t.Fatalf("sandbox check: got %q, want a line on bwrap and its seccomp filter, one on the limits, and a table of probes", stdout)
	}
	// Without a systemd manager (here, CI) the limits are rlimits; root
	// is exempt from the one on processes, and check says so.
	switch {
	case strings.Contains(rows[1], "systemd scope"):
	case !strings.Contains(rows[1], "rlimits") || (e.Cred == nil && os.Geteuid() == 0) != strings.Contains(rows[1], "NOT bounded"):
		t.Errorf("sandbox check: got %q, want the mechanism and whether processes are bounded", rows[1])
	}
	for _, want := range []string{"seccomp filter refuses", "/tmp, /var/tmp and /dev/shm hold 1G at most", "no core dumps"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("sandbox check: got %q, want a probe %q", stdout, want)
		}
	}
	for _, r := range rows[3:] {
		if !strings.HasPrefix(r, "PASS ") {
			t.Errorf("sandbox check: got %q, want PASS", r)
		}
	}
}

// probes runs the escape probes at once: each writes only files of its
// own in the workspace.
func (w *sbWorld) probes(t *testing.T) {
	e := w.e
	// Concurrent, and not t.Parallel: most of a probe's time is waiting
	// (a -race forwarder sleeps a second as it exits), so the probes
	// need not queue for the -parallel slots.
	var wg sync.WaitGroup
	defer wg.Wait()
	run := func(name string, probe func(t *testing.T)) { wg.Go(func() { t.Run(name, probe) }) }
	run("host secrets are not visible", func(t *testing.T) {
		secrets := []string{filepath.Join(e.Home, ".ssh", "id_ed25519"), e.TokenFile(), filepath.Join(e.ConfigDir(), "credentials.toml"),
			e.ConfigDir(), e.StateFile(), filepath.Join(e.StateDir(), "audit.db"), w.outside}
		for _, s := range secrets {
			if _, err := os.Stat(s); err != nil {
				t.Fatalf("the probe needs %s on the host: %v", s, err)
			}
		}
		out := w.mustProbe(t, "p", `
for f in "$@"; do
	if [ -e "$f" ] || cat "$f" 2>/dev/null; then echo "VISIBLE $f"; fi
done
ls -A "$HOME/.ssh" 2>/dev/null && echo "VISIBLE ~/.ssh"
exit 0`, secrets...)
		if strings.Contains(out, "VISIBLE") || strings.Contains(out, "SSH-CANARY") || strings.Contains(out, e.Token()) {
			t.Errorf("got %q, want nothing of the host's secrets", out)
		}
	})

	run("writes outside the workspace never reach the host", func(t *testing.T) {
		dir := filepath.Join(w.outside, "writes")
		writeFile(t, filepath.Join(dir, "target.txt"), "original", 0o644)
		tag := "ringlet-probe-" + sbRandomHex(4)
		for _, l := range [][2]string{{filepath.Join(dir, "target.txt"), "link-file"}, {dir, "link-dir"}, {"/etc/" + tag, "link-etc"}} {
			if err := os.Symlink(l[0], filepath.Join(w.ws, tag+"-"+l[1])); err != nil {
				t.Fatal(err)
			}
		}
		system := []string{"/etc/" + tag, "/usr/" + tag, "/opt/" + tag, "/" + tag, "/var/" + tag, "/root/" + tag, "/home/" + tag}
		t.Cleanup(func() {
			for _, p := range system {
				os.Remove(p) // only if the sandbox failed
			}
		})
		outsideBefore, homeBefore := snapshot(t, dir), snapshot(t, e.Home)
		out := w.mustProbe(t, "p", `
tag=$1; shift
for p in "$@"; do echo pwned 2>/dev/null > "$p" && echo "WROTE $p"; done
for l in link-file link-dir/new.txt link-etc; do echo pwned 2>/dev/null > "$tag-$l" && echo "WROTE $l"; done
echo pwned > "$HOME/$tag" && echo "WROTE HOME"
exit 0`, append([]string{tag}, system...)...)
		for _, p := range []string{"/etc/", "/usr/", "/opt/", "link-file", "link-dir", "link-etc"} {
			if strings.Contains(out, "WROTE "+p) {
				t.Errorf("got %q: a write to %s succeeded inside, want it refused", out, p)
			}
		}
		// The profile's HOME is the agent's to write: the control.
		if !strings.Contains(out, "WROTE HOME") {
			t.Errorf("got %q, want the write to the profile's HOME to succeed", out)
		}
		for _, p := range system {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists on the host after the probe", p)
			}
		}
		for what, before := range map[string]map[string]fileState{dir: outsideBefore, e.Home: homeBefore} {
			after := snapshot(t, what)
			if d := diffSnapshots(before, after); len(d) > 0 {
				t.Errorf("%s changed on the host: %v", what, d)
			}
		}
		if _, err := os.Stat(filepath.Join(w.pHome, tag)); err != nil {
			t.Errorf("the write to HOME inside: got %v, want it in the profile's HOME on the host", err)
		}
	})

	run("hard links", func(t *testing.T) {
		dir := filepath.Join(w.outside, "hard")
		host, other := filepath.Join(dir, "planted.txt"), filepath.Join(dir, "other.txt")
		writeFile(t, host, "original", 0o644)
		writeFile(t, other, "original", 0o644)
		if w.asNobody {
			// The user's own files, as a planted link would be.
			os.Chown(host, nobody, nobody)
			os.Chown(other, nobody, nobody)
		}
		link := filepath.Join(w.ws, "hardlink-"+sbRandomHex(4))
		if err := os.Link(host, link); err != nil {
			t.Skipf("cannot plant a hard link here: %v", err)
		}
		if w.asNobody {
			os.Lchown(link, nobody, nobody)
		}
		newLink := filepath.Join(w.ws, "newlink-"+sbRandomHex(4))
		out := w.mustProbe(t, "p", `
ln "$2" "$3" 2>/dev/null && echo "LINKED"
echo appended 2>/dev/null >> "$1" && echo "WROTE THROUGH"
exit 0`, link, other, newLink)
		// A new hard link to a host file cannot be made: the file is not
		// there to link to.
		if strings.Contains(out, "LINKED") {
			t.Errorf("got %q, want ln to a host file outside the workspace to fail", out)
		}
		if _, err := os.Lstat(newLink); err == nil {
			t.Errorf("%s exists: the agent linked a host file into the workspace", newLink)
		}
		// A hard link planted in the workspace before the run is the
		// host file itself (one inode): Ringlet finds it and binds it
		// read-only onto itself.
		if data, _ := os.ReadFile(host); strings.Contains(out, "WROTE THROUGH") || string(data) != "original" {
			t.Errorf("got %q and host content %q; want the write through the planted hard link refused and %s unchanged", out, data, host)
		}
	})

	run("git hooks and config are read-only", func(t *testing.T) {
		git := filepath.Join(w.ws, ".git")
		before := snapshot(t, git)
		out := w.mustProbe(t, "p", `
echo 'touch /tmp/pwned' 2>/dev/null > .git/hooks/pre-commit && echo "WROTE hook"
printf '[core]\n\tfsmonitor = touch /tmp/pwned\n' 2>/dev/null >> .git/config && echo "WROTE config"
mv .git/hooks .git/hooks-moved 2>/dev/null && echo "MOVED hooks"
mv .git/config .git/config-moved 2>/dev/null && echo "MOVED config"
mv .git .git-moved 2>/dev/null && echo "MOVED .git"
rm -rf .git/hooks 2>/dev/null; [ -d .git/hooks ] || echo "REMOVED hooks"
exit 0`)
		for _, bad := range []string{"WROTE", "MOVED", "REMOVED"} {
			if strings.Contains(out, bad) {
				t.Errorf("got %q, want every change to .git/hooks and .git/config refused", out)
				break
			}
		}
		if d := diffSnapshots(before, snapshot(t, git)); len(d) > 0 {
			t.Errorf(".git changed on the host: %v", d)
		}

		// Only hooks and config are guarded; a new file beside them is
		// not, and git follows .git/commondir to another config.
		out = w.mustProbe(t, "p", `echo ../.agent-git 2>/dev/null > .git/commondir && echo "WROTE commondir"; exit 0`)
		if strings.Contains(out, "WROTE commondir") {
			os.Remove(filepath.Join(git, "commondir"))
			t.Logf("KNOWN GAP: .git/commondir is writable; git on the host then reads its config (core.fsmonitor, hooks) from a directory the agent controls")
		}
	})

	run("allow-git-config", func(t *testing.T) {
		out := w.mustProbe(t, "g", `
echo '#!/bin/sh' > .git/hooks/pre-commit && echo "WROTE hook"
echo '# agent' >> .git/config && echo "WROTE config"
exit 0`)
		if !strings.Contains(out, "WROTE hook") || !strings.Contains(out, "WROTE config") {
			t.Errorf("got %q, want both writes to succeed with --allow-git-config", out)
		}
		if data, err := os.ReadFile(filepath.Join(w.gws, ".git", "config")); err != nil || !strings.Contains(string(data), "# agent") {
			t.Errorf(".git/config on the host: got %q, %v; want the agent's line", data, err)
		}
	})

	run("the daemon's port is unreachable", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(w.d.Addr)
		// Control: both are reachable from the host.
		if c, err := net.Dial("tcp", w.d.Addr); err != nil {
			t.Fatalf("the daemon is not reachable from the host: %v", err)
		} else {
			c.Close()
		}
		v6port := ""
		if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			_, v6port, _ = net.SplitHostPort(ln.Addr().String())
		} else {
			t.Logf("no IPv6 loopback here (%v); probing [::1] on the daemon's port only", err)
		}
		stdout, stderr, code := w.bash(t, "p", `
for target in 127.0.0.1/$1 ::1/$1 ${2:+::1/$2}; do
	(exec 3<>/dev/tcp/$target) 2>/dev/null && echo "REACHED $target"
done
(exec 3<>/dev/tcp/127.0.0.1/8765) && echo "FORWARDER"
exit 0`, port, v6port)
		if code != 0 || strings.Contains(stdout, "REACHED") {
			t.Errorf("got exit %d and %q, want no connection to the host's loopback; stderr %q", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "FORWARDER") {
			t.Errorf("got %q, want the session's forwarder on 127.0.0.1:8765 to answer (the control)", stdout)
		}
	})

	run("no sockets but the session's", func(t *testing.T) {
		out := w.mustProbe(t, "p", `
find / -path /proc -prune -o -type s -print 2>/dev/null
# find trusts the directory entry, which for a bound socket is the
# placeholder's: test every mount point too.
cut -d' ' -f5 /proc/self/mountinfo | while read -r m; do [ -S "$m" ] && echo "$m"; done
env | grep -E '^(SSH_AUTH_SOCK|XDG_RUNTIME_DIR|DBUS_SESSION_BUS_ADDRESS|DISPLAY)='
exit 0`)
		got := lines(out)
		slices.Sort(got)
		got = slices.Compact(got)
		if want := []string{sandbox.InsideSocket}; !slices.Equal(got, want) {
			t.Errorf("got %q, want only %q (host sockets %q)", got, want, w.sockets)
		}
	})

	run("another profile's HOME is not visible", func(t *testing.T) {
		own := "own-" + sbRandomHex(4)
		writeFile(t, filepath.Join(w.pHome, own), own, 0o644)
		writeFile(t, filepath.Join(w.qHome, "secret"), "Q-SECRET", 0o600)
		if w.asNobody {
			os.Chown(filepath.Join(w.pHome, own), nobody, nobody)
		}
		out := w.mustProbe(t, "p", `
[ -e "$1" ] && echo "VISIBLE $1"
ls -A "$2" 2>/dev/null && echo "VISIBLE $2"
ls -A "$3" 2>/dev/null && echo "VISIBLE $3"
cat "$HOME/$4"
exit 0`, filepath.Join(w.qHome, "secret"), w.qHome, filepath.Dir(w.qHome), own)
		if strings.Contains(out, "VISIBLE") || strings.Contains(out, "Q-SECRET") {
			t.Errorf("got %q, want nothing of profile q", out)
		}
		if !strings.Contains(out, own) {
			t.Errorf("got %q, want p's own HOME at $HOME (the control)", out)
		}
	})

	run("host processes are not visible", func(t *testing.T) {
		out := w.mustProbe(t, "p", `
echo "environ: $(tr '\0' ' ' < /proc/1/environ)"
for p in /proc/[0-9]*; do echo "process ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)"; done
exit 0`)
		var procs []string
		for _, l := range lines(out) {
			if strings.HasPrefix(l, "environ: ") && strings.TrimSpace(strings.TrimPrefix(l, "environ: ")) != "" {
				t.Errorf("/proc/1/environ: got %q, want it empty (bubblewrap starts with no environment)", l)
			}
			if strings.HasPrefix(l, "process ") {
				procs = append(procs, l)
			}
		}
		// bwrap as pid 1, the forwarder, sh, and the subshells.
		if len(procs) == 0 || len(procs) > 8 {
			t.Errorf("got %d processes %q, want only the sandbox's own", len(procs), procs)
		}
		for _, p := range procs {
			if strings.Contains(p, "daemon") || strings.Contains(p, "rlt_") || strings.Contains(p, w.key) {
				t.Errorf("got %q, want no host process and no secret on a command line", p)
			}
		}
	})

	run("no capabilities, no new privileges, no mounts", func(t *testing.T) {
		out := w.mustProbe(t, "p", `
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status
mkdir -p /tmp/m && mount -t tmpfs none /tmp/m 2>/dev/null && echo "MOUNTED"
unshare -Urm sh -c 'mount -t tmpfs none /tmp && echo "MOUNTED IN A NESTED NAMESPACE"' 2>/dev/null
exit 0`)
		status := map[string]string{}
		for _, l := range lines(out) {
			if k, v, ok := strings.Cut(l, ":"); ok && !strings.Contains(l, "MOUNTED") {
				status[k] = strings.TrimSpace(v)
			}
		}
		for _, c := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if v, ok := status[c]; !ok || strings.Trim(v, "0") != "" {
				t.Errorf("%s: got %q, want no capabilities", c, v)
			}
		}
		if status["NoNewPrivs"] != "1" {
			t.Errorf("NoNewPrivs: got %q, want 1", status["NoNewPrivs"])
		}
		if slices.Contains(lines(out), "MOUNTED") {
			t.Errorf("got %q, want mount to be refused", out)
		}
		if strings.Contains(out, "MOUNTED IN A NESTED NAMESPACE") {
			t.Errorf("got %q: the agent created a nested user namespace and mounted in it; want --disable-userns to refuse it", out)
		}
	})

	run("TIOCSTI on the terminal fails", func(t *testing.T) { w.tiocsti(t) })

	run("the real key is nowhere inside, and reaches the provider", func(t *testing.T) {
		half := len(w.key) / 2
		// The key goes in two halves, so that no command line holds it
		// whole; grep reads it from standard input for the same reason.
		stdout, stderr, code := w.bash(t, "p", `
k="$1$2"
env | grep -F -- "$k" && echo "IN ENV"
printf '%s' "$k" | grep -rlsF -f - "$HOME" "$PWD" /tmp /proc/self/environ /proc/[0-9]*/environ /proc/[0-9]*/cmdline && echo "IN FILES"
echo "BASE $ANTHROPIC_BASE_URL"
body='{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
exec 3<>/dev/tcp/127.0.0.1/8765 || exit 3
printf 'POST %s/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nx-api-key: %s\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s' \
	"${ANTHROPIC_BASE_URL#http://127.0.0.1:8765}" "$ANTHROPIC_API_KEY" "${#body}" "$body" >&3
cat <&3`, w.key[:half], w.key[half:])
		if code != 0 {
			t.Fatalf("probe: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if strings.Contains(stdout, "IN ENV") || strings.Contains(stdout, "IN FILES") || strings.Contains(stdout+stderr, w.key) {
			t.Errorf("got %q, want the real key nowhere in the sandbox", stdout)
		}
		if !strings.Contains(stdout, "BASE http://127.0.0.1:8765/proxy") {
			t.Errorf("got %q, want ANTHROPIC_BASE_URL on the forwarder", stdout)
		}
		if !strings.Contains(stdout, "HTTP/1.1 200") || !strings.Contains(stdout, fakeprovider.AnswerText(fakeprovider.DefaultTextEvents)) {
			t.Errorf("got %q, want the fake provider's answer through the forwarder", stdout)
		}
		n := 0
		for _, r := range w.fake.Requests() {
			if r.Path == "/v1/messages" {
				n++
				if r.Key != w.key {
					t.Errorf("the fake got key %q, want the real key of p", r.Key)
				}
			}
		}
		if n != 1 {
			t.Errorf("the fake got %d requests, want 1", n)
		}
	})

	run("the session token is not on a host command line", func(t *testing.T) {
		tag := sbRandomHex(4)
		tokenFile, goFile := filepath.Join(w.ws, "token-"+tag), filepath.Join(w.ws, "go-"+tag)
		ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
		defer cancel()
		cmd := e.command(ctx, ringletBin, "profiles", "run", "p", "--", "-c", `
printf '%s' "$ANTHROPIC_API_KEY" > "$1"
while [ ! -e "$2" ]; do sleep 0.02; done`, "probe", tokenFile, goFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var token string
		ok := waitFor(runTimeout/2, func() bool {
			data, _ := os.ReadFile(tokenFile)
			token = string(data)
			return strings.HasPrefix(token, "rlt_") && len(token) > 20
		})
		if ok {
			entries, _ := os.ReadDir("/proc")
			for _, de := range entries {
				cmdline, err := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
				if err == nil && bytes.Contains(cmdline, []byte(token)) {
					t.Errorf("process %s has the session token on its command line: %q", de.Name(), strings.ReplaceAll(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), token, "<TOKEN>"))
				}
			}
		} else {
			t.Errorf("the agent did not write its token: %q", out.String())
		}
		writeFile(t, goFile, "", 0o644)
		if err := cmd.Wait(); err != nil {
			t.Errorf("profiles run: %v; output %q", err, out.String())
		}
	})

	run("bad input", func(t *testing.T) { w.badInput(t) })
}

// tiocsti types into the terminal from inside the sandbox: with
// --new-session the terminal is not the agent's controlling terminal, so
// the kernel refuses. `ringlet profiles run` itself runs on a fresh
// pseudo-terminal that is its controlling terminal, as on a desktop.
func (w *sbWorld) tiocsti(t *testing.T) {
	python, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil || !strings.HasPrefix(python, "/usr/") {
		t.Skipf("skipping the TIOCSTI probe: it needs python3 under /usr (visible inside the sandbox): %v", err)
	}
	const script = `import fcntl, os, sys, termios
if not os.isatty(0):
    print("NOT A TTY"); sys.exit(2)
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"x")
except OSError as e:
    print("DENIED", e.errno); sys.exit(0)
print("INJECTED"); sys.exit(3)`
	run := func(argv ...string) (string, int) {
		t.Helper()
		master, slave := sbOpenPTY(t)
		defer master.Close()
		defer slave.Close()
		ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
		defer cancel()
		cmd := w.e.command(ctx, argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Credential: w.e.Cred}
		var out bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s: %v", argv[0], err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	// Control: on the host, with the terminal as the controlling one.
	ctl, _ := run("/usr/bin/python3", "-c", script)
	if !strings.Contains(ctl, "INJECTED") {
		t.Logf("this kernel refuses TIOCSTI even outside a sandbox (%q); the probe still runs", strings.TrimSpace(ctl))
	}
	out, code := run(ringletBin, "profiles", "run", "p", "--", "-c", `exec /usr/bin/python3 -c "$1"`, "probe", script)
	if code != 0 || !strings.Contains(out, "DENIED") {
		t.Errorf("got exit %d, %q; want TIOCSTI denied inside the sandbox", code, out)
	}
}

// sbOpenPTY opens a new pseudo-terminal pair.
func sbOpenPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	ioctl := func(req uintptr, arg unsafe.Pointer) error {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), req, uintptr(arg)); errno != 0 {
			return errno
		}
		return nil
	}
	var unlock int32
	var n uint32
	if err := ioctl(syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	if err := ioctl(syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, s
}

// badInput: paths that could be taken for options or split the argument
// list, missing or unsafe workspaces, and invalid names are refused with
// a clear error, and no sandbox starts (no session.start in the audit).
func (w *sbWorld) badInput(t *testing.T) {
	e := w.e
	rootLink := filepath.Join(e.Root, "rootlink")
	if err := os.Symlink("/", rootLink); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(e.Root, "missing")
	// `profiles create` refuses them.
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"workspace with a newline", []string{"--workspace", w.ws + "\n--share-net"}, "invalid workspace"},
		{"workspace starting with --", []string{"--workspace=--share-net"}, "--share-net"},
		{"ro path starting with --", []string{"--ro=--bind"}, `invalid extra path "--bind"`},
		{"rw path starting with -", []string{"--rw=-x"}, `invalid extra path "-x"`},
		{"missing workspace", []string{"--workspace", missing}, "no such file or directory"},
		{"workspace that is a symlink to /", []string{"--workspace", rootLink}, "root directory"},
	} {
		args := append([]string{"profiles", "create", "generic", "bad", "--provider", "fake", "--command", "/bin/sh", "--skip-key"}, c.args...)
		_, stderr, code, err := e.exec(args...)
		if err != nil || (code != 1 && code != 2) || !strings.Contains(stderr, c.want) {
			t.Errorf("create, %s: got exit %d, err %v, stderr %q; want exit 1 or 2 and %q", c.name, code, err, stderr, c.want)
		}
	}
	for _, name := range []string{"../p", "-p", "p q", "p\nq", ""} {
		_, stderr, code, err := e.exec("profiles", "run", name, "--", "-c", "echo RAN")
		if err != nil || code != 2 || !strings.Contains(stderr, "profile") {
			t.Errorf("run %q: got exit %d, err %v, stderr %q; want exit 2 and an error about the name", name, code, err, stderr)
		}
	}

	// A profile file edited by hand is checked again by `run`.
	edited := "edited"
	ews := filepath.Join(e.Root, "edited-ws")
	if err := os.Mkdir(ews, 0o755); err != nil {
		t.Fatal(err)
	}
	if w.asNobody {
		os.Chown(ews, nobody, nobody)
	}
	w.create(t, "sk-ant-edited-"+sbRandomHex(4), edited, "--workspace", ews)
	file := filepath.Join(e.ConfigDir(), "profiles", edited+".toml")
	original, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, toml, want string
	}{
		{"missing workspace", "workspace = " + strconv.Quote(missing), "no such file or directory"},
		{"workspace that is a symlink to /", "workspace = " + strconv.Quote(rootLink), "root directory"},
		{"workspace with a newline", "workspace = " + strconv.Quote(ews+"\n--share-net"), "invalid workspace"},
		{"workspace holding Ringlet's files", "workspace = " + strconv.Quote(e.Root), "Ringlet's own files"},
		{"ro path starting with --", "workspace = " + strconv.Quote(ews) + "\nro = [\"--bind\"]", `"--bind" starts with '-'`},
		{"ro path with a newline", "workspace = " + strconv.Quote(ews) + "\nro = [" + strconv.Quote("/etc\n--share-net") + "]", "contains a newline"},
		{"rw path inside Ringlet's config", "workspace = " + strconv.Quote(ews) + "\nrw = [" + strconv.Quote(e.ConfigDir()) + "]", "Ringlet's own files"},
	} {
		// strconv.Quote writes \n, which TOML reads as a newline too.
		var kept []string
		for _, l := range strings.Split(string(original), "\n") {
			if !strings.HasPrefix(l, "workspace") {
				kept = append(kept, l)
			}
		}
		writeFile(t, file, strings.Join(kept, "\n")+"\n"+c.toml+"\n", 0o600)
		if w.asNobody {
			os.Chown(file, nobody, nobody)
		}
		stdout, stderr, code, err := e.exec("profiles", "run", edited, "--", "-c", "echo RAN")
		if err != nil || (code != 1 && code != 2) || !strings.Contains(stderr, c.want) || strings.Contains(stdout, "RAN") {
			t.Errorf("run, %s: got exit %d, err %v, stdout %q, stderr %q; want exit 1 or 2 and %q", c.name, code, err, stdout, stderr, c.want)
		}
	}
	if recs := w.audit(t, "--profile", edited, "--kind", "session.start"); len(recs) != 0 {
		t.Errorf("audit: got %d session.start records for %s, want none (no sandbox started)", len(recs), edited)
	}
	if recs := w.audit(t, "--profile", "bad"); len(recs) != 0 {
		t.Errorf("audit: got %+v for the refused profile, want nothing", recs)
	}
}
