// Package fakeprovider is a stand-in for the Anthropic and OpenAI HTTP APIs
// for end-to-end tests. It speaks their wire formats exactly enough for the
// official SDKs and Claude Code to accept its answers: Anthropic Messages
// (JSON and SSE, count_tokens, models), OpenAI Chat Completions (JSON and
// SSE with stream_options.include_usage) and OpenAI Responses (JSON and
// SSE). It checks the key the way each provider does, records every request
// it receives, and has knobs for the failures a proxy must survive: slow
// streams, streams that die half-way, an upstream that echoes the key
// (raw or encoded), and one that accepts a request and never answers.
//
// Run it with httptest.NewServer, which listens on 127.0.0.1. Anthropic
// clients use the server's URL as their base; OpenAI clients use URL+"/v1".
package fakeprovider

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Usage is the token usage the fake reports for an answer.
type Usage struct {
	Input      int64 // Anthropic input_tokens; OpenAI prompt_tokens / input_tokens
	Output     int64 // output_tokens / completion_tokens
	CacheRead  int64 // cache_read_input_tokens; OpenAI cached_tokens
	CacheWrite int64 // cache_creation_input_tokens (Anthropic only)
	Reasoning  int64 // OpenAI reasoning_tokens
}

// DefaultUsage is reported while the Usage knob is unset.
var DefaultUsage = Usage{Input: 21, Output: 13, CacheRead: 5, CacheWrite: 3, Reasoning: 2}

// DefaultTextEvents is the number of text deltas while TextEvents is unset.
const DefaultTextEvents = 3

// Delta is the text of the i-th text delta of an answer.
func Delta(i int) string {
	if i == 0 {
		return "Hello from the fake provider."
	}
	return fmt.Sprintf(" [%d]", i)
}

// AnswerText is the whole text of an answer with n text deltas.
func AnswerText(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(Delta(i))
	}
	return b.String()
}

// Models are the model ids GET /v1/models lists.
var Models = []string{"claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4.1", "gpt-4o-mini"}

// Request is what the fake received, and how it answered.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	Received time.Time
	// Key is the credential the client sent the way the endpoint expects
	// it (x-api-key or Authorization: Bearer); empty when none.
	Key string
	// Status is the answer's status; 0 while the headers are not written.
	Status int
	// Usage is what the answer reported, when it reported any.
	Usage *Usage
	// Events are the SSE events the fake wrote (and flushed), in order.
	Events []Event
	// Done is when the handler returned.
	Done time.Time
	// Cancelled is when the handler saw its request context end before
	// the answer was complete; zero if it did not.
	Cancelled time.Time
	// Aborted is true when the DieAfter knob cut the answer.
	Aborted bool
}

// Event is one SSE event as the fake sent it.
type Event struct {
	Name string // the SSE event name; for Chat Completions "chunk" or "[DONE]"
	Data string
	Sent time.Time // after the flush
}

// Duration is a time.Duration that may be set while the server runs.
type Duration struct{ v atomic.Int64 }

// Load returns the duration.
func (d *Duration) Load() time.Duration { return time.Duration(d.v.Load()) }

// Store sets the duration.
func (d *Duration) Store(v time.Duration) { d.v.Store(int64(v)) }

