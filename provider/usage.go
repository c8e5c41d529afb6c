// Package provider knows the wire formats of LLM provider APIs that the
// proxy forwards: how each authenticates, and where each reports token
// usage, in JSON answers and in SSE streams, so usage can be counted from
// the bytes as they pass without holding them up.
package provider

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// Wire formats.
const (
	FormatAnthropic = "anthropic" // Anthropic Messages
	FormatOpenAI    = "openai"    // OpenAI Chat Completions and Responses
)

// Usage is what a response reported about itself. Input counts the input
// tokens that were not read from the cache, in every format: Anthropic
// reports them that way, while OpenAI's prompt_tokens and input_tokens
// include the cached tokens, which are subtracted here so that a price
// table applies its input and cache-read prices once each.
type Usage struct {
	Model      string `json:"model,omitempty"`
	Input      int64  `json:"input_tokens"`
	Output     int64  `json:"output_tokens"`
	CacheRead  int64  `json:"cache_read_tokens"`
	CacheWrite int64  `json:"cache_write_tokens"`
	// Complete is true when the answer ended as its format says a
	// complete answer ends (message_stop, [DONE], response.completed, or a
	// whole JSON body).
	Complete bool `json:"complete"`
}

// maxLine bounds one SSE line and a buffered JSON body; usage beyond it is
// not counted, but the bytes still pass through untouched.
const maxLine = 4 << 20

// Meter reads usage from a response body as it streams by. Write never
// fails and never holds data back; Usage is valid after the last Write.
type Meter struct {
	sse      bool
	buf      []byte  // partial SSE line, or the JSON body
	bodyBuf  *[]byte // from jsonBodies, holding buf's array; Usage returns it
	overflow bool
	event    string // current SSE event name
	u        Usage
	// Tools, when set, is given each tool call of the answer as soon as
	// it is whole (ToolUse), before the bytes that end it are passed on.
	// Nil: tool calls are not looked for.
	Tools func(ToolUse)
	ts    toolScan
}

// NewMeter returns a meter for a response with the given Content-Type.
func NewMeter(contentType string) *Meter {
	m := new(Meter)
	m.Reset(contentType)
	return m
}

// Reset makes m what NewMeter(contentType) returns, for a caller that
// keeps its meter in a struct of its own. Tools is cleared too.
func (m *Meter) Reset(contentType string) {
	*m = Meter{sse: strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "text/event-stream")}
}

// jsonBodies are the buffers that JSON bodies are gathered in until Usage
// reads them: every non-streamed answer needs one, for as long as it
// takes to arrive. Only buffers of up to maxPooledBody go back, so the
// pool never pins a large answer's memory (and the GC empties it).
var jsonBodies = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledBody = 64 << 10

// Write feeds the next bytes of the body.
func (m *Meter) Write(p []byte) (int, error) {
	n := len(p)
	if !m.sse {
		if !m.overflow {
			if len(m.buf)+len(p) > maxLine {
				m.overflow, m.buf, m.bodyBuf = true, nil, nil
			} else {
				if m.bodyBuf == nil && len(m.buf) == 0 && len(p) > 0 {
					m.bodyBuf = jsonBodies.Get().(*[]byte)
					m.buf = (*m.bodyBuf)[:0]
				}
				m.buf = append(m.buf, p...)
			}
		}
		return n, nil
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			m.appendLine(p)
			break
		}
		m.appendLine(p[:i])
		if !m.overflow {
			m.line(bytes.TrimSuffix(m.buf, []byte{'\r'}))
		}
		m.buf, m.overflow = m.buf[:0], false
		p = p[i+1:]
	}
	return n, nil
}

func (m *Meter) appendLine(p []byte) {
	if m.overflow {
		return
	}
	if len(m.buf)+len(p) > maxLine {
		m.overflow, m.buf = true, m.buf[:0]
		return
	}
	m.buf = append(m.buf, p...)
}

// Usage returns what was read. For a JSON body it parses the body now.
func (m *Meter) Usage() Usage {
	if !m.sse && !m.overflow && len(m.buf) > 0 {
		if u, ok := answerUsage(m.buf); ok {
			m.u = u
			m.u.Complete = true
		}
		if m.Tools != nil {
			m.answerToolUses(m.buf)
		}
		// Nothing read from the body refers to it: the usage's and the
		// tool calls' strings are copies.
		if m.bodyBuf != nil && cap(m.buf) <= maxPooledBody {
			*m.bodyBuf = m.buf[:0]
			jsonBodies.Put(m.bodyBuf)
		}
		m.buf, m.bodyBuf = nil, nil
	}
	if m.sse && m.Tools != nil {
		m.endTools()
	}
	return m.u
}

// line handles one SSE line.
func (m *Meter) line(l []byte) {
	switch {
	case len(l) == 0:
		m.event = ""
	case bytes.HasPrefix(l, []byte("event:")):
		m.event = string(bytes.TrimSpace(l[len("event:"):]))
	case bytes.HasPrefix(l, []byte("data:")):
		m.data(bytes.TrimSpace(l[len("data:"):]))
	}
}

