// Package stdiobridge is 'ringlet mcp --stdio': an MCP server on stdin and
// stdout for clients that only spawn stdio servers, which carries each
// message to the daemon's /mcp. It is a client of the daemon and shares
// only the message checks (package jsonrpc) with the gateway.
package stdiobridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
)

// Bridge carries MCP between a client that only spawns stdio servers and
// the daemon's /mcp: one JSON-RPC message per line on In and Out, each
// posted to /mcp with the token. Out carries nothing but JSON-RPC
// messages; everything else goes to Log.
type Bridge struct {
	URL   string // the daemon's /mcp
	Token string // bearer token; never logged
	In    io.Reader
	Out   io.Writer
	Log   *slog.Logger
	// HTTP sends the requests. It must not have an overall timeout: tool
	// calls and the notification stream can be long.
	HTTP *http.Client

	outMu sync.Mutex

	mu      sync.Mutex
	session string
	version string
}

// maxBridgeLine bounds one message from the client.
const maxBridgeLine = jsonrpc.DefaultMaxBody + 1<<10

// maxLine bounds one message from the daemon.
const maxLine = 16 << 20

// Run bridges until In ends (then it ends the MCP session) or ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	if b.HTTP == nil {
		b.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := make(chan struct{}, 32)
	lines := bufio.NewReaderSize(b.In, 64<<10)
	streaming := false
	for {
		line, err := readLine(lines, maxBridgeLine)
		if len(bytes.TrimSpace(line)) > 0 {
			msg, werr := jsonrpc.Check(line)
			switch {
			case werr != nil:
				b.write(rpcError(werr.ID, werr.Code, werr.Message))
			case msg.Method == string(mcpgo.MethodInitialize):
				// Synchronous: every later message needs the session id.
				b.post(ctx, line, msg)
				if !streaming && b.sessionID() != "" {
					streaming = true
					wg.Go(func() { b.listen(streamCtx) })
				}
			case !msg.IsRequest():
				// Notifications and responses in order (initialized must
				// reach the server before what follows it).
				b.post(ctx, line, msg)
			default:
				select {
				case inflight <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				wg.Go(func() {
					defer func() { <-inflight }()
					b.post(ctx, line, msg)
				})
			}
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				b.write(rpcError(nil, jsonrpc.CodeInvalidRequest, err.Error()))
				continue
			}
			break
		}
	}
	// In ended: finish what is in flight, then end the session.
	for range cap(inflight) {
		inflight <- struct{}{}
	}
	stopStream()
	if sid := b.sessionID(); sid != "" {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if req, err := b.request(dctx, http.MethodDelete, nil); err == nil {
			if resp, err := b.HTTP.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
	return nil
}

var errLineTooLong = fmt.Errorf("message longer than %d bytes; skipped", maxBridgeLine)

// readLine reads one line without its newline, at most max bytes; the
// rest of a longer line is skipped and errLineTooLong returned.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return nil, err
			}
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func (b *Bridge) sessionID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.session
}

func (b *Bridge) request(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.URL, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.Token)
	req.Header.Set("Accept", "application/json, text/event-stream")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	b.mu.Lock()
	if b.session != "" {
		req.Header.Set(server.HeaderKeySessionID, b.session)
	}
	if b.version != "" {
		req.Header.Set(mcpgo.HeaderProtocolVersion, b.version)
	}
	b.mu.Unlock()
	return req, nil
}

// post sends one message and writes every message of the answer. A
// request is always answered: when the daemon's answer holds no response
// (an error status, an empty or cut body, a stream that ends without
// it), the client is told so with an error rather than left waiting.
func (b *Bridge) post(ctx context.Context, line []byte, msg *jsonrpc.Message) {
	id := msg.ID
	if !msg.IsRequest() {
		id = nil
	}
	req, err := b.request(ctx, http.MethodPost, line)
	if err != nil {
		b.fail(id, err)
		return
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		b.fail(id, err)
		return
	}
	defer resp.Body.Close()
	if msg.Method == string(mcpgo.MethodInitialize) && resp.StatusCode == http.StatusOK {
		b.mu.Lock()
		b.session = resp.Header.Get(server.HeaderKeySessionID)
		b.mu.Unlock()
	}
	a := b.relay(resp, msg.Method == string(mcpgo.MethodInitialize))
	if len(id) == 0 || a.answered {
		return
	}
	if resp.StatusCode >= 300 {
		b.write(rpcError(id, -32603, daemonError(resp.StatusCode, a.refusal)))
		return
	}
	why := "its answer held no response"
	if a.err != nil {
		why = "its answer was cut: " + a.err.Error()
	}
	b.Log.Warn("the Ringlet daemon did not answer a request", "method", msg.Method, "status", resp.StatusCode,
		"content_type", resp.Header.Get("Content-Type"), "messages", a.messages, "err", a.err)
	b.write(rpcError(id, -32603, fmt.Sprintf("the Ringlet daemon did not answer this request (HTTP %d): %s; send it again", resp.StatusCode, why)))
}

