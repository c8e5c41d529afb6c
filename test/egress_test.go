package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSandboxAllowHost checks --allow-host: inside a provider-network
// sandbox, a CONNECT to an allowed host name reaches it and a CONNECT to
// anything else is refused and recorded as a sandbox violation.
func TestSandboxAllowHost(t *testing.T) {
	requireBwrap(t)
	t.Parallel()
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "egress-ok")
	}))
	defer target.Close()
	port := target.Listener.Addr().(*net.TCPAddr).Port

	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	allowed := fmt.Sprintf("localhost:%d", port)
	if _, stderr, code := e.RunInput("sk-egress-canary", "profiles", "create", "generic", "box", "--provider", "local",
		"--workspace", ws, "--command", "/bin/bash", "--allow-host", allowed); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	// A hand-written CONNECT through the forwarder, then a GET through the
	// tunnel; each attempt prints the proxy's status line.
	script := fmt.Sprintf(`
connect() {
  exec 3<>/dev/tcp/127.0.0.1/8765 || { echo "$1 no-forwarder"; return; }
  printf 'CONNECT %%s HTTP/1.1\r\nHost: %%s\r\n\r\n' "$1" "$1" >&3
  read -r status <&3
  echo "$1 ${status%%$'\r'}"
  if [[ "$status" == *" 200 "* ]]; then
    while read -r line <&3 && [ "$line" != $'\r' ]; do :; done
    printf 'GET / HTTP/1.1\r\nHost: %%s\r\nConnection: close\r\n\r\n' "$1" >&3
    grep -a -o egress-ok <&3
  fi
  exec 3>&-
}
connect %s
connect 127.0.0.1:%d
connect example.com:443
`, allowed, port)
	stdout, stderr, code := e.Run("profiles", "run", "box", "--", "-c", script)
	if code != 0 {
		t.Fatalf("profiles run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, want := range []string{allowed + " HTTP/1.1 200", "egress-ok", fmt.Sprintf("127.0.0.1:%d HTTP/1.1 403", port), "example.com:443 HTTP/1.1 403"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("sandbox output: got %q, want a line with %q", stdout, want)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("the allowed host got %d requests, want exactly 1 (the refused CONNECTs must not reach it)", got)
	}

	var q struct {
		Records []struct {
			Kind, Target, Decision string
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "sandbox.egress,sandbox.violation", "--json")), &q); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range q.Records {
		got[r.Target] = r.Kind + "/" + r.Decision
	}
	want := map[string]string{
		allowed:                           "sandbox.egress/allow",
		fmt.Sprintf("127.0.0.1:%d", port): "sandbox.violation/deny",
		"example.com:443":                 "sandbox.violation/deny",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("audit for %s: got %q, want %q (all: %v)", k, got[k], v, got)
		}
	}

	// sandbox check with the profile's settings: every probe passes.
	var check struct {
		Probes []struct {
			Probe  string `json:"probe"`
			Passed bool   `json:"passed"`
		} `json:"probes"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "sandbox", "check", "--profile", "box", "--json")), &check); err != nil || len(check.Probes) < 8 {
		t.Fatalf("sandbox check --profile box --json: %v, %d probes", err, len(check.Probes))
	}
	for _, p := range check.Probes {
		if !p.Passed {
			t.Errorf("sandbox check --profile box: probe %q failed", p.Probe)
		}
	}
	if _, stderr, code := e.Run("sandbox", "check", "--profile", "nope"); code != 1 || !strings.Contains(stderr, "no profile") {
		t.Errorf("sandbox check --profile nope: got exit %d, stderr %q; want 1 naming the missing profile", code, stderr)
	}
}
