// Package sessionstore keeps what the daemon needs to admit a live
// session's token again after it restarts, and nothing that would let
// anyone else use it: the SHA-256 of the token, never the token, and an
// HMAC of the key the session started with, never the key.
//
// The daemon declares the store it needs as a small interface (Load, Put,
// Delete); Dir is the one it uses on a laptop. Nothing here assumes a
// file: a team daemon can keep the same records in a database table, one
// row per session.
//
// Dir keeps one JSON file per session, of mode 0600, in a directory of
// mode 0700: a Put writes that session's file (a temporary file, synced,
// renamed over it, the directory synced) and a Delete unlinks it and syncs
// the directory. A change to one session therefore costs the same with
// ten sessions stored or a thousand, where the single file it replaces was
// rewritten whole on every start, end and renewal of any session (starting
// n sessions wrote O(n²) bytes). Crash safety is rename's: a daemon killed
// at any point leaves each session's file old or new, and no write
// touches another session's file. One file per session was chosen over an
// append-only journal because it needs no compaction, no checksums and no
// recovery pass (the file system's rename is the commit), it maps one to
// one onto the row of a table, and a spoiled file costs only its own
// session. Its price is a Load that reads one small file per session,
// once, when the daemon starts.
//
// The single file of earlier versions (sessions.json) is migrated on the
// store's first use: its sessions are written to the directory, which is
// synced, and only then is the file removed. A crash in between leaves
// the file, and the next start migrates it again (the same records); no
// Put or Delete runs before the migration is done, so a session deleted
// later cannot come back from the old file.
package sessionstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
)

// Session is one stored session: what re-admits its token, and what tells
// whether it may still be admitted (its profile, key and lifetime).
type Session struct {
	ID string `json:"id"`
	// TokenSHA256 is the hex SHA-256 of the session token, which is what
	// the daemon looks a presented token up by. The token is 32 random
	// bytes, so its hash cannot be turned back into it.
	TokenSHA256 string `json:"token_sha256"`
	// TokenID is the HMAC of the token that the audit log knows it by.
	TokenID string `json:"token_id"`
	Profile string `json:"profile"`
	// ProfileCreated tells the profile apart from one deleted and created
	// again under the same alias.
	ProfileCreated time.Time `json:"profile_created"`
	Provider       string    `json:"provider"`
	// BaseURL is where the session's provider requests go: a profile whose
	// endpoint changed meanwhile does not carry the session over.
	BaseURL string `json:"base_url"`
	// KeyRef names the profile's key (provider/alias) and KeyHMAC is the
	// HMAC of the key the session started with: a key replaced while the
	// daemon was stopped ends the session, as a replacement while it runs
	// does.
	KeyRef  string `json:"key_ref"`
	KeyHMAC string `json:"key_hmac"`
	// Sandboxed says its agent runs in a sandbox (with the profile's
	// sandboxed HOME).
	Sandboxed bool      `json:"sandboxed"`
	Created   time.Time `json:"created"`
	// Deadline is when the session ends at the latest. IdleSeconds, when
	// not 0, ends it sooner: that long after LastUsed.
	Deadline    time.Time `json:"deadline"`
	IdleSeconds int64     `json:"idle_seconds"`
	// LastUsed is the last request of the session the store was told of:
	// not every request's, so it may lag behind (see the gateway).
	LastUsed time.Time `json:"last_used"`
	Requests int64     `json:"requests"`
	// Budget is the session's own budget (set at its start), kept so a
	// restart does not lift it.
	Budget budget.Limits `json:"budget,omitzero"`
	// Launch marks a session of 'profiles run' that a graceful stop kept
	// because its launcher held it: the next daemon admits it only while
	// that launcher holds it again, within its grace.
	Launch bool `json:"launch,omitempty"`
	// Workspace is the workspace its agent was launched in (Launch only).
	Workspace string `json:"workspace,omitempty"`
	// SocketDir is the private directory on the host whose socket its
	// sandbox reaches the daemon by (Launch only; none when its sandbox
	// has no provider network): the next daemon serves the socket there
	// again, if the directory is still its own.
	SocketDir string `json:"socket_dir,omitempty"`
}

var (
	idPattern   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^s_[0-9a-f]{16}$`) })
	hashPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })
	// sockDirPattern is the name of a session's socket directory.
	sockDirPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^ringlet-[0-9a-f]{12}$`) })
)

