package fakeprovider

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

const testKey = "sk-test-fake"

// sseEvent is one parsed event of a stream.
type sseEvent struct {
	Name string
	Data string
}

// readSSE parses a whole stream; err is the read error that ended it, if
// any besides EOF.
func readSSE(r io.Reader) (events []sseEvent, err error) {
	sc := bufio.NewScanner(r)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Data != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.Data = strings.TrimPrefix(line, "data: ")
		}
	}
	return events, sc.Err()
}

func names(evs []sseEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

func post(t *testing.T, srv *httptest.Server, path string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var (
	anthropicHdr = map[string]string{"X-Api-Key": testKey, "Anthropic-Version": "2023-06-01"}
	openaiHdr    = map[string]string{"Authorization": "Bearer " + testKey}
)

func decode(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAuthErrorShapes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testKey))
	defer srv.Close()
	for _, tc := range []struct {
		path string
		hdr  map[string]string
		want string // a JSON path that must be set, as "a.b"
	}{
		{"/v1/messages", map[string]string{"X-Api-Key": "wrong", "Anthropic-Version": "2023-06-01"}, "error.type=authentication_error"},
		{"/v1/messages", map[string]string{"Authorization": "Bearer " + testKey, "Anthropic-Version": "2023-06-01"}, "error.type=authentication_error"},
		{"/v1/chat/completions", map[string]string{"Authorization": "Bearer wrong"}, "error.code=invalid_api_key"},
		{"/v1/responses", map[string]string{"X-Api-Key": testKey}, "error.code=invalid_api_key"},
	} {
		resp := post(t, srv, tc.path, tc.hdr, `{"model":"m"}`)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %v: got status %d, want 401", tc.path, tc.hdr, resp.StatusCode)
			continue
		}
		m := decode(t, resp.Body)
		field, want, _ := strings.Cut(tc.want, "=")
		a, b, _ := strings.Cut(field, ".")
		if got := m[a].(map[string]any)[b]; got != want {
			t.Errorf("%s: got %s %v, want %s", tc.path, field, got, want)
		}
	}
}

