package test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestProfilesSet changes a profile's settings through the CLI and checks
// that an invalid change is refused before it is recorded or written.
func TestProfilesSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput("sk-set-canary", "profiles", "create", "generic", "box", "--provider", "local", "--command", "/bin/true"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	var st struct {
		Profiles int `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "daemon", "status", "--json")), &st); err != nil || st.Profiles != 1 {
		t.Errorf("daemon status: got profiles %d (%v), want 1", st.Profiles, err)
	}
	inspect := func() map[string]any {
		var v map[string]any
		if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "inspect", "box", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	mustRun(t, e, "profiles", "set", "box", "--model", "m-1", "--network", "none", "--ro", "/usr/share", "--ro", "/usr/include")
	v := inspect()
	if v["model"] != "m-1" || v["network"] != "none" {
		t.Errorf("after set: got model %v network %v, want m-1 none", v["model"], v["network"])
	}
	if ro, _ := v["ro"].([]any); len(ro) != 2 || ro[0] != "/usr/share" || ro[1] != "/usr/include" {
		t.Errorf("after set: got ro %v, want [/usr/share /usr/include]", v["ro"])
	}
	// Shells complete profile aliases, from the profile files.
	for _, args := range [][]string{{"profiles", "inspect", ""}, {"hooks", "list", "b"}, {"mcp", "add", ""}, {"audit", "query", "--profile", ""}} {
		out := mustRun(t, e, append([]string{"__complete"}, args...)...)
		if !strings.Contains(out, "box\tgeneric via local") {
			t.Errorf("completion of %q: got %q, want the profile box", args, out)
		}
	}
	if out := mustRun(t, e, "__complete", "profiles", "inspect", "box", ""); strings.Contains(out, "box") {
		t.Errorf("completion after the alias: got %q, want no second alias", out)
	}
	// The text view shows the sandbox settings too.
	text := mustRun(t, e, "profiles", "inspect", "box")
	for _, want := range []string{"network", "none", "/usr/share /usr/include", "allow_git_config"} {
		if !strings.Contains(text, want) {
			t.Errorf("profiles inspect box: got %q, want it to show %q", text, want)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"nothing to change", []string{"profiles", "set", "box"}, 2},
		{"bad network", []string{"profiles", "set", "box", "--network", "bogus"}, 2},
		{"bad allow-host", []string{"profiles", "set", "box", "--allow-host", "Bad Host"}, 2},
		{"create with a bad network", []string{"profiles", "create", "generic", "box2", "--provider", "local", "--command", "true", "--network", "wifi"}, 2},
		{"env with a bad ttl", []string{"profiles", "env", "box", "--ttl", "yesterday"}, 2},
		{"env with a ttl too long", []string{"profiles", "env", "box", "--ttl", "9999h"}, 2},
		{"daemon with a bad listen", []string{"daemon", "--listen", "bogus"}, 2},
		{"missing ro path", []string{"profiles", "set", "box", "--ro", "/no/such/dir"}, 1},
		{"unknown profile", []string{"profiles", "set", "nope", "--model", "x"}, 1},
		{"invalid alias", []string{"profiles", "set", "Bad", "--model", "x"}, 2},
	} {
		stdout, stderr, code := e.Run(tc.args...)
		if code != tc.code || stdout != "" || !strings.HasPrefix(stderr, "ringlet: ") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: got exit %d, stdout %q, stderr %q; want exit %d and one ringlet: line", tc.name, code, stdout, stderr, tc.code)
		}
	}
	if v2 := inspect(); v2["network"] != "none" || v2["model"] != "m-1" {
		t.Errorf("after refused changes: got model %v network %v, want them unchanged", v2["model"], v2["network"])
	}

	var q struct {
		Records []struct {
			Decision string          `json:"decision"`
			Detail   json.RawMessage `json:"detail"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "profile.update", "--json")), &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Records) != 1 || q.Records[0].Decision != "allow" || !strings.Contains(string(q.Records[0].Detail), `"m-1"`) {
		t.Errorf("profile.update records: got %+v, want exactly the one allowed change", q.Records)
	}
}
