package names

import (
	"regexp"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "work", "my-profile_2", "x.y", strings.Repeat("a", 64), "0day"} {
		if err := Check("profile", ok); err != nil {
			t.Errorf("%q: got %v, want valid", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".hidden", "_x", "A", "a/b", "..", "a b", "é", strings.Repeat("a", 65), "a\n", "x:y"} {
		err := Check("profile", bad)
		if err == nil || !strings.Contains(err.Error(), "invalid profile name") {
			t.Errorf("%q: got %v, want an error naming the profile", bad, err)
		}
	}
}

// TestPatternComposes: Pattern builds larger patterns (provider/alias)
// that accept exactly pairs of valid names.
func TestPatternComposes(t *testing.T) {
	t.Parallel()
	ref := regexp.MustCompile(`^` + Pattern + `/` + Pattern + `$`)
	if !ref.MatchString("anthropic/work") || ref.MatchString("anthropic/../x") || ref.MatchString("/work") {
		t.Error("provider/alias pattern: accepts or refuses the wrong names")
	}
}
