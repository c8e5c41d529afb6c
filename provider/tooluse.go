package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"unicode/utf8"
)

// ToolUse is a tool call a provider answered with: an Anthropic tool_use
// block, an OpenAI Chat tool call or an OpenAI Responses function_call.
// ID is what the agent sends back with the result (tool_use_id,
// tool_call_id, call_id); InputDigest is ArgsDigest of its input.
type ToolUse struct {
	ID          string
	Name        string
	InputDigest string
}

// maxToolInput bounds the input kept of one streamed tool call (for its
// digest); a longer one gets no digest.
const maxToolInput = 1 << 20

// maxToolUses bounds the tool calls read from one answer, and the ones
// open (started, not yet ended) at once.
const maxToolUses = 128

// maxPendingInput bounds the input of open tool calls kept by one answer
// all together; a call whose input does not fit gets no digest.
const maxPendingInput = 4 << 20

// maxToolName and maxToolID bound what is kept of a tool call's name
// (clipped) and id (a longer one is not read: no request can carry it
// back, see ToolResultIDs).
const (
	maxToolName = 128
	maxToolID   = 256
)

// ArgsDigest is "sha256:" and the first 16 bytes of SHA-256, hex, of a
// tool's input in one canonical form (compact, object members sorted,
// numbers as written), so the same arguments sent as a tool_use's input,
// as a function call's arguments string, or as an MCP tools/call's
// arguments digest the same. "" for what is not JSON.
func ArgsDigest(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil || d.More() {
		return ""
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// argsString is the digest of arguments sent as a JSON string (OpenAI).
func argsString(s string) string { return ArgsDigest([]byte(s)) }

// toolScan follows the tool calls of one streamed answer.
type toolScan struct {
	found int
	// Anthropic: the tool_use blocks open, by content index.
	blocks map[int]*pendingTool
	// OpenAI Chat: tool calls by choice index and call index.
	calls map[[2]int]*pendingTool
	order [][2]int
	// pending is the input held by the open calls, within maxPendingInput.
	pending int
}

type pendingTool struct {
	id, name string
	input    []byte
	overflow bool
}

// add appends s to p's input, within maxToolInput for p and
// maxPendingInput for all the calls ts holds open.
func (ts *toolScan) add(p *pendingTool, s string) {
	if p.overflow {
		return
	}
	if len(p.input)+len(s) > maxToolInput || ts.pending+len(s) > maxPendingInput {
		ts.drop(p)
		p.overflow = true
		return
	}
	ts.pending += len(s)
	p.input = append(p.input, s...)
}

// drop lets go of p's input (p is done or overflowed).
func (ts *toolScan) drop(p *pendingTool) {
	ts.pending -= len(p.input)
	p.input = nil
}

// clipName is name within maxToolName bytes, cut at a character's start.
func clipName(name string) string {
	if len(name) <= maxToolName {
		return name
	}
	i := maxToolName
	for i > 0 && !utf8.RuneStart(name[i]) {
		i--
	}
	return name[:i]
}

func (p *pendingTool) use() ToolUse {
	u := ToolUse{ID: p.id, Name: p.name}
	if !p.overflow {
		u.InputDigest = ArgsDigest(p.input)
	}
	return u
}

// emit hands u to the meter's Tools, within maxToolUses per answer.
// A name is clipped to maxToolName; a call with an id longer than
// maxToolID is not read.
func (m *Meter) emit(u ToolUse) {
	if u.ID == "" || len(u.ID) > maxToolID || m.ts.found >= maxToolUses {
		return
	}
	m.ts.found++
	u.Name = clipName(u.Name)
	m.Tools(u)
}

// toolEvent is what an SSE event says about tool calls, in any format.
type toolEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	// Anthropic content_block_start and _delta.
	ContentBlock *struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content_block"`
	Delta *struct {
		Type        string `json:"type"`
		PartialJSON string `json:"partial_json"`
	} `json:"delta"`
	// OpenAI Responses response.output_item.done.
	Item *respItem `json:"item"`
}

type respItem struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type chatToolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatChoice struct {
	Index int `json:"index"`
	Delta *struct {
		ToolCalls []chatToolCall `json:"tool_calls"`
	} `json:"delta"`
	Message *struct {
		ToolCalls []chatToolCall `json:"tool_calls"`
	} `json:"message"`
	FinishReason *string `json:"finish_reason"`
}

// toolData reads the tool calls of one SSE data payload d (a JSON object)
// whose event type is typ. Only payloads that can hold a tool call are
// decoded again.
func (m *Meter) toolData(typ string, d []byte, choices json.RawMessage) {
	switch typ {
	case "content_block_start", "content_block_delta", "content_block_stop":
		m.anthropicTool(typ, d)
	case "response.output_item.done":
		var ev toolEvent
		if json.Unmarshal(d, &ev) == nil && ev.Item != nil && ev.Item.Type == "function_call" {
			m.emit(ToolUse{ID: ev.Item.CallID, Name: ev.Item.Name, InputDigest: argsString(ev.Item.Arguments)})
		}
	case "message_stop", "response.completed", "response.incomplete", "response.failed", "":
		if choices != nil {
			m.chatTool(choices)
		}
	}
}

func (m *Meter) anthropicTool(typ string, d []byte) {
	if typ == "content_block_delta" && (m.ts.blocks == nil || !bytes.Contains(d, []byte(`input_json_delta`))) {
		return // a text delta, the most common event, is not decoded again
	}
	var ev toolEvent
	if json.Unmarshal(d, &ev) != nil {
		return
	}
	switch typ {
	case "content_block_start":
		if b := ev.ContentBlock; b != nil && b.Type == "tool_use" && b.ID != "" && len(b.ID) <= maxToolID {
			if m.ts.blocks == nil {
				m.ts.blocks = map[int]*pendingTool{}
			}
			old := m.ts.blocks[ev.Index]
			if old != nil {
				m.ts.drop(old)
			} else if len(m.ts.blocks) >= maxToolUses || m.ts.found+len(m.ts.blocks) >= maxToolUses {
				return // no more can be emitted: none is kept open
			}
			p := &pendingTool{id: b.ID, name: clipName(b.Name)}
			if in := bytes.TrimSpace(b.Input); len(in) > 0 && !bytes.Equal(in, []byte("{}")) {
				m.ts.add(p, string(in)) // streamed input is empty here; a whole one is kept
			}
			m.ts.blocks[ev.Index] = p
		}
	case "content_block_delta":
		if p := m.ts.blocks[ev.Index]; p != nil && ev.Delta != nil {
			m.ts.add(p, ev.Delta.PartialJSON)
		}
	case "content_block_stop":
		if p := m.ts.blocks[ev.Index]; p != nil {
			delete(m.ts.blocks, ev.Index)
			u := p.use()
			if len(p.input) == 0 && !p.overflow {
				u.InputDigest = ArgsDigest([]byte("{}"))
			}
			m.ts.drop(p)
			m.emit(u)
		}
	}
}

// chatTool follows the tool calls of an OpenAI Chat chunk's choices.
func (m *Meter) chatTool(choices json.RawMessage) {
	if !bytes.Contains(choices, []byte(`"tool_calls"`)) && (m.ts.calls == nil || !bytes.Contains(choices, []byte(`"finish_reason"`))) {
		return
	}
	var cs []chatChoice
	if json.Unmarshal(choices, &cs) != nil {
		return
	}
	for _, c := range cs {
		if c.Delta != nil {
			for _, tc := range c.Delta.ToolCalls {
				k := [2]int{c.Index, tc.Index}
				p := m.ts.calls[k]
				if p == nil {
					if m.ts.calls == nil {
						m.ts.calls = map[[2]int]*pendingTool{}
					}
					if len(m.ts.calls) >= maxToolUses {
						continue
					}
					p = &pendingTool{}
					m.ts.calls[k] = p
					m.ts.order = append(m.ts.order, k)
				}
				if tc.ID != "" {
					p.id = tc.ID
				}
				if tc.Function.Name != "" && len(p.name) <= maxToolName {
					// Kept one byte past the limit at most: clipName cuts it.
					p.name += tc.Function.Name[:min(len(tc.Function.Name), maxToolName+1-len(p.name))]
				}
				m.ts.add(p, tc.Function.Arguments)
			}
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			m.flushChat(c.Index)
		}
	}
}

// flushChat emits the tool calls of choice (every choice for -1).
func (m *Meter) flushChat(choice int) {
	keep := m.ts.order[:0]
	for _, k := range m.ts.order {
		if choice >= 0 && k[0] != choice {
			keep = append(keep, k)
			continue
		}
		if p := m.ts.calls[k]; p != nil {
			delete(m.ts.calls, k)
			u := p.use()
			m.ts.drop(p)
			m.emit(u)
		}
	}
	m.ts.order = keep
}

// endTools emits what an answer that ended left open.
func (m *Meter) endTools() {
	if len(m.ts.order) > 0 {
		m.flushChat(-1)
	}
}

// answerToolUses reads the tool calls of a whole JSON answer of any
// format. Only an answer that names one is decoded again.
func (m *Meter) answerToolUses(body []byte) {
	if !bytes.Contains(body, []byte(`"tool_use"`)) && !bytes.Contains(body, []byte(`"tool_calls"`)) && !bytes.Contains(body, []byte(`"function_call"`)) {
		return
	}
	var b struct {
		Content []struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		} `json:"content"`
		Choices []chatChoice `json:"choices"`
		Output  []respItem   `json:"output"`
	}
	if json.Unmarshal(body, &b) != nil {
		return
	}
	for _, c := range b.Content {
		if c.Type == "tool_use" {
			m.emit(ToolUse{ID: c.ID, Name: c.Name, InputDigest: ArgsDigest(c.Input)})
		}
	}
	for _, c := range b.Choices {
		if c.Message != nil {
			for _, tc := range c.Message.ToolCalls {
				m.emit(ToolUse{ID: tc.ID, Name: tc.Function.Name, InputDigest: argsString(tc.Function.Arguments)})
			}
		}
	}
	for _, o := range b.Output {
		if o.Type == "function_call" {
			m.emit(ToolUse{ID: o.CallID, Name: o.Name, InputDigest: argsString(o.Arguments)})
		}
	}
}

