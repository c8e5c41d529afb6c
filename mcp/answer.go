package mcp

import (
	"bytes"
	"net/http"
)

// answerWriter is what mcp-go writes the answer to a POST to. mcp-go
// answers every later POST of a session as an event stream once the
// session was sent one notification (a tools/list_changed when an
// upstream starts, a relayed progress): the upgrade sticks to the
// session. A stream costs a write and a flush per event and one to end
// it, and the client a stream reader, on every call. So an answer whose
// stream would hold nothing but the response goes as one JSON body, as
// mcp-go writes a session's answers before that notification; a stream
// that carries anything before the response (a notification or a
// request of the server's) is sent as the stream it is, each event as
// it comes. Streamable HTTP lets the server choose either for any POST.
type answerWriter struct {
	http.ResponseWriter
	// held: mcp-go started an event stream (200, text/event-stream) and
	// nothing is sent yet.
	held bool
	// plain: the stream was sent as one JSON body; stream: as a stream.
	plain, stream bool
}

func (a *answerWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *answerWriter) WriteHeader(status int) {
	if !a.held && !a.plain && !a.stream && status == http.StatusOK && a.Header().Get("Content-Type") == "text/event-stream" {
		a.held = true
		return
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *answerWriter) Write(p []byte) (int, error) {
	switch {
	case a.plain:
		// mcp-go writes nothing after the response: the body is whole.
		return len(p), nil
	case !a.held:
		return a.ResponseWriter.Write(p)
	}
	a.held = false
	if msg, ok := soleResponse(p); ok {
		a.plain = true
		h := a.Header()
		h.Set("Content-Type", "application/json")
		h.Del("Cache-Control")
		h.Del("Connection")
		a.ResponseWriter.WriteHeader(http.StatusOK)
		if _, err := a.ResponseWriter.Write(append(msg, '\n')); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	a.stream = true
	a.ResponseWriter.WriteHeader(http.StatusOK)
	return a.ResponseWriter.Write(p)
}

func (a *answerWriter) Flush() {
	if a.held || a.plain {
		// Nothing to send yet, or the JSON body goes out whole when the
		// handler returns.
		return
	}
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// finish sends a stream's header that mcp-go started but wrote nothing
// to, as it would have been sent.
func (a *answerWriter) finish() {
	if a.held {
		a.held = false
		a.stream = true
		a.ResponseWriter.WriteHeader(http.StatusOK)
	}
}

// soleResponse returns the message of p when p is one whole SSE event
// as mcp-go writes it ("event: message\ndata: MSG\n\n") and MSG is a
// JSON-RPC response or error response as mcp-go encodes them
// ({"jsonrpc":"2.0","id":ID,"result":... or ,"error":...), which comes
// last on a POST's stream. Anything else (a notification, a server's
// request, another shape) is not.
func soleResponse(p []byte) ([]byte, bool) {
	msg, ok := bytes.CutPrefix(p, []byte("event: message\ndata: "))
	if !ok {
		return nil, false
	}
	if msg, ok = bytes.CutSuffix(msg, []byte("\n\n")); !ok || bytes.IndexByte(msg, '\n') >= 0 {
		return nil, false
	}
	rest, ok := bytes.CutPrefix(msg, []byte(`{"jsonrpc":"2.0","id":`))
	if !ok || len(rest) == 0 {
		return nil, false
	}
	// The id: a string (which may hold escaped quotes and commas), a
	// number or null.
	i := 0
	if rest[0] == '"' {
		for i = 1; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' {
				i++
			}
		}
		i++
	} else {
		for i < len(rest) && rest[i] != ',' && rest[i] != '}' {
			i++
		}
	}
	if i > len(rest) {
		return nil, false
	}
	rest = rest[i:]
	if !bytes.HasPrefix(rest, []byte(`,"result":`)) && !bytes.HasPrefix(rest, []byte(`,"error":`)) {
		return nil, false
	}
	return msg, true
}