// Provider is the fake API. Its exported fields are knobs that tests may
// change at any time, also while requests are in flight.
type Provider struct {
	// TextEvents is the number of text deltas in an answer; 0 means
	// DefaultTextEvents.
	TextEvents atomic.Int64
	// EventDelay is the pause before every SSE event but the first.
	EventDelay Duration
	// EventGate, when set, is received from before every SSE event but
	// the first (after EventDelay): a test that sends on it only once it
	// has read the previous event proves each event is passed on before
	// the next one is written, with no clock involved.
	EventGate atomic.Pointer[chan struct{}]
	// DieAfter, when > 0, makes a stream end abruptly after that many
	// SSE events: the connection is closed without the end of the body.
	DieAfter atomic.Int64
	// CutJSON makes JSON answers declare their full Content-Length, send
	// half of the body and close the connection.
	CutJSON atomic.Bool
	// EchoKey makes every answer echo the key it received: in the
	// X-Fake-Echo-Key response header, and in the body (an error body for
	// JSON requests, a text delta for streams, flushed in two halves so
	// that the key straddles two writes).
	EchoKey atomic.Bool
	// EchoEncoded makes the echo of EchoKey hold the key in the forms a
	// careless upstream might write it, after the raw key: every byte
	// \u00XX-escaped, every byte percent-encoded, in hex, and inside the
	// base64 of "Bearer <key>" and of "x-api-key: <key>".
	EchoEncoded atomic.Bool
	// ToolUse, when set, makes an Anthropic answer a tool_use of the
	// "Bash" tool with input {"command": *ToolUse} and stop_reason
	// "tool_use", and a Responses answer a function_call of Codex's
	// "exec_command" tool with arguments {"cmd": *ToolUse}, unless the
	// conversation already ends with a tool result (then the answer is
	// text, so agent loops end).
	ToolUse atomic.Pointer[string]
	// ToolName and ToolInput, when set, replace the Anthropic tool_use's
	// name ("Bash") and input (raw JSON) of ToolUse: a call of an MCP
	// tool (mcp__<server>__<tool>) with its arguments.
	ToolName, ToolInput atomic.Pointer[string]
	// Usage, when set, replaces DefaultUsage.
	Usage atomic.Pointer[Usage]
	// Gzip makes the fake compress an answer with gzip when the request
	// accepts it, as real providers do; ForceGzip compresses it even when
	// the request does not.
	Gzip, ForceGzip atomic.Bool
	// EarlyHints makes the fake send a 103 Early Hints whose headers
	// carry the key it received before its answer.
	EarlyHints atomic.Bool
	// KeyTrailer makes the fake declare an X-Fake-Trailer trailer and set
	// it to the key it received at the end of its answer.
	KeyTrailer atomic.Bool
	// HoldHeaders makes the fake read a request and then answer nothing,
	// not even headers, until the client goes away (recorded in
	// Cancelled): a provider that accepts a request and hangs.
	HoldHeaders atomic.Bool

	mu   sync.Mutex
	keys []string
	reqs []*Request
}

// New returns a fake that accepts any of keys.
func New(keys ...string) *Provider {
	return &Provider{keys: slices.Clone(keys)}
}

// AddKey makes the fake accept key too.
func (p *Provider) AddKey(key string) {
	p.mu.Lock()
	p.keys = append(p.keys, key)
	p.mu.Unlock()
}

func (p *Provider) validKey(k string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return k != "" && slices.Contains(p.keys, k)
}

// Requests returns a copy of every request received so far, oldest first.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.reqs))
	for i, r := range p.reqs {
		out[i] = *r
		out[i].Header = r.Header.Clone()
		out[i].Events = slices.Clone(r.Events)
		if r.Usage != nil {
			u := *r.Usage
			out[i].Usage = &u
		}
	}
	return out
}

// Reset forgets the requests received so far.
func (p *Provider) Reset() {
	p.mu.Lock()
	p.reqs = nil
	p.mu.Unlock()
}

func (p *Provider) usage() Usage {
	if u := p.Usage.Load(); u != nil {
		return *u
	}
	return DefaultUsage
}

func (p *Provider) textEvents() int {
	if n := p.TextEvents.Load(); n > 0 {
		return int(n)
	}
	return DefaultTextEvents
}

// maxBody bounds a request body; the fake is for tests, not for uploads.
const maxBody = 8 << 20

