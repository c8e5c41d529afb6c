package gateway

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestClipModel: a model name an agent chose is kept whole up to
// maxModelLen bytes, and cut at a character boundary past it.
func TestClipModel(t *testing.T) {
	if got := clipModel("claude-sonnet-4-5"); got != "claude-sonnet-4-5" {
		t.Errorf("a short name: got %q", got)
	}
	exact := strings.Repeat("m", maxModelLen)
	if got := clipModel(exact); got != exact {
		t.Errorf("a name of exactly %d bytes was cut", maxModelLen)
	}
	for _, long := range []string{strings.Repeat("x", 1<<20), strings.Repeat("é", 1000), "a" + strings.Repeat("日本", 500)} {
		got := clipModel(long)
		if len(got) > maxModelLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
			t.Errorf("clipModel of %d bytes: got %d bytes %q, want at most %d, valid UTF-8, a prefix and …", len(long), len(got), got[:min(len(got), 20)], maxModelLen)
		}
	}
}
