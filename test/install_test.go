package test

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The install tests build Ringlet the ways a user installs it: make build,
// make install and make dist in a git checkout, go build in one, and go
// install github.com/neullabs/ringlet/cmd/ringlet@VERSION from a module
// proxy. Each works on a copy of the module's files (the committed and
// new ones, as a release holds them, without tools/, a module of its own)
// so that nothing outside the module can be used by accident.

// buildTimeout bounds one go or make command: a cold build of everything
// on two cores takes minutes.
const buildTimeout = 10 * time.Minute

// buildVersion is `ringlet version --json`.
type buildVersion struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Dirty   bool   `json:"dirty"`
	Source  string `json:"source"`
}

// goEnv is the environment of the go and make commands of these tests:
// the outer one, with the toolchain fixed, cgo off (a release needs no C
// compiler) and GOFLAGS replaced (a machine's go env file may turn VCS
// stamping off), plus extra.
// The caches are the outer ones even where a test changes HOME (where
// the go command would otherwise look for them).
func goEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "GOFLAGS" || k == "CGO_ENABLED" || k == "GOTOOLCHAIN" || strings.HasPrefix(k, "RINGLET_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, goCaches()...)
	return append(append(env, "GOFLAGS=-buildvcs=auto", "CGO_ENABLED=0", "GOTOOLCHAIN=local"), extra...)
}

// goCaches are GOCACHE, GOMODCACHE and GOPATH as the go command sees them.
var goCaches = sync.OnceValue(func() []string {
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	f := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(f) != 3 {
		return nil
	}
	return []string{"GOCACHE=" + f[0], "GOMODCACHE=" + f[1], "GOPATH=" + f[2]}
})

// runIn runs name in dir with env and returns its combined output, failing
// t if it does not exit 0.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// moduleFiles lists the files of the module as a release holds them:
// tracked and new files (not ignored ones), regular files only, outside
// directories that are modules of their own.
func moduleFiles(t *testing.T) (root string, files []string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := runIn(t, root, os.Environ(), "git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	var nested []string
	all := strings.Split(strings.TrimRight(out, "\x00"), "\x00")
	for _, f := range all {
		if d := filepath.Dir(f); filepath.Base(f) == "go.mod" && d != "." {
			nested = append(nested, d+"/")
		}
	}
	for _, f := range all {
		if slices.ContainsFunc(nested, func(d string) bool { return strings.HasPrefix(f, d) }) {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(root, f)); err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink (not in module zips)
		}
		files = append(files, f)
	}
	if !slices.Contains(files, "go.mod") || !slices.Contains(files, "cmd/ringlet/main.go") {
		t.Fatalf("module files: got %d files without go.mod or cmd/ringlet/main.go", len(files))
	}
	return root, files
}

