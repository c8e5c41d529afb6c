package sandbox

import (
	"fmt"
	"path/filepath"
	"strings"
)

// resolved is p with symbolic links resolved where they can be.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// inside reports whether p is dir or lies under it (both resolved).
func inside(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Overlaps reports whether one of two paths is the other or inside it,
// symbolic links resolved where they can be.
func Overlaps(a, b string) bool {
	a, b = resolved(a), resolved(b)
	return inside(a, b) || inside(b, a)
}

// ExposesOwn refuses a path that a sandbox would bind when it is, holds or
// lies inside one of own (Ringlet's config, state and data directories,
// its audit log): the token, the keys file and the audit log must never be
// visible to what runs inside. A path within home (the profile's own HOME,
// which lives in the data directory and is bound anyway) is allowed.
func ExposesOwn(p, home string, own []string) error {
	if home != "" && inside(resolved(p), resolved(home)) {
		return nil
	}
	for _, o := range own {
		if o != "" && Overlaps(p, o) {
			return fmt.Errorf("%s would show Ringlet's own files (%s) inside the sandbox; choose a project directory", p, o)
		}
	}
	return nil
}