// maxIdle bounds IdleSeconds: the longest a session may live.
const maxIdle = 720 * time.Hour

// Validate reports what makes s a record no daemon wrote.
func (s Session) Validate() error {
	switch {
	case !idPattern().MatchString(s.ID):
		return fmt.Errorf("session id %q is not of the form s_ and 16 hex digits", s.ID)
	case !hashPattern().MatchString(s.TokenSHA256):
		return fmt.Errorf("session %s: token_sha256 is not 64 lower-case hex digits", s.ID)
	case s.TokenID == "" || s.KeyHMAC == "" || s.BaseURL == "":
		return fmt.Errorf("session %s: token_id, key_hmac and base_url are required", s.ID)
	case !names.Valid(s.Profile) || !names.Valid(s.Provider):
		return fmt.Errorf("session %s: profile and provider must be valid names", s.ID)
	case s.Created.IsZero() || s.Deadline.IsZero() || s.LastUsed.IsZero() || s.ProfileCreated.IsZero():
		return fmt.Errorf("session %s: created, deadline, last_used and profile_created are required", s.ID)
	case !s.Deadline.After(s.Created):
		return fmt.Errorf("session %s: its deadline is not after its start", s.ID)
	case s.IdleSeconds < 0 || time.Duration(s.IdleSeconds)*time.Second > maxIdle:
		return fmt.Errorf("session %s: idle_seconds is out of range", s.ID)
	case s.Requests < 0:
		return fmt.Errorf("session %s: requests is negative", s.ID)
	case !s.Launch && (s.Workspace != "" || s.SocketDir != ""):
		return fmt.Errorf("session %s: workspace and socket_dir belong to a launch", s.ID)
	case s.Workspace != "" && (!filepath.IsAbs(s.Workspace) || filepath.Clean(s.Workspace) != s.Workspace):
		return fmt.Errorf("session %s: workspace is not a clean absolute path", s.ID)
	case s.SocketDir != "" && (!filepath.IsAbs(s.SocketDir) || filepath.Clean(s.SocketDir) != s.SocketDir || !sockDirPattern().MatchString(filepath.Base(s.SocketDir))):
		return fmt.Errorf("session %s: socket_dir is not a session socket directory", s.ID)
	}
	provider, alias, ok := strings.Cut(s.KeyRef, "/")
	if !ok || !names.Valid(provider) || !names.Valid(alias) {
		return fmt.Errorf("session %s: key_ref %q is not provider/alias", s.ID, s.KeyRef)
	}
	return nil
}

// fileVersion is the format of a session's file; another is refused.
const fileVersion = 1

// sessionFile is a session's file as written: its format, then the
// session's fields.
type sessionFile struct {
	Version int `json:"version"`
	Session
}

// maxSessionSize bounds a session's file: a record is well under 2 KiB.
const maxSessionSize = 64 << 10

// legacyVersion is the format of the single file of earlier versions.
const legacyVersion = 1

// legacyContent is the single file of earlier versions.
type legacyContent struct {
	Version  int       `json:"version"`
	Sessions []Session `json:"sessions"`
}

// maxLegacySize bounds the single file of earlier versions.
const maxLegacySize = 8 << 20

// Options are what a Dir needs besides its directory.
type Options struct {
	// Legacy is the single file of earlier versions, whose sessions move
	// into the directory on the store's first use; "" for none.
	Legacy string
	// Log hears of the files Load refuses or skips (nil: slog.Default()).
	Log *slog.Logger
}

// lockStripes is how many locks the writes of the sessions share.
const lockStripes = 64

// Dir keeps each session in its own file of mode 0600, named by its id,
// in a directory of mode 0700 (see the package doc).
type Dir struct {
	dir    string
	legacy string
	log    *slog.Logger

	// readyMu guards ready: the directory checked (or made) and the
	// legacy file migrated, done once before the first Load, Put or
	// Delete and tried again after a failure.
	readyMu sync.Mutex
	ready   bool

	// locks serialise the writes of one session, so that a Put and a
	// Delete of it land in the order they were called; the writes of
	// other sessions run beside them. A session's lock is
	// locks[hash(id) % lockStripes].
	seed  maphash.Seed
	locks [lockStripes]sync.Mutex
}

