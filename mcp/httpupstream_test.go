package mcp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/internal/testserver"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// httpUpstream is the test server over streamable HTTP, with stateful
// sessions (so a restart forgets them), recording every tools/call's
// arguments as received. restart replaces it with a fresh server.
type httpUpstream struct {
	ts    *httptest.Server
	mu    sync.Mutex
	h     http.Handler
	calls [][]byte
	hits  atomic.Int64
}

func newHTTPUpstream(t *testing.T) *httpUpstream {
	u := &httpUpstream{}
	u.restart()
	u.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Method string `json:"method"`
			Params struct {
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		u.mu.Lock()
		h := u.h
		u.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		// Only calls the server took (a request with a session it does
		// not know is refused with 404 before any tool runs).
		if json.Unmarshal(body, &m) == nil && m.Method == "tools/call" && sw.status != http.StatusNotFound {
			u.mu.Lock()
			u.calls = append(u.calls, m.Params.Arguments)
			u.mu.Unlock()
		}
	}))
	t.Cleanup(u.stop)
	return u
}

// stop closes the server and its connections, notification streams
// included.
func (u *httpUpstream) stop() {
	u.ts.CloseClientConnections()
	u.ts.Close()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (u *httpUpstream) restart() {
	h := server.NewStreamableHTTPServer(testserver.New("Echo over HTTP."), server.WithStateful(true))
	u.mu.Lock()
	u.h = h
	u.mu.Unlock()
}

func (u *httpUpstream) received() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.calls)
}

func TestHTTPUpstream(t *testing.T) {
	t.Parallel()
	up := newHTTPUpstream(t)
	w := newWorld(t)
	if _, err := w.srv.AddServer("a", mcpserver.Config{Name: "web", URL: up.ts.URL + "/mcp", Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c := w.client(t, "a1")
	c.initialize("2025-11-25")
	if names := c.toolNames(); !slices.Contains(names, "web__echo") {
		t.Fatalf("tools: got %v, want web__echo", names)
	}
	args := `{"b":"<&>","a":12345678901234567890}`
	m := answer(t, c.post(`{"jsonrpc":"2.0","id":50,"method":"tools/call","params":{"name":"web__echo","arguments":`+args+`}}`), 50)
	if m.Error != nil {
		t.Fatalf("call: %s", m.Error.Message)
	}
	v, got := w.vets(), up.received()
	if len(v) != 1 || len(got) != 1 || !bytes.Equal(v[0].Input, got[0]) {
		t.Errorf("the hook judged %q, the HTTP upstream received %q", v, got)
	}

	// The upstream restarts and forgets its sessions: the next call
	// re-initializes and goes through once.
	up.restart()
	if r := c.tool("web__echo", map[string]any{"text": "after restart"}); r.IsError || !strings.Contains(r.text(), "after restart") {
		t.Errorf("call after the upstream lost its session: got %v %q", r.IsError, r.text())
	}
	if n := len(up.received()); n != 2 {
		t.Errorf("calls received: got %d, want 2 (no call is sent twice)", n)
	}

	// Denied: nothing reaches it.
	w.setDeny("not over HTTP either")
	hits := up.hits.Load()
	if r := c.tool("web__echo", map[string]any{}); !r.IsError || r.text() != "not over HTTP either" {
		t.Errorf("denied: got %v %q", r.IsError, r.text())
	}
	if up.hits.Load() != hits {
		t.Error("the HTTP upstream received a request for a denied call")
	}
	w.setDeny("")

	// Gone: the call fails, mcp list says why, the fault is reported, and
	// a later call is told why its tool cannot be served (not that it
	// does not exist).
	up.stop()
	if r := c.tool("web__echo", map[string]any{}); !r.IsError {
		t.Errorf("call to a closed server: got %q, want an error", r.text())
	}
	st := w.status("a", "web")
	if (st.State != StateRestarting && st.State != StateFailed) || st.Error == "" {
		t.Errorf("after the server went away: got %q %q, want restarting or failed with the reason", st.State, st.Error)
	}
	if f := w.faultsOf("a", "web"); len(f) != 1 || f[0].Reason != FaultUnreachable || f[0].Tool != "echo" {
		t.Errorf("faults: got %+v, want one: unreachable during a call of echo", f)
	}
	m = c.call("tools/call", map[string]any{"name": "web__echo", "arguments": map[string]any{}})
	var r toolResult
	json.Unmarshal(m.Result, &r)
	if m.Error != nil || !r.IsError || !(strings.Contains(r.text(), "restarting") || strings.Contains(r.text(), "could not start")) {
		t.Errorf("a call while it is away: got %+v %q, want an error result that says why", m.Error, r.text())
	}
}
