//go:build !linux

package keystore

// probeKeyring: macOS and Windows always have their credential store.
func probeKeyring(string) (absent string, err error) { return "", nil }
