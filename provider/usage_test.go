package provider

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// Streams as the providers send them, trimmed to the events that matter
// plus a few that the meter must ignore.
const (
	anthropicSSE = "event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}` + "\n\n" +
		"event: content_block_start\n" +
		`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
		"event: ping\n" +
		`data: {"type": "ping"}` + "\n\n" +
		"event: content_block_delta\n" +
		`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, usage: {\"output_tokens\":999}"}}` + "\n\n" +
		"event: content_block_stop\n" +
		`data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" +
		`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}` + "\n\n" +
		"event: message_stop\n" +
		`data: {"type":"message_stop"}` + "\n\n"

	openAIChatSSE = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":4}}}` + "\n\n" +
		"data: [DONE]\n\n"

	openAIResponsesSSE = "event: response.created\n" +
		`data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","usage":null}}` + "\n\n" +
		"event: response.in_progress\n" +
		`data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","usage":null}}` + "\n\n" +
		"event: response.output_text.delta\n" +
		`data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}` + "\n\n" +
		"event: response.completed\n" +
		`data: {"type":"response.completed","sequence_number":3,"response":{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1-2025-04-14","usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":35}}}` + "\n\n"

	openAIResponsesIncompleteSSE = "event: response.created\n" +
		`data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_2","object":"response","status":"in_progress","model":"o4-mini","usage":null}}` + "\n\n" +
		"event: response.incomplete\n" +
		`data: {"type":"response.incomplete","sequence_number":1,"response":{"id":"resp_2","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"o4-mini","usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":0},"output_tokens":64,"total_tokens":104}}}` + "\n\n"
)

var (
	// OpenAI reports prompt/input tokens including cached ones; the meter
	// stores the uncached part, like Anthropic, so prices apply once each.
	anthropicSSEUsage  = Usage{Model: "claude-sonnet-4-5-20250929", Input: 25, Output: 15, CacheRead: 2000, CacheWrite: 100, Complete: true}
	openAIChatSSEUsage = Usage{Model: "gpt-4o-2024-08-06", Input: 8, Output: 7, CacheRead: 4, Complete: true}
	responsesSSEUsage  = Usage{Model: "gpt-4.1-2025-04-14", Input: 20, Output: 5, CacheRead: 10, Complete: true}
	incompleteUsage    = Usage{Model: "o4-mini", Input: 40, Output: 64, Complete: false}
)

// meter feeds chunks to a new meter and returns its usage.
func meter(contentType string, chunks ...[]byte) Usage {
	m := NewMeter(contentType)
	for _, c := range chunks {
		if n, err := m.Write(c); n != len(c) || err != nil {
			panic("Meter.Write must consume everything and never fail")
		}
	}
	return m.Usage()
}

func byteByByte(s string) [][]byte {
	out := make([][]byte, len(s))
	for i := range len(s) {
		out[i] = []byte{s[i]}
	}
	return out
}