func TestAnthropic(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	p.Usage.Store(&Usage{Input: 7, Output: 9, CacheRead: 4, CacheWrite: 2})
	srv := httptest.NewServer(p)
	defer srv.Close()

	resp := post(t, srv, "/v1/messages", anthropicHdr, `{"model":"claude-x","max_tokens":5,"messages":[]}`)
	m := decode(t, resp.Body)
	u := m["usage"].(map[string]any)
	if u["input_tokens"] != 7.0 || u["output_tokens"] != 9.0 || u["cache_read_input_tokens"] != 4.0 || u["cache_creation_input_tokens"] != 2.0 {
		t.Errorf("JSON usage: got %v", u)
	}
	if m["model"] != "claude-x" || m["content"].([]any)[0].(map[string]any)["text"] != AnswerText(DefaultTextEvents) {
		t.Errorf("JSON answer: got %v", m)
	}

	p.TextEvents.Store(2)
	resp = post(t, srv, "/v1/messages", anthropicHdr, `{"model":"claude-x","stream":true,"messages":[]}`)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type: got %q, want text/event-stream", ct)
	}
	evs, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if !slices.Equal(names(evs), want) {
		t.Errorf("events: got %v, want %v", names(evs), want)
	}
	for _, e := range evs {
		var v struct{ Type string }
		if err := json.Unmarshal([]byte(e.Data), &v); err != nil || v.Type != e.Name {
			t.Errorf("event %s: data type %q (%v), want the event name", e.Name, v.Type, err)
		}
	}
	if !strings.Contains(evs[6].Data, `"output_tokens":9`) {
		t.Errorf("message_delta: got %s, want output_tokens 9", evs[6].Data)
	}

	resp = post(t, srv, "/v1/messages/count_tokens", anthropicHdr, `{"model":"claude-x","messages":[]}`)
	if m := decode(t, resp.Body); m["input_tokens"] != 7.0 {
		t.Errorf("count_tokens: got %v, want input_tokens 7", m)
	}

	resp = post(t, srv, "/v1/messages", map[string]string{"X-Api-Key": testKey}, `{"model":"claude-x"}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("without anthropic-version: got %d, want 400", resp.StatusCode)
	}

	reqs := p.Requests()
	if len(reqs) != 4 || reqs[0].Key != testKey || reqs[1].Usage == nil || reqs[1].Usage.Output != 9 || len(reqs[1].Events) != len(want) {
		t.Errorf("request log: got %+v", reqs)
	}
}

func TestToolUse(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	cmd := `echo "hi" > /tmp/x`
	p.ToolUse.Store(&cmd)
	srv := httptest.NewServer(p)
	defer srv.Close()

	resp := post(t, srv, "/v1/messages", anthropicHdr, `{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}`)
	evs, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var input strings.Builder
	var stop string
	for _, e := range evs {
		var v struct {
			ContentBlock struct{ Type, Name string } `json:"content_block"`
			Delta        struct {
				Type        string `json:"type"`
				PartialJSON string `json:"partial_json"`
				StopReason  string `json:"stop_reason"`
			} `json:"delta"`
		}
		json.Unmarshal([]byte(e.Data), &v)
		switch e.Name {
		case "content_block_start":
			if v.ContentBlock.Type != "tool_use" || v.ContentBlock.Name != "Bash" {
				t.Errorf("content_block_start: got %s", e.Data)
			}
		case "content_block_delta":
			if v.Delta.Type != "input_json_delta" {
				t.Errorf("delta: got %s, want input_json_delta", e.Data)
			}
			input.WriteString(v.Delta.PartialJSON)
		case "message_delta":
			stop = v.Delta.StopReason
		}
	}
	var in map[string]string
	if err := json.Unmarshal([]byte(input.String()), &in); err != nil || in["command"] != cmd {
		t.Errorf("tool input: got %q (%v), want command %q", input.String(), err, cmd)
	}
	if stop != "tool_use" {
		t.Errorf("stop_reason: got %q, want tool_use", stop)
	}

	// Once the tool ran, the answer is text.
	resp = post(t, srv, "/v1/messages", anthropicHdr, `{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"ok"}]}]}`)
	if m := decode(t, resp.Body); m["stop_reason"] != "end_turn" {
		t.Errorf("after a tool result: got %v, want end_turn", m)
	}
}

// TestResponsesToolUse: with ToolUse set, a Responses stream is a
// function_call of Codex's exec_command tool; once the input carries its
// output, the answer is text.
func TestResponsesToolUse(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	cmd := "touch marker"
	p.ToolUse.Store(&cmd)
	srv := httptest.NewServer(p)
	defer srv.Close()

	resp := post(t, srv, "/v1/responses", openaiHdr, `{"model":"m","stream":true,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"go"}]}]}`)
	evs, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var call struct{ Type, Name, Arguments, CallID string }
	var completed bool
	for _, e := range evs {
		var v struct {
			Item struct {
				Type, Name, Arguments string
				CallID                string `json:"call_id"`
			} `json:"item"`
		}
		json.Unmarshal([]byte(e.Data), &v)
		switch e.Name {
		case "response.output_item.done":
			call = struct{ Type, Name, Arguments, CallID string }{v.Item.Type, v.Item.Name, v.Item.Arguments, v.Item.CallID}
		case "response.completed":
			completed = true
		}
	}
	var args map[string]string
	json.Unmarshal([]byte(call.Arguments), &args)
	if call.Type != "function_call" || call.Name != "exec_command" || args["cmd"] != cmd || call.CallID == "" || !completed {
		t.Errorf("got item %+v (completed %v), want a function_call of exec_command with cmd %q, then response.completed", call, completed, cmd)
	}

	resp = post(t, srv, "/v1/responses", openaiHdr, `{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":"ok"}]}`)
	m := decode(t, resp.Body)
	out, _ := m["output"].([]any)
	if len(out) != 1 || out[0].(map[string]any)["type"] != "message" {
		t.Errorf("after a function_call_output: got output %v, want one message", m["output"])
	}
}

