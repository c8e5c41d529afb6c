package names

import (
	"regexp"
	"strings"
	"testing"
)

// patternRE is Pattern anchored: the rule as larger patterns (provider/
// alias, JSON schemas) use it, which Valid's loop must agree with.
var patternRE = regexp.MustCompile(`^` + Pattern + `$`)

// FuzzCheck: Check and Valid agree with Pattern.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a", "work-2", "-x", "A", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\n", "é", "x.y_z-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := Check("provider", name)
		if want := patternRE.MatchString(name); (err == nil) != want {
			t.Fatalf("Check(%q): got %v, want accepted %v", name, err, want)
		}
		if Valid(name) != (err == nil) {
			t.Fatalf("Valid(%q) disagrees with Check", name)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	b.Run("loop", func(b *testing.B) {
		for b.Loop() {
			Valid("my-profile_2")
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			patternRE.MatchString("my-profile_2")
		}
	})
}