// ToolResultIDs calls yield with each id a request body carries back
// with a tool's result or call: the values of "tool_use_id" (Anthropic),
// "tool_call_id" (OpenAI Chat) and "call_id" (OpenAI Responses) members,
// found by a byte scan, not by decoding the body (a conversation's
// history may be megabytes). An id with escapes is skipped; ids on the
// wire are plain. yield returning false stops the scan.
func ToolResultIDs(body []byte, yield func(id string) bool) {
	pat := []byte(`_id"`)
	for i := 0; ; {
		j := bytes.Index(body[i:], pat)
		if j < 0 {
			return
		}
		end := i + j + len(pat) // past the closing quote of the name
		i = end
		name := body[:end-1]
		if !bytes.HasSuffix(name, []byte(`"tool_use_id`)) && !bytes.HasSuffix(name, []byte(`"tool_call_id`)) && !bytes.HasSuffix(name, []byte(`"call_id`)) {
			continue
		}
		k := skipSpace(body, end)
		if k >= len(body) || body[k] != ':' {
			continue
		}
		k = skipSpace(body, k+1)
		if k >= len(body) || body[k] != '"' {
			continue
		}
		e, plain := scanString(body, k)
		if e < 0 || !plain || e-k-2 < 1 || e-k-2 > 256 {
			continue
		}
		if !yield(string(body[k+1 : e-1])) {
			return
		}
		i = e
	}
}
