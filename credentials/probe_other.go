//go:build !linux

package credentials

// probeKeyring: macOS and Windows always have their credential store.
func probeKeyring(string) (absent string, err error) { return "", nil }
