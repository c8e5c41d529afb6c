package test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// headCount is how many HEAD requests /metrics counts for route with
// code.
func headCount(t *testing.T, w *proxyWorld, route, code string) float64 {
	t.Helper()
	status, _, body := w.d.MustGet(t, "/metrics", w.e.Token(), nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: got %d", status)
	}
	want := `ringlet_http_requests_total{code="` + code + `",method="HEAD",route="` + route + `"} `
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, want); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics %s: %v", l, err)
			}
			return n
		}
	}
	return 0
}

// TestProxyPreflight: an agent's HEAD of its base URL without a key, as
// Claude Code sends it at start (HEAD <base>/api/hello), is answered 200
// with nothing in it and is no auth.failure in the audit log; every other
// request without a valid token still is. The real Claude Code, run with
// nonessential traffic allowed (the catalog turns it off, which also
// turns its preflight off), sends one and leaves no auth.failure.
func TestProxyPreflight(t *testing.T) {
	t.Parallel()
	requireNode(t)
	claudeBin(t)
	w := newProxyWorld(t)
	key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5")

	for _, path := range []string{"", "/", "/api/hello"} {
		resp := w.open(t, t.Context(), http.MethodHead, path, nil, "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" || resp.ContentLength > 0 {
			t.Errorf("HEAD /proxy%s without a key: got %d %v, want 200 and nothing", path, resp.StatusCode, resp.Header)
		}
	}
	if recs := auditOf(t, w.e, "", "auth.failure"); len(recs) != 0 {
		t.Fatalf("auth.failure after the preflights: got %+v, want none", recs)
	}
	refused := []struct {
		method, path string
		hdr          http.Header
	}{
		{http.MethodGet, "/api/hello", nil},
		{http.MethodHead, "/v1/messages", nil},
		{http.MethodHead, "/api/hello", http.Header{"X-Api-Key": {"rlt_wrong"}}},
	}
	for _, r := range refused {
		if status, _, _ := w.send(t, r.method, r.path, r.hdr, ""); status != http.StatusUnauthorized {
			t.Errorf("%s /proxy%s %v: got %d, want 401", r.method, r.path, r.hdr, status)
		}
	}
	if recs := auditOf(t, w.e, "", "auth.failure"); len(recs) != len(refused) {
		t.Fatalf("auth.failure after the refusals: got %d, want %d", len(recs), len(refused))
	}
	before := headCount(t, w, "/proxy/api/hello", "200")

	s := w.startSession("cc")
	var env []string
	for _, kv := range clientEnv(t, s, t.TempDir(), key, "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1") {
		if !strings.HasPrefix(kv, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=") {
			env = append(env, kv)
		}
	}
	if res := runClaude(t, t.TempDir(), env, "-p", "say hi", "--output-format", "json"); res.IsError {
		t.Fatalf("claude -p: got %+v", res)
	}
	// The preflight is fire and forget: wait for it to be answered.
	deadline := time.Now().Add(30 * time.Second)
	for headCount(t, w, "/proxy/api/hello", "200") == before {
		if time.Now().After(deadline) {
			t.Fatal("Claude Code's HEAD <base>/api/hello never reached the daemon")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if recs := auditOf(t, w.e, "", "auth.failure"); len(recs) != len(refused) {
		t.Errorf("auth.failure after Claude Code ran: got %d, want still %d: %+v", len(recs), len(refused), recs)
	}
	if n := headCount(t, w, "/proxy/*", "401"); n != 1 {
		t.Errorf("HEADs refused under /proxy/*: got %v, want only the wrong key's", n)
	}
}
