// Package perprofile keeps one JSON file per profile holding a list of
// items, such as a profile's hooks or its MCP servers: read whole,
// changed under a lock, replaced atomically with mode 0600 in a 0700
// directory. The file is {"version": 1, "<key>": [...]}; unknown fields,
// another version and trailing data are refused rather than ignored.
//
// What a file held is kept in memory while the file stays the same: hooks
// and MCP servers are read on every tool call. The store's own writes
// forget it; a change made outside the daemon (a hand edit, a restore)
// is seen at the next List by a stat of the file, which must match the
// one taken when it was read (device, inode, size, mode, owner,
// modification and change times).
package perprofile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
)

// Version is the file format's version.
const Version = 1

// maxFile bounds a file that is read.
const maxFile = 4 << 20

// Store is the files of one kind of item, in one directory.
type Store[T any] struct {
	dir  string // one <profile>.json per profile
	key  string // the list's member name in the file ("hooks")
	what string // what the items are, for messages ("hooks")
	// mu guards cache. Readers of a cached file hold it shared, so that
	// the tool calls of many sessions do not queue behind one another.
	mu sync.RWMutex
	// cache holds what each profile's file held when it was last read,
	// with the stat of that file; guarded by mu.
	cache map[string]cached[T]
	now   func() time.Time // the clock racy entries are judged by
}

// cached is one file's items and the stat of the file they came from.
type cached[T any] struct {
	items []T
	stamp privatefile.Stamp
}

// New returns a store of files dir/<profile>.json whose list is the
// member key; what names the items in messages.
func New[T any](dir, key, what string) *Store[T] {
	return &Store[T]{dir: dir, key: key, what: what, cache: map[string]cached[T]{}, now: time.Now}
}

// Path is the file of profile.
func (s *Store[T]) Path(profile string) string { return filepath.Join(s.dir, profile+".json") }

// List returns profile's items; none when it has no file.
func (s *Store[T]) List(profile string) ([]T, error) {
	var out []T
	err := s.View(profile, func(items []T) { out = cloneItems(items) })
	return out, err
}

// View calls read with profile's items, validated as List's are, without
// copying them: for a reader on the path of every tool call. read runs
// under the store's lock (shared with other readers) and must neither
// change the items nor keep them, nor anything of theirs that a change
// could reach (their maps and slices), nor call the store. It is not
// called when the file cannot be read.
func (s *Store[T]) View(profile string, read func(items []T)) error {
	if err := names.Check("profile", profile); err != nil {
		return err
	}
	// The stat that decides whether the kept items still hold is taken
	// before any lock, so that concurrent calls do not wait on each
	// other's system calls. A View that a change overlaps may see the
	// items from before it, as it could if it had come a moment earlier;
	// one that starts after the change sees it: the store's own writes
	// forget the items under the exclusive lock before they write.
	if st, ok := privatefile.StampOf(s.Path(profile)); ok && s.viewKept(profile, st, read) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items, err := s.load(profile)
	if err != nil {
		return err
	}
	read(items)
	return nil
}

// viewKept calls read with profile's kept items, under the shared lock,
// if they came from a file whose stat was st; it reports whether it did.
func (s *Store[T]) viewKept(profile string, st privatefile.Stamp, read func(items []T)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.cache[profile]
	if !ok || c.stamp != st {
		return false
	}
	read(c.items)
	return true
}

// load returns profile's items from the cache when its file has not
// changed, else from the file; s.mu is held. What it returns is the
// cache's own.
func (s *Store[T]) load(profile string) ([]T, error) {
	path := s.Path(profile)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		delete(s.cache, profile)
		return nil, nil
	}
	if err == nil {
		if st, ok := privatefile.StampOfInfo(fi); ok {
			if c, ok := s.cache[profile]; ok && c.stamp == st {
				return c.items, nil
			}
		}
	}
	delete(s.cache, profile)
	start := s.now()
	items, fi, err := s.readInfo(profile)
	if err != nil || fi == nil {
		return items, err
	}
	if st, ok := privatefile.StampOfInfo(fi); ok && st.SettledAt(start) {
		s.cache[profile] = cached[T]{items: items, stamp: st}
	}
	return items, nil
}

// cloneItems copies items so that no caller shares what the cache holds:
// an item type with maps or slices has a Clone method for its own.
func cloneItems[T any](items []T) []T {
	if items == nil {
		return nil
	}
	out := make([]T, len(items))
	for i, it := range items {
		if c, ok := any(it).(interface{ Clone() T }); ok {
			out[i] = c.Clone()
		} else {
			out[i] = it
		}
	}
	return out
}

// Update reads profile's items, lets change return the new list, and
// writes it, all under the store's lock, so concurrent changes are not
// lost. An error from change leaves the file as it was.
func (s *Store[T]) Update(profile string, change func([]T) ([]T, error)) error {
	if err := names.Check("profile", profile); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The file is read again, not taken from the cache, and forgotten:
	// the next List reads what was written.
	delete(s.cache, profile)
	items, err := s.read(profile)
	if err != nil {
		return err
	}
	items, err = change(items)
	if err != nil {
		return err
	}
	return s.write(profile, items)
}

// DeleteProfile removes profile's file, if any.
func (s *Store[T]) DeleteProfile(profile string) error {
	if err := names.Check("profile", profile); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, profile)
	err := os.Remove(s.Path(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *Store[T]) read(profile string) ([]T, error) {
	items, _, err := s.readInfo(profile)
	return items, err
}

// readInfo reads profile's items and the stat of the file they came from
// (nil when there is no file).
func (s *Store[T]) readInfo(profile string) ([]T, fs.FileInfo, error) {
	path := s.Path(profile)
	data, fi, err := privatefile.ReadInfo(path, maxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s of %s: %w", s.what, profile, err)
	}
	var f map[string]json.RawMessage
	if err := decodeStrict(data, &f); err != nil {
		return nil, nil, fmt.Errorf("%s is not valid JSON (%v); fix or remove it", path, err)
	}
	for k := range f {
		if k != "version" && k != s.key {
			return nil, nil, fmt.Errorf("%s is not valid JSON (json: unknown field %q); fix or remove it", path, k)
		}
	}
	if v, ok := f["version"]; ok {
		var n int
		if err := json.Unmarshal(v, &n); err != nil || n != Version {
			return nil, nil, fmt.Errorf("%s has version %s; this ringlet reads version %d", path, v, Version)
		}
	}
	var items []T
	if raw, ok := f[s.key]; ok {
		if err := decodeStrict(raw, &items); err != nil {
			return nil, nil, fmt.Errorf("%s is not valid JSON (%v); fix or remove it", path, err)
		}
	}
	return items, fi, nil
}

func (s *Store[T]) write(profile string, items []T) error {
	if items == nil {
		items = []T{}
	}
	list, err := json.MarshalIndent(items, "  ", "  ")
	if err != nil {
		return fmt.Errorf("encode %s of %s: %w", s.what, profile, err)
	}
	key, _ := json.Marshal(s.key)
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"version\": %d,\n  %s: %s\n}\n", Version, key, list)
	if err := privatefile.EnsureDir(s.dir); err != nil {
		return err
	}
	return privatefile.WriteAtomic(s.Path(profile), b.Bytes(), privatefile.FileMode)
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the value")
	}
	return nil
}
