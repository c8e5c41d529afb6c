package sandbox

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/neullabs/ringlet/privatefile"
)

// A Lease is held on the trees of a sandbox (its workspace and read-write
// directories) from before it starts until it has exited. Taking one
// makes the missing protected paths, empty, on the host, as mount points
// for their read-only stand-ins; giving the last one back removes those
// still empty.
//
// Why a lease: on Linux, removing a path that is a mount point in another
// mount namespace detaches that mount. If one sandbox's launcher removed
// its placeholders while another sandbox on the same workspace still had
// them mounted, the other's agent could create the file on the host. So a
// placeholder is removed only when no Ringlet sandbox holds the tree:
// every holder keeps a shared flock on a per-tree lock file in Ringlet's
// state directory, and the cleaner needs it exclusively. (Anything else
// that removes a protected path on the host while a sandbox runs, a git
// clean for one, lifts its protection in that sandbox: README, Known
// gaps.)
type Lease struct {
	dir   string
	mu    sync.Mutex
	locks map[string]*os.File // tree -> its lock file, held shared
}

// NewLease returns an empty lease whose lock files live in
// stateDir/workspaces (one of Ringlet's own directories).
func NewLease(stateDir string) *Lease {
	return &Lease{dir: filepath.Join(stateDir, "workspaces"), locks: map[string]*os.File{}}
}

// Hold takes the lease on p's trees (those it does not hold already) and
// makes p's missing protected paths. On macOS, where sandbox-exec needs no
// mount points, it does nothing.
func (l *Lease) Hold(p *Policy) error {
	if runtime.GOOS != "linux" || len(p.Protected) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.lock(p.Trees()); err != nil {
		return err
	}
	g, err := p.guardProtected()
	if err != nil {
		return err
	}
	for _, m := range g.Missing {
		made, err := makePlaceholder(m)
		if err != nil {
			return err
		}
		if made {
			if err := l.remember(m); err != nil {
				removePlaceholders([]string{m})
				return err
			}
		}
	}
	return nil
}

// HoldTrees takes the lease on trees without making anything: for a
// process that runs a sandbox another one prepared (a launcher running
// the daemon's plan), so that its placeholders stay while it runs.
func (l *Lease) HoldTrees(trees []string) error {
	if runtime.GOOS != "linux" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lock(trees)
}

// lock takes the shared lock of each tree not held yet.
func (l *Lease) lock(trees []string) error {
	if len(trees) > 0 && !filepath.IsAbs(l.dir) {
		return errors.New("no state directory for the sandbox's workspace lease")
	}
	trees = append([]string(nil), trees...)
	sort.Strings(trees) // one order for every holder
	if err := privatefile.EnsureDir(l.dir); err != nil {
		return err
	}
	for _, tree := range trees {
		if _, ok := l.locks[tree]; ok {
			continue
		}
		if CheckPath("tree", tree) != nil {
			return fmt.Errorf("cannot lock %q: not a clean absolute path", tree)
		}
		f, err := os.OpenFile(l.lockPath(tree), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("lock %s: %w", tree, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
			f.Close()
			return fmt.Errorf("lock %s: %w", tree, err)
		}
		l.locks[tree] = f
	}
	return nil
}

// makePlaceholder makes m (a trailing "/" for a directory) empty, 0600 or
// 0700, inside its parent opened with os.Root so that nothing is followed
// through a symbolic link. It reports whether it made it.
func makePlaceholder(m string) (bool, error) {
	path := strings.TrimSuffix(m, "/")
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return false, fmt.Errorf("protect %s: %w", path, err)
	}
	defer root.Close()
	name := filepath.Base(path)
	if strings.HasSuffix(m, "/") {
		err = root.Mkdir(name, 0o700)
	} else {
		var f *os.File
		if f, err = root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			err = f.Close()
		}
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return false, nil // made meanwhile by another sandbox's launcher
	case err != nil:
		return false, fmt.Errorf("protect %s: %w", path, err)
	}
	return true, nil
}

// remember appends a placeholder to its tree's list, for whoever cleans
// up last. One short O_APPEND write per line keeps concurrent writers'
// lines whole.
func (l *Lease) remember(m string) error {
	for tree := range l.locks {
		if within(strings.TrimSuffix(m, "/"), tree) {
			f, err := os.OpenFile(l.listPath(tree), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return fmt.Errorf("record placeholder %s: %w", m, err)
			}
			_, werr := f.WriteString(m + "\n")
			return errors.Join(werr, f.Close())
		}
	}
	return nil
}

// Release gives the lease back and, for each tree no other sandbox holds,
// removes the placeholders of every holder that are still empty.
func (l *Lease) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A child this process is forking holds a copy of every lock file's
	// descriptor until it execs, and with it the shared lock: the
	// cleanup would take it for another sandbox's and leave the
	// placeholders. os/exec forks under ForkLock and, without a new user
	// namespace, returns only once the child has exec'd (vfork): holding
	// it, as a fork does, no such child is in that window.
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	for tree, f := range l.locks {
		f.Close() // drops the shared lock
		delete(l.locks, tree)
		l.cleanup(tree)
	}
}

// cleanup removes tree's placeholders if it can take its lock
// exclusively, without waiting: a sandbox that still runs holds it.
func (l *Lease) cleanup(tree string) {
	f, err := os.OpenFile(l.lockPath(tree), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return
	}
	list, err := os.OpenFile(l.listPath(tree), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer list.Close()
	var paths []string
	sc := bufio.NewScanner(list)
	for sc.Scan() {
		// Only what lies in this tree: the list is Ringlet's, but it is
		// read back as paths to remove.
		if p := sc.Text(); filepath.IsAbs(p) && within(strings.TrimSuffix(p, "/"), tree) && filepath.Clean(strings.TrimSuffix(p, "/")) == strings.TrimSuffix(p, "/") {
			paths = append(paths, p)
		}
	}
	// Deeper first, so an empty directory placeholder goes after a file
	// placeholder inside it.
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	removePlaceholders(paths)
	// A list left behind names placeholders already gone, which the next
	// lease's removal skips.
	_ = list.Truncate(0)
}

func (l *Lease) lockPath(tree string) string { return filepath.Join(l.dir, treeID(tree)+".lock") }
func (l *Lease) listPath(tree string) string {
	return filepath.Join(l.dir, treeID(tree)+".placeholders")
}

func treeID(tree string) string {
	sum := sha256.Sum256([]byte(tree))
	return hex.EncodeToString(sum[:12])
}
