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
	"strings"
	"syscall"

	"github.com/neullabs/ringlet/privatefile"
)

// The per-session socket directories of one daemon live in one directory
// of its own in the temp dir (a Unix socket path is short, so not under
// the state dir), whose path the daemon records in its state dir. A daemon
// that was killed leaves that directory behind; the next one, holding the
// same per-user lock, removes it, and only it: what its own record names,
// if that is still a directory of this user's with Ringlet's name and
// mode, never following a symbolic link. Another daemon's (another state
// dir, another user) is never touched, nor anything else in the temp dir.

// socketRootRecord is the file in the state dir that names the directory.
const socketRootRecord = "sockets"

var socketRootName = regexp.MustCompile(`^ringlet-sockets-[0-9a-f]{12}$`)

// PrepareSocketRoot removes the socket directory that a previous daemon of
// this state dir left (see above), then makes a fresh one under tmpDir and
// records it. The caller must hold the daemon lock of stateDir. cleanup
// removes the directory and the record when the daemon stops.
func PrepareSocketRoot(stateDir, tmpDir string, log *slog.Logger) (root string, cleanup func(), err error) {
	record := filepath.Join(stateDir, socketRootRecord)
	if err := removeStaleSocketRoot(record, log); err != nil {
		return "", nil, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	root = filepath.Join(tmpDir, "ringlet-sockets-"+hex.EncodeToString(b[:]))
	// Recorded before it exists: a crash in between leaves a record of
	// nothing, which the next start ignores.
	if err := privatefile.WriteAtomic(record, []byte(root+"\n"), privatefile.FileMode); err != nil {
		return "", nil, fmt.Errorf("record the session socket directory: %w", err)
	}
	if err := os.Mkdir(root, privatefile.DirMode); err != nil {
		return "", nil, fmt.Errorf("make the session socket directory: %w", err)
	}
	return root, func() {
		os.RemoveAll(root)
		os.Remove(record)
	}, nil
}

// removeStaleSocketRoot removes the directory record names, if it is one
// that Ringlet made (see above).
func removeStaleSocketRoot(record string, log *slog.Logger) error {
	data, err := privatefile.Read(record, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", record, err)
	}
	dir := strings.TrimSpace(string(data))
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || !socketRootName.MatchString(filepath.Base(dir)) {
		log.Warn("ignoring a session socket record that names no socket directory of Ringlet's", "record", record)
		return nil
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 || fi.Mode().Perm() != privatefile.DirMode || !ok || int(st.Uid) != os.Geteuid() {
		log.Warn("leaving a stale session socket path that is not a private directory of this user's", "path", dir)
		return nil
	}
	// RemoveAll unlinks symbolic links inside; it does not follow them.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the stale session socket directory %s: %w", dir, err)
	}
	log.Info("removed the session socket directory of a daemon that did not stop cleanly", "path", dir)
	return nil
}
