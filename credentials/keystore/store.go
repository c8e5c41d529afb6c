// Package keystore keeps provider API keys: in the OS credential store
// (macOS Keychain, the Secret Service on Linux, Windows Credential Manager)
// through go-keyring, or in a 0600 TOML file on machines without one, with
// a non-secret index of what is stored where. Only the daemon opens it.
package keystore

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/privatefile"
)

// backend is one place keys live.
type backend interface {
	Name() string
	Get(credentials.Ref) (credentials.Secret, error)
	Set(credentials.Ref, credentials.Secret) error
	Delete(credentials.Ref) error
}

// Options configure a Store.
type Options struct {
	// Dir is Ringlet's config directory: credentials.toml and the index
	// (keychain.json) live there.
	Dir string
	// Backend is credentials.backend: auto, keyring or file.
	Backend string
	// SessionBus is the D-Bus session bus address on Linux, "" if none.
	SessionBus string
	// OnChoose is told once which backend new keys go to and why.
	OnChoose func(backend, reason string)
}

// Store is the keychain: keys in a backend, names in the index.
type Store struct {
	opts    Options
	file    *fileBackend
	keyring backend
	index   string
	lock    string

	mu     sync.Mutex
	chosen backend // resolved lazily; failures are not cached
	why    string  // why chosen is the one
	// The index as last parsed, and the stamp of the file it came from.
	indexEntries []credentials.Entry
	indexStamp   privatefile.Stamp
	indexCached  bool
}

// Open returns a Store. Nothing is touched until the first call.
func Open(opts Options) (*Store, error) {
	switch opts.Backend {
	case "":
		opts.Backend = credentials.BackendAuto
	case credentials.BackendAuto, credentials.BackendKeyring, credentials.BackendFile:
	default:
		return nil, fmt.Errorf("invalid credentials.backend %q; accepted values: auto, keyring, file", opts.Backend)
	}
	return &Store{
		opts:    opts,
		file:    newFileBackend(opts.Dir),
		keyring: keyringBackend{items: &itemAccounts{}},
		index:   filepath.Join(opts.Dir, "keychain.json"),
		lock:    filepath.Join(opts.Dir, "keychain.lock"),
	}, nil
}

// Backend says which backend new keys go to and why (the OS keyring is
// available, or not and why, or the setting chose it); err when the
// configured backend cannot be used (no keyring for credentials.backend =
// keyring, or a keyring that fails).
func (s *Store) Backend() (name, why string, err error) {
	b, err := s.active()
	if err != nil {
		return "", "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return b.Name(), s.why, nil
}

// FilePath is the file backend's credentials.toml.
func (s *Store) FilePath() string { return s.file.path }

// active resolves the backend that new keys go to.
func (s *Store) active() (backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chosen != nil {
		return s.chosen, nil
	}
	var b backend
	var why string
	switch s.opts.Backend {
	case credentials.BackendFile:
		b, why = s.file, "credentials.backend is file"
	case credentials.BackendKeyring:
		absent, err := probeKeyring(s.opts.SessionBus)
		if err != nil {
			return nil, fmt.Errorf("OS keyring: %w", err)
		}
		if absent != "" {
			return nil, fmt.Errorf("credentials.backend is keyring but the OS keyring is not available: %s; start one (e.g. gnome-keyring) or set credentials.backend to file", absent)
		}
		b, why = s.keyring, "credentials.backend is keyring"
	default:
		absent, err := probeKeyring(s.opts.SessionBus)
		if err != nil {
			// A keyring that exists but fails is an error, never a
			// silent fall back to a plain-text file.
			return nil, fmt.Errorf("OS keyring: %w", err)
		}
		if absent != "" {
			b, why = s.file, absent+"; keys go to "+s.file.path+" (mode 0600)"
		} else {
			b, why = s.keyring, "the OS keyring is available"
		}
	}
	s.chosen, s.why = b, why
	if s.opts.OnChoose != nil {
		s.opts.OnChoose(b.Name(), why)
	}
	return b, nil
}

func (s *Store) byName(name string) (backend, error) {
	switch name {
	case credentials.BackendFile:
		return s.file, nil
	case credentials.BackendKeyring:
		absent, err := probeKeyring(s.opts.SessionBus)
		if err != nil {
			return nil, fmt.Errorf("OS keyring: %w", err)
		}
		if absent != "" {
			return nil, fmt.Errorf("the OS keyring is not available: %s", absent)
		}
		return s.keyring, nil
	}
	return nil, fmt.Errorf("unknown credentials backend %q", name)
}

type indexFile struct {
	Version int                 `json:"version"`
	Entries []credentials.Entry `json:"entries"`
}

// readIndex returns the index, parsed again only when its stamp changed
// (as the file backend does; see privatefile.Stamp). Callers get a copy.
func (s *Store) readIndex() ([]credentials.Entry, error) {
	stamp, stamped := privatefile.StampOf(s.index)
	s.mu.Lock()
	if stamped && s.indexCached && s.indexStamp == stamp {
		out := slices.Clone(s.indexEntries)
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	var ix indexFile
	if _, err := privatefile.ReadJSON(s.index, 16<<20, &ix); err != nil {
		return nil, fmt.Errorf("keychain index: %w", err)
	}
	for _, e := range ix.Entries {
		if _, err := credentials.NewRef(e.Provider, e.Alias); err != nil {
			return nil, fmt.Errorf("keychain index %s: %w", s.index, err)
		}
	}
	if stamped {
		s.mu.Lock()
		s.indexEntries, s.indexStamp, s.indexCached = slices.Clone(ix.Entries), stamp, true
		s.mu.Unlock()
	}
	return ix.Entries, nil
}

func (s *Store) writeIndex(entries []credentials.Entry) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Ref().String() < entries[j].Ref().String() })
	for i := range entries {
		entries[i].Status, entries[i].Detail = "", ""
	}
	// File times are coarse (a clock tick) and inodes are reused, so a
	// write of our own is not left to the stamp to notice.
	defer func() {
		s.mu.Lock()
		s.indexCached = false
		s.mu.Unlock()
	}()
	return privatefile.WriteJSON(s.index, indexFile{Version: 1, Entries: entries})
}

