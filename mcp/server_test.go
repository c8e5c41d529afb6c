package mcp

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
)

func TestInitializeNegotiatesVersion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, tc := range []struct{ asked, want string }{
		{"2025-11-25", "2025-11-25"},
		{"2025-06-18", "2025-06-18"},
		{"2025-03-26", "2025-03-26"},
		{"2024-11-05", "2024-11-05"},
		// Unknown or stateless (no sessions) versions get the newest one
		// Ringlet serves; the client decides whether it can speak it.
		{"2099-01-01", "2025-11-25"},
		{"2026-07-28", "2025-11-25"},
	} {
		t.Run(tc.asked, func(t *testing.T) {
			c := w.client(t, "admin")
			c.initialize(tc.asked)
			if c.ver != tc.want {
				t.Errorf("negotiated version: got %q, want %q", c.ver, tc.want)
			}
			if len(c.toolNames()) != len(adminTools()) {
				t.Errorf("tools/list after negotiating %s failed", c.ver)
			}
		})
	}
}

func TestStatelessProtocolRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client(t, "admin")
	for name, tc := range map[string]struct{ body, header string }{
		"meta":   {`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"profiles_list","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, "2026-07-28"},
		"header": {`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"profiles_list","arguments":{}}}`, "2026-07-28"},
		"future": {`{"jsonrpc":"2.0","id":7,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2030-01-01"}}}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			rec := c.post(tc.body, "Mcp-Protocol-Version", tc.header)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status: got %d, want 400", rec.Code)
			}
			m := answer(t, rec, 7)
			if m.Error == nil || m.Error.Code != -32022 {
				t.Fatalf("got %s, want error -32022 (unsupported protocol version)", rec.Body.String())
			}
			var data struct {
				Supported []string `json:"supported"`
			}
			json.Unmarshal(m.Error.Data, &data)
			if !slices.Equal(data.Supported, ProtocolVersions) {
				t.Errorf("supported versions: got %v, want %v", data.Supported, ProtocolVersions)
			}
		})
	}
	if n := len(w.apiCalls()); n != 0 {
		t.Errorf("API calls: got %d, want 0", n)
	}
}

var sessionIDRE = regexp.MustCompile(`^rmcp_[0-9a-f]{64}$`)

func TestSessionIDsBoundToToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a1 := w.client(t, "a1")
	a1.initialize("2025-11-25")
	other := w.client(t, "a1")
	other.initialize("2025-11-25")
	if !sessionIDRE.MatchString(a1.sid) {
		t.Fatalf("session id %q: want rmcp_ and 64 hex digits", a1.sid)
	}
	if a1.sid == other.sid {
		t.Fatal("two sessions got the same id")
	}
	list := `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`
	for _, tok := range []string{"a2", "b1", "admin"} {
		t.Run("stolen by "+tok, func(t *testing.T) {
			thief := w.client(t, tok)
			thief.sid, thief.ver = a1.sid, a1.ver
			for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
				rec := thief.send(method, list)
				if rec.Code != http.StatusNotFound {
					t.Errorf("%s with another token's session id: got HTTP %d, want 404 (%s)", method, rec.Code, rec.Body.String())
				}
			}
		})
	}
	t.Run("no id", func(t *testing.T) {
		c := w.client(t, "a1")
		c.ver = "2025-11-25"
		if rec := c.post(list); rec.Code != http.StatusBadRequest {
			t.Errorf("tools/list without Mcp-Session-Id: got HTTP %d, want 400", rec.Code)
		}
		if rec := c.send(http.MethodGet, ""); rec.Code != http.StatusBadRequest {
			t.Errorf("GET without Mcp-Session-Id: got HTTP %d, want 400", rec.Code)
		}
	})
	t.Run("made up id", func(t *testing.T) {
		c := w.client(t, "a1")
		c.sid, c.ver = "rmcp_"+strings.Repeat("0", 64), "2025-11-25"
		if rec := c.post(list); rec.Code != http.StatusNotFound {
			t.Errorf("made-up session id: got HTTP %d, want 404", rec.Code)
		}
	})
	// The owner's session survived every attempt above.
	if names := a1.toolNames(); len(names) == 0 {
		t.Fatal("the owner lost its session")
	}
	if rec := a1.send(http.MethodDelete, ""); rec.Code != http.StatusOK {
		t.Fatalf("DELETE by the owner: got HTTP %d, want 200 (%s)", rec.Code, rec.Body.String())
	}
	if rec := a1.post(list); rec.Code != http.StatusNotFound {
		t.Errorf("request after DELETE: got HTTP %d, want 404", rec.Code)
	}
	if names := other.toolNames(); len(names) == 0 {
		t.Error("ending one session ended another")
	}
}

