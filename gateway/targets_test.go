package gateway

import (
	"net/url"
	"testing"

	"github.com/neullabs/ringlet/profile"
)

// A remembered target is the URL upstreamURL makes, query and all, for
// each of more paths than there are slots, several times over; a refused
// path stays refused.
func TestUpstreamTargetsMatchUpstreamURL(t *testing.T) {
	base, err := profile.ParseBaseURL("https://api.example.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	sess := &session{base: base}
	var targets upstreamTargets
	paths := []string{"/messages", "/models", "/x%20y", "/messages/count_tokens", "/a", "/b", "@evil.com/x", "/%zz", "beta/x"}
	for round := range 3 {
		for i, p := range paths {
			query := ""
			if i%2 == round%2 {
				query = "limit=5"
			}
			want, wantErr := upstreamURL(base, base.String(), p, query)
			var got url.URL
			err := targets.get(sess, p, query, &got)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("round %d, %q: got error %v, want %v", round, p, err, wantErr)
			}
			if err == nil && got != *want {
				t.Errorf("round %d, %q: got %#v, want %#v", round, p, got, *want)
			}
		}
	}
}

// A path the session's requests went to before costs no allocation
// (upstreamURL's join and parse cost two).
func TestUpstreamTargetsAllocations(t *testing.T) {
	base, err := profile.ParseBaseURL("https://api.anthropic.com")
	if err != nil {
		t.Fatal(err)
	}
	sess := &session{base: base}
	var targets upstreamTargets
	var u url.URL
	if err := targets.get(sess, "/v1/messages", "", &u); err != nil {
		t.Fatal(err)
	}
	if got := testing.AllocsPerRun(100, func() {
		if err := targets.get(sess, "/v1/messages", "beta=true", &u); err != nil {
			t.Fatal(err)
		}
	}); got != 0 {
		t.Errorf("get of a remembered path: got %v allocations, want 0", got)
	}
	if u.String() != "https://api.anthropic.com/v1/messages?beta=true" {
		t.Errorf("got %s, want the query on the remembered URL", u.String())
	}
}