// ServeHTTP answers one request and records it.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rec := &Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Received: time.Now()}
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
	if p.HoldHeaders.Load() {
		<-r.Context().Done()
		p.mu.Lock()
		rec.Cancelled, rec.Done = time.Now(), time.Now()
		p.mu.Unlock()
		return
	}
	if p.ForceGzip.Load() || p.Gzip.Load() && acceptsGzip(r.Header) {
		gw := &gzipWriter{ResponseWriter: w, gz: gzip.NewWriter(w)}
		defer gw.close()
		w = gw
	}
	if p.KeyTrailer.Load() {
		w.Header().Set("Trailer", "X-Fake-Trailer")
	}
	a := &answer{p: p, rec: rec, w: w, r: r}
	defer func() {
		p.mu.Lock()
		rec.Done = time.Now()
		p.mu.Unlock()
	}()
	a.serve()
	if p.KeyTrailer.Load() {
		w.Header().Set("X-Fake-Trailer", a.key)
	}
}

func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if name, _, _ := strings.Cut(strings.TrimSpace(c), ";"); strings.EqualFold(name, "gzip") {
				return true
			}
		}
	}
	return false
}

// gzipWriter compresses an answer the way an HTTP server with gzip on
// does: Content-Encoding: gzip, no Content-Length, flushed per Flush.
type gzipWriter struct {
	http.ResponseWriter
	gz    *gzip.Writer
	wrote bool
}

