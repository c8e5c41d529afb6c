package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKilledCallerRestartsNothing: a session killed while its tool call
// is vetted (its context cancelled, its profile's servers killed) does
// not start again the servers the kill just stopped; they start at the
// next use by a live caller.
func TestKilledCallerRestartsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pid := filepath.Join(w.homes["a"], "pid")
	w.addServer("a", "up", upstreamCommand(t, "-pid", pid))
	w.ready(t, "a1") // starts the upstream
	p := readPid(t, pid)
	if err := os.Remove(pid); err != nil {
		t.Fatal(err)
	}
	// The caller k1 is killed while its call is vetted, as the gateway's
	// kill switch does it: its context ends, then its servers are killed.
	var cancel context.CancelFunc
	w.callers["k1"] = &Caller{Binding: "bind-k1", Profile: "a", Session: "s_k1", API: w.fakeAPI("s_k1"), Access: w.access,
		Vet: func(context.Context, string, json.RawMessage) Verdict {
			cancel()
			if n := w.srv.KillServers("a"); n != 1 {
				t.Errorf("KillServers: ended %d servers, want 1", n)
			}
			return Verdict{Allow: true}
		}}
	inner := w.h
	w.h = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ctx, c := context.WithCancel(r.Context())
		defer c()
		cancel = c
		inner.ServeHTTP(rw, r.WithContext(ctx))
	})
	k := w.client(t, "k1")
	k.initialize("2025-11-25")
	k.post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"x"}}}`)
	waitFor(t, 10*time.Second, "the killed upstream to exit", func() bool { return gone(p) })
	if st := w.status("a", "up"); st.State != StateIdle {
		t.Errorf("after the kill: server state %q, want %q (nothing started it again)", st.State, StateIdle)
	}
	if _, err := os.Stat(pid); err == nil {
		t.Error("the killed caller's call started the server again")
	}
	// A live caller starts it again.
	live := w.client(t, "a2")
	live.initialize("2025-11-25")
	if res := live.tool("up__echo", map[string]any{"text": "again"}); res.IsError {
		t.Errorf("a live caller's call: %s", res.text())
	}
}
