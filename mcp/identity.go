package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/toolchain"
)

// interpreterRE matches the programs that run a script named on their
// command line; the script is what the server is.
var interpreterRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(node|nodejs|bun|deno|python|python[23](\.[0-9]+)?|pypy3?|ruby|perl|php|bash|sh|dash|zsh)$`)
})

// launcherRE matches the programs that fetch a package and run it: what
// they run is chosen when they run, not named by a file.
var launcherRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(npx|bunx|pnpx|uvx|pipx|npm|pnpm|yarn|uv|docker|podman)$`)
})

// resolveProgram is what a stdio server's start runs, found as spawn
// finds it: the program, and for a --no-sandbox server the program a
// version manager's shim stood for; with the PATH it runs with.
func resolveProgram(cfg mcpserver.Config, daemonPath string) (bin, path string, err error) {
	path = cfg.SearchPath(daemonPath)
	bin, err = lookPath(cfg.Command[0], path)
	if err != nil {
		return "", "", err
	}
	if cfg.NoSandbox {
		if res, err := toolchain.Resolve(bin, toolchain.Options{Path: path, Shims: cfg.Shims}); err == nil && res.Program != bin {
			return res.Program, strings.Join(append(res.Path, path), string(filepath.ListSeparator)), nil
		}
	}
	return bin, path, nil
}

// identityOf is the identity of a stdio server that runs bin with args in
// dir (a relative script is found there).
func (d *digests) identityOf(bin string, args []string, dir string) mcpserver.Identity {
	id := mcpserver.Identity{Command: bin}
	if abs, err := filepath.Abs(bin); err == nil {
		id.Command = abs
	}
	var err error
	if id.Digest, err = d.digest(id.Command); err != nil {
		id.Note = "the program could not be read: " + err.Error()
	}
	base := filepath.Base(bin)
	switch {
	case interpreterRE().MatchString(base):
		script, why := scriptArg(base, args)
		if script == "" {
			id.Note = join(id.Note, why)
			break
		}
		if !filepath.IsAbs(script) {
			script = filepath.Join(dir, script)
		}
		id.Script = filepath.Clean(script)
		if id.ScriptDigest, err = d.digest(id.Script); err != nil {
			id.Note = join(id.Note, "the script could not be read: "+err.Error())
		}
	case launcherRE().MatchString(base):
		id.Note = join(id.Note, base+" fetches what it runs: its files are not digested, only its command line; pin the package's version (name@1.2.3)")
	}
	return id
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// scriptArg finds the script an interpreter runs: its first argument that
// is not an option (deno's after 'run'). Code given inline (-c, -e) or a
// module (-m) is not a file: why says so.
func scriptArg(interp string, args []string) (script, why string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return args[i+1], ""
			}
			return "", ""
		case a == "-m" || a == "-c" || a == "-e" || a == "--eval" || a == "-p" || a == "--print" || strings.HasPrefix(a, "-m") && strings.HasPrefix(interp, "py"):
			return "", interp + " runs a module or inline code, not a script file: only the interpreter is digested"
		case strings.HasPrefix(a, "-"):
			continue
		case strings.HasPrefix(interp, "deno") && a == "run":
			continue
		default:
			return a, ""
		}
	}
	return "", ""
}

// digests caches the SHA-256 of files by what stat says of them, so that
// a large interpreter is not read again at every start. A file replaced
// or written since has another inode, size, mtime or ctime (which no
// unprivileged program can set back).
type digests struct {
	mu    sync.Mutex
	cache map[string]digestEntry
}

type digestEntry struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
	ctime    syscall.Timespec
	sum      string
}

const (
	maxDigestCache = 256
	// maxDigestSize bounds what is read of one program: more (a sparse
	// file planted where a script was) is pinned by path alone.
	maxDigestSize = 1 << 30
)

func (d *digests) digest(path string) (string, error) {
	// Non-blocking, so that a FIFO planted where a program was cannot
	// hold the daemon up: it is refused below as not a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxDigestSize {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxDigestSize)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	key := digestEntry{size: fi.Size(), mtime: fi.ModTime()}
	if st != nil {
		key.dev, key.ino, key.ctime = uint64(st.Dev), st.Ino, statCtime(st) //nolint:unconvert // Dev is int32 on darwin
	}
	d.mu.Lock()
	if e, ok := d.cache[path]; ok && st != nil && e.dev == key.dev && e.ino == key.ino && e.size == key.size && e.mtime.Equal(key.mtime) && e.ctime == key.ctime {
		d.mu.Unlock()
		return e.sum, nil
	}
	d.mu.Unlock()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, maxDigestSize)); err != nil {
		return "", err
	}
	key.sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if st != nil {
		d.mu.Lock()
		if d.cache == nil || len(d.cache) >= maxDigestCache {
			d.cache = map[string]digestEntry{}
		}
		d.cache[path] = key
		d.mu.Unlock()
	}
	return key.sum, nil
}
