package provider

import (
	"strings"
	"testing"
)

// answers are JSON answers of each format and bodies built to trip a scan
// that is not a full JSON parser: usage-like text inside strings, escapes,
// nesting, duplicate and case-folded names, and invalid JSON of each kind.
var answers = []string{
	`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":250,"output_tokens":2,"cache_read_input_tokens":7,"cache_creation_input_tokens":3}}`,
	`{"id":"c","object":"chat.completion","model":"gpt-5","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":10,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":6}}}`,
	`{"id":"r","object":"response","model":"gpt-5","output":[],"usage":{"input_tokens":9,"output_tokens":1,"input_tokens_details":{"cached_tokens":2}}}`,
	`{"content":[{"text":"\"usage\":{\"input_tokens\":99} \\\" \u00e9 \ud83d\ude00 }]"}],"usage":{"input_tokens":1}}`,
	`{"content":{"usage":{"input_tokens":99}},"model":"m"}`,
	`{"usage":{"input_tokens":1},"usage":{"output_tokens":2}}`,
	`{"usage":{"input_tokens":1},"usage":null}`,
	`{"USAGE":{"input_tokens":5},"Model":"m","OBJECT":"chat.completion"}`,
	`{"us\u0061ge":{"input_tokens":5}}`,
	`{"uſage":{"input_tokens":5}}`,
	`{"model":5}`,
	`{"usage":{"input_tokens":1.5}}`,
	`{"usage":"none"}`,
	`{"a":[1,-0.5e+10,true,false,null,{},[],"x"],"model":"m"}`,
	`  {"model":"m"}  ` + "\n",
	`{}`, `null`, `[]`, `"x"`, `1`, ``, ` `,
	`{"model":"m"`, `{"model":"m"}x`, `{"model":"m",}`, `{"model" "m"}`, `{model:"m"}`,
	`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}",
	`{"a":[1,]}`, `{"a":[1}`, `{"a":{"b":1]}`, `{"a":{"b"}}`, `{"a":{,}}`, `{"a":[,1]}`, `{"a":"` + "\xff" + `","model":"m"}`,
	`{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`,
	`{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, maxDepth-1) + `1` + strings.Repeat("}", maxDepth-1) + `,"model":"deep"}`,
}

// TestAnswerUsageMatchesDecoding: the scan gives what decoding the whole
// answer gives, valid or not.
func TestAnswerUsageMatchesDecoding(t *testing.T) {
	t.Parallel()
	for _, a := range answers {
		got, gotOK := answerUsage([]byte(a))
		want, wantOK := wholeUsage([]byte(a))
		if got != want || gotOK != wantOK {
			t.Errorf("answerUsage(%.80q): got %+v, %v; want %+v, %v (decoded whole)", a, got, gotOK, want, wantOK)
		}
	}
	// A few the table means to cover, checked outright.
	if u, ok := answerUsage([]byte(answers[0])); !ok || u.Input != 250 || u.Output != 2 || u.CacheRead != 7 || u.CacheWrite != 3 || u.Model != "claude-sonnet-4-5" {
		t.Errorf("anthropic answer: got %+v, %v", u, ok)
	}
	if u, _ := answerUsage([]byte(answers[3])); u.Input != 1 {
		t.Errorf("usage text inside a string was read: got %+v, want input 1", u)
	}
	if u, _ := answerUsage([]byte(answers[5])); u.Input != 1 || u.Output != 2 {
		t.Errorf("a repeated usage member: got %+v, want both merged as decoding does", u)
	}
}

// FuzzAnswerUsage compares the scan with decoding the whole answer on
// arbitrary bytes.
func FuzzAnswerUsage(f *testing.F) {
	for _, a := range answers {
		if len(a) < 1000 {
			f.Add([]byte(a))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotOK := answerUsage(data)
		want, wantOK := wholeUsage(data)
		if got != want || gotOK != wantOK {
			t.Fatalf("answerUsage(%q): got %+v, %v; want %+v, %v (decoded whole)", data, got, gotOK, want, wantOK)
		}
	})
}

// BenchmarkAnswerUsage reads the usage of a ~6 KB answer by the scan and
// by decoding it whole, side by side.
func BenchmarkAnswerUsage(b *testing.B) {
	body := []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"` +
		strings.Repeat(`lorem ipsum \"dolor\" sit amet\n`, 200) + `"}],"stop_reason":"end_turn","usage":{"input_tokens":250,"output_tokens":2}}`)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := answerUsage(body); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := wholeUsage(body); !ok {
				b.Fatal("not read")
			}
		}
	})
}
