package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/sandbox"
)

// TestMCPAnswerBeforeKillIsWhole: the tools/call that reaches a session's
// tool-call cap (kill action) is answered in full, to the end of its HTTP
// message, before the kill: over TCP and over the session's socket (which
// the kill closes with every connection on it), for an answer within
// net/http's 2 KiB buffer and one past it (sent in chunks).
func TestMCPAnswerBeforeKillIsWhole(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	body, _ := json.Marshal(api.MCPServerRequest{Profile: "work", Name: "up", Command: []string{bin}})
	if status, text := w.rest(t, testToken, "POST", "/api/mcp/servers", string(body)); status != http.StatusCreated {
		t.Fatalf("POST /api/mcp/servers: %d %s", status, text)
	}
	w.setBudget(t, "work", budget.Budget{Session: budget.Limits{ToolCalls: 2}, OnExhaust: budget.ActionKill})
	for _, via := range []string{"tcp", "socket"} {
		for _, size := range []int{10, 6000} {
			t.Run(via+"/"+itoaInt(size), func(t *testing.T) {
				id, tok := w.session(t, "work")
				base, hc := w.ts.URL, http.DefaultClient
				if via == "socket" {
					path, err := w.s.sessions.openSocket(w.s.sessions.get(id))
					if err != nil {
						t.Fatal(err)
					}
					base = "http://127.0.0.1:" + itoaInt(sandbox.ForwarderPort)
					tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
						return (&net.Dialer{}).DialContext(ctx, "unix", path)
					}}
					t.Cleanup(tr.CloseIdleConnections)
					hc = &http.Client{Transport: tr}
				}
				c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}),
					transport.WithHTTPBasicClient(hc))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if err := c.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Initialize(t.Context(), mcpgo.InitializeRequest{}); err != nil {
					t.Fatalf("initialize: %v", err)
				}
				if text, isErr := callTool(t, c, "up__echo", map[string]any{"text": "first"}); isErr {
					t.Fatalf("first call: %s", text)
				}
				// The call that reaches the cap, read to the end of its message.
				text := strings.Repeat("y", size)
				msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 77, "method": "tools/call",
					"params": map[string]any{"name": "up__echo", "arguments": map[string]any{"text": text}}})
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/mcp", strings.NewReader(string(msg)))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json",
					"Accept": "application/json, text/event-stream", "Mcp-Session-Id": c.GetSessionId(), "Mcp-Protocol-Version": "2025-11-25"} {
					req.Header.Set(k, v)
				}
				resp, err := hc.Do(req)
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
				waitUntil(t, "the session killed after the answer", func() bool { return w.s.sessions.get(id) == nil })
			})
		}
	}
}