// withIndex runs f on the index under an exclusive lock and saves what f
// returns when save is true.
func (s *Store) withIndex(f func([]credentials.Entry) ([]credentials.Entry, bool, error)) error {
	unlock, err := lockFile(s.lock)
	if err != nil {
		return err
	}
	defer unlock()
	_ = privatefile.RemoveStaleTemps(s.index)
	entries, err := s.readIndex()
	if err != nil {
		return err
	}
	entries, save, err := f(entries)
	if err != nil || !save {
		return err
	}
	return s.writeIndex(entries)
}

func find(entries []credentials.Entry, r credentials.Ref) int {
	for i, e := range entries {
		if e.Ref() == r {
			return i
		}
	}
	return -1
}

// Set stores key under r in the active backend, checks it reads back, and
// records it in the index. A key that lived in another backend is moved.
func (s *Store) Set(r credentials.Ref, key credentials.Secret) (credentials.Entry, error) {
	if err := credentials.ValidateKey(key.Reveal()); err != nil {
		return credentials.Entry{}, err
	}
	b, err := s.active()
	if err != nil {
		return credentials.Entry{}, err
	}
	var out credentials.Entry
	err = s.withIndex(func(entries []credentials.Entry) ([]credentials.Entry, bool, error) {
		if err := b.Set(r, key); err != nil {
			return nil, false, err
		}
		if err := verify(b, r, key); err != nil {
			return nil, false, err
		}
		now := time.Now().UTC().Truncate(time.Second)
		i := find(entries, r)
		if i < 0 {
			entries = append(entries, credentials.Entry{Provider: r.Provider, Alias: r.Alias, Created: now})
			i = len(entries) - 1
		} else if old := entries[i].Backend; old != b.Name() {
			if ob, err := s.byName(old); err == nil {
				if err := ob.Delete(r); err != nil && !errors.Is(err, credentials.ErrNotFound) {
					return nil, false, fmt.Errorf("stored %s in %s but could not remove the old copy from %s: %w", r, b.Name(), old, err)
				}
			}
		}
		entries[i].Backend, entries[i].Updated = b.Name(), now
		out = entries[i]
		return entries, true, nil
	})
	return out, err
}

func verify(b backend, r credentials.Ref, want credentials.Secret) error {
	got, err := b.Get(r)
	if err != nil {
		return fmt.Errorf("read back %s from %s: %w", r, b.Name(), err)
	}
	if got.Reveal() != want.Reveal() {
		return fmt.Errorf("read back %s from %s: the stored key differs from the one written", r, b.Name())
	}
	return nil
}

// Get returns the key stored under r.
func (s *Store) Get(r credentials.Ref) (credentials.Secret, error) {
	var e credentials.Entry
	err := s.withIndex(func(entries []credentials.Entry) ([]credentials.Entry, bool, error) {
		i := find(entries, r)
		if i < 0 {
			return nil, false, fmt.Errorf("%s: %w", r, credentials.ErrNotFound)
		}
		e = entries[i]
		return nil, false, nil
	})
	if err != nil {
		return credentials.Secret{}, err
	}
	b, err := s.byName(e.Backend)
	if err != nil {
		return credentials.Secret{}, err
	}
	return b.Get(r)
}

// Remove deletes the key under r from its backend and the index. A key
// whose secret is already gone from the backend is removed from the index.
func (s *Store) Remove(r credentials.Ref) (credentials.Entry, error) {
	var out credentials.Entry
	err := s.withIndex(func(entries []credentials.Entry) ([]credentials.Entry, bool, error) {
		i := find(entries, r)
		if i < 0 {
			// A key can be in the file without an index entry when a
			// process was killed between writing the two.
			if _, err := s.file.Get(r); err == nil {
				out = credentials.Entry{Provider: r.Provider, Alias: r.Alias, Backend: credentials.BackendFile}
				return nil, false, s.file.Delete(r)
			}
			return nil, false, fmt.Errorf("no credential %s is stored ('ringlet keychain list' shows what is): %w", r, credentials.ErrNotFound)
		}
		out = entries[i]
		b, err := s.byName(out.Backend)
		if err != nil {
			return nil, false, err
		}
		if err := b.Delete(r); err != nil && !errors.Is(err, credentials.ErrNotFound) {
			return nil, false, err
		}
		return append(entries[:i], entries[i+1:]...), true, nil
	})
	return out, err
}

