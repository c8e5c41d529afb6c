package hook

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/neullabs/ringlet/privatefile"
)

// ErrNotFound means there is no hook with that id.
var ErrNotFound = errors.New("no such hook")

// Store keeps each profile's hooks in hooks/<profile>.json.
type Store struct {
	dir string
	mu  sync.Mutex
}

// NewStore returns a store under configDir/hooks.
func NewStore(configDir string) *Store { return &Store{dir: filepath.Join(configDir, "hooks")} }

type file struct {
	Version int    `json:"version"`
	Hooks   []Hook `json:"hooks"`
}

func (s *Store) path(profile string) string { return filepath.Join(s.dir, profile+".json") }

// List returns a profile's hooks in the order they run.
func (s *Store) List(profile string) ([]Hook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(profile)
}

func (s *Store) read(profile string) ([]Hook, error) {
	var f file
	if _, err := privatefile.ReadJSON(s.path(profile), 4<<20, &f); err != nil {
		return nil, fmt.Errorf("hooks of %s: %w", profile, err)
	}
	return f.Hooks, nil
}

func (s *Store) write(profile string, hooks []Hook) error {
	if hooks == nil {
		hooks = []Hook{}
	}
	return privatefile.WriteJSON(s.path(profile), file{Version: 1, Hooks: hooks})
}

func newID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "h_" + hex.EncodeToString(b), nil
}

// Add validates h and appends it to its profile's hooks.
func (s *Store) Add(h Hook) (Hook, error) {
	if err := h.Validate(); err != nil {
		return Hook{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hooks, err := s.read(h.Profile)
	if err != nil {
		return Hook{}, err
	}
	if h.ID, err = newID(); err != nil {
		return Hook{}, err
	}
	h.Created = time.Now().UTC().Truncate(time.Second)
	if err := s.write(h.Profile, append(hooks, h)); err != nil {
		return Hook{}, err
	}
	return h, nil
}

// Remove deletes a hook by id.
func (s *Store) Remove(profile, id string) (Hook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hooks, err := s.read(profile)
	if err != nil {
		return Hook{}, err
	}
	for i, h := range hooks {
		if h.ID == id {
			if err := s.write(profile, append(hooks[:i], hooks[i+1:]...)); err != nil {
				return Hook{}, err
			}
			return h, nil
		}
	}
	return Hook{}, fmt.Errorf("profile %s has no hook %s ('ringlet hooks list %s' shows them): %w", profile, id, profile, ErrNotFound)
}

// Import validates every hook and appends them all, or none.
func (s *Store) Import(profile string, in []Hook) ([]Hook, error) {
	for i := range in {
		in[i].Profile = profile
		if err := in[i].Validate(); err != nil {
			return nil, fmt.Errorf("hook %d: %w", i+1, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hooks, err := s.read(profile)
	if err != nil {
		return nil, err
	}
	for i := range in {
		if in[i].ID, err = newID(); err != nil {
			return nil, err
		}
		in[i].Created = time.Now().UTC().Truncate(time.Second)
	}
	if err := s.write(profile, append(hooks, in...)); err != nil {
		return nil, err
	}
	return in, nil
}

// DeleteProfile removes a profile's hooks.
func (s *Store) DeleteProfile(profile string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(s.path(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
