package gateway

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidModelLabel holds validModelLabel to the pattern it replaced.
func FuzzValidModelLabel(f *testing.F) {
	for _, s := range []string{"", "claude-sonnet-4-5", "gpt-4o:2024@x/y_z.1", "a b", "é", "a\n", strings.Repeat("m", 80), strings.Repeat("m", 81), "model\x00"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[A-Za-z0-9._:/@-]{1,80}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validModelLabel(s), re.MatchString(s); got != want {
			t.Fatalf("validModelLabel(%q) = %v, want %v", s, got, want)
		}
	})
}
