package credentials

import (
	"errors"
	"time"
)

// Backend names, as in credentials.backend.
const (
	BackendAuto    = "auto"
	BackendKeyring = "keyring"
	BackendFile    = "file"
)

// ErrNotFound means no key is stored under that name.
var ErrNotFound = errors.New("no such credential")

// Entry is what the index knows about a stored key: never the key.
type Entry struct {
	Provider string    `json:"provider"`
	Alias    string    `json:"alias"`
	Backend  string    `json:"backend"`
	Status   string    `json:"status,omitempty"` // ok, missing, unavailable (List only)
	Detail   string    `json:"detail,omitempty"` // why unavailable
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Ref is the entry's name.
func (e Entry) Ref() Ref { return Ref{e.Provider, e.Alias} }

// MigrateResult says what happened to one entry.
type MigrateResult struct {
	Entry  Entry  `json:"entry"`
	Result string `json:"result"` // moved, already, missing
}
