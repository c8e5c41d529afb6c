package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestSessionsKillIsOneRequest: 'sessions kill ID' and 'kill --all --yes'
// send the kill and nothing before it (no probe of the daemon, no list):
// its round trip is the kill's latency from the command line.
func TestSessionsKillIsOneRequest(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	daemon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sessions":[{"id":"s_0123456789abcdef","profile":"work"}]}`))
	}))
	defer daemon.Close()
	cfg := t.TempDir()
	if err := os.Mkdir(filepath.Join(cfg, "ringlet"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "ringlet", "http_token"), []byte(strings.Repeat("a1", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_CONFIG_HOME=" + cfg, "XDG_STATE_HOME=" + t.TempDir(), "XDG_DATA_HOME=" + t.TempDir(), "HOME=" + t.TempDir(), "RINGLET_URL=" + daemon.URL}
	getenv := func(k string) string {
		for _, kv := range env {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "kill", "s_0123456789abcdef", "--json"}, "POST /api/sessions/s_0123456789abcdef/kill"},
		{[]string{"sessions", "kill", "--all", "--yes", "--json"}, "POST /api/sessions/kill"},
	} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		var out, errb bytes.Buffer
		if code := Main(context.Background(), tc.args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, getenv, func() []string { return env }, nil); code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, code, errb.String())
		}
		mu.Lock()
		if !slices.Equal(seen, []string{tc.want}) {
			t.Errorf("%v: requests %q, want only %q", tc.args, seen, tc.want)
		}
		mu.Unlock()
		if !strings.Contains(out.String(), "s_0123456789abcdef") {
			t.Errorf("%v: output %q, want the killed session", tc.args, out.String())
		}
	}
}