// gitCheckout copies the module's files into a new git repository with one
// commit, and returns its directory and commit.
func gitCheckout(t *testing.T) (dir, commit string) {
	t.Helper()
	root, files := moduleFiles(t)
	dir = filepath.Join(t.TempDir(), "ringlet")
	for _, f := range files {
		copyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
	}
	env := append(goEnv(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1")
	runIn(t, dir, env, "git", "init", "-q")
	runIn(t, dir, env, "git", "add", "-A")
	runIn(t, dir, env, "git", "commit", "-q", "-m", "release")
	return dir, strings.TrimSpace(runIn(t, dir, env, "git", "rev-parse", "HEAD"))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// versionOf runs bin version --json, and checks that the text form says
// the same.
func versionOf(t *testing.T, bin string) buildVersion {
	t.Helper()
	out := runIn(t, t.TempDir(), []string{"HOME=" + t.TempDir()}, bin, "version", "--json")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s version --json: %v; got %q", bin, err, out)
	}
	text := runIn(t, t.TempDir(), []string{"HOME=" + t.TempDir()}, bin, "version")
	short := v.Commit
	if len(short) > 12 {
		short = short[:12]
	}
	if !strings.HasPrefix(text, "ringlet "+v.Version+" (commit "+short) || strings.Contains(text, "dirty") != v.Dirty {
		t.Errorf("%s version: got %q, want it to say %+v", bin, text, v)
	}
	return v
}

// appendTo changes a file of a checkout, making its tree dirty.
func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestInstallWithMake: make build, install and dist in a git checkout
// say the version (git describe), the commit and whether the tree was
// dirty, from link-time flags; install puts the binary where PREFIX,
// BINDIR and DESTDIR say (by default ~/.local/bin); dist builds static,
// versioned binaries with a SHA256SUMS file sha256sum can check.
func TestInstallWithMake(t *testing.T) {
	t.Parallel()
	src, commit := gitCheckout(t)
	env := goEnv()
	mk := func(args ...string) string {
		t.Helper()
		return runIn(t, src, env, "make", args...)
	}

	mk("build")
	bin := filepath.Join(src, "bin", "ringlet")
	if v := versionOf(t, bin); v.Source != "make" || v.Commit != commit || v.Dirty || !strings.HasPrefix(commit, v.Version) {
		t.Errorf("make build, untagged: got %+v, want version a prefix of %s, that commit, not dirty, from make", v, commit)
	}
	runIn(t, src, env, "git", "tag", "v9.9.9")
	mk("build")
	if v := versionOf(t, bin); v.Version != "v9.9.9" || v.Commit != commit || v.Dirty {
		t.Errorf("make build at tag v9.9.9: got %+v, want v9.9.9 at %s, not dirty", v, commit)
	}

	t.Run("install", func(t *testing.T) {
		prefix := filepath.Join(t.TempDir(), "prefix")
		mk("install", "PREFIX="+prefix)
		if v := versionOf(t, filepath.Join(prefix, "bin", "ringlet")); v.Version != "v9.9.9" {
			t.Errorf("make install PREFIX=%s: got %+v, want v9.9.9 in %s/bin", prefix, v, prefix)
		}

		home := t.TempDir()
		out := runIn(t, src, append(goEnv(), "HOME="+home, "PATH=/usr/bin:/bin:"+filepath.Dir(goBin(t))), "make", "install")
		installed := filepath.Join(home, ".local", "bin", "ringlet")
		if fi, err := os.Stat(installed); err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("make install with HOME=%s: %v, want %s mode 0755", home, err, installed)
		}
		if !strings.Contains(out, filepath.Join(home, ".local", "bin")+" is not on your PATH") {
			t.Errorf("make install to a directory not on PATH: got %q, want it to say so", out)
		}

		stage := t.TempDir()
		bindir := "/opt/ringlet-install-test-" + sbRandomHex(4) + "/bin"
		mk("install", "DESTDIR="+stage, "BINDIR="+bindir)
		if _, err := os.Stat(filepath.Join(stage, bindir, "ringlet")); err != nil {
			t.Errorf("make install DESTDIR=%s BINDIR=%s: %v, want the binary under DESTDIR", stage, bindir, err)
		}
		if _, err := os.Stat(filepath.Dir(bindir)); !os.IsNotExist(err) {
			t.Errorf("make install DESTDIR=... BINDIR=%s wrote outside DESTDIR: %v", bindir, err)
		}
	})

	t.Run("dist", func(t *testing.T) {
		// Every platform of the release is on the list; this test builds
		// two, the host's and a cross-compiled one.
		dry := mk("-n", "dist")
		for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
			if !strings.Contains(dry, p) {
				t.Errorf("make -n dist: got %q, want platform %s", dry, p)
			}
		}
		mk("dist", "PLATFORMS=linux/amd64")
		dist := filepath.Join(src, "dist")
		names := []string{"ringlet-v9.9.9-linux-amd64"}
		sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
		if len(sums) != len(names) {
			t.Errorf("SHA256SUMS: got %v, want a line for each of %v", sums, names)
		}
		for _, n := range names {
			data, err := os.ReadFile(filepath.Join(dist, n))
			if err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(data); sums[n] != hex.EncodeToString(h[:]) {
				t.Errorf("SHA256SUMS: %s has %q, want its SHA-256 %x", n, sums[n], h)
			}
		}
		runIn(t, dist, env, "sha256sum", "--check", "--strict", "SHA256SUMS")

		linux := filepath.Join(dist, names[0])
		f, err := elf.Open(linux)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: has a %v program header, want a static binary", names[0], p.Type)
			}
		}
		if v := versionOf(t, linux); v.Version != "v9.9.9" || v.Commit != commit || v.Source != "make" {
			t.Errorf("%s: got %+v, want v9.9.9 at %s", names[0], v, commit)
		}
	})

	// Last: the checkout changes.
	appendTo(t, filepath.Join(src, "README.md"), "\nlocal change\n")
	mk("build")
	if v := versionOf(t, bin); v.Version != "v9.9.9-dirty" || v.Commit != commit || !v.Dirty {
		t.Errorf("make build with a changed file: got %+v, want v9.9.9-dirty at %s, dirty", v, commit)
	}
}

// readSums reads a sha256sum file: "<hex>  <name>" per line.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("%s: line %q is not in sha256sum's format", path, sc.Text())
		}
		sums[m[2]] = m[1]
	}
	return sums
}

