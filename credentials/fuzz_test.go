package credentials

import (
	"testing"
)

// nameOK is ValidateName's rule written out by hand, to check the regexp
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

func FuzzValidateName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName("provider", name)
		if want := nameOK(name); (err == nil) != want {
			t.Fatalf("ValidateName(%q): got %v, want accepted %v", name, err, want)
		}
		if err == nil {
			r, err := ParseRef(name + "/" + name)
			if err != nil || r.String() != name+"/"+name {
				t.Fatalf("ParseRef of a valid name twice: got %v, %v", r, err)
			}
		}
	})
}
