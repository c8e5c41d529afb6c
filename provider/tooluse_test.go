package provider

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// meterTools feeds body to a meter in chunks of n bytes and returns the
// tool calls it found.
func meterTools(t *testing.T, contentType, body string, n int) []ToolUse {
	t.Helper()
	var got []ToolUse
	m := NewMeter(contentType)
	m.Tools = func(u ToolUse) { got = append(got, u) }
	for b := []byte(body); len(b) > 0; {
		k := min(n, len(b))
		_, _ = m.Write(b[:k])
		b = b[k:]
	}
	m.Usage()
	return got
}

var argsDigest = ArgsDigest([]byte(`{"path":"/tmp/x","n":1}`))

func TestToolUsesOfEachFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ct, body string
		want           []ToolUse
	}{
		{"anthropic json", "application/json",
			`{"id":"msg_1","type":"message","model":"claude","content":[{"type":"text","text":"ok \"tool_use\""},{"type":"tool_use","id":"toolu_A","name":"read","input":{"n":1,"path":"/tmp/x"}}],"usage":{"input_tokens":3,"output_tokens":4}}`,
			[]ToolUse{{ID: "toolu_A", Name: "read", InputDigest: argsDigest}}},
		{"anthropic sse", "text/event-stream", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":3}}}\n\n" +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"read\",\"input\":{}}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"path\\\": \\\"/tmp\"}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"/x\\\", \\\"n\\\": 1}\"}}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			[]ToolUse{{ID: "toolu_B", Name: "read", InputDigest: argsDigest}}},
		{"chat json", "application/json",
			`{"object":"chat.completion","model":"gpt","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"call_C","type":"function","function":{"name":"read","arguments":"{\"path\":\"/tmp/x\",\"n\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
			[]ToolUse{{ID: "call_C", Name: "read", InputDigest: argsDigest}}},
		{"chat sse", "text/event-stream",
			"data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_D\",\"type\":\"function\",\"function\":{\"name\":\"read\",\"arguments\":\"\"}}]}}]}\n\n" +
				"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"n\\\":1,\"}}]}}]}\n\n" +
				"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"path\\\":\\\"/tmp/x\\\"}\"}}]}}]}\n\n" +
				"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
				"data: [DONE]\n\n",
			[]ToolUse{{ID: "call_D", Name: "read", InputDigest: argsDigest}}},
		{"responses json", "application/json",
			`{"object":"response","model":"gpt","output":[{"type":"message","content":[{"type":"output_text","text":"x"}]},{"type":"function_call","id":"fc_1","call_id":"call_E","name":"read","arguments":"{\"path\":\"/tmp/x\",\"n\":1}"}],"usage":{"input_tokens":1,"output_tokens":2}}`,
			[]ToolUse{{ID: "call_E", Name: "read", InputDigest: argsDigest}}},
		{"responses sse", "text/event-stream",
			"event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"call_id\":\"call_F\",\"name\":\"read\",\"arguments\":\"\"}}\n\n" +
				"event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"delta\":\"{\\\"n\\\"\"}\n\n" +
				"event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"item\":{\"type\":\"function_call\",\"id\":\"fc_2\",\"call_id\":\"call_F\",\"name\":\"read\",\"arguments\":\"{\\\"n\\\":1,\\\"path\\\":\\\"/tmp/x\\\"}\"}}\n\n" +
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n\n",
			[]ToolUse{{ID: "call_F", Name: "read", InputDigest: argsDigest}}},
		{"no tools", "application/json", `{"type":"message","content":[{"type":"text","text":"hi"}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, n := range []int{1, 7, len(tt.body)} {
				if got := meterTools(t, tt.ct, tt.body, n); !slices.Equal(got, tt.want) {
					t.Errorf("chunks of %d: got %+v, want %+v", n, got, tt.want)
				}
			}
		})
	}
}

// TestToolUsesOffByDefault: a meter without Tools looks for none (the
// proxy's path as it was).
func TestToolUsesOffByDefault(t *testing.T) {
	t.Parallel()
	m := NewMeter("application/json")
	_, _ = m.Write([]byte(`{"content":[{"type":"tool_use","id":"toolu_A","name":"x","input":{}}]}`))
	m.Usage() // must not call a nil Tools
}

func TestArgsDigestCanonical(t *testing.T) {
	t.Parallel()
	a := ArgsDigest([]byte(`{"b":[1,2.50],"a":{"y":"é","x":null}}`))
	b := ArgsDigest([]byte(" {\"a\":{\"x\":null,\"y\":\"\\u00e9\"},\n\"b\":[1, 2.50]} "))
	if a == "" || a != b {
		t.Errorf("same arguments digest differently: %q, %q", a, b)
	}
	if c := ArgsDigest([]byte(`{"b":[1,2.5],"a":{"y":"é","x":null}}`)); c == a {
		t.Error("2.50 and 2.5 are different text the agent sent, yet digest the same")
	}
	for _, bad := range []string{"", "{", `{"a":1} {}`, "nul"} {
		if d := ArgsDigest([]byte(bad)); d != "" {
			t.Errorf("ArgsDigest(%q) = %q, want none", bad, d)
		}
	}
}

func TestToolResultIDs(t *testing.T) {
	t.Parallel()
	body := `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_A","content":"the text \"tool_use_id\": \"toolu_FAKE\""}]},` +
		`{"role":"tool","tool_call_id" : "call_C","content":"x"}],"input":[{"type":"function_call_output","call_id":"call_E","output":"y"},{"x_id":"nope","session_id":"nope"}]}`
	var got []string
	ToolResultIDs([]byte(body), func(id string) bool { got = append(got, id); return true })
	want := []string{"toolu_A", "call_C", "call_E"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	n := 0
	ToolResultIDs([]byte(body), func(string) bool { n++; return false })
	if n != 1 {
		t.Errorf("yield false: %d calls, want 1", n)
	}
}

// FuzzToolScan: no input makes the scanners panic, an id they return is
// one that appears in the input, and a meter fed in chunks finds what it
// finds fed at once.
func FuzzToolScan(f *testing.F) {
	f.Add("text/event-stream", "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"read\"}}\n\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n", 3)
	f.Add("application/json", `{"content":[{"type":"tool_use","id":"t","name":"n","input":{}}],"tool_use_id":"x"}`, 5)
	f.Add("text/event-stream", "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\"}]},\"finish_reason\":\"x\"}]}\n\ndata: [DONE]\n", 2)
	long := strings.Repeat("x", 300)
	f.Add("text/event-stream", "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\""+long+"\"}}\n\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\""+long+"\",\"name\":\"n\"}}\n\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n", 7)
	f.Add("text/event-stream", "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\""+long+"\"}}]}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\""+long+"\"}}]}}]}\n\ndata: [DONE]\n", 11)
	f.Fuzz(func(t *testing.T, ct, body string, n int) {
		if n < 1 {
			n = 1
		}
		whole := meterTools(t, ct, body, len(body)+1)
		for _, u := range whole {
			if len(u.Name) > maxToolName || len(u.ID) > maxToolID {
				t.Errorf("tool call of a %d-byte id and %d-byte name, want at most %d and %d", len(u.ID), len(u.Name), maxToolID, maxToolName)
			}
		}
		chunked := meterTools(t, ct, body, n)
		if !slices.Equal(whole, chunked) {
			t.Errorf("in chunks of %d: %+v; at once: %+v", n, chunked, whole)
		}
		for _, u := range whole {
			// Decoding replaces invalid UTF-8 and reads escapes: only a
			// plain id must appear as it is.
			if !strings.ContainsAny(body, "\\\ufffd") && utf8.ValidString(body) && !strings.Contains(body, u.ID) {
				t.Errorf("tool id %q is not in the input", u.ID)
			}
		}
		ToolResultIDs([]byte(body), func(id string) bool {
			if !strings.Contains(body, `"`+id+`"`) {
				t.Errorf("result id %q is not a string of the input", id)
			}
			return true
		})
	})
}

// heapGrowth is how much more heap is live after feed than before it,
// while keep (what feed filled) is still reachable.
func heapGrowth(feed func() any) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep := feed()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// TestToolScanBoundsHostileAnswer: whatever a provider answers, the
// tool-call scanner keeps a bounded number of calls open, a bounded
// amount of their input, and short names and ids.
func TestToolScanBoundsHostileAnswer(t *testing.T) {
	const bound = 12 << 20
	t.Run("anthropic blocks left open", func(t *testing.T) {
		// 600 tool_use blocks started and never stopped, the first 100
		// with 256 KiB of input each (25 MiB unbounded).
		big := strings.Repeat("a", 256<<10)
		var m *Meter
		grew := heapGrowth(func() any {
			m = NewMeter("text/event-stream")
			m.Tools = func(ToolUse) {}
			for i := range 600 {
				_, _ = fmt.Fprintf(m, "data: {\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_%d\",\"name\":\"n\"}}\n\n", i, i)
				if i < 100 {
					_, _ = fmt.Fprintf(m, "data: {\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"%s\"}}\n\n", i, big)
				}
			}
			return m
		})
		if n := len(m.ts.blocks); n > maxToolUses {
			t.Errorf("%d tool_use blocks held open, want at most %d", n, maxToolUses)
		}
		if m.ts.pending > maxPendingInput {
			t.Errorf("%d bytes of input held, want at most %d", m.ts.pending, maxPendingInput)
		}
		if grew > bound {
			t.Errorf("heap grew by %d bytes, want at most %d", grew, bound)
		}
	})
	t.Run("chat name grown chunk by chunk", func(t *testing.T) {
		// 20 chunks each adding 1 MiB to one call's name.
		part := strings.Repeat("n", 1<<20)
		var got []ToolUse
		grew := heapGrowth(func() any {
			m := NewMeter("text/event-stream")
			m.Tools = func(u ToolUse) { got = append(got, u) }
			_, _ = m.Write([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_A\",\"function\":{\"name\":\"\"}}]}}]}\n\n"))
			for range 20 {
				_, _ = fmt.Fprintf(m, "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"%s\"}}]}}]}\n\n", part)
			}
			_, _ = m.Write([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"))
			return got
		})
		if len(got) != 1 || len(got[0].Name) != maxToolName || got[0].ID != "call_A" {
			t.Fatalf("got %d calls, name of %d bytes, want call_A with its name clipped to %d", len(got), len(got[0].Name), maxToolName)
		}
		if grew > bound {
			t.Errorf("heap grew by %d bytes, want at most %d", grew, bound)
		}
	})
	t.Run("long ids and names", func(t *testing.T) {
		long := strings.Repeat("x", maxToolID+1)
		name := strings.Repeat("é", maxToolName) // 2 bytes each
		body := `{"content":[{"type":"tool_use","id":"` + long + `","name":"a","input":{}},{"type":"tool_use","id":"toolu_B","name":"` + name + `","input":{}}]}`
		got := meterTools(t, "application/json", body, len(body))
		if len(got) != 1 || got[0].ID != "toolu_B" {
			t.Fatalf("got %+v, want toolu_B alone (an id over %d bytes is not read)", got, maxToolID)
		}
		if n := got[0].Name; len(n) != maxToolName || !utf8.ValidString(n) {
			t.Errorf("name of %d bytes (valid UTF-8 %v), want %d", len(n), utf8.ValidString(n), maxToolName)
		}
	})
}