func (m *Meter) data(d []byte) {
	if bytes.Equal(d, []byte("[DONE]")) {
		m.u.Complete = true
		if m.Tools != nil {
			m.endTools()
		}
		return
	}
	if len(d) == 0 || d[0] != '{' {
		return
	}
	var ev wireEvent
	if json.Unmarshal(d, &ev) != nil {
		return
	}
	typ := ev.Type
	if typ == "" {
		typ = m.event
	}
	if m.Tools != nil {
		m.toolData(typ, d, ev.Choices)
	}
	switch typ {
	case "message_start": // Anthropic
		if ev.Message != nil {
			m.u.Model = ev.Message.Model
			m.mergeAnthropic(ev.Message.Usage)
		}
	case "message_delta":
		m.mergeAnthropic(ev.Usage)
	case "message_stop":
		m.u.Complete = true
	case "response.completed", "response.incomplete", "response.failed": // OpenAI Responses
		if ev.Response != nil {
			if ev.Response.Model != "" {
				m.u.Model = ev.Response.Model
			}
			if u := ev.Response.Usage; u != nil {
				m.u.CacheRead = u.inputCached()
				m.u.Input, m.u.Output = uncached(u.InputTokens, m.u.CacheRead), u.OutputTokens
			}
		}
		m.u.Complete = typ == "response.completed"
	case "response.created":
		if ev.Response != nil && ev.Response.Model != "" {
			m.u.Model = ev.Response.Model
		}
	default: // OpenAI Chat Completions chunks carry no type
		if ev.Object == "chat.completion.chunk" || ev.Choices != nil {
			if ev.Model != "" {
				m.u.Model = ev.Model
			}
			if u := ev.Usage; u != nil {
				m.u.CacheRead = u.promptCached()
				m.u.Input, m.u.Output = uncached(u.PromptTokens, m.u.CacheRead), u.CompletionTokens
			}
		}
	}
}

// mergeAnthropic folds an Anthropic usage object in: message_start holds
// the input side, message_delta the cumulative output (and, on some
// versions, updated input counts).
func (m *Meter) mergeAnthropic(u *wireUsage) {
	if u == nil {
		return
	}
	if u.InputTokens > 0 {
		m.u.Input = u.InputTokens
	}
	if u.OutputTokens > 0 {
		m.u.Output = u.OutputTokens
	}
	if u.CacheReadInputTokens > 0 {
		m.u.CacheRead = u.CacheReadInputTokens
	}
	if u.CacheCreationInputTokens > 0 {
		m.u.CacheWrite = u.CacheCreationInputTokens
	}
}

type wireUsage struct {
	// Anthropic, OpenAI Responses
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	InputTokensDetails       *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	// OpenAI Chat Completions
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func (u *wireUsage) inputCached() int64 {
	if u.InputTokensDetails != nil {
		return u.InputTokensDetails.CachedTokens
	}
	return 0
}

func (u *wireUsage) promptCached() int64 {
	if u.PromptTokensDetails != nil {
		return u.PromptTokensDetails.CachedTokens
	}
	return 0
}

type wireEvent struct {
	Type    string          `json:"type"`
	Object  string          `json:"object"`
	Model   string          `json:"model"`
	Choices json.RawMessage `json:"choices"`
	Usage   *wireUsage      `json:"usage"`
	Message *struct {
		Model string     `json:"model"`
		Usage *wireUsage `json:"usage"`
	} `json:"message"`
	Response *struct {
		Model string     `json:"model"`
		Usage *wireUsage `json:"usage"`
	} `json:"response"`
}

// wireBody is a non-streaming answer of any of the formats.
type wireBody struct {
	Object string     `json:"object"`
	Model  string     `json:"model"`
	Usage  *wireUsage `json:"usage"`
}

func (b *wireBody) usage() Usage {
	u := Usage{Model: b.Model}
	if b.Usage == nil {
		return u
	}
	w := b.Usage
	switch {
	case w.PromptTokens > 0 || w.CompletionTokens > 0 || b.Object == "chat.completion":
		u.CacheRead = w.promptCached()
		u.Input, u.Output = uncached(w.PromptTokens, u.CacheRead), w.CompletionTokens
	default:
		// Anthropic (cache_read_input_tokens, not part of input_tokens)
		// or OpenAI Responses (input_tokens_details, part of input_tokens).
		u.Input, u.Output = uncached(w.InputTokens, w.inputCached()), w.OutputTokens
		u.CacheRead = w.CacheReadInputTokens + w.inputCached()
		u.CacheWrite = w.CacheCreationInputTokens
	}
	return u
}

// uncached is an OpenAI input count without its cached part.
func uncached(total, cached int64) int64 {
	return max(total-cached, 0)
}

// RequestModel reads the "model" field of a request body, if any.
func RequestModel(body []byte) string {
	var v struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.Model
}

// IsStream reports whether a request body asks for a streamed answer.
func IsStream(body []byte) bool {
	var v struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(body, &v) == nil && v.Stream
}