// NewDir returns the store of the directory dir. Nothing is read or
// written until its first use.
func NewDir(dir string, o Options) *Dir {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	return &Dir{dir: dir, legacy: o.Legacy, log: log, seed: maphash.MakeSeed()}
}

// Path is the directory.
func (d *Dir) Path() string { return d.dir }

// file is the path of the file of the session id.
func (d *Dir) file(id string) string { return filepath.Join(d.dir, id+".json") }

func (d *Dir) lock(id string) *sync.Mutex {
	return &d.locks[maphash.String(d.seed, id)%lockStripes]
}

// prepare makes the directory when it is missing, refuses it when it is
// not safe, and migrates the legacy file, once.
func (d *Dir) prepare() error {
	d.readyMu.Lock()
	defer d.readyMu.Unlock()
	if d.ready {
		return nil
	}
	if err := privatefile.EnsureDir(filepath.Dir(d.dir)); err != nil {
		return err
	}
	if err := os.Mkdir(d.dir, privatefile.DirMode); err != nil && !errors.Is(err, fs.ErrExist) { //nolint:gosec // G703: the daemon's own state directory, not outside input
		return fmt.Errorf("create directory %s: %w", d.dir, privatefile.WithoutPath(err))
	}
	if err := checkDir(d.dir); err != nil {
		return err
	}
	if err := d.migrate(); err != nil {
		return err
	}
	d.ready = true
	return nil
}

// checkDir refuses a directory that is a symbolic link, not the user's,
// or open to group or others: whoever can write it can plant a session,
// and whoever can list it learns the ids.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir) //nolint:gosec // G703: the daemon's own state directory, not outside input
	if err != nil {
		return fmt.Errorf("check directory %s: %w", dir, privatefile.WithoutPath(err))
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("refusing %s: it is a symbolic link; remove it (its sessions end)", dir)
	case !fi.IsDir():
		return fmt.Errorf("refusing %s: it is not a directory; remove it (its sessions end)", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("refusing %s: it is owned by uid %d, not you; remove it (its sessions end)", dir, st.Uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("refusing %s: group or others can access it (mode %04o); remove it (its sessions end)", dir, perm)
	}
	return nil
}

// migrate moves the sessions of the legacy file into the directory: each
// is written and synced there before the file is removed, so a crash
// between the steps leaves the file to migrate again. A legacy file that
// is not safe or not valid admits nothing, as it did before: it is
// removed, with a line in the log that says why.
func (d *Dir) migrate() error {
	if d.legacy == "" {
		return nil
	}
	var c legacyContent
	found, err := privatefile.ReadJSON(d.legacy, maxLegacySize, &c)
	if err == nil && !found {
		return nil
	}
	var ss []Session
	if err == nil {
		ss, err = checkLegacy(c)
	}
	if err != nil {
		d.log.Error("refusing the stored sessions of the old sessions file: none is restored, and the file is removed", "file", d.legacy, "err", err)
		return removeSynced(d.legacy)
	}
	for _, s := range ss {
		if err := d.write(s); err != nil {
			return fmt.Errorf("move the sessions of %s to %s: %w", d.legacy, d.dir, err)
		}
	}
	if err := removeSynced(d.legacy); err != nil {
		return fmt.Errorf("remove %s once its sessions are in %s: %w", d.legacy, d.dir, err)
	}
	d.log.Info("moved the stored sessions to one file each", "from", d.legacy, "to", d.dir, "count", len(ss))
	return nil
}

// checkLegacy validates the content of the legacy file.
func checkLegacy(c legacyContent) ([]Session, error) {
	if c.Version != legacyVersion {
		return nil, fmt.Errorf("format version %d, want %d", c.Version, legacyVersion)
	}
	ids := map[string]bool{}
	hashes := map[string]bool{}
	for _, s := range c.Sessions {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if ids[s.ID] || hashes[s.TokenSHA256] {
			return nil, fmt.Errorf("session %s is listed twice", s.ID)
		}
		ids[s.ID], hashes[s.TokenSHA256] = true, true
	}
	return c.Sessions, nil
}

// removeSynced removes the file at path, when there is one, and syncs its
// directory so that the removal outlives a crash.
func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) { //nolint:gosec // G703: the legacy file in the daemon's state directory
		return fmt.Errorf("remove %s: %w", path, privatefile.WithoutPath(err))
	}
	return privatefile.SyncDir(filepath.Dir(path))
}

