package hook

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/neullabs/ringlet/internal/perprofile"
)

// ErrNotFound means there is no hook with that id.
var ErrNotFound = errors.New("no such hook")

// Store keeps each profile's hooks in hooks/<profile>.json (0600 files in
// a 0700 directory, replaced atomically; see perprofile).
type Store struct {
	files *perprofile.Store[Hook]
}

// NewStore returns a store under configDir/hooks.
func NewStore(configDir string) *Store {
	return &Store{files: perprofile.New[Hook](filepath.Join(configDir, "hooks"), "hooks", "hooks")}
}

// Path is the file of a profile's hooks.
func (s *Store) Path(profile string) string { return s.files.Path(profile) }

// List returns a profile's hooks in the order they run.
func (s *Store) List(profile string) ([]Hook, error) { return s.files.List(profile) }

func newID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "h_" + hex.EncodeToString(b), nil
}

// Add validates h, gives it an id and appends it to its profile's hooks.
func (s *Store) Add(h Hook) (Hook, error) {
	if err := h.Validate(); err != nil {
		return Hook{}, err
	}
	err := s.files.Update(h.Profile, func(hooks []Hook) ([]Hook, error) {
		var err error
		if h.ID, err = newID(); err != nil {
			return nil, err
		}
		h.Created = time.Now().UTC().Truncate(time.Second)
		return append(hooks, h), nil
	})
	if err != nil {
		return Hook{}, err
	}
	return h, nil
}

// Remove deletes a hook by id.
func (s *Store) Remove(profile, id string) (Hook, error) {
	var removed Hook
	err := s.files.Update(profile, func(hooks []Hook) ([]Hook, error) {
		for i, h := range hooks {
			if h.ID == id {
				removed = h
				return append(hooks[:i:i], hooks[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("profile %s has no hook %s ('ringlet hooks list %s' shows them): %w", profile, id, profile, ErrNotFound)
	})
	return removed, err
}

// Import validates in, gives each a new id and appends them to profile's
// hooks, all or none.
func (s *Store) Import(profile string, in []Hook) ([]Hook, error) {
	for i := range in {
		in[i].Profile = profile
		if err := in[i].Validate(); err != nil {
			return nil, fmt.Errorf("hook %d: %w", i+1, err)
		}
	}
	err := s.files.Update(profile, func(hooks []Hook) ([]Hook, error) {
		for i := range in {
			var err error
			if in[i].ID, err = newID(); err != nil {
				return nil, err
			}
			in[i].Created = time.Now().UTC().Truncate(time.Second)
		}
		return append(hooks, in...), nil
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// DeleteProfile removes a profile's hooks.
func (s *Store) DeleteProfile(profile string) error { return s.files.DeleteProfile(profile) }