func (g *gzipWriter) WriteHeader(code int) {
	if code >= 200 && !g.wrote {
		g.wrote = true
		g.Header().Set("Content-Encoding", "gzip")
		g.Header().Del("Content-Length")
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	return g.gz.Write(p)
}

func (g *gzipWriter) Flush() {
	_ = g.gz.Flush() // a client that left: the handler ends with it
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (g *gzipWriter) close() {
	if g.wrote {
		_ = g.gz.Close()
	}
}

// answer is one request being answered.
type answer struct {
	p      *Provider
	rec    *Request
	w      http.ResponseWriter
	r      *http.Request
	format string // "anthropic" or "openai"
	key    string
	events int // SSE events written
}

func (a *answer) serve() {
	path := a.r.URL.Path
	switch {
	case strings.HasPrefix(path, "/v1/messages"):
		a.format = "anthropic"
	case strings.HasPrefix(path, "/v1/chat/") || strings.HasPrefix(path, "/v1/responses"):
		a.format = "openai"
	case a.r.Header.Get("X-Api-Key") != "" || a.r.Header.Get("Anthropic-Version") != "":
		a.format = "anthropic"
	default:
		a.format = "openai"
	}
	if a.format == "anthropic" {
		a.key = a.r.Header.Get("X-Api-Key")
	} else if v, ok := strings.CutPrefix(a.r.Header.Get("Authorization"), "Bearer "); ok {
		a.key = v
	}
	a.p.mu.Lock()
	a.rec.Key = a.key
	a.p.mu.Unlock()

	// A HEAD or GET of the root is a reachability check; real APIs answer
	// it without a key.
	if path == "/" || path == "/v1" || path == "/v1/" {
		a.writeJSON(http.StatusOK, map[string]any{"ok": true})
		return
	}
	if !a.p.validKey(a.key) {
		if a.format == "anthropic" {
			a.anthropicError(http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		} else {
			a.openaiError(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
		}
		return
	}
	if a.p.EchoKey.Load() {
		a.w.Header().Set("X-Fake-Echo-Key", a.echoed())
	}
	if a.p.EarlyHints.Load() {
		h := a.w.Header()
		h.Set("X-Fake-Hint-Key", a.key)
		h.Set("Link", "</assets/app.css?key="+a.key+">; rel=preload; as=style")
		a.w.WriteHeader(http.StatusEarlyHints)
		h.Del("X-Fake-Hint-Key")
		h.Del("Link")
	}
	switch {
	case path == "/v1/messages" && a.r.Method == http.MethodPost:
		a.messages()
	case path == "/v1/messages/count_tokens" && a.r.Method == http.MethodPost:
		a.countTokens()
	case path == "/v1/chat/completions" && a.r.Method == http.MethodPost:
		a.chat()
	case path == "/v1/responses" && a.r.Method == http.MethodPost:
		a.responses()
	case path == "/v1/models" && (a.r.Method == http.MethodGet || a.r.Method == http.MethodHead):
		a.models()
	case strings.HasPrefix(path, "/v1/models/") && a.r.Method == http.MethodGet:
		a.model(strings.TrimPrefix(path, "/v1/models/"))
	default:
		if a.format == "anthropic" {
			a.anthropicError(http.StatusNotFound, "not_found_error", "Not found")
		} else {
			a.openaiError(http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+a.r.Method+" "+path+".")
		}
	}
}

func randomID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (a *answer) setStatus(code int) {
	a.p.mu.Lock()
	a.rec.Status = code
	a.p.mu.Unlock()
}

func (a *answer) setUsage(u Usage) {
	a.p.mu.Lock()
	a.rec.Usage = &u
	a.p.mu.Unlock()
}

func (a *answer) writeJSON(code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	h := a.w.Header()
	h.Set("Content-Type", "application/json")
	if a.format == "anthropic" {
		h.Set("Request-Id", randomID("req_"))
	} else {
		h.Set("X-Request-Id", randomID("req_"))
	}
	a.setStatus(code)
	if a.p.CutJSON.Load() {
		h.Set("Content-Length", strconv.Itoa(len(data)))
		a.w.WriteHeader(code)
		a.w.Write(data[:len(data)/2])
		a.w.(http.Flusher).Flush()
		a.p.mu.Lock()
		a.rec.Aborted = true
		a.p.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	a.w.WriteHeader(code)
	if a.r.Method != http.MethodHead {
		a.w.Write(data)
	}
}

// anthropicError answers in the shape of Anthropic's errors.
func (a *answer) anthropicError(code int, typ, msg string) {
	a.writeJSON(code, map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": typ, "message": msg},
		"request_id": randomID("req_"),
	})
}

// openaiError answers in the shape of OpenAI's errors.
func (a *answer) openaiError(code int, typ, errCode, msg string) {
	a.writeJSON(code, map[string]any{
		"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": errCode},
	})
}

// echoError is the answer of a JSON request while EchoKey is on: an
// error whose message repeats the key, as a careless upstream might.
func (a *answer) echoError() {
	msg := "the key " + a.echoed() + " is not allowed to use this model"
	if a.format == "anthropic" {
		a.anthropicError(http.StatusForbidden, "permission_error", msg)
	} else {
		a.openaiError(http.StatusForbidden, "invalid_request_error", "model_not_found", msg)
	}
}

// requestBody is the part of a request body the fake looks at.
type requestBody struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Input json.RawMessage `json:"input"` // Responses
}

func (a *answer) parse() (requestBody, bool) {
	var b requestBody
	if err := json.Unmarshal(a.rec.Body, &b); err != nil {
		msg := "the request body is not valid JSON: " + err.Error()
		if a.format == "anthropic" {
			a.anthropicError(http.StatusBadRequest, "invalid_request_error", msg)
		} else {
			a.openaiError(http.StatusBadRequest, "invalid_request_error", "invalid_json", msg)
		}
		return b, false
	}
	if b.Model == "" {
		if a.format == "anthropic" {
			a.anthropicError(http.StatusBadRequest, "invalid_request_error", "model: Field required")
		} else {
			a.openaiError(http.StatusBadRequest, "invalid_request_error", "missing_required_parameter", "Missing required parameter: 'model'.")
		}
		return b, false
	}
	return b, true
}

// wantsToolUse reports whether the ToolUse knob applies: it is set and the
// conversation does not end with a tool result already.
func (a *answer) wantsToolUse(b requestBody) (string, bool) {
	cmd := a.p.ToolUse.Load()
	if cmd == nil {
		return "", false
	}
	if n := len(b.Messages); n > 0 && bytes.Contains(b.Messages[n-1].Content, []byte(`"tool_result"`)) {
		return "", false
	}
	// A Responses input is a list of items, the latest last: a later
	// turn of the same conversation asks for the tool again.
	var items []struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b.Input, &items) == nil {
		if n := len(items); n > 0 && items[n-1].Type == "function_call_output" {
			return "", false
		}
	} else if bytes.Contains(b.Input, []byte(`"function_call_output"`)) {
		return "", false
	}
	return *cmd, true
}

// --- Anthropic Messages ---

func anthropicUsage(u Usage) map[string]any {
	return map[string]any{
		"input_tokens":                u.Input,
		"cache_creation_input_tokens": u.CacheWrite,
		"cache_read_input_tokens":     u.CacheRead,
		"output_tokens":               u.Output,
	}
}

func (a *answer) messages() {
	if a.r.Header.Get("Anthropic-Version") == "" {
		a.anthropicError(http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	b, ok := a.parse()
	if !ok {
		return
	}
	if a.p.EchoKey.Load() && !b.Stream {
		a.echoError()
		return
	}
	u := a.p.usage()
	n := a.p.textEvents()
	id := randomID("msg_fake")
	cmd, tool := a.wantsToolUse(b)
	toolID := randomID("toolu_fake")
	toolInput, _ := json.Marshal(map[string]string{"command": cmd})
	toolName := "Bash"
	if n := a.p.ToolName.Load(); n != nil {
		toolName = *n
	}
	if in := a.p.ToolInput.Load(); in != nil {
		toolInput = []byte(*in)
	}
	if !b.Stream {
		content := []any{map[string]any{"type": "text", "text": AnswerText(n)}}
		stop := "end_turn"
		if tool {
			content = []any{map[string]any{"type": "tool_use", "id": toolID, "name": toolName, "input": json.RawMessage(toolInput)}}
			stop = "tool_use"
		}
		a.setUsage(u)
		a.writeJSON(http.StatusOK, map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": b.Model,
			"content": content, "stop_reason": stop, "stop_sequence": nil,
			"usage": anthropicUsage(u),
		})
		return
	}
	if !a.startStream() {
		return
	}
	start := anthropicUsage(u)
	start["output_tokens"] = 1
	ok = a.event("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": b.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": start,
	}})
	stop := "end_turn"
	if tool {
		stop = "tool_use"
		ok = ok && a.event("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "tool_use", "id": toolID, "name": toolName, "input": map[string]any{}}})
		ok = ok && a.event("ping", map[string]any{"type": "ping"})
		// The input arrives as pieces of JSON text, split anywhere.
		s := string(toolInput)
		for _, part := range []string{"", s[:len(s)/2], s[len(s)/2:]} {
			ok = ok && a.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": part}})
		}
	} else {
		ok = ok && a.event("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}})
		ok = ok && a.event("ping", map[string]any{"type": "ping"})
		for i := 0; i < n && ok; i++ {
			ok = a.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "text_delta", "text": Delta(i)}})
		}
		if ok && a.p.EchoKey.Load() {
			ok = a.echoEvent("content_block_delta", func(text string) any {
				return map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": text}}
			})
		}
	}
	ok = ok && a.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	ok = ok && a.event("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": u.Output}})
	if ok {
		a.setUsage(u)
		a.event("message_stop", map[string]any{"type": "message_stop"})
	}
}

