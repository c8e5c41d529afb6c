package mcp

import (
	"bufio"
	"encoding/json"
	"errors"
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
		{"depth past the limit", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, codeInvalidRequest},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, codeInvalidRequest},
		{"scalar", `"ping"`, codeInvalidRequest},
		{"empty", "  ", codeInvalidRequest},
		{"truncated", `{"jsonrpc":"2.0"`, codeParseError},
		{"trailing garbage", `{"jsonrpc":"2.0"} x`, codeParseError},
		{"invalid UTF-8 in a string", "{\"a\":\"\xc3\x28\"}", codeParseError},
		{"id of wrong type", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, 0},
		{"method of wrong type", `{"jsonrpc":"2.0","id":1,"method":5}`, codeInvalidRequest},
		{"duplicate argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"safe","text":"EVIL"}}}`, codeInvalidParams},
		{"duplicate deep in the arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[{"b":{"c":1,"c":2}}]}}}`, codeInvalidParams},
		{"arguments differing only in case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"text":"safe","Text":"EVIL"}}}`, codeInvalidParams},
		{"duplicate params member", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__safe","name":"a__evil"}}`, codeInvalidParams},
		{"params member in another case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","Arguments":{}}}`, codeInvalidParams},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, codeInvalidRequest},
		{"Method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, codeInvalidRequest},
		{"PARAMS", `{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":{}}`, codeInvalidRequest},
		{"ID", `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, codeInvalidRequest},
		{"JsonRpc", `{"JsonRpc":"2.0","id":1,"method":"ping"}`, codeInvalidRequest},
		{"unpaired surrogate in a key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"\ud800":1,"\udbff":2}}}`, codeInvalidParams},
		{"same key in sibling objects", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":{"t":1},"b":{"t":2}}}}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkMessage([]byte(tc.body))
			switch {
			case tc.code == 0 && err != nil:
				t.Errorf("got error %d %q, want accepted", err.code, err.msg)
			case tc.code != 0 && err == nil:
				t.Errorf("accepted, want error %d", tc.code)
			case tc.code != 0 && err.code != tc.code:
				t.Errorf("got error %d %q, want %d", err.code, err.msg, tc.code)
			}
		})
	}
}

// FuzzCheckMessage: whatever checkMessage accepts is one valid UTF-8 JSON
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
		m, err := checkMessage(body)
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

func TestFinalArgsIsStable(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `null`, `{}`, `{"b":1,"a":"<&>"}`, "{ \"x\" : [ 1 , 2.50 ] ,\n \"y\":\"\\u00e9\" }", `{"n":123456789012345678901234567890}`} {
		got, err := finalArgs(json.RawMessage(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		again, _ := json.Marshal(got)
		if string(again) != string(got) {
			t.Errorf("%q: encoding it again changes it: %s then %s", in, got, again)
		}
	}
	for _, in := range []string{`[1]`, `"x"`, `1`, `{"a":`} {
		if _, err := finalArgs(json.RawMessage(in)); err == nil {
			t.Errorf("%q: accepted, want an error", in)
		}
	}
}

func TestReadLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader("short\n"+long+"\nafter\nlast"), 16)
	for _, want := range []struct {
		line string
		err  error
	}{{"short", nil}, {"", errLineTooLong}, {"after", nil}, {"last", nil}} {
		line, err := readLine(r, 50)
		if string(line) != want.line || (want.err != nil && !errors.Is(err, want.err)) {
			t.Errorf("got %q %v, want %q %v", line, err, want.line, want.err)
		}
	}
}
