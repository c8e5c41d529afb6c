//go:build linux

package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/profile"
)

// TestRateLimits: limits set with 'ringlet ratelimits' refuse, before
// forwarding, the provider request past a session's requests a minute
// (429, Retry-After, Anthropic's error body) and the MCP tool call past
// its tool calls a minute (a JSON-RPC error with Retry-After); refusals
// are audited and counted; clear lifts them.
func TestRateLimits(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	bin := buildMCPTestServer(t)
	w.mustRun(t, "mcp", "add", "p", "slow", "--", bin)
	var set struct {
		Profile          string
		SessionRequests  int64 `json:"session_requests"`
		SessionToolCalls int64 `json:"session_tool_calls"`
	}
	out := w.mustRun(t, "ratelimits", "set", "p", "--session-requests", "1", "--session-tool-calls", "1", "--json")
	if err := json.Unmarshal([]byte(out), &set); err != nil || set.Profile != "p" || set.SessionRequests != 1 || set.SessionToolCalls != 1 {
		t.Fatalf("ratelimits set --json: got %s (%v)", out, err)
	}
	if out := w.mustRun(t, "ratelimits", "show", "p"); !strings.Contains(out, "session-requests") || !strings.Contains(out, "none") {
		t.Errorf("ratelimits show: got %q", out)
	}
	if _, stderr, code := w.e.Run("ratelimits", "set", "p", "--session-requests", "-1"); code == 0 || !strings.Contains(stderr, "--session-requests") {
		t.Errorf("a negative limit: exit %d, stderr %q; want refused", code, stderr)
	}
	var s struct{ Token string }
	if err := json.Unmarshal([]byte(w.mustRun(t, "profiles", "env", "p", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	body := `{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	post := func() (*http.Response, string) {
		req, _ := http.NewRequest("POST", w.d.URL+"/proxy/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", s.Token)
		req.Header.Set("content-type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, string(data)
	}
	if resp, got := post(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: got %d %s", resp.StatusCode, got)
	}
	before := len(w.fake.Requests())
	resp, got := post()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" || !strings.Contains(got, `"rate_limit_error"`) {
		t.Errorf("second request: got %d, Retry-After %q, %s; want 429, 60, Anthropic's rate_limit_error", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	if n := len(w.fake.Requests()); n != before {
		t.Errorf("the refused request reached the provider (%d requests, want %d)", n, before)
	}

	sid := mcpOpen(t, w.d.URL, s.Token)
	call := func() (*http.Response, string) {
		req, _ := http.NewRequest("POST", w.d.URL+"/mcp", strings.NewReader(stdioCall(5, "slow__echo", map[string]any{"text": "hi"})))
		req.Header.Set("Authorization", "Bearer "+s.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := longClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, string(data)
	}
	if resp, got := call(); resp.StatusCode != http.StatusOK || strings.Contains(got, `"error"`) {
		t.Fatalf("first tool call: got %d %s", resp.StatusCode, got)
	}
	resp, got = call()
	var rpc struct {
		Error struct {
			Code int
			Data struct {
				RetryAfter int `json:"retry_after_seconds"`
			}
		}
	}
	if err := json.Unmarshal([]byte(got), &rpc); err != nil || rpc.Error.Code != -32029 || rpc.Error.Data.RetryAfter != 60 || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("second tool call: got %s, Retry-After %q (%v); want JSON-RPC error -32029 retrying in 60s", got, resp.Header.Get("Retry-After"), err)
	}
	limited := map[string]bool{}
	for _, r := range w.records(t, "rate.limited") {
		limited[r.Detail["limit"].(string)] = true
	}
	if !limited["requests"] || !limited["tool_calls"] {
		t.Errorf("rate.limited records: got %v, want requests and tool_calls", limited)
	}
	_, _, metrics := w.d.MustGet(t, "/metrics", w.e.Token(), nil)
	if !strings.Contains(string(metrics), `ringlet_rate_limited_total{limit="requests",profile="p",scope="session"} 1`) {
		t.Error("ringlet_rate_limited_total does not count the refused request")
	}
	var shown api.RateLimits
	if err := json.Unmarshal([]byte(w.mustRun(t, "ratelimits", "show", "p", "--json")), &shown); err != nil || shown.Profile != "p" || shown.SessionRequests != 1 {
		t.Errorf("ratelimits show --json: got %+v (%v), want profile p with session_requests 1", shown, err)
	}
	var cleared api.RateLimits
	if err := json.Unmarshal([]byte(w.mustRun(t, "ratelimits", "clear", "p", "--json")), &cleared); err != nil || cleared.Profile != "p" || cleared.RateLimits != (profile.RateLimits{}) {
		t.Errorf("ratelimits clear --json: got %+v (%v), want profile p with no limits", cleared, err)
	}
	if resp, got := post(); resp.StatusCode != http.StatusOK {
		t.Errorf("after clear: got %d %s, want 200", resp.StatusCode, got)
	}
}