// List returns the index, each entry checked against its backend: ok,
// missing (the secret is gone) or unavailable (the backend cannot be asked).
func (s *Store) List() ([]credentials.Entry, error) {
	var entries []credentials.Entry
	err := s.withIndex(func(e []credentials.Entry) ([]credentials.Entry, bool, error) {
		entries = e
		return nil, false, nil
	})
	if err != nil {
		return nil, err
	}
	// Keys in the file that the index lost (a writer killed between the
	// two writes) are shown, so they can be seen and removed.
	if refs, err := s.file.refs(); err == nil {
		indexed := make(map[credentials.Ref]bool, len(entries))
		for _, e := range entries {
			indexed[e.Ref()] = true
		}
		for _, r := range refs {
			if !indexed[r] {
				entries = append(entries, credentials.Entry{Provider: r.Provider, Alias: r.Alias, Backend: credentials.BackendFile, Detail: "not in the index; set it again or remove it"})
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Ref().String() < entries[j].Ref().String() })
	backends := map[string]backend{}
	berrs := map[string]error{}
	held := map[string]map[credentials.Ref]bool{} // from one listing per backend
	for i := range entries {
		e := &entries[i]
		b, ok := backends[e.Backend]
		if !ok && berrs[e.Backend] == nil {
			b, berrs[e.Backend] = s.byName(e.Backend)
			backends[e.Backend] = b
			if l, ok := b.(lister); ok && berrs[e.Backend] == nil {
				// A backend that cannot list is asked key by key below,
				// where each failure is reported against its key.
				held[e.Backend], _ = l.present(refsIn(entries, e.Backend))
			}
		}
		if err := berrs[e.Backend]; err != nil {
			e.Status, e.Detail = "unavailable", err.Error()
			continue
		}
		var err error
		if h := held[e.Backend]; h != nil {
			if !h[e.Ref()] {
				err = credentials.ErrNotFound
			}
		} else {
			_, err = b.Get(e.Ref())
		}
		switch {
		case err == nil:
			e.Status = "ok"
			if e.Detail != "" {
				e.Status = "unindexed"
			}
		case errors.Is(err, credentials.ErrNotFound):
			e.Status = "missing"
		default:
			e.Status, e.Detail = "unavailable", err.Error()
		}
	}
	return entries, nil
}

// lister is a backend that can tell which of many keys it holds in one
// pass, so that a listing of n keys is not n lookups.
type lister interface {
	present([]credentials.Ref) (map[credentials.Ref]bool, error)
}

func refsIn(entries []credentials.Entry, backend string) []credentials.Ref {
	var out []credentials.Ref
	for _, e := range entries {
		if e.Backend == backend {
			out = append(out, e.Ref())
		}
	}
	return out
}

// Migrate moves every key to the backend named to, verifying each read-back
// before deleting it from its source. It stops at the first failure; keys
// moved before it stay moved, and the failing key stays in its source.
func (s *Store) Migrate(to string, progress func(credentials.MigrateResult)) error {
	dst, err := s.byName(to)
	if err != nil {
		return err
	}
	return s.withIndex(func(entries []credentials.Entry) ([]credentials.Entry, bool, error) {
		changed := false
		for i := range entries {
			e := &entries[i]
			if e.Backend == to {
				progress(credentials.MigrateResult{Entry: *e, Result: "already"})
				continue
			}
			src, err := s.byName(e.Backend)
			if err != nil {
				return entries, changed, fmt.Errorf("migrate %s: %w", e.Ref(), err)
			}
			key, err := src.Get(e.Ref())
			if errors.Is(err, credentials.ErrNotFound) {
				progress(credentials.MigrateResult{Entry: *e, Result: "missing"})
				continue
			}
			if err != nil {
				return entries, changed, fmt.Errorf("migrate %s: %w", e.Ref(), err)
			}
			if err := dst.Set(e.Ref(), key); err != nil {
				return entries, changed, fmt.Errorf("migrate %s: %w", e.Ref(), err)
			}
			if err := verify(dst, e.Ref(), key); err != nil {
				return entries, changed, fmt.Errorf("migrate %s: %w; the key stays in %s", e.Ref(), err, e.Backend)
			}
			// The index points at the new copy before the old one goes, so a
			// failure here leaves a duplicate, never a loss.
			e.Backend, e.Updated = to, time.Now().UTC().Truncate(time.Second)
			changed = true
			if err := s.writeIndex(entries); err != nil {
				return entries, false, err
			}
			if err := src.Delete(e.Ref()); err != nil && !errors.Is(err, credentials.ErrNotFound) {
				return entries, changed, fmt.Errorf("migrate %s: copied to %s but could not delete it from %s: %w", e.Ref(), to, src.Name(), err)
			}
			progress(credentials.MigrateResult{Entry: *e, Result: "moved"})
		}
		return entries, changed, nil
	})
}
