//go:build !linux

package keystore

import (
	"errors"

	"github.com/neullabs/ringlet/credentials"
)

// present: macOS Keychain and Windows Credential Manager are asked key by
// key (go-keyring has no listing there).
func (keyringBackend) present([]credentials.Ref) (map[credentials.Ref]bool, error) {
	return nil, errNoListing
}

var errNoListing = errors.New("this backend has no listing")