// answer is what relay made of the daemon's answer to a POST.
type answer struct {
	messages int  // JSON-RPC messages written
	answered bool // one of them was a response (the POST's own)
	// refusal is the daemon's own error body of an answer with an error
	// status and no message.
	refusal []byte
	err     error // the body could not be read to its end
}

// relay writes the JSON-RPC messages of an answer: a JSON body or SSE
// events.
func (b *Bridge) relay(resp *http.Response, initialize bool) (a answer) {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	emit := func(data []byte) {
		if initialize {
			b.noteVersion(data)
		}
		if !isRPCMessage(data) {
			b.Log.Warn("ignored a message from the daemon that is not JSON-RPC", "bytes", len(data))
			return
		}
		b.write(data)
		a.messages++
		// On a POST's answer, the one message without a method is the
		// response to it; the others are the server's notifications and
		// requests.
		a.answered = a.answered || !hasMethod(data)
	}
	switch ct {
	case "text/event-stream":
		a.err = ReadEvents(resp.Body, emit)
	case "application/json":
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxLine))
		if err != nil {
			a.err = err
			return a
		}
		if len(bytes.TrimSpace(data)) > 0 {
			if !isRPCMessage(data) && resp.StatusCode >= 300 {
				a.refusal = data
				return a
			}
			emit(data)
		}
	}
	return a
}

// noteVersion keeps the negotiated protocol version for later requests.
func (b *Bridge) noteVersion(data []byte) {
	var r struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if json.Unmarshal(data, &r) == nil && r.Result.ProtocolVersion != "" {
		b.mu.Lock()
		b.version = r.Result.ProtocolVersion
		b.mu.Unlock()
	}
}

// listen relays the session's notification stream (tools/list_changed)
// until ctx ends, reconnecting with a backoff.
func (b *Bridge) listen(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		req, err := b.request(ctx, http.MethodGet, nil)
		if err != nil {
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := b.HTTP.Do(req)
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				wait = time.Second
				_ = ReadEvents(resp.Body, func(data []byte) { // a cut stream is opened again
					if isRPCMessage(data) {
						b.write(data)
					}
				})
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized {
				b.Log.Info("the daemon's notification stream is unavailable", "status", resp.StatusCode)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// ReadEvents calls emit with the data of each server-sent event of r
// (lines of one event joined by newlines), as the bridge reads /mcp's
// streams, and returns what ended r other than its end.
func ReadEvents(r io.Reader, emit func([]byte)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				emit(data)
				data = nil
			}
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
	}
	if err := sc.Err(); err != nil {
		// An event cut short is not emitted.
		return err
	}
	if len(data) > 0 {
		emit(data)
	}
	return nil
}

// hasMethod reports whether a JSON-RPC message is a request or a
// notification rather than a response.
func hasMethod(data []byte) bool {
	var m struct {
		Method *string `json:"method"`
	}
	return json.Unmarshal(data, &m) == nil && m.Method != nil
}

func isRPCMessage(data []byte) bool {
	var m struct {
		JSONRPC string `json:"jsonrpc"`
	}
	return json.Unmarshal(data, &m) == nil && m.JSONRPC == "2.0"
}

// write puts one message on Out as one line.
func (b *Bridge) write(data []byte) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return
	}
	buf.WriteByte('\n')
	b.outMu.Lock()
	defer b.outMu.Unlock()
	if _, err := b.Out.Write(buf.Bytes()); err != nil {
		b.Log.Warn("could not write to the MCP client", "err", err)
	}
}

func (b *Bridge) fail(id json.RawMessage, err error) {
	b.Log.Warn("could not reach the Ringlet daemon", "err", err)
	if len(id) > 0 {
		b.write(rpcError(id, -32603, "could not reach the Ringlet daemon: "+err.Error()))
	}
}

// daemonError is the message of a request the daemon refused before MCP
// saw it: its own error message when it gave one.
func daemonError(status int, body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return fmt.Sprintf("the Ringlet daemon refused the request (HTTP %d): %s", status, e.Error.Message)
	}
	switch status {
	case http.StatusUnauthorized:
		return "the Ringlet daemon refused the token (HTTP 401); check RINGLET_TOKEN or the http_token file"
	case http.StatusForbidden:
		return "the Ringlet daemon refused the request (HTTP 403)"
	default:
		return fmt.Sprintf("the Ringlet daemon answered HTTP %d", status)
	}
}

func rpcError(id json.RawMessage, code int, msg string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": strings.TrimSpace(msg)}})
	return b
}
