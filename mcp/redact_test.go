package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/internal/testserver"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// lockedLog is a log sink tests can read while the gateway writes.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestHostileUpstreamNeverLeaksItsCredential: an HTTP upstream given a
// credential echoes it in every place it can (a result, its structured
// content and _meta, in plain and \u-escaped form; a JSON-RPC error;
// progress messages; a tool description; a failing stream; a failed
// initialize). The agent's client never sees it, nor does the log, the
// faults (the audit log) or 'mcp list'. The same for a key sent in a
// header of the user's (--header-secret), alone or after a scheme word.
func TestHostileUpstreamNeverLeaksItsCredential(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  mcpserver.Config
	}{
		{"credential", mcpserver.Config{Credential: "docs/team"}},
		{"header secret", mcpserver.Config{HeaderSecrets: map[string]string{"X-API-Key": "docs/team"}, Headers: map[string]string{"X-Team": "infra"}}},
		{"header secret after a scheme", mcpserver.Config{HeaderSecrets: map[string]string{"authorization": "Token docs/team"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testHostileUpstream(t, tc.cfg)
		})
	}
}

func testHostileUpstream(t *testing.T, cfg mcpserver.Config) {
	const key = "sk-mcp-hostile-canary-4b1d<&>"
	up := httptest.NewServer(testserver.Hostile())
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	var logs lockedLog
	w := newWorld(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Credential = func(ref string) (string, error) {
			if ref != "docs/team" {
				return "", errors.New("no such credential")
			}
			return key, nil
		}
		o.OnHeaderSecrets = func(string, string, map[string]string) error { return nil }
	})
	for _, name := range []string{"docs", "bad"} {
		path := "/mcp"
		if name == "bad" {
			path = "/bad/mcp"
		}
		c := cfg.Clone()
		c.Name, c.URL, c.Timeout = name, up.URL+path, 5*time.Second
		if _, err := w.srv.AddServer("a", c); err != nil {
			t.Fatal(err)
		}
	}
	var seen bytes.Buffer // everything the client received
	c := w.client(t, "a1")
	c.initialize("2025-11-25")
	list := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	seen.Write(list.Body.Bytes())
	if !strings.Contains(list.Body.String(), "docs__described") {
		t.Fatalf("tools/list: got %s, want the hostile server's tools", list.Body.String())
	}
	if !strings.Contains(list.Body.String(), "Sends [redacted] along.") {
		t.Errorf("the description holding the key: got %s, want it redacted", list.Body.String())
	}
	calls := []string{
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"docs__leak","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"docs__leak_error","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"docs__leak_progress","arguments":{},"_meta":{"progressToken":"p1"}}}`,
	}
	for i, body := range calls {
		rec := c.post(body)
		seen.Write(rec.Body.Bytes())
		m := answer(t, rec, i+3)
		if m.Error != nil {
			t.Errorf("call %d: JSON-RPC error %s", i+3, m.Error.Message)
		}
	}
	leak := answer(t, c.post(calls[0]), 3)
	if !strings.Contains(string(leak.Result), "the key is [redacted], escaped [redacted]") {
		t.Errorf("the leaking result: got %s, want the key redacted in both forms", leak.Result)
	}
	progress := 0
	for _, m := range messages(t, c.post(calls[2])) {
		if m.Method == "notifications/progress" {
			progress++
			if !strings.Contains(string(m.Params), "[redacted]") {
				t.Errorf("progress: got %s, want its message redacted", m.Params)
			}
		}
	}
	if progress == 0 {
		t.Error("no progress was relayed (the check above proved nothing)")
	}
	st := w.status("a", "bad")
	seen.WriteString(fmt.Sprintf("%+v", st))
	if st.State != StateFailed || !strings.Contains(st.Error, "no account for [redacted]") {
		t.Errorf("the server whose initialize fails: got %q %q, want failed, with the key redacted", st.State, st.Error)
	}
	waitFor(t, 10*time.Second, "the listening stream's failure to be logged", func() bool {
		return strings.Contains(logs.String(), "stream refused for [redacted]")
	})
	faults := fmt.Sprintf("%+v", w.faultsOf("a", "bad"))
	if !strings.Contains(faults, "[redacted]") {
		t.Errorf("faults: got %s, want the failed start with the key redacted", faults)
	}
	for what, data := range map[string]string{"the client": seen.String(), "the log": logs.String(), "the faults": faults} {
		if strings.Contains(data, key) || strings.Contains(data, "hostile-canary") {
			t.Errorf("%s got the upstream's credential", what)
		}
	}
	if !slices.ContainsFunc(w.vets(), func(v vetCall) bool { return v.Tool == "docs__leak" }) {
		t.Error("the calls were not vetted")
	}
}