func TestAudiencesApart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	admin := w.client(t, "admin")
	admin.initialize("2025-11-25")
	sess := w.client(t, "a1")
	sess.initialize("2025-11-25")

	adminNames := admin.toolNames()
	var want []string
	for _, st := range adminTools() {
		want = append(want, st.Tool.Name)
	}
	slices.Sort(want)
	if !slices.Equal(adminNames, want) {
		t.Errorf("admin tools: got %v, want %v", adminNames, want)
	}
	sessNames := sess.toolNames()
	if want := []string{"session_audit", "session_info", "session_trace", "session_usage"}; !slices.Equal(sessNames, want) {
		t.Errorf("session tools: got %v, want %v", sessNames, want)
	}
	for _, name := range adminNames {
		m := sess.call("tools/call", map[string]any{"name": name, "arguments": map[string]any{"alias": "a", "profile": "a", "id": "s_0000000000000000"}})
		if m.Error == nil {
			t.Errorf("session token called admin tool %s: got a result, want an error", name)
		}
	}
	for _, name := range sessNames {
		if m := admin.call("tools/call", map[string]any{"name": name, "arguments": map[string]any{}}); m.Error == nil {
			t.Errorf("admin token called session tool %s: got a result, want an error", name)
		}
	}
	if calls := w.apiCalls(); len(calls) != 0 {
		t.Errorf("calls across audiences reached the API: %+v", calls)
	}
}

func TestProtocolAbuseInvokesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("a", "up", upstreamCommand(t, "-record", w.homes["a"]+"/rec"))
	c := w.client(t, "a1")
	c.initialize("2025-11-25")
	if names := c.toolNames(); !slices.Contains(names, "up__echo") {
		t.Fatalf("tools: got %v, want up__echo among them", names)
	}
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	call := func(args string) string {
		return `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"up__echo","arguments":` + args + `}}`
	}
	for _, tc := range []struct {
		name   string
		body   string
		hdr    []string
		status int
		code   int // JSON-RPC error code; 0 = only the HTTP status is checked
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":5,"method":"tools/call",`, nil, 400, jsonrpc.CodeParseError},
		{"batch", `[` + call(`{"text":"x"}`) + `]`, nil, 400, jsonrpc.CodeInvalidRequest},
		{"empty batch", `[]`, nil, 400, jsonrpc.CodeInvalidRequest},
		{"deep nesting", call(deep), nil, 400, jsonrpc.CodeInvalidRequest},
		{"invalid UTF-8", call(`{"text":"` + "\xff\xfe" + `"}`), nil, 400, jsonrpc.CodeParseError},
		{"not an object", `42`, nil, 400, jsonrpc.CodeInvalidRequest},
		{"empty body", ``, nil, 400, jsonrpc.CodeInvalidRequest},
		{"oversized", call(`{"text":"` + strings.Repeat("x", jsonrpc.DefaultMaxBody) + `"}`), nil, 413, jsonrpc.CodeInvalidRequest},
		{"wrong JSON-RPC version", `{"jsonrpc":"1.0","id":5,"method":"tools/call","params":{"name":"up__echo","arguments":{}}}`, nil, 200, -32600},
		{"unknown method", `{"jsonrpc":"2.0","id":5,"method":"tools/run","params":{"name":"up__echo"}}`, nil, 200, -32601},
		{"unknown tool", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"up__nope","arguments":{}}}`, nil, 200, -32602},
		{"another profile's tool name", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"profiles_list","arguments":{}}}`, nil, 200, -32602},
		{"arguments not an object", call(`[1,2]`), nil, 200, 0},
		{"wrong content type", call(`{}`), []string{"Content-Type", "text/plain"}, 400, 0},
		{"unsupported version header", call(`{}`), []string{"Mcp-Protocol-Version", "1999-01-01"}, 400, jsonrpc.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := c.post(tc.body, tc.hdr...)
			if rec.Code != tc.status {
				t.Errorf("HTTP status: got %d, want %d (%s)", rec.Code, tc.status, truncate(rec.Body.String()))
			}
			if tc.code != 0 {
				msgs := messages(t, rec)
				if len(msgs) != 1 || msgs[0].Error == nil || msgs[0].Error.Code != tc.code {
					t.Errorf("answer: got %s, want one JSON-RPC error %d", truncate(rec.Body.String()), tc.code)
				}
			}
		})
	}
	if v := w.vets(); len(v) != 0 {
		t.Errorf("hooks were asked about %d abusive calls, want 0: %+v", len(v), v)
	}
	if got := recorded(t, w.homes["a"]+"/rec"); len(got) != 0 {
		t.Errorf("the upstream received %d tool calls, want 0: %s", len(got), got)
	}
	// The session is still usable after all that.
	if r := c.tool("up__echo", map[string]any{"text": "still here"}); r.IsError {
		t.Errorf("a valid call after the abuse failed: %s", r.text())
	}
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func TestMethodsAndStreams(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client(t, "admin")
	c.initialize("2025-11-25")
	for _, m := range []string{http.MethodPut, http.MethodPatch, http.MethodHead, http.MethodOptions} {
		if rec := c.send(m, ""); rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /mcp: got HTTP %d, want 405", m, rec.Code)
		}
	}
}

// TestSessionLimitEndsTheLeastRecentlyUsed: clients that never send
// DELETE (the MCP Inspector CLI, the conformance suite) must not lock a
// token out. At the limit, a new session ends the token's least recently
// used one, whose client then gets 404 and can initialize again; the
// others, and other tokens' sessions, are untouched.
func TestSessionLimitEndsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	clients := make([]*testClient, maxSessionsPerBinding)
	for i := range clients {
		clients[i] = w.client(t, "b1")
		clients[i].initialize("2025-11-25")
		if clients[i].sid == "" {
			t.Fatalf("session %d got no id", i)
		}
	}
	other := w.client(t, "a1")
	other.initialize("2025-11-25")
	// The first client is used again, so the second is now the least
	// recently used.
	if m := clients[0].call("tools/list", nil); m.Error != nil {
		t.Fatalf("tools/list: %s", m.Error.Message)
	}
	extra := w.client(t, "b1")
	extra.initialize("2025-11-25")
	if extra.sid == "" {
		t.Fatal("the session past the limit got no id")
	}
	if got := w.srv.Sessions(); got != maxSessionsPerBinding+1 {
		t.Errorf("live sessions: got %d, want %d (the limit for b1, one for a1)", got, maxSessionsPerBinding+1)
	}
	if rec := clients[1].post(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`); rec.Code != http.StatusNotFound {
		t.Errorf("the least recently used session: got HTTP %d, want 404 (ended)", rec.Code)
	}
	for _, c := range []*testClient{clients[0], clients[2], extra, other} {
		if m := c.call("tools/list", nil); m.Error != nil {
			t.Errorf("a session that was not the least recently used: %s", m.Error.Message)
		}
	}
}
