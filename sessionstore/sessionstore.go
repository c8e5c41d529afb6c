// Package sessionstore keeps what the daemon needs to admit a live
// session's token again after it restarts, and nothing that would let
// anyone else use it: the SHA-256 of the token, never the token, and an
// HMAC of the key the session started with, never the key.
//
// The daemon declares the store it needs as a small interface (Load, Put,
// Delete); File is the one it uses on a laptop, a JSON file of mode 0600
// in the state directory, replaced atomically on every change. Nothing
// here assumes a file: a team daemon can keep the same records in a
// database table, one row per session.
package sessionstore

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
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

// fileVersion is the format of the file; another is refused.
const fileVersion = 1

// fileContent is the file as written.
type fileContent struct {
	Version  int       `json:"version"`
	Sessions []Session `json:"sessions"`
}

// maxFileSize bounds the file: some thousands of sessions.
const maxFileSize = 8 << 20

// File keeps the sessions in one JSON file of mode 0600, in a 0700
// directory, replaced atomically (privatefile.WriteAtomic): a daemon
// killed while it writes leaves the old file or the new, never a mix.
// Every change writes the whole file; it holds the live sessions that
// outlive the daemon's process, a handful.
type File struct {
	path string
	mu   sync.Mutex
	// sessions is what the file should hold. A write that failed is
	// tried again with the next change, which carries it.
	sessions map[string]Session
}

// NewFile returns the store of the file at path. Nothing is read until
// Load.
func NewFile(path string) *File {
	return &File{path: path, sessions: map[string]Session{}}
}

// Path is the file.
func (f *File) Path() string { return f.path }

// Load reads the file: no file is no sessions. A file that is not safe
// (a symbolic link, not the user's, readable by others) or not valid is
// an error, and the store then holds no sessions: the next change
// replaces the file, so a token it cannot vouch for is never admitted.
func (f *File) Load(_ context.Context) ([]Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = map[string]Session{}
	var c fileContent
	found, err := privatefile.ReadJSON(f.path, maxFileSize, &c)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	out, err := check(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; remove it (its sessions end)", f.path, err)
	}
	for _, s := range out {
		f.sessions[s.ID] = s
	}
	return out, nil
}

// check validates the content of a file.
func check(c fileContent) ([]Session, error) {
	if c.Version != fileVersion {
		return nil, fmt.Errorf("format version %d, want %d", c.Version, fileVersion)
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

// Put stores sessions, replacing those with the same id, in one write.
func (f *File) Put(_ context.Context, sessions ...Session) error {
	for _, s := range sessions {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range sessions {
		f.sessions[s.ID] = s
	}
	return f.write()
}

// Delete forgets the sessions with ids, in one write.
func (f *File) Delete(_ context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.sessions, id)
	}
	return f.write()
}

func (f *File) write() error {
	c := fileContent{Version: fileVersion, Sessions: make([]Session, 0, len(f.sessions))}
	for _, s := range f.sessions {
		c.Sessions = append(c.Sessions, s)
	}
	sort.Slice(c.Sessions, func(i, j int) bool {
		if !c.Sessions[i].Created.Equal(c.Sessions[j].Created) {
			return c.Sessions[i].Created.Before(c.Sessions[j].Created)
		}
		return c.Sessions[i].ID < c.Sessions[j].ID
	})
	if err := privatefile.WriteJSON(f.path, c); err != nil {
		return fmt.Errorf("keep the sessions: %w", err)
	}
	return nil
}
