//go:build !linux && !darwin

package sandbox

import (
	"errors"
	"path/filepath"
)

var errUnsupported = errors.New("Ringlet's sandbox supports Linux (bubblewrap) and macOS (sandbox-exec) only")

// Args is not available on this platform.
func (p *Policy) Args(string) ([]string, error) { return nil, errUnsupported }

// ArgsFD is not available on this platform.
func (p *Policy) ArgsFD(string) ([]string, [][]byte, error) { return nil, nil, errUnsupported }

// Find is not available on this platform.
func Find() (string, error) { return "", errUnsupported }

// Check is not available on this platform.
func Check(string) error { return errUnsupported }

// DisableUsernsSupported is not available on this platform.
func DisableUsernsSupported(string) bool { return false }

// BinDir is the ringlet binary's own directory: there is no sandbox to
// show it elsewhere on this platform.
func BinDir(ringlet string) string { return filepath.Dir(ringlet) }

// ReplayArgs is not available on this platform.
func ReplayArgs(string, string, string) ([]string, [][]byte, error) { return nil, nil, errUnsupported }