func TestMeterSSE(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		want   Usage
	}{
		{"anthropic", anthropicSSE, anthropicSSEUsage},
		{"openai chat", openAIChatSSE, openAIChatSSEUsage},
		{"openai responses", openAIResponsesSSE, responsesSSEUsage},
		{"openai responses incomplete", openAIResponsesIncompleteSSE, incompleteUsage},
		{"anthropic CRLF", strings.ReplaceAll(anthropicSSE, "\n", "\r\n"), anthropicSSEUsage},
		{"openai chat CRLF", strings.ReplaceAll(openAIChatSSE, "\n", "\r\n"), openAIChatSSEUsage},
		{"openai responses CRLF", strings.ReplaceAll(openAIResponsesSSE, "\n", "\r\n"), responsesSSEUsage},
		{
			// The event name alone names the event when data has no type.
			"anthropic type from event line",
			"event: message_start\ndata: {\"message\":{\"model\":\"claude-haiku-4\",\"usage\":{\"input_tokens\":3}}}\n\n" +
				"event: message_delta\ndata: {\"usage\":{\"output_tokens\":4}}\n\nevent: message_stop\ndata: {}\n\n",
			Usage{Model: "claude-haiku-4", Input: 3, Output: 4, Complete: true},
		},
		{
			// A later message_delta that reports input counts again
			// replaces them; zeros do not erase what was read.
			"anthropic delta updates input",
			"data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5}}}\n\n" +
				"data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":11,\"output_tokens\":2,\"cache_read_input_tokens\":0}}\n\n",
			Usage{Model: "m", Input: 11, Output: 2, CacheRead: 5},
		},
		{
			"anthropic delta without usage",
			"data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":2,\"output_tokens\":1}}}\n" +
				"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\ndata: {\"type\":\"message_stop\"}\n",
			Usage{Model: "m", Input: 2, Output: 1, Complete: true},
		},
		{
			// An event name does not outlive its event.
			"event name reset by blank line",
			"event: message_stop\n\ndata: {}\n\n",
			Usage{},
		},
		{
			"comments and unknown fields ignored",
			": keep-alive\nid: 7\nretry: 1000\ndata: not json\ndata: {broken\ndata: [DONE]\n",
			Usage{Complete: true},
		},
		{
			"data without space after colon",
			"data:{\"type\":\"message_stop\"}\n",
			Usage{Complete: true},
		},
		{
			"response.failed is not complete",
			"data: {\"type\":\"response.failed\",\"response\":{\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
			Usage{Model: "gpt-5", Input: 9, Output: 1},
		},
		{"empty", "", Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := meter("text/event-stream", []byte(tt.stream)); got != tt.want {
				t.Fatalf("one chunk: got %+v, want %+v", got, tt.want)
			}
			if got := meter("text/event-stream", byteByByte(tt.stream)...); got != tt.want {
				t.Fatalf("byte by byte: got %+v, want %+v", got, tt.want)
			}
			for i := 0; i <= len(tt.stream); i++ {
				if got := meter("text/event-stream", []byte(tt.stream[:i]), []byte(tt.stream[i:])); got != tt.want {
					t.Fatalf("split at %d: got %+v, want %+v", i, got, tt.want)
				}
			}
		})
	}
}

