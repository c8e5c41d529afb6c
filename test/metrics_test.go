package test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"testing"
)

// TestMetricsPromtool: /metrics needs the token, and what it serves passes
// `promtool check metrics`.
func TestMetricsPromtool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()

	if status, _, body := d.MustGet(t, "/metrics", "", nil); status != http.StatusUnauthorized {
		t.Errorf("/metrics without token: got %d, want 401; body %.200s", status, body)
	}
	status, _, body := d.MustGet(t, "/metrics", e.Token(), nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics with token: got %d, want 200; body %.200s", status, body)
	}
	for _, name := range []string{"ringlet_build_info", "ringlet_auth_failures_total", "ringlet_http_requests_total"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics: got no %s, want it", name)
		}
	}

	promtoolCheck(t, body)
}

// promtoolCheck runs `promtool check metrics` on a /metrics body.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not on PATH; CI must install it (prometheus package)")
		}
		t.Skip("promtool is not on PATH; install Prometheus to run this check (it is required when CI=true)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
