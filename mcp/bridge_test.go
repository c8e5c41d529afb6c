package mcp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
	"github.com/neullabs/ringlet/mcp/stdiobridge"
)

// bridged runs a Bridge to the world with tok and returns its stdin and
// the messages it writes on stdout, one per line.
func bridged(t *testing.T, w *world, tok string) (in io.WriteCloser, out <-chan rpcMsg, done <-chan error) {
	t.Helper()
	ts := httptest.NewServer(w.h)
	t.Cleanup(ts.Close)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b := &stdiobridge.Bridge{URL: ts.URL + "/mcp", Token: tok, In: inR, Out: outW}
	errc := make(chan error, 1)
	go func() {
		errc <- b.Run(t.Context())
		outW.Close()
	}()
	msgs := make(chan rpcMsg, 64)
	go func() {
		defer close(msgs)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m rpcMsg
			var env struct {
				JSONRPC string `json:"jsonrpc"`
			}
			if json.Unmarshal(sc.Bytes(), &env) != nil || env.JSONRPC != "2.0" || json.Unmarshal(sc.Bytes(), &m) != nil {
				t.Errorf("stdout carried a line that is not JSON-RPC: %q", sc.Text())
				continue
			}
			msgs <- m
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return inW, msgs, errc
}

// next reads messages until one matches, failing after a deadline.
func next(t *testing.T, out <-chan rpcMsg, what string, match func(rpcMsg) bool) rpcMsg {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-out:
			if !ok {
				t.Fatalf("stdout ended before %s", what)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s on stdout", what)
		}
	}
}

func byID(id int) func(rpcMsg) bool {
	return func(m rpcMsg) bool { return string(m.ID) == fmt.Sprint(id) }
}

func TestBridge(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("a", "up", upstreamCommand(t))
	in, out, done := bridged(t, w, "a1")
	send := func(s string) {
		if _, err := io.WriteString(in, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"stdio","version":"1"}}}`)
	if m := next(t, out, "initialize answer", byID(1)); m.Error != nil || !strings.Contains(string(m.Result), `"protocolVersion":"2025-11-25"`) {
		t.Fatalf("initialize: got %+v %s", m.Error, m.Result)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if m := next(t, out, "tools/list answer", byID(2)); !strings.Contains(string(m.Result), `"up__echo"`) {
		t.Errorf("tools/list: got %s, want up__echo", m.Result)
	}
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"via stdio"}}}`)
	if m := next(t, out, "tools/call answer", byID(3)); !strings.Contains(string(m.Result), `via stdio`) {
		t.Errorf("tools/call: got %s", m.Result)
	}
	// Garbage from the client is answered, not forwarded.
	send(`this is not json`)
	if m := next(t, out, "parse error", func(m rpcMsg) bool { return m.Error != nil }); m.Error.Code != jsonrpc.CodeParseError {
		t.Errorf("garbage: got error %d, want %d", m.Error.Code, jsonrpc.CodeParseError)
	}
	// A server notification reaches the client (tools changed upstream).
	send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"up__set_desc","arguments":{"desc":"new"}}}`)
	next(t, out, "tools/list_changed", func(m rpcMsg) bool { return m.Method == "notifications/tools/list_changed" })
	if w.srv.Sessions() != 1 {
		t.Errorf("MCP sessions while bridged: got %d, want 1", w.srv.Sessions())
	}
	in.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge did not end after stdin closed")
	}
	if w.srv.Sessions() != 0 {
		t.Errorf("MCP sessions after stdin closed: got %d, want 0 (the bridge ends its session)", w.srv.Sessions())
	}
}

func TestBridgeRefusedToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in, out, _ := bridged(t, w, "not-a-token")
	io.WriteString(in, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"stdio","version":"1"}}}`+"\n")
	m := next(t, out, "an error for initialize", byID(1))
	if m.Error == nil || !strings.Contains(m.Error.Message, "401") {
		t.Errorf("got %+v, want a JSON-RPC error saying the daemon refused the token", m.Error)
	}
}