func TestMeterContentType(t *testing.T) {
	t.Parallel()
	body := `{"model":"m","usage":{"input_tokens":1,"output_tokens":2}}`
	sse := "data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n"
	tests := []struct {
		contentType string
		sse         bool
	}{
		{"text/event-stream", true},
		{"text/event-stream; charset=utf-8", true},
		{"  Text/Event-Stream", true},
		{"application/json", false},
		{"", false},
		{"text/plain", false},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			t.Parallel()
			in, want := body, Usage{Model: "m", Input: 1, Output: 2, Complete: true}
			if tt.sse {
				in, want = sse, Usage{Model: "m", Input: 1}
			}
			if got := meter(tt.contentType, []byte(in)); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestMeterTruncated cuts each stream anywhere before the end of the line
// that completes it: no cut may be reported complete, and the full line
// must be.
func TestMeterTruncated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stream, last string
	}{
		{"anthropic", anthropicSSE, `data: {"type":"message_stop"}`},
		{"openai chat", openAIChatSSE, "data: [DONE]"},
		{"openai responses", openAIResponsesSSE, `data: {"type":"response.completed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := strings.LastIndex(tt.stream, tt.last)
			end := start + strings.IndexByte(tt.stream[start:], '\n')
			if start < 0 || end < start {
				t.Fatalf("stream lacks its final line %q", tt.last)
			}
			for cut := 0; cut <= end; cut++ {
				if got := meter("text/event-stream", []byte(tt.stream[:cut])); got.Complete {
					t.Fatalf("cut at %d of %d: got Complete true, want false (%+v)", cut, len(tt.stream), got)
				}
			}
			if got := meter("text/event-stream", []byte(tt.stream[:end+1])); !got.Complete {
				t.Fatalf("through the final line: got Complete false, want true")
			}
		})
	}
	// Usage read before the cut is still reported.
	cut := strings.Index(anthropicSSE, "event: message_stop")
	want := anthropicSSEUsage
	want.Complete = false
	if got := meter("text/event-stream", []byte(anthropicSSE[:cut])); got != want {
		t.Fatalf("anthropic without message_stop: got %+v, want %+v", got, want)
	}
}

func TestMeterLongLine(t *testing.T) {
	t.Parallel()
	// deltaLine is a data line of exactly n bytes (before its newline)
	// that reports 99 output tokens.
	deltaLine := func(n int) string {
		head, tail := `data: {"type":"message_delta","pad":"`, `","usage":{"output_tokens":99}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	start := "data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n"
	stop := "data: {\"type\":\"message_stop\"}\n"
	tests := []struct {
		name   string
		stream string
		want   Usage
	}{
		{"at the bound", start + deltaLine(maxLine) + "\n" + stop, Usage{Model: "m", Input: 7, Output: 99, Complete: true}},
		{"one over the bound", start + deltaLine(maxLine+1) + "\n" + stop, Usage{Model: "m", Input: 7, Output: 1, Complete: true}},
		// The CR of a CRLF line counts toward the bound.
		{"CRLF at the bound", start + deltaLine(maxLine-1) + "\r\n" + stop, Usage{Model: "m", Input: 7, Output: 99, Complete: true}},
		{"CRLF over the bound", start + deltaLine(maxLine) + "\r\n" + stop, Usage{Model: "m", Input: 7, Output: 1, Complete: true}},
		{"junk far over the bound", start + "data: " + strings.Repeat("{", 2*maxLine) + "\n" + stop, Usage{Model: "m", Input: 7, Output: 1, Complete: true}},
		// An over-long line that never ends hides nothing after it.
		{"unterminated", start + deltaLine(maxLine+10), Usage{Model: "m", Input: 7, Output: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			long := strings.Index(tt.stream, "\n") + 1
			splits := []int{0, 1, long, long + 1, long + maxLine/2, long + maxLine - 1, long + maxLine, long + maxLine + 1, len(tt.stream) - len(stop), len(tt.stream)}
			for _, i := range splits {
				i = min(i, len(tt.stream))
				if got := meter("text/event-stream", []byte(tt.stream[:i]), []byte(tt.stream[i:])); got != tt.want {
					t.Fatalf("split at %d: got %+v, want %+v", i, got, tt.want)
				}
			}
			// In many small writes, as a slow upstream sends it.
			var chunks [][]byte
			for s := tt.stream; len(s) > 0; {
				n := min(len(s), 64<<10+3)
				chunks, s = append(chunks, []byte(s[:n])), s[n:]
			}
			if got := meter("text/event-stream", chunks...); got != tt.want {
				t.Fatalf("64 KiB chunks: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMeterJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want Usage
	}{
		{
			"anthropic",
			`{"id":"msg_01","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":40}}`,
			Usage{Model: "claude-opus-4-1-20250805", Input: 10, Output: 40, CacheRead: 30, CacheWrite: 20, Complete: true},
		},
		{
			"openai chat",
			`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":60,"audio_tokens":0}}}`,
			Usage{Model: "gpt-4o-mini", Input: 40, Output: 50, CacheRead: 60, Complete: true},
		},
		{
			"openai chat without details",
			`{"object":"chat.completion","model":"gpt-4o","usage":{"prompt_tokens":3,"completion_tokens":4}}`,
			Usage{Model: "gpt-4o", Input: 3, Output: 4, Complete: true},
		},
		{
			"openai chat zero usage",
			`{"object":"chat.completion","model":"gpt-4o","usage":{"prompt_tokens":0,"completion_tokens":0,"input_tokens":9}}`,
			Usage{Model: "gpt-4o", Complete: true},
		},
		{
			"openai responses",
			`{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":5,"total_tokens":35}}`,
			Usage{Model: "gpt-4.1", Input: 20, Output: 5, CacheRead: 10, Complete: true},
		},
		{"no usage", `{"model":"m"}`, Usage{Model: "m", Complete: true}},
		{"not json", `<html>bad gateway</html>`, Usage{}},
		{"truncated json", `{"model":"m","usage":{"input_tokens":1`, Usage{}},
		{"empty", ``, Usage{}},
		{"too large", `{"model":"m","pad":"` + strings.Repeat("x", maxLine) + `"}`, Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := meter("application/json", []byte(tt.body)); got != tt.want {
				t.Fatalf("one chunk: got %+v, want %+v", got, tt.want)
			}
			if len(tt.body) > 1<<10 {
				return
			}
			if got := meter("application/json", byteByByte(tt.body)...); got != tt.want {
				t.Fatalf("byte by byte: got %+v, want %+v", got, tt.want)
			}
			for i := 0; i <= len(tt.body); i++ {
				if got := meter("application/json", []byte(tt.body[:i]), []byte(tt.body[i:])); got != tt.want {
					t.Fatalf("split at %d: got %+v, want %+v", i, got, tt.want)
				}
			}
		})
	}
}

func TestMeterUsageTwice(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/json", "text/event-stream"} {
		m := NewMeter(ct)
		if ct == "application/json" {
			m.Write([]byte(`{"model":"m","usage":{"input_tokens":5}}`))
		} else {
			m.Write([]byte(anthropicSSE))
		}
		first, second := m.Usage(), m.Usage()
		if first != second {
			t.Fatalf("%s: second Usage: got %+v, want %+v", ct, second, first)
		}
		if first.Input == 0 {
			t.Fatalf("%s: got Input 0, want the body's count", ct)
		}
	}
}

// TestMeterDoesNotModifyInput checks that Write leaves the caller's buffer
// alone: the same bytes go on to the client.
func TestMeterDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/json", "text/event-stream"} {
		in := []byte(strings.ReplaceAll(anthropicSSE, "\n", "\r\n"))
		orig := bytes.Clone(in)
		m := NewMeter(ct)
		for i := 0; i < len(in); i += 7 {
			m.Write(in[i:min(i+7, len(in))])
		}
		m.Usage()
		if !bytes.Equal(in, orig) {
			t.Fatalf("%s: Write changed its input", ct)
		}
	}
}

func TestRequestModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body, want string
	}{
		{`{"model":"claude-sonnet-4-5","max_tokens":10}`, "claude-sonnet-4-5"},
		{`{"messages":[],"model":"gpt-4o","stream":true}`, "gpt-4o"},
		{`{"model":"a","model":"b"}`, "b"},
		{`{}`, ""},
		{`{"model":5}`, ""},
		{`{"model":null}`, ""},
		{`[]`, ""},
		{`not json`, ""},
		{``, ""},
		{`{"model":"m"`, ""},
	}
	for _, tt := range tests {
		if got := RequestModel([]byte(tt.body)); got != tt.want {
			t.Errorf("RequestModel(%q): got %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestIsStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want bool
	}{
		{`{"model":"m","stream":true}`, true},
		{`{"stream":true,"stream_options":{"include_usage":true}}`, true},
		{`{"stream":false}`, false},
		{`{"model":"m"}`, false},
		{`{"stream":"true"}`, false},
		{`{"stream":1}`, false},
		{`{"stream":null}`, false},
		{`{"stream":true`, false},
		{``, false},
		{`true`, false},
	}
	for _, tt := range tests {
		if got := IsStream([]byte(tt.body)); got != tt.want {
			t.Errorf("IsStream(%q): got %v, want %v", tt.body, got, tt.want)
		}
	}
}

// FuzzMeter feeds arbitrary bytes as an SSE stream (and as a JSON body)
// in two chunks split at an arbitrary point and in one chunk: the usage
// must be the same, and nothing may panic.
func FuzzMeter(f *testing.F) {
	for _, s := range []string{anthropicSSE, openAIChatSSE, openAIResponsesSSE, openAIResponsesIncompleteSSE} {
		f.Add([]byte(s), uint(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		i := int(split % uint(len(data)+1))
		for _, ct := range []string{"text/event-stream", "application/json"} {
			whole := meter(ct, data)
			if got := meter(ct, data[:i], data[i:]); got != whole {
				t.Fatalf("%s split at %d: got %+v, want %+v (one chunk)", ct, i, got, whole)
			}
			if len(data) <= 512 {
				if got := meter(ct, byteByByte(string(data))...); got != whole {
					t.Fatalf("%s byte by byte: got %+v, want %+v (one chunk)", ct, got, whole)
				}
			}
		}
	})
}

// TestMeterJSONBufferReused: the buffer a JSON body is gathered in goes
// back to its pool after Usage, and the next body starts empty in it.
// The allocation count is a ceiling, not a timing: the meter's own
// copy of the body was one more per answer.
func TestMeterJSONBufferReused(t *testing.T) {
	answer := func(in int) []byte {
		return []byte(`{"model":"claude-x","content":[{"type":"text","text":"` + strings.Repeat("x", 900) +
			`"}],"usage":{"input_tokens":` + strconv.Itoa(in) + `,"output_tokens":2}}`)
	}
	var m Meter
	for _, in := range []int{10, 20, 30} {
		m.Reset("application/json")
		body := answer(in)
		_, _ = m.Write(body[:100])
		_, _ = m.Write(body[100:])
		if u := m.Usage(); u.Input != int64(in) || u.Model != "claude-x" || !u.Complete {
			t.Fatalf("answer %d: got %+v, want %d input tokens of claude-x, complete", in, u, in)
		}
	}
	if raceEnabled {
		return // the pool drops buffers at random under -race
	}
	body := answer(40)
	n := testing.AllocsPerRun(100, func() {
		m.Reset("application/json")
		_, _ = m.Write(body)
		m.Usage()
	})
	// answerUsage's: its wire body, the usage and the model's string.
	if n > 3 {
		t.Errorf("a JSON answer's usage: got %v allocations, want at most 3", n)
	}
}
