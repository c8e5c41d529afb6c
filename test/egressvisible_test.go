package test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestSandboxEgressVisible: in the default provider network a sandboxed
// program that tries another host (curl over HTTPS and plain HTTP, which
// read the proxy variables) is refused by the session's proxy with a
// reason saying how to allow it, and the attempt is in the audit log and
// the metrics (which pass promtool), instead of failing silently at DNS.
func TestSandboxEgressVisible(t *testing.T) {
	requireBwrap(t)
	t.Parallel()
	const curl = "/usr/bin/curl" // under /usr, which the sandbox shows
	if _, err := os.Stat(curl); err != nil {
		t.Fatalf("%s: %v; this test needs it (.ci/deps)", curl, err)
	}
	e := newEnv(t)
	d := e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.RunInput("sk-egress-visible-canary", "profiles", "create", "generic", "box", "--provider", "local",
		"--workspace", ws, "--command", "/bin/bash"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	script := `
echo "proxy=$HTTPS_PROXY $https_proxy $HTTP_PROXY $http_proxy no=$NO_PROXY"
` + curl + ` -sS -m 20 -o /dev/null https://blocked.example/ 2>&1; echo "https exit $?"
` + curl + ` -sS -m 20 http://plain.example/path 2>&1; echo; echo "http exit $?"
`
	stdout, stderr, code := e.Run("profiles", "run", "box", "--", "-c", script)
	if code != 0 {
		t.Fatalf("profiles run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, want := range []string{
		"proxy=http://127.0.0.1:8765 http://127.0.0.1:8765 http://127.0.0.1:8765 http://127.0.0.1:8765 no=127.0.0.1,localhost",
		"403",           // curl: CONNECT tunnel failed, response 403
		"https exit 56", // curl's "failure receiving network data" for a refused tunnel
		"may not reach http://plain.example:80", "--allow-host HOST",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("sandbox output: got %q, want it to hold %q", stdout, want)
		}
	}

	var q struct {
		Records []struct {
			Kind, Target, Decision string
			Detail                 map[string]any
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "sandbox.violation", "--json")), &q); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range q.Records {
		got[r.Target] = r.Decision + " " + strings.Join([]string{stringOf(r.Detail["reason"]), stringOf(r.Detail["change"])}, " / ")
	}
	for host, want := range map[string]string{"blocked.example:443": "--allow-host blocked.example", "plain.example:80": "only by HTTPS"} {
		if !strings.HasPrefix(got[host], "deny ") || !strings.Contains(got[host], want) {
			t.Errorf("sandbox.violation for %s: got %q, want deny saying %q (all: %v)", host, got[host], want, got)
		}
	}

	status, _, body := d.MustGet(t, "/metrics", e.Token(), nil)
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for _, want := range []string{
		// Refused hosts are no labels (the records above name them).
		`ringlet_sandbox_egress_total{decision="refused",host="other",profile="box"} 2`,
		`ringlet_sandbox_violations_total{kind="egress",profile="box"} 1`,
		`ringlet_sandbox_violations_total{kind="plain_http",profile="box"} 1`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics: want %s in it; got the ringlet_sandbox lines:\n%s", want, grepLines(string(body), "ringlet_sandbox"))
		}
	}
	promtoolCheck(t, body)
	e.AssertNoSecret("sk-egress-visible-canary")
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}
