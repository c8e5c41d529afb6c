package credentials

import (
	"testing"

	"github.com/neullabs/ringlet/names"
)

// FuzzParseRef: a pair of valid names is a reference that prints back
// as itself.
func FuzzParseRef(f *testing.F) {
	f.Add("anthropic")
	f.Fuzz(func(t *testing.T, name string) {
		if !names.Valid(name) {
			return
		}
		r, err := ParseRef(name + "/" + name)
		if err != nil || r.String() != name+"/"+name {
			t.Fatalf("ParseRef of a valid name twice: got %v, %v", r, err)
		}
	})
}
