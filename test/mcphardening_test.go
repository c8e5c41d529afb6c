package test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// auditRecords is `ringlet audit query --kind KIND --json`, newest first.
func auditRecords(t *testing.T, e *env, kind string) []struct {
	Kind, Profile, Target, Decision string
	Detail                          map[string]any
} {
	t.Helper()
	var page struct {
		Records []struct {
			Kind, Profile, Target, Decision string
			Detail                          map[string]any
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", kind, "--json")), &page); err != nil {
		t.Fatal(err)
	}
	return page.Records
}

// TestMCPUpstreamRestarts drives a sandboxed stdio server through the
// real daemon: a call it never answers ends its run (the hung process is
// killed, the restart audited as mcp.server_restart, 'mcp list' tells
// the truth) and the next call runs on a new process; a crash mid-call is
// audited the same way and the next call works too.
func TestMCPUpstreamRestarts(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	marker := filepath.Join(e.Root, "pid-"+sbRandomHex(4))
	mustRun(t, e, "mcp", "add", "work", "up", "--timeout", "3s", "--", bin, "-pid", marker)
	work := []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}

	got := stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "first"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "first") {
		t.Fatalf("up__echo: got %v %q", isErr, text)
	}
	hung := markedProcesses(marker)
	if len(hung) == 0 {
		t.Fatal("no process on the host runs the server")
	}

	got = stdioBridge(t, e, work, stdioInit, stdioInitialized,
		stdioCall(2, "up__hang", map[string]string{}),
		stdioCall(3, "up__echo", map[string]string{"text": "after the hang"}))
	if text, isErr := callText(t, got["2"]); !isErr || !strings.Contains(text, "no answer within 3s") {
		t.Errorf("the hung call: got %v %q, want a timeout error", isErr, text)
	}
	if text, isErr := callText(t, got["3"]); isErr || !strings.Contains(text, "after the hang") {
		t.Errorf("the call after the hang: got %v %q, want it answered", isErr, text)
	}
	if !waitFor(10*time.Second, func() bool { return !slices.ContainsFunc(hung, func(p int) bool { return !pidGone(p) }) }) {
		t.Errorf("the hung server's processes %v still run", hung)
	}
	recs := auditRecords(t, e, "mcp.server_restart")
	if len(recs) != 1 || recs[0].Profile != "work" || recs[0].Target != "up" || recs[0].Decision != "error" ||
		recs[0].Detail["reason"] != "timeout" || recs[0].Detail["tool"] != "hang" {
		t.Errorf("audit of the timeout: got %+v, want one mcp.server_restart of work/up, reason timeout, tool hang", recs)
	}
	if s := mcpServers(t, e, "work"); len(s) != 1 || s[0].State != "running" {
		t.Errorf("mcp list after the restart: got %+v, want up running", s)
	}

	// A crash mid-call: an error for the call, an audit record, and the
	// next call works once the server is back.
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized,
		stdioCall(2, "up__crash", map[string]string{}),
		stdioCall(3, "up__echo", map[string]string{"text": "after the crash"}))
	if text, isErr := callText(t, got["2"]); !isErr || !strings.Contains(text, "exited during the call") {
		t.Errorf("the crashing call: got %v %q, want an error saying the server exited", isErr, text)
	}
	if text, isErr := callText(t, got["3"]); isErr || !strings.Contains(text, "after the crash") {
		t.Errorf("the call after the crash: got %v %q, want it answered", isErr, text)
	}
	if !waitFor(10*time.Second, func() bool { return len(auditRecords(t, e, "mcp.server_restart")) == 2 }) {
		t.Fatalf("audit after the crash: got %+v, want a second mcp.server_restart", auditRecords(t, e, "mcp.server_restart"))
	}
	recs = auditRecords(t, e, "mcp.server_restart")
	if recs[0].Detail["reason"] != "crash" || !strings.Contains(recs[0].Detail["error"].(string), "boom") || recs[0].Detail["failures"] != float64(2) {
		t.Errorf("audit of the crash: got %+v, want reason crash with the server's stderr, the second failure in a row", recs[0])
	}
	_, _, body := d.MustGet(t, "/api/mcp/servers?profile=work", e.Token(), nil)
	if !strings.Contains(string(body), `"state":"running"`) {
		t.Errorf("GET /api/mcp/servers after the crash: got %s, want up running", body)
	}
	e.AssertNoSecret(e.Token())
}
