// Package perprofile keeps one JSON file per profile holding a list of
// items, such as a profile's hooks or its MCP servers: read whole,
// changed under a lock, replaced atomically with mode 0600 in a 0700
// directory. The file is {"version": 1, "<key>": [...]}; unknown fields,
// another version and trailing data are refused rather than ignored.
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
	mu   sync.Mutex
}

// New returns a store of files dir/<profile>.json whose list is the
// member key; what names the items in messages.
func New[T any](dir, key, what string) *Store[T] {
	return &Store[T]{dir: dir, key: key, what: what}
}

// Path is the file of profile.
func (s *Store[T]) Path(profile string) string { return filepath.Join(s.dir, profile+".json") }

// List returns profile's items; none when it has no file.
func (s *Store[T]) List(profile string) ([]T, error) {
	if err := names.Check("profile", profile); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(profile)
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
	err := os.Remove(s.Path(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *Store[T]) read(profile string) ([]T, error) {
	path := s.Path(profile)
	data, err := privatefile.Read(path, maxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", s.what, profile, err)
	}
	var f map[string]json.RawMessage
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%v); fix or remove it", path, err)
	}
	for k := range f {
		if k != "version" && k != s.key {
			return nil, fmt.Errorf("%s is not valid JSON (json: unknown field %q); fix or remove it", path, k)
		}
	}
	if v, ok := f["version"]; ok {
		var n int
		if err := json.Unmarshal(v, &n); err != nil || n != Version {
			return nil, fmt.Errorf("%s has version %s; this ringlet reads version %d", path, v, Version)
		}
	}
	var items []T
	if raw, ok := f[s.key]; ok {
		if err := decodeStrict(raw, &items); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON (%v); fix or remove it", path, err)
		}
	}
	return items, nil
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
