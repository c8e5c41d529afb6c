package mcp

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAnswersStayPlainAfterANotification: once a session was sent a
// notification (tools/list_changed when its upstream started), mcp-go
// answers its later calls as event streams; Ringlet sends an answer that
// holds only the response as one JSON body, and still streams one that
// carries notifications (progress) before the response.
func TestAnswersStayPlainAfterANotification(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("a", "up", upstreamCommand(t))
	c := w.ready(t, "a1")

	// ready listed the tools, which started the upstream: the list
	// change reached the session, and mcp-go streams to it from then on.
	for i := 4; i < 7; i++ {
		rec := c.post(`{"jsonrpc":"2.0","id":` + strings.Repeat("1", i-3) + `,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi"}}}`)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("call %d: got Content-Type %q (%s), want application/json", i, ct, rec.Body.String())
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "" {
			t.Errorf("call %d: got Cache-Control %q on a JSON answer, want none", i, cc)
		}
		msgs := messages(t, rec)
		if len(msgs) != 1 || msgs[0].Result == nil || string(msgs[0].ID) != strings.Repeat("1", i-3) {
			t.Fatalf("call %d: got %s, want one response with its id", i, rec.Body.String())
		}
		var r toolResult
		if err := json.Unmarshal(msgs[0].Result, &r); err != nil || r.IsError || !strings.Contains(r.text(), "hi") {
			t.Fatalf("call %d: got result %s, want the echo", i, msgs[0].Result)
		}
	}

	// Progress goes out as it comes, before the response, on a stream.
	rec := c.post(`{"jsonrpc":"2.0","id":"p\"1","method":"tools/call","params":{"name":"up__progress","arguments":{"steps":2},"_meta":{"progressToken":"t"}}}`)
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("call with progress: got Content-Type %q, want text/event-stream", ct)
	}
	msgs := messages(t, rec)
	if len(msgs) != 3 || msgs[0].Method != "notifications/progress" || msgs[2].Result == nil || string(msgs[2].ID) != `"p\"1"` {
		t.Fatalf("call with progress: got %s, want two progress notifications and the response", rec.Body.String())
	}
}

func TestSoleResponse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, in string
		want     string // "" when not a sole response
	}{
		{"result", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n", `{"jsonrpc":"2.0","id":7,"result":{}}`},
		{"error", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":1}}\n\n", `{"jsonrpc":"2.0","id":"a","error":{"code":1}}`},
		{"string id with a quote and a comma", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"a\\\",\\\"result\",\"result\":1}\n\n", `{"jsonrpc":"2.0","id":"a\",\"result","result":1}`},
		{"null id", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{}}\n\n", `{"jsonrpc":"2.0","id":null,"error":{}}`},
		{"notification", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n", ""},
		{"server request", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sampling/createMessage\",\"params\":{}}\n\n", ""},
		{"server request with an id that ends like a response", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"x\\\\\",\"method\":\"m\"}\n\n", ""},
		{"unterminated id", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"abc\n\n", ""},
		{"two events", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\nevent: message\ndata: {}\n\n", ""},
		{"no event line", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", ""},
		{"incomplete event", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n", ""},
		{"a comment", ": ping\n\n", ""},
		{"empty", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := soleResponse([]byte(c.in))
			if ok != (c.want != "") || string(got) != c.want {
				t.Errorf("got %q, %v; want %q", got, ok, c.want)
			}
		})
	}
}

// FuzzSoleResponse: what soleResponse takes for a response is one, by a
// decoder's reading of the same bytes, with an id and no method.
func FuzzSoleResponse(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n"))
	f.Add([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"a\\\"\",\"method\":\"x\"}\n\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		msg, ok := soleResponse(p)
		if !ok {
			return
		}
		var m struct {
			ID     json.RawMessage  `json:"id"`
			Method *json.RawMessage `json:"method"`
			Result json.RawMessage  `json:"result"`
			Error  json.RawMessage  `json:"error"`
		}
		if !json.Valid(msg) {
			return // mcp-go writes valid JSON; the check is of its shape only
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			return
		}
		if m.ID == nil || (m.Result == nil && m.Error == nil) {
			t.Fatalf("%q taken for a response: id %s, result %s, error %s", msg, m.ID, m.Result, m.Error)
		}
	})
}
