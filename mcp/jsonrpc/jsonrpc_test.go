package jsonrpc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/internal/strictjson"
)

func TestCheckMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		code       int // 0: accepted
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 0},
		{"leading space", " \n\t{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", 0},
		{"brackets in strings do not nest", `{"a":"` + strings.Repeat("[{", 200) + `"}`, 0},
		{"escaped quote in string", `{"a":"\"[[[[","b":[1]}`, 0},
		{"depth at the limit", `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`, 0},
		{"depth past the limit", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, CodeInvalidRequest},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest},
		{"scalar", `"ping"`, CodeInvalidRequest},
		{"empty", "  ", CodeInvalidRequest},
		{"truncated", `{"jsonrpc":"2.0"`, CodeParseError},
		{"trailing garbage", `{"jsonrpc":"2.0"} x`, CodeParseError},
		{"invalid UTF-8 in a string", "{\"a\":\"\xc3\x28\"}", CodeParseError},
		{"id of wrong type", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, 0},
		{"method of wrong type", `{"jsonrpc":"2.0","id":1,"method":5}`, CodeInvalidRequest},
		{"duplicate argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"safe","text":"EVIL"}}}`, CodeInvalidParams},
		{"duplicate deep in the arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[{"b":{"c":1,"c":2}}]}}}`, CodeInvalidParams},
		{"arguments differing only in case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"text":"safe","Text":"EVIL"}}}`, CodeInvalidParams},
		{"duplicate params member", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__safe","name":"a__evil"}}`, CodeInvalidParams},
		{"params member in another case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","Arguments":{}}}`, CodeInvalidParams},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest},
		{"Method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, CodeInvalidRequest},
		{"PARAMS", `{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":{}}`, CodeInvalidRequest},
		{"ID", `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, CodeInvalidRequest},
		{"JsonRpc", `{"JsonRpc":"2.0","id":1,"method":"ping"}`, CodeInvalidRequest},
		{"unpaired surrogate in a key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"\ud800":1,"\udbff":2}}}`, CodeInvalidParams},
		{"same key in sibling objects", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":{"t":1},"b":{"t":2}}}}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check([]byte(tc.body))
			switch {
			case tc.code == 0 && err != nil:
				t.Errorf("got error %d %q, want accepted", err.Code, err.Message)
			case tc.code != 0 && err == nil:
				t.Errorf("accepted, want error %d", tc.code)
			case tc.code != 0 && err.Code != tc.code:
				t.Errorf("got error %d %q, want %d", err.Code, err.Message, tc.code)
			}
		})
	}
}

// FuzzCheckMessage: whatever Check accepts is one valid UTF-8 JSON
// object no deeper than MaxDepth with no key twice in an object (in any
// case), and it never panics.
func FuzzCheckMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__b","arguments":{"x":[1,{"y":"z"}]}}}`,
		`[{"jsonrpc":"2.0"}]`, `{"a":"\"]]]"}`, "{\"a\":\"\xff\"}", `{`, ``, `{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Check(body)
		if err != nil {
			if m != nil {
				t.Fatal("got a message and an error")
			}
			return
		}
		var v map[string]any
		if e := json.Unmarshal(body, &v); e != nil {
			t.Fatalf("accepted a body that is not a JSON object: %v", e)
		}
		if d := depth(body); d > MaxDepth {
			t.Fatalf("accepted depth %d", d)
		}
		if err := strictjson.Check(body); err != nil {
			t.Fatalf("accepted a body two readers could read differently: %v", err)
		}
	})
}
