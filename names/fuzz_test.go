package names

import (
	"strings"
	"testing"
)

// nameOK is Check's rule written out by hand, to check the regexp
// against: 1 to 64 bytes of [a-z0-9._-], the first one [a-z0-9].
func nameOK(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// FuzzCheck: Check agrees with the rule written out by hand.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a", "work-2", "-x", "A", strings.Repeat("a", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := Check("provider", name)
		if want := nameOK(name); (err == nil) != want {
			t.Fatalf("Check(%q): got %v, want accepted %v", name, err, want)
		}
		if Valid(name) != (err == nil) {
			t.Fatalf("Valid(%q) disagrees with Check", name)
		}
	})
}
