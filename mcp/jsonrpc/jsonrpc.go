// Package jsonrpc vets the JSON-RPC messages that cross into Ringlet's MCP
// gateway, on /mcp and on the stdio bridge: one unambiguous message per
// body, so that a hook and an upstream read the same arguments, and the
// JSON-RPC error answer for one that is refused.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/neullabs/ringlet/internal/strictjson"
)

// Limits on what /mcp accepts. Both are checked before any decoder sees
// the body, so a hostile message costs one linear scan.
const (
	// DefaultMaxBody bounds one JSON-RPC message posted to /mcp.
	DefaultMaxBody = 4 << 20
	// MaxDepth bounds the nesting of objects and arrays in a message.
	MaxDepth = 64
)

// JSON-RPC error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeInvalidParams  = -32602
	// CodeRateLimited: a rate limit refused the request; the error's data
	// says when to retry (JSON-RPC leaves -32000 to -32099 to servers).
	CodeRateLimited = -32029
)

// Error is a message refused before it reached the MCP server.
type Error struct {
	Status  int // HTTP status
	Code    int // JSON-RPC code
	Message string
	ID      json.RawMessage // the message's id, when it could be read
}

func (e *Error) Error() string { return e.Message }

// Message is the envelope of a vetted JSON-RPC message.
type Message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Meta map[string]json.RawMessage `json:"_meta"`
		// Name is params.name as written (a tools/call's tool), raw so
		// that a message of another method whose name is not a string
		// still decodes.
		Name json.RawMessage `json:"name"`
	} `json:"params"`
}

// IsRequest reports whether m is a request (it has a method and an id):
// one that must be answered.
func (m *Message) IsRequest() bool { return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" }

// rpcNames are the member names of JSON-RPC and of MCP's request params
// that encoding/json (mcp-go's decoder, and Ringlet's) would also match in
// another case: a message must write them exactly.
var rpcNames = strictjson.Checker{Exact: map[string][]string{
	"":             {"jsonrpc", "id", "method", "params", "result", "error"},
	"params":       {"name", "arguments", "_meta", "cursor", "protocolVersion", "capabilities", "clientInfo", "uri"},
	"params._meta": {"progressToken"},
	"error":        {"code", "message", "data"},
}}

// Check vets the body of a POST: one JSON-RPC message (an object:
// batches were removed from MCP in 2025-06-18), valid UTF-8 (the standard
// decoder would silently replace invalid bytes, so what a hook approved
// and what was forwarded could differ), valid JSON, nesting at most
// MaxDepth, and nothing two readers could read differently (a key twice
// in one object at any depth, or twice but for case; a JSON-RPC or MCP
// member name in another case): a hook and an upstream must see the same
// arguments.
func Check(body []byte) (*Message, *Error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "empty body; send one JSON-RPC message"}
	}
	if !utf8.Valid(body) {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeParseError, Message: "the body is not valid UTF-8"}
	}
	if trimmed[0] == '[' {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "JSON-RPC batches are not supported; send one message per request"}
	}
	if d := depth(body); d > MaxDepth {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: fmt.Sprintf("the message nests deeper than %d levels", MaxDepth)}
	}
	if !json.Valid(body) {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeParseError, Message: "the body is not valid JSON"}
	}
	if trimmed[0] != '{' {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "a JSON-RPC message must be a JSON object"}
	}
	if err := rpcNames.Check(body); err != nil {
		we := &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: err.Error()}
		var se *strictjson.Error
		if errors.As(err, &se) {
			if p := se.Path; p == "params" || strings.HasPrefix(p, "params.") || strings.HasPrefix(p, "params[") {
				we.Code = CodeInvalidParams
			}
		}
		we.ID = soleID(body)
		return nil, we
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "not a JSON-RPC message: " + err.Error()}
	}
	return &m, nil
}

// soleID is the id of a message refused as ambiguous, when its id is not:
// the top-level object has exactly one member named "id" in any case, and
// it is written "id". Else nil (the error goes out with id null).
func soleID(body []byte) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var id json.RawMessage
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if k, _ := t.(string); strings.EqualFold(k, "id") {
			n++
			if k == "id" {
				id = v
			}
		}
	}
	if n != 1 {
		return nil
	}
	return id
}

// depth is the deepest nesting of objects and arrays in data, ignoring
// brackets inside strings. It stops counting once past MaxDepth.
func depth(data []byte) int {
	d, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			if d > deepest {
				deepest = d
				if deepest > MaxDepth {
					return deepest
				}
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

// WriteError answers with a JSON-RPC error object. id is the raw id of
// the message when it could be read, else null.
func WriteError(w http.ResponseWriter, status, code int, id json.RawMessage, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// WriteErrorData is WriteError with the error's data member.
func WriteErrorData(w http.ResponseWriter, status, code int, id json.RawMessage, msg string, data any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	type details struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   details         `json:"error"`
	}{"2.0", id, details{code, msg, data}}) // data is the caller's plain values
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client may be gone
}
