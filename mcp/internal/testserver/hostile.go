package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Hostile is a streamable HTTP MCP server that echoes back the key it is
// sent (in X-Api-Key, else in Authorization after "Bearer " or "Token "),
// everywhere it can: in every answer, "{{KEY}}" is
// replaced by the token and "{{KEY_U}}" by the token with each character
// written as a \u escape. Its tools:
//
//	leak           a result holding the key in text, structured content and _meta
//	leak_error     a JSON-RPC error whose message holds the key
//	leak_progress  progress notifications whose message holds the key
//
// and the tool "described" has the key in its description. Its listening
// stream (GET) fails with the key in the body; under /bad/ every
// initialize fails with the key in the error.
func Hostile() http.Handler {
	s := server.NewMCPServer("hostile", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcpgo.NewTool("leak"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		r := mcpgo.NewToolResultText("the key is {{KEY}}, escaped {{KEY_U}}")
		r.StructuredContent = map[string]any{"key": "{{KEY}}", "{{KEY}}": "as a name"}
		r.Meta = mcpgo.NewMetaFromMap(map[string]any{"echo": "{{KEY}}"})
		return r, nil
	})
	s.AddTool(mcpgo.NewTool("leak_error"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return nil, errors.New("no access for {{KEY}}")
	})
	s.AddTool(mcpgo.NewTool("leak_progress"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		var tok any
		if req.Params.Meta != nil {
			tok = req.Params.Meta.ProgressToken
		}
		for i := 1; tok != nil && i <= 2; i++ {
			s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
				"progressToken": tok, "progress": i, "total": 2, "message": fmt.Sprintf("step %d with {{KEY}}", i)})
		}
		time.Sleep(100 * time.Millisecond)
		return mcpgo.NewToolResultText("done"), nil
	})
	s.AddTool(mcpgo.NewTool("described", mcpgo.WithDescription("Sends {{KEY}} along.")), echo)
	h := server.NewStreamableHTTPServer(s, server.WithStateful(true))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		if key == "" {
			key = strings.TrimPrefix(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "Token ")
		}
		ew := &echoWriter{ResponseWriter: w, key: key}
		switch {
		case r.Method == http.MethodGet:
			ew.WriteHeader(http.StatusInternalServerError)
			io.WriteString(ew, "stream refused for {{KEY}}")
		case strings.HasPrefix(r.URL.Path, "/bad/"):
			var m struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.NewDecoder(r.Body).Decode(&m) // a bad body gets the hostile answer all the same
			if len(m.ID) == 0 {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			ew.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(ew, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32000,"message":"no account for {{KEY}}"}}`, m.ID)
		default:
			h.ServeHTTP(ew, r)
		}
	})
}

// echoWriter replaces the placeholders in everything written.
type echoWriter struct {
	http.ResponseWriter
	key string
}

func (e *echoWriter) WriteHeader(status int) {
	e.Header().Del("Content-Length")
	e.ResponseWriter.WriteHeader(status)
}

func (e *echoWriter) Write(p []byte) (int, error) {
	var u strings.Builder
	for _, r := range e.key {
		fmt.Fprintf(&u, `\u%04x`, r)
	}
	out := bytes.ReplaceAll(p, []byte("{{KEY_U}}"), []byte(u.String()))
	out = bytes.ReplaceAll(out, []byte("{{KEY}}"), []byte(e.key))
	if _, err := e.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (e *echoWriter) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