// Load reads the stored sessions, oldest first. A missing directory is no
// sessions; one that is not safe is an error, and no session is admitted.
// A file that is not safe (a symbolic link, not the user's, readable by
// others) or not a valid session, and two files of one token, are refused
// with one line each in the log and left for the user to remove; the
// other sessions load. A temporary file that a killed write left is not
// read (the daemon sweeps it at its start).
func (d *Dir) Load(_ context.Context) ([]Session, error) {
	if err := d.prepare(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.dir, privatefile.WithoutPath(err))
	}
	var out []Session
	byHash := map[string][]int{}
	for _, e := range entries {
		path := filepath.Join(d.dir, e.Name())
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !idPattern().MatchString(id) {
			if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
				d.log.Info("not reading a temporary file that a killed write left", "file", path)
			} else {
				d.log.Warn("not reading a file that is not a stored session", "file", path)
			}
			continue
		}
		s, err := d.read(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the listing
		}
		if err != nil {
			d.log.Warn("refusing a stored session: it is not restored; remove its file", "file", path, "err", err)
			continue
		}
		byHash[s.TokenSHA256] = append(byHash[s.TokenSHA256], len(out))
		out = append(out, s)
	}
	kept := out[:0:0]
	for i, s := range out {
		if same := byHash[s.TokenSHA256]; len(same) > 1 {
			d.log.Warn("refusing a stored session: another stored session has its token; remove their files", "file", d.file(s.ID), "sessions", len(same))
			continue
		}
		kept = append(kept, out[i])
	}
	sort.Slice(kept, func(i, j int) bool {
		if !kept[i].Created.Equal(kept[j].Created) {
			return kept[i].Created.Before(kept[j].Created)
		}
		return kept[i].ID < kept[j].ID
	})
	return kept, nil
}

// read reads and checks the file of the session id.
func (d *Dir) read(id string) (Session, error) {
	data, err := privatefile.Read(d.file(id), maxSessionSize)
	if err != nil {
		return Session{}, err
	}
	var f sessionFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Session{}, fmt.Errorf("not valid JSON (%v)", err)
	}
	if dec.More() {
		return Session{}, errors.New("not valid JSON (data after the value)")
	}
	if f.Version != fileVersion {
		return Session{}, fmt.Errorf("format version %d, want %d", f.Version, fileVersion)
	}
	if f.ID != id {
		return Session{}, fmt.Errorf("it holds session %q, not the %s its name says", f.ID, id)
	}
	if err := f.Validate(); err != nil {
		return Session{}, err
	}
	return f.Session, nil
}

// Put stores sessions, replacing those with the same id: each in its own
// file, whole or not at all, whatever the others do.
func (d *Dir) Put(_ context.Context, sessions ...Session) error {
	for _, s := range sessions {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	if err := d.prepare(); err != nil {
		return fmt.Errorf("keep the sessions: %w", err)
	}
	var errs []error
	for _, s := range sessions {
		mu := d.lock(s.ID)
		mu.Lock()
		err := d.write(s)
		mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("keep session %s: %w", s.ID, err))
		}
	}
	return errors.Join(errs...)
}

// write replaces the file of s (temporary file, sync, rename, directory
// sync).
func (d *Dir) write(s Session) error {
	data, err := json.MarshalIndent(sessionFile{Version: fileVersion, Session: s}, "", "  ")
	if err != nil {
		return err
	}
	return privatefile.WriteAtomic(d.file(s.ID), append(data, '\n'), privatefile.FileMode)
}

// Delete forgets the sessions with ids: their files are removed, then the
// directory synced once. An id of no stored session is no error.
func (d *Dir) Delete(_ context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := d.prepare(); err != nil {
		return fmt.Errorf("forget the sessions: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if !idPattern().MatchString(id) {
			continue // never stored: Put refuses such an id
		}
		mu := d.lock(id)
		mu.Lock()
		err := os.Remove(d.file(id))
		mu.Unlock()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("forget session %s: %w", id, privatefile.WithoutPath(err)))
		}
	}
	if err := privatefile.SyncDir(d.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
