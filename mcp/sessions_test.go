package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// postHTTP sends one MCP message to a real listener, as a client would:
// over a loopback connection, which is what mcp-go's DNS-rebinding guard
// looks at.
func postHTTP(t *testing.T, url, tok, sid, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// TestSessionLimitEvictsOverHTTP: a client that never sends DELETE can
// initialize as often as it likes. Past the limit each initialize ends
// the token's least recently used session for real (in Ringlet's table and
// in mcp-go's state), the table never holds more than the limit, and an
// ended session's id is unknown afterwards.
func TestSessionLimitEvictsOverHTTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ts := httptest.NewServer(w.h)
	t.Cleanup(ts.Close)
	url := ts.URL + "/mcp"
	if resp := postHTTP(t, url, "a1", "", initBody); resp.StatusCode != http.StatusOK {
		t.Fatalf("a1 initialize: got HTTP %d", resp.StatusCode)
	}
	var first string
	for i := range 1000 {
		resp := postHTTP(t, url, "b1", "", initBody)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("initialize %d: got HTTP %d, want 200", i+1, resp.StatusCode)
		}
		sid := resp.Header.Get("Mcp-Session-Id")
		if sid == "" {
			t.Fatalf("initialize %d: got no session id", i+1)
		}
		if i == 0 {
			first = sid
		}
		if n := w.srv.Sessions(); n > maxSessionsPerBinding+1 {
			t.Fatalf("after initialize %d: got %d live sessions, want at most %d (the limit for b1, one for a1)", i+1, n, maxSessionsPerBinding+1)
		}
	}
	if got := w.srv.Sessions(); got != maxSessionsPerBinding+1 {
		t.Errorf("live sessions: got %d, want %d", got, maxSessionsPerBinding+1)
	}
	waitFor(t, 10*time.Second, "mcp-go to hold no more sessions than Ringlet", func() bool {
		return w.srv.heldSessions() == maxSessionsPerBinding+1
	})
	if resp := postHTTP(t, url, "b1", first, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the evicted session: got HTTP %d, want 404", resp.StatusCode)
	}
}

// TestSessionsEndWithTheirCredential: when the credential that created
// MCP sessions stops working (a session token revoked or expired, the
// admin token rotated), its MCP sessions are freed at once, not after
// their idle timeout; another credential's are untouched.
func TestSessionsEndWithTheirCredential(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	valid, revoke := context.WithCancel(context.Background())
	defer revoke()
	base := w.callers["a2"]
	w.callers["r1"] = &Caller{Binding: "bind-r1", Profile: "a", Session: "s_r1", API: base.API, Vet: base.Vet, Valid: valid}
	keep := w.client(t, "a1")
	keep.initialize("2025-11-25")
	for range 20 {
		w.client(t, "r1").initialize("2025-11-25")
	}
	if got := w.srv.Sessions(); got != 21 {
		t.Fatalf("live sessions: got %d, want 21", got)
	}
	revoke()
	waitFor(t, 10*time.Second, "the revoked credential's sessions to be freed", func() bool {
		return w.srv.Sessions() == 1 && w.srv.heldSessions() == 1
	})
	if names := keep.toolNames(); len(names) == 0 {
		t.Error("another credential's session was ended")
	}
}