func TestChatCompletions(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	p.Usage.Store(&Usage{Input: 30, Output: 8, CacheRead: 10})
	srv := httptest.NewServer(p)
	defer srv.Close()

	resp := post(t, srv, "/v1/chat/completions", openaiHdr, `{"model":"gpt-4.1","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	evs, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := len(evs)
	if n < 3 || evs[n-1].Data != "[DONE]" {
		t.Fatalf("stream: got %v, want chunks then [DONE]", evs)
	}
	var last struct {
		Object  string
		Choices []any
		Usage   struct {
			PromptTokens        int `json:"prompt_tokens"`
			CompletionTokens    int `json:"completion_tokens"`
			TotalTokens         int `json:"total_tokens"`
			PromptTokensDetails struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		}
	}
	if err := json.Unmarshal([]byte(evs[n-2].Data), &last); err != nil {
		t.Fatal(err)
	}
	if last.Object != "chat.completion.chunk" || last.Choices == nil || len(last.Choices) != 0 ||
		last.Usage.PromptTokens != 30 || last.Usage.CompletionTokens != 8 || last.Usage.TotalTokens != 38 || last.Usage.PromptTokensDetails.CachedTokens != 10 {
		t.Errorf("usage chunk: got %s", evs[n-2].Data)
	}

	resp = post(t, srv, "/v1/chat/completions", openaiHdr, `{"model":"gpt-4.1","stream":true,"messages":[]}`)
	evs, _ = readSSE(resp.Body)
	for _, e := range evs {
		if strings.Contains(e.Data, `"usage"`) {
			t.Errorf("without include_usage: got a chunk with usage: %s", e.Data)
		}
	}

	resp = post(t, srv, "/v1/chat/completions", openaiHdr, `{"model":"gpt-4.1","messages":[]}`)
	m := decode(t, resp.Body)
	if m["object"] != "chat.completion" || m["usage"].(map[string]any)["prompt_tokens"] != 30.0 {
		t.Errorf("JSON answer: got %v", m)
	}
}

func TestResponses(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	p.Usage.Store(&Usage{Input: 40, Output: 6, CacheRead: 12, Reasoning: 3})
	p.TextEvents.Store(2)
	srv := httptest.NewServer(p)
	defer srv.Close()

	resp := post(t, srv, "/v1/responses", openaiHdr, `{"model":"gpt-4.1","stream":true,"input":"hi"}`)
	evs, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.completed"}
	if !slices.Equal(names(evs), want) {
		t.Fatalf("events: got %v, want %v", names(evs), want)
	}
	for i, e := range evs {
		var v struct {
			Type string `json:"type"`
			Seq  int    `json:"sequence_number"`
		}
		json.Unmarshal([]byte(e.Data), &v)
		if v.Type != e.Name || v.Seq != i {
			t.Errorf("event %d: got type %q seq %d, want %q %d", i, v.Type, v.Seq, e.Name, i)
		}
	}
	var done struct {
		Response struct {
			Status string
			Usage  map[string]any
		}
	}
	json.Unmarshal([]byte(evs[len(evs)-1].Data), &done)
	if done.Response.Status != "completed" || done.Response.Usage["input_tokens"] != 40.0 || done.Response.Usage["total_tokens"] != 46.0 {
		t.Errorf("response.completed: got %+v", done.Response)
	}

	resp = post(t, srv, "/v1/responses", openaiHdr, `{"model":"gpt-4.1","input":"hi"}`)
	if m := decode(t, resp.Body); m["object"] != "response" || m["status"] != "completed" {
		t.Errorf("JSON answer: got %v", m)
	}
}

func TestDieAfter(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	p.DieAfter.Store(3)
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp := post(t, srv, "/v1/messages", anthropicHdr, `{"model":"m","stream":true,"messages":[]}`)
	evs, err := readSSE(resp.Body)
	if err == nil || errors.Is(err, io.EOF) {
		t.Errorf("read: got err %v, want an unexpected end", err)
	}
	if len(evs) != 3 {
		t.Errorf("got %d events, want 3", len(evs))
	}
	if r := p.Requests()[0]; !r.Aborted {
		t.Errorf("request log: got Aborted false, want true")
	}
}

func TestEchoKey(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	p.EchoKey.Store(true)
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp := post(t, srv, "/v1/messages", anthropicHdr, `{"model":"m","messages":[]}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Fake-Echo-Key") != testKey || !strings.Contains(string(body), testKey) {
		t.Errorf("echo: got header %q body %s, want the key in both", resp.Header.Get("X-Fake-Echo-Key"), body)
	}
	resp = post(t, srv, "/v1/chat/completions", openaiHdr, `{"model":"m","stream":true,"messages":[]}`)
	body, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(body), testKey) {
		t.Errorf("echo in a stream: got %s, want the key", body)
	}
	p.EchoEncoded.Store(true)
	resp = post(t, srv, "/v1/messages", anthropicHdr, `{"model":"m","messages":[]}`)
	body, _ = io.ReadAll(resp.Body)
	h := hex.EncodeToString([]byte(testKey))
	if !strings.Contains(resp.Header.Get("X-Fake-Echo-Key"), h) || !strings.Contains(string(body), h) || !strings.Contains(string(body), `\\u0073`) {
		t.Errorf("encoded echo: got header %q body %s, want the key in hex and \\u-escaped in both", resp.Header.Get("X-Fake-Echo-Key"), body)
	}
}

func TestCancelIsRecorded(t *testing.T) {
	t.Parallel()
	p := New(testKey)
	p.TextEvents.Store(50)
	p.EventDelay.Store(20 * time.Millisecond)
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp := post(t, srv, "/v1/messages", anthropicHdr, `{"model":"m","stream":true,"messages":[]}`)
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if reqs, ok := p.WaitFor(ctx, func(r []Request) bool { return !r[0].Cancelled.IsZero() }); !ok {
		t.Errorf("got no cancellation within 5s: %+v", reqs[0])
	}
}
