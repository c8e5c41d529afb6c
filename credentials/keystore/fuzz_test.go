package keystore

import (
	"maps"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
)

func FuzzParseFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseFile(data)
		if err != nil {
			return
		}
		want := map[string]map[string]string{}
		for p, table := range m {
			if err := names.Check("provider", p); err != nil {
				t.Fatalf("parseFile accepted provider %q: %v", p, err)
			}
			for a, k := range table {
				if err := names.Check("alias", a); err != nil {
					t.Fatalf("parseFile accepted alias %q: %v", a, err)
				}
				if err := credentials.ValidateKey(k); err != nil {
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
		if credentials.ValidateKey(key) != nil {
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
