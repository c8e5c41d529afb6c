package mcp

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidToolName holds validToolName to the pattern it replaced.
func FuzzValidToolName(f *testing.F) {
	for _, s := range []string{"", "a", "echo", "a.b-c_d", "a b", "é", "a\x00", "__", strings.Repeat("x", 128), strings.Repeat("x", 129), "tool/name"} {
		f.Add(s)
	}
	re := regexp.MustCompile(toolNamePattern)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validToolName(s), re.MatchString(s); got != want {
			t.Fatalf("validToolName(%q) = %v, want %v (the pattern %s)", s, got, want, toolNamePattern)
		}
	})
}
