package credentials

import (
	"maps"
	"strings"
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

func FuzzParseFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseFile(data)
		if err != nil {
			return
		}
		want := map[string]map[string]string{}
		for p, table := range m {
			if err := ValidateName("provider", p); err != nil {
				t.Fatalf("parseFile accepted provider %q: %v", p, err)
			}
			for a, k := range table {
				if err := ValidateName("alias", a); err != nil {
					t.Fatalf("parseFile accepted alias %q: %v", a, err)
				}
				if err := ValidateKey(k); err != nil {
					t.Fatalf("parseFile accepted the key of %s/%s: %v", p, a, err)
				}
			}
			// A provider table without keys means nothing; encodeFile
			// leaves it out.
			if len(table) > 0 {
				want[p] = maps.Clone(table)
			}
		}
		enc, err := encodeFile(m)
		if err != nil {
			t.Fatalf("encodeFile of a parsed file: %v", err)
		}
		got, err := parseFile(enc)
		if err != nil {
			t.Fatalf("parseFile(encodeFile(m)): %v\n%s", err, enc)
		}
		if !maps.EqualFunc(got, want, maps.Equal) {
			t.Fatalf("parseFile(encodeFile(m)): got %q, want %q", got, want)
		}
	})
}

// FuzzKeyRoundTrip checks that every key ValidateKey accepts survives the
// file backend's encoding unchanged: the read-back check of Set would
// otherwise fail after the file was already rewritten.
func FuzzKeyRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		enc, err := encodeFile(map[string]map[string]string{"anthropic": {"work": key}})
		if err != nil {
			t.Fatalf("encodeFile: %v", err)
		}
		got, err := parseFile(enc)
		if err != nil {
			t.Fatalf("parseFile(encodeFile): %v\n%s", err, enc)
		}
		if got["anthropic"]["work"] != key {
			t.Fatalf("round trip: got %q, want %q", got["anthropic"]["work"], key)
		}
		if !strings.HasPrefix(string(enc), fileHeader) {
			t.Fatalf("encodeFile: got %q, want the header first", enc)
		}
	})
}