// goBin is the go command the tests run.
func goBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInstallWithGoBuild: a plain go build in a git checkout (no make,
// no flags) records the commit and whether the tree was modified, and
// ringlet version says them.
func TestInstallWithGoBuild(t *testing.T) {
	t.Parallel()
	src, commit := gitCheckout(t)
	bin := filepath.Join(t.TempDir(), "ringlet")
	build := func() buildVersion {
		t.Helper()
		runIn(t, src, goEnv(), "go", "build", "-trimpath", "-o", bin, "./cmd/ringlet")
		return versionOf(t, bin)
	}
	if v := build(); v.Source != "go" || v.Commit != commit || v.Dirty || !strings.Contains(v.Version, commit[:12]) {
		t.Errorf("go build: got %+v, want commit %s, not dirty, a pseudo-version naming it", v, commit)
	}
	appendTo(t, filepath.Join(src, "README.md"), "\nlocal change\n")
	if v := build(); v.Commit != commit || !v.Dirty || !strings.HasSuffix(v.Version, "+dirty") {
		t.Errorf("go build with a changed file: got %+v, want commit %s, dirty", v, commit)
	}
}

// TestInstallWithGoInstall: go install github.com/neullabs/ringlet/cmd/
// ringlet@v9.9.9 with cgo off, from a module proxy that serves this tree
// as v9.9.9 (a zip of the module's files) and the dependencies from the
// local module cache, into a fresh GOPATH and module cache. It shows that
// the module builds from its own files alone (no replace directive, which
// go install @version refuses, no file outside the module, no cgo), and
// that the binary says the version and runs with nothing but itself. It
// cannot show that the public proxy and checksum database serve a pushed
// tag.
func TestInstallWithGoInstall(t *testing.T) {
	t.Parallel()
	const version = "v0.9.9" // v2 and up would need /v2 in the module path
	root, files := moduleFiles(t)
	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy", "github.com", "neullabs", "ringlet", "@v")
	if err := os.MkdirAll(proxy, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(proxy, "list"), version+"\n", 0o644)
	writeFile(t, filepath.Join(proxy, version+".info"), fmt.Sprintf(`{"Version":%q,"Time":"2026-01-02T03:04:05Z"}`, version), 0o644)
	copyFile(t, filepath.Join(root, "go.mod"), filepath.Join(proxy, version+".mod"))
	zf, err := os.Create(filepath.Join(proxy, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	for _, f := range files {
		w, err := zw.Create("github.com/neullabs/ringlet@" + version + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zf.Close(); err != nil {
		t.Fatal(err)
	}

	modcache := strings.TrimSpace(runIn(t, tmp, goEnv(), "go", "env", "GOMODCACHE"))
	gobin := filepath.Join(tmp, "bin")
	env := goEnv(
		"GOPROXY=file://"+filepath.Join(tmp, "proxy")+",file://"+filepath.Join(modcache, "cache", "download"),
		"GOSUMDB=off", // v9.9.9 is this test's; go.sum in the zip still checks every dependency
		"GOPATH="+filepath.Join(tmp, "gopath"),
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOBIN="+gobin,
		"GOWORK=off",
		"GOFLAGS=-modcacherw -trimpath",
	)
	runIn(t, tmp, env, "go", "install", "github.com/neullabs/ringlet/cmd/ringlet@"+version)
	bin := filepath.Join(gobin, "ringlet")
	if v := versionOf(t, bin); v.Version != version || v.Source != "go" || v.Dirty {
		t.Errorf("go install ...@%s: got %+v, want version %s from the go command, not dirty", version, v, version)
	}

	// The binary runs on its own: the catalogs are embedded, and the
	// daemon starts, answers and stops.
	e := newEnv(t)
	e.ExtraEnv = []string{"PATH=" + gobin + ":/usr/bin:/bin"}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
		defer cancel()
		cmd := e.command(ctx, bin, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("installed ringlet %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("providers", "list"); !strings.Contains(out, "anthropic") || !strings.Contains(out, "built-in") {
		t.Errorf("installed ringlet providers list: got %q, want the built-in providers", out)
	}
	run("config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	run("daemon", "start")
	t.Cleanup(func() { e.exec("daemon", "stop") })
	var st struct{ Version string }
	if err := json.Unmarshal([]byte(run("daemon", "status", "--json")), &st); err != nil || st.Version != version {
		t.Errorf("installed ringlet daemon status: got version %q (%v), want %s", st.Version, err, version)
	}
	run("daemon", "stop")
}
