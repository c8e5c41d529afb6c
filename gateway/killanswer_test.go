package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/sandbox"
)

// capWorld is an MCP world whose profile work has an upstream with an
// echo tool and a session tool-call cap of 2 (kill action).
// The upstream's program is bin.
func capWorld(t *testing.T) (w *mcpWorld, bin string) {
	bin = buildTestServer(t)
	w = newMCPWorld(t)
	w.addUp(t, bin)
	w.setBudget(t, "work", budget.Budget{Session: budget.Limits{ToolCalls: 2}, OnExhaust: budget.ActionKill})
	return w, bin
}

// capCall is a session of a capWorld, reached over via ("tcp" or
// "socket"), that made its first tool call: the next one reaches the cap.
type capCall struct {
	id, tok, base string
	dial          func(ctx context.Context) (net.Conn, error)
	hc            *http.Client
	mcpSession    string
}

func newCapCall(t *testing.T, w *mcpWorld, via string) *capCall {
	t.Helper()
	id, tok := w.session(t, "work")
	cc := &capCall{id: id, tok: tok, base: w.ts.URL}
	cc.dial = func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", strings.TrimPrefix(w.ts.URL, "http://"))
	}
	if via == "socket" {
		path, err := w.s.sessions.openSocket(w.s.sessions.get(id))
		if err != nil {
			t.Fatal(err)
		}
		cc.base = "http://127.0.0.1:" + itoaInt(sandbox.ForwarderPort)
		cc.dial = func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "unix", path) }
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return cc.dial(ctx) }}
	t.Cleanup(tr.CloseIdleConnections)
	cc.hc = &http.Client{Transport: tr}
	c := connectVia(t, cc.base, tok, cc.hc)
	if text, isErr := callTool(t, c, "up__echo", map[string]any{"text": "first"}); isErr {
		t.Fatalf("first call: %s", text)
	}
	cc.mcpSession = c.GetSessionId()
	return cc
}

// request is the tools/call of the upstream's tool with args, as the
// agent sends it.
func (cc *capCall) request(t *testing.T, tool string, args map[string]any) *http.Request {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 77, "method": "tools/call",
		"params": map[string]any{"name": "up__" + tool, "arguments": args}})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, cc.base+"/mcp", strings.NewReader(string(msg)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Authorization": "Bearer " + cc.tok, "Content-Type": "application/json",
		"Accept": "application/json, text/event-stream", "Mcp-Session-Id": cc.mcpSession, "Mcp-Protocol-Version": "2025-11-25"} {
		req.Header.Set(k, v)
	}
	return req
}

// TestMCPAnswerBeforeKillIsWhole: the tools/call that reaches a session's
// tool-call cap (kill action) is answered in full, to the end of its HTTP
// message, before the kill: over TCP and over the session's socket (which
// the kill closes with every connection on it), for an answer within
// net/http's 2 KiB buffer and one past it (sent in chunks).
func TestMCPAnswerBeforeKillIsWhole(t *testing.T) {
	w, _ := capWorld(t)
	for _, via := range []string{"tcp", "socket"} {
		for _, size := range []int{10, 6000} {
			t.Run(via+"/"+itoaInt(size), func(t *testing.T) {
				cc := newCapCall(t, w, via)
				// The call that reaches the cap, read to the end of its message.
				text := strings.Repeat("y", size)
				resp, err := cc.hc.Do(cc.request(t, "echo", map[string]any{"text": text}))
				if err != nil {
					t.Fatalf("the call that reaches the cap: %v, want its answer", err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("the answer of the call that reaches the cap (status %d, transfer encoding %v, %d bytes read): %v, want it whole", resp.StatusCode, resp.TransferEncoding, len(got), err)
				}
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(got), text) {
					t.Errorf("the call that reaches the cap: got %d %.200s, want 200 with the echo", resp.StatusCode, got)
				}
				waitUntil(t, "the session killed after the answer", func() bool { return w.s.sessions.get(cc.id) == nil })
			})
		}
	}
}

// TestKillNotHeldByAnUnreadAnswer: an agent that sends the tools/call
// reaching its kill cap and never reads the (large) answer does not keep
// its session alive: the answer's writes give up after answerWait and the
// kill runs, over TCP and over the session's socket.
func TestKillNotHeldByAnUnreadAnswer(t *testing.T) {
	w, bin := capWorld(t)
	// The upstream's probe tool answers with this file's 8 MiB, more than
	// both ends' socket buffers hold (beside its program: its sandbox
	// lets it read there).
	big := filepath.Join(filepath.Dir(bin), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("z"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{"tcp", "socket"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			cc := newCapCall(t, w, via)
			conn, err := cc.dial(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// The smallest receive buffer, so that the kernel holds little of
			// the answer for the agent.
			if sc, ok := conn.(syscall.Conn); ok {
				if raw, err := sc.SyscallConn(); err == nil {
					_ = raw.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
				}
			}
			if err := cc.request(t, "probe", map[string]any{"read": big}).Write(conn); err != nil {
				t.Fatalf("send the call: %v", err)
			}
			// Not a byte of the answer is read.
			deadline := time.Now().Add(60 * time.Second)
			for w.s.sessions.get(cc.id) != nil {
				if time.Now().After(deadline) {
					t.Fatalf("the session is still live 60 s after the call that reached its cap, its answer unread: want it killed")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestMCPStreamedAnswerBeforeKillIsWhole: the tools/call that reaches a
// session's tool-call cap (kill action) and streams its progress before a
// result that comes later than answerWait, to an agent that reads all of
// it, is answered whole before the kill: the kill is queued when the call
// is let through, before the upstream runs, so a deadline on the answer's
// writes counted from its first event would cut the result of a call that
// fits the cap.
func TestMCPStreamedAnswerBeforeKillIsWhole(t *testing.T) {
	w, _ := capWorld(t)
	for _, via := range []string{"tcp", "socket"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			cc := newCapCall(t, w, via)
			msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 78, "method": "tools/call",
				"params": map[string]any{"name": "up__progress", "arguments": map[string]any{"steps": 2, "ms": (answerWait + time.Second).Milliseconds()},
					"_meta": map[string]any{"progressToken": "tok-78"}}})
			req := cc.request(t, "progress", nil)
			req.Body = io.NopCloser(bytes.NewReader(msg))
			req.ContentLength = int64(len(msg))
			resp, err := cc.hc.Do(req)
			if err != nil {
				t.Fatalf("the call that reaches the cap: %v, want its answer", err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("the streamed answer of the call that reaches the cap (%d bytes read: %.300s): %v, want it whole", len(got), got, err)
			}
			if !strings.Contains(string(got), "notifications/progress") || !strings.Contains(string(got), `"result"`) || !strings.Contains(string(got), "tok-78") {
				t.Errorf("the call that reaches the cap: got %d %.400s, want its progress and then its result", resp.StatusCode, got)
			}
			waitUntil(t, "the session killed after the answer", func() bool { return w.s.sessions.get(cc.id) == nil })
		})
	}
}