func (a *answer) countTokens() {
	if a.r.Header.Get("Anthropic-Version") == "" {
		a.anthropicError(http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	if _, ok := a.parse(); !ok {
		return
	}
	a.writeJSON(http.StatusOK, map[string]any{"input_tokens": a.p.usage().Input})
}

func (a *answer) models() {
	created := time.Date(2025, 9, 29, 0, 0, 0, 0, time.UTC)
	var data []any
	if a.format == "anthropic" {
		for _, m := range Models {
			data = append(data, map[string]any{"type": "model", "id": m, "display_name": m, "created_at": created.Format(time.RFC3339)})
		}
		a.writeJSON(http.StatusOK, map[string]any{"data": data, "has_more": false, "first_id": Models[0], "last_id": Models[len(Models)-1]})
		return
	}
	for _, m := range Models {
		data = append(data, map[string]any{"id": m, "object": "model", "created": created.Unix(), "owned_by": "fakeprovider"})
	}
	a.writeJSON(http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (a *answer) model(id string) {
	if !slices.Contains(Models, id) {
		if a.format == "anthropic" {
			a.anthropicError(http.StatusNotFound, "not_found_error", "model: "+id)
		} else {
			a.openaiError(http.StatusNotFound, "invalid_request_error", "model_not_found", "The model '"+id+"' does not exist")
		}
		return
	}
	created := time.Date(2025, 9, 29, 0, 0, 0, 0, time.UTC)
	if a.format == "anthropic" {
		a.writeJSON(http.StatusOK, map[string]any{"type": "model", "id": id, "display_name": id, "created_at": created.Format(time.RFC3339)})
		return
	}
	a.writeJSON(http.StatusOK, map[string]any{"id": id, "object": "model", "created": created.Unix(), "owned_by": "fakeprovider"})
}

// --- OpenAI Chat Completions ---

func chatUsage(u Usage) map[string]any {
	return map[string]any{
		"prompt_tokens":             u.Input,
		"completion_tokens":         u.Output,
		"total_tokens":              u.Input + u.Output,
		"prompt_tokens_details":     map[string]any{"cached_tokens": u.CacheRead, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
}

func (a *answer) chat() {
	b, ok := a.parse()
	if !ok {
		return
	}
	if a.p.EchoKey.Load() && !b.Stream {
		a.echoError()
		return
	}
	u := a.p.usage()
	n := a.p.textEvents()
	id := randomID("chatcmpl-fake")
	created := time.Now().Unix()
	if !b.Stream {
		a.setUsage(u)
		a.writeJSON(http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": b.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": AnswerText(n), "refusal": nil, "annotations": []any{}},
				"logprobs": nil, "finish_reason": "stop"}},
			"usage": chatUsage(u), "service_tier": "default", "system_fingerprint": "fp_fake",
		})
		return
	}
	withUsage := b.StreamOptions != nil && b.StreamOptions.IncludeUsage
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": b.Model, "system_fingerprint": "fp_fake",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
		if withUsage {
			c["usage"] = nil
		}
		return c
	}
	if !a.startStream() {
		return
	}
	ok = a.event("", chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
	for i := 0; i < n && ok; i++ {
		ok = a.event("", chunk(map[string]any{"content": Delta(i)}, nil))
	}
	if ok && a.p.EchoKey.Load() {
		ok = a.echoEvent("", func(text string) any { return chunk(map[string]any{"content": text}, nil) })
	}
	ok = ok && a.event("", chunk(map[string]any{}, "stop"))
	if ok && withUsage {
		ok = a.event("", map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": b.Model, "system_fingerprint": "fp_fake",
			"choices": []any{}, "usage": chatUsage(u),
		})
		if ok {
			a.setUsage(u)
		}
	}
	if ok {
		a.done()
	}
}

// --- OpenAI Responses ---

func responsesUsage(u Usage) map[string]any {
	return map[string]any{
		"input_tokens":          u.Input,
		"input_tokens_details":  map[string]any{"cached_tokens": u.CacheRead},
		"output_tokens":         u.Output,
		"output_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning},
		"total_tokens":          u.Input + u.Output,
	}
}

func (a *answer) responses() {
	b, ok := a.parse()
	if !ok {
		return
	}
	if a.p.EchoKey.Load() && !b.Stream {
		a.echoError()
		return
	}
	u := a.p.usage()
	n := a.p.textEvents()
	id, msgID := randomID("resp_fake"), randomID("msg_fake")
	created := time.Now().Unix()
	text := AnswerText(n)
	response := func(status string, output []any, usage any) map[string]any {
		return map[string]any{
			"id": id, "object": "response", "created_at": created, "status": status, "error": nil,
			"incomplete_details": nil, "instructions": nil, "max_output_tokens": nil, "model": b.Model,
			"output": output, "parallel_tool_calls": true, "previous_response_id": nil,
			"reasoning": map[string]any{"effort": nil, "summary": nil}, "store": true, "temperature": 1.0,
			"text": map[string]any{"format": map[string]any{"type": "text"}}, "tool_choice": "auto", "tools": []any{},
			"top_p": 1.0, "truncation": "disabled", "usage": usage, "user": nil, "metadata": map[string]any{},
		}
	}
	part := func(text string) map[string]any {
		return map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
	}
	message := func(status string, content []any) map[string]any {
		return map[string]any{"id": msgID, "type": "message", "status": status, "role": "assistant", "content": content}
	}
	done := message("completed", []any{part(text)})
	cmd, toolUse := a.wantsToolUse(b)
	var call map[string]any
	if toolUse {
		args, _ := json.Marshal(map[string]string{"cmd": cmd})
		call = map[string]any{"id": randomID("fc_fake"), "type": "function_call", "status": "completed", "call_id": randomID("call_fake"),
			"name": "exec_command", "arguments": string(args)}
		done = call
	}
	if !b.Stream {
		a.setUsage(u)
		a.writeJSON(http.StatusOK, response("completed", []any{done}, responsesUsage(u)))
		return
	}
	if !a.startStream() {
		return
	}
	seq := 0
	ev := func(typ string, fields map[string]any) bool {
		fields["type"] = typ
		fields["sequence_number"] = seq
		seq++
		return a.event(typ, fields)
	}
	if toolUse {
		started := maps.Clone(call)
		started["status"], started["arguments"] = "in_progress", ""
		ok = ev("response.created", map[string]any{"response": response("in_progress", []any{}, nil)})
		ok = ok && ev("response.output_item.added", map[string]any{"output_index": 0, "item": started})
		ok = ok && ev("response.function_call_arguments.delta", map[string]any{"item_id": call["id"], "output_index": 0, "delta": call["arguments"]})
		ok = ok && ev("response.function_call_arguments.done", map[string]any{"item_id": call["id"], "output_index": 0, "arguments": call["arguments"]})
		ok = ok && ev("response.output_item.done", map[string]any{"output_index": 0, "item": call})
		if ok && ev("response.completed", map[string]any{"response": response("completed", []any{call}, responsesUsage(u))}) {
			a.setUsage(u)
		}
		return
	}
	ok = ev("response.created", map[string]any{"response": response("in_progress", []any{}, nil)})
	ok = ok && ev("response.in_progress", map[string]any{"response": response("in_progress", []any{}, nil)})
	ok = ok && ev("response.output_item.added", map[string]any{"output_index": 0, "item": message("in_progress", []any{})})
	ok = ok && ev("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part("")})
	for i := 0; i < n && ok; i++ {
		ok = ev("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": Delta(i), "logprobs": []any{}})
	}
	if ok && a.p.EchoKey.Load() {
		ok = a.echoEvent("response.output_text.delta", func(t string) any {
			f := map[string]any{"type": "response.output_text.delta", "sequence_number": seq, "item_id": msgID, "output_index": 0, "content_index": 0, "delta": t, "logprobs": []any{}}
			seq++
			return f
		})
	}
	ok = ok && ev("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": text, "logprobs": []any{}})
	ok = ok && ev("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part(text)})
	ok = ok && ev("response.output_item.done", map[string]any{"output_index": 0, "item": done})
	if ok && ev("response.completed", map[string]any{"response": response("completed", []any{done}, responsesUsage(u))}) {
		a.setUsage(u)
	}
}

// --- SSE ---

// startStream writes the headers of an event stream.
func (a *answer) startStream() bool {
	h := a.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	if a.format == "anthropic" {
		h.Set("Request-Id", randomID("req_"))
	} else {
		h.Set("X-Request-Id", randomID("req_"))
	}
	a.setStatus(http.StatusOK)
	a.w.WriteHeader(http.StatusOK)
	return a.flush()
}

func (a *answer) flush() bool {
	if err := http.NewResponseController(a.w).Flush(); err != nil {
		return false
	}
	return a.r.Context().Err() == nil
}

// pause waits EventDelay before every event but the first, and reports
// false when the request ended meanwhile.
func (a *answer) pause() bool {
	d := a.p.EventDelay.Load()
	if a.events == 0 || d <= 0 {
		return a.alive() && a.gate()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return a.gate()
	case <-a.r.Context().Done():
		a.cancelled()
		return false
	}
}

// gate waits for EventGate, when one is set, before every event but the
// first, and reports false when the request ended meanwhile.
func (a *answer) gate() bool {
	g := a.p.EventGate.Load()
	if g == nil || a.events == 0 {
		return true
	}
	select {
	case <-*g:
		return true
	case <-a.r.Context().Done():
		a.cancelled()
		return false
	}
}

func (a *answer) alive() bool {
	if a.r.Context().Err() != nil {
		a.cancelled()
		return false
	}
	return true
}

func (a *answer) cancelled() {
	a.p.mu.Lock()
	if a.rec.Cancelled.IsZero() {
		a.rec.Cancelled = time.Now()
	}
	a.p.mu.Unlock()
}

// event writes one SSE event (name "" for Chat Completions, which sends
// data lines only) and flushes it. It reports false when the stream must
// stop: the client went away.
func (a *answer) event(name string, v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return a.raw(name, [][]byte{sseFrame(name, data)}, string(data))
}

// echoEvent writes an event whose text is a sentence with the key in it,
// flushed in two halves that split the key.
func (a *answer) echoEvent(name string, build func(text string) any) bool {
	data, err := json.Marshal(build(" (your key is " + a.echoed() + ")"))
	if err != nil {
		panic(err)
	}
	frame := sseFrame(name, data)
	i := bytes.Index(frame, []byte(a.key)) + len(a.key)/2
	return a.raw(name, [][]byte{frame[:i], frame[i:]}, string(data))
}

// echoed is the key as EchoKey echoes it: raw, and with EchoEncoded in
// its encoded forms too.
func (a *answer) echoed() string {
	if !a.p.EchoEncoded.Load() {
		return a.key
	}
	var uesc, pct strings.Builder
	for i := range len(a.key) {
		fmt.Fprintf(&uesc, `\u%04x`, a.key[i])
		fmt.Fprintf(&pct, "%%%02X", a.key[i])
	}
	return strings.Join([]string{a.key, uesc.String(), pct.String(), hex.EncodeToString([]byte(a.key)),
		base64.StdEncoding.EncodeToString([]byte("Bearer " + a.key)),
		base64.RawURLEncoding.EncodeToString([]byte("x-api-key: " + a.key))}, " ")
}

func sseFrame(name string, data []byte) []byte {
	var b bytes.Buffer
	if name != "" {
		fmt.Fprintf(&b, "event: %s\n", name)
	}
	fmt.Fprintf(&b, "data: %s\n\n", data)
	return b.Bytes()
}

// done writes the Chat Completions terminator.
func (a *answer) done() bool {
	return a.raw("", [][]byte{[]byte("data: [DONE]\n\n")}, "[DONE]")
}

func (a *answer) raw(name string, parts [][]byte, data string) bool {
	if die := a.p.DieAfter.Load(); die > 0 && int64(a.events) >= die {
		a.p.mu.Lock()
		a.rec.Aborted = true
		a.p.mu.Unlock()
		// The connection is closed without the chunked body's end, the way
		// a provider or a network dropping mid-answer looks to a client.
		panic(http.ErrAbortHandler)
	}
	if !a.pause() {
		return false
	}
	for _, part := range parts {
		if _, err := a.w.Write(part); err != nil {
			a.cancelled()
			return false
		}
		if !a.flush() {
			a.cancelled()
			return false
		}
	}
	a.events++
	if name == "" {
		name = "chunk"
		if data == "[DONE]" {
			name = "[DONE]"
		}
	}
	a.p.mu.Lock()
	a.rec.Events = append(a.rec.Events, Event{Name: name, Data: data, Sent: time.Now()})
	a.p.mu.Unlock()
	return true
}

// WaitFor polls until cond holds for the requests received so far, or ctx
// ends; it returns the last snapshot and whether cond held.
func (p *Provider) WaitFor(ctx context.Context, cond func([]Request) bool) ([]Request, bool) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		reqs := p.Requests()
		if cond(reqs) {
			return reqs, true
		}
		select {
		case <-ctx.Done():
			return reqs, false
		case <-t.C:
		}
	}
}
