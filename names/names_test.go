package names

import (
	"fmt"
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

func TestCheckTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"a", false},
		{"0", false},
		{"anthropic", false},
		{"work-2", false},
		{"my_key.v2", false},
		{"a..b", false},
		{"trailing-", false},
		{strings.Repeat("a", 64), false},
		{"a" + strings.Repeat("-", 63), false},
		{"", true},
		{strings.Repeat("a", 65), true},
		{"Anthropic", true},
		{"WORK", true},
		{"-work", true},
		{"_work", true},
		{".work", true},
		{".", true},
		{"..", true},
		{"a/b", true},
		{"/", true},
		{"a b", true},
		{"a\n", true},
		{"a\x00", true},
		{"a:b", true},
		{"a\\b", true},
		{"é", true},
		{"clé", true},
		{"ａ", true}, // full-width a
		{"a\u0301", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := Check("alias", tt.name)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("Check(%q): got %v, want error %v", tt.name, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "invalid alias name") {
				t.Errorf("Check: got %q, want it to name what is invalid", err)
			}
		})
	}
}
