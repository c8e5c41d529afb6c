package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/neullabs/ringlet/privatefile"
)

// The per-session socket directories of one daemon live in one directory
// of its own in the temp dir (a Unix socket path is short, so not under
// the state dir), whose path the daemon records in its state dir. The
// next daemon, holding the same per-user lock, takes that directory over
// if it is still a directory of this user's with Ringlet's name and mode
// (never following a symbolic link): the sessions a graceful stop kept
// have their sandboxes bound to directories in it (adoptSocket). It then
// removes what no session of its own holds there (Sweep): what a killed
// daemon left. Another daemon's directory (another state dir, another
// user) is never touched, nor anything else in the temp dir.

// socketRootRecord is the file in the state dir that names the directory.
const socketRootRecord = "sockets"

var socketRootName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^ringlet-sockets-[0-9a-f]{12}$`) })

// SocketRoot is the directory of a daemon's session sockets.
type SocketRoot struct {
	// Dir is the directory.
	Dir    string
	record string
	log    *slog.Logger
}

// PrepareSocketRoot takes over the socket directory a previous daemon of
// this state dir left (see above), or makes a fresh one under tmpDir and
// records it. The caller must hold the daemon lock of stateDir, Sweep
// the directory once it knows which sessions it serves, and Close it when
// it stops.
func PrepareSocketRoot(stateDir, tmpDir string, log *slog.Logger) (*SocketRoot, error) {
	record := filepath.Join(stateDir, socketRootRecord)
	old, err := recordedSocketRoot(record, log)
	if err != nil {
		return nil, err
	}
	if old != "" {
		return &SocketRoot{Dir: old, record: record, log: log}, nil
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	root := filepath.Join(tmpDir, "ringlet-sockets-"+hex.EncodeToString(b[:]))
	// Recorded before it exists: a crash in between leaves a record of
	// nothing, which the next start ignores.
	if err := privatefile.WriteAtomic(record, []byte(root+"\n"), privatefile.FileMode); err != nil {
		return nil, fmt.Errorf("record the session socket directory: %w", err)
	}
	if err := os.Mkdir(root, privatefile.DirMode); err != nil {
		return nil, fmt.Errorf("make the session socket directory: %w", err)
	}
	return &SocketRoot{Dir: root, record: record, log: log}, nil
}

// Sweep removes everything in the directory but the socket directories of
// keep: what a daemon that did not stop cleanly left, and what a stopped
// one kept for sessions the next did not admit again.
func (r *SocketRoot) Sweep(keep []string) {
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		r.log.Warn("could not read the session socket directory", "path", r.Dir, "err", err)
		return
	}
	n := 0
	for _, e := range entries {
		p := filepath.Join(r.Dir, e.Name())
		if slices.Contains(keep, p) {
			continue
		}
		// RemoveAll unlinks symbolic links inside; it does not follow them.
		if err := os.RemoveAll(p); err != nil {
			r.log.Warn("could not remove a stale session socket", "path", p, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		r.log.Info("removed session sockets no session holds", "path", r.Dir, "count", n)
	}
}

// Close removes the directory and its record when the daemon stops,
// unless keep: sessions kept for the next daemon are bound to directories
// in it.
func (r *SocketRoot) Close(keep bool) {
	if keep {
		return
	}
	os.RemoveAll(r.Dir)
	os.Remove(r.record)
}

// recordedSocketRoot is the directory record names, if it is one that
// Ringlet made (see above); "" otherwise.
func recordedSocketRoot(record string, log *slog.Logger) (string, error) {
	data, err := privatefile.Read(record, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", record, err)
	}
	dir := strings.TrimSpace(string(data))
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || !socketRootName().MatchString(filepath.Base(dir)) {
		log.Warn("ignoring a session socket record that names no socket directory of Ringlet's", "record", record)
		return "", nil
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err := privateDir(dir); err != nil {
		log.Warn("leaving a session socket path that is not a private directory of this user's", "path", dir)
		return "", nil
	}
	return dir, nil
}
