package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	rpc := Checker{Exact: map[string][]string{"": {"jsonrpc", "id", "method", "params"}, "params": {"name", "arguments"}}}
	for _, tc := range []struct {
		name, in string
		c        Checker
		path     string // of the error; "-" for none
		msg      string // part of the error's message
	}{
		{"flat", `{"a":1,"b":2}`, Checker{}, "-", ""},
		{"same key in two objects", `{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}`, Checker{}, "-", ""},
		{"scalars and arrays", `[1,"a",true,null,{"a":[]},[]]`, Checker{}, "-", ""},
		{"duplicate at the top", `{"text":"safe","text":"EVIL"}`, Checker{}, "", `the key "text" appears twice in the top-level object`},
		{"duplicate deep", `{"params":{"arguments":{"x":[{"a":1},{"a":1,"a":2}]}}}`, Checker{}, "params.arguments.x[1]", "appears twice"},
		{"duplicate after an escape", `{"text":1,"te\u0078t":2}`, Checker{}, "", `"text" appears twice`},
		{"escaped slash", `{"a/b":1,"a\/b":2}`, Checker{}, "", "appears twice"},
		{"case variant", `{"text":"safe","Text":"EVIL"}`, Checker{}, "", `"text" and "Text"`},
		{"Kelvin sign folds to k", `{"k":1,"\u212a":2}`, Checker{}, "", "differ only in case"},
		{"long s folds to s", `{"s":1,"ſ":2}`, Checker{}, "", "differ only in case"},
		{"unpaired high surrogate", `{"a\ud800":1}`, Checker{}, "", "unpaired UTF-16 surrogate"},
		{"unpaired low surrogate", `{"\udc00":1}`, Checker{}, "", "unpaired UTF-16 surrogate"},
		{"two surrogates that decode alike", `{"\ud800":1,"\udbff":2}`, Checker{}, "", "not valid Unicode"},
		{"surrogate pair", `{"\ud83d\ude00":1,"😀x":2}`, Checker{}, "-", ""},
		{"surrogate pair and its character", `{"\ud83d\ude00":1,"😀":2}`, Checker{}, "", "appears twice"},
		{"invalid UTF-8 in a key", "{\"a\xff\":1}", Checker{}, "", "not valid Unicode"},
		{"unpaired surrogate in a value is left to the value's reader", `{"a":"\ud800"}`, Checker{}, "-", ""},
		{"envelope name in another case", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, rpc, "", `"Method" in the top-level object must be written "method"`},
		{"envelope name in capitals", `{"jsonrpc":"2.0","ID":1,"method":"x"}`, rpc, "", `must be written "id"`},
		{"JsonRpc", `{"JsonRpc":"2.0"}`, rpc, "", `must be written "jsonrpc"`},
		{"params member in another case", `{"params":{"Name":"x"}}`, rpc, "params", `must be written "name"`},
		{"exact names elsewhere are free", `{"params":{"arguments":{"Name":"x","ID":1}}}`, rpc, "-", ""},
		{"levels", `{"a":{"b":1,"b":2}}`, Checker{Levels: 1}, "-", ""},
		{"levels top", `{"a":1,"a":{}}`, Checker{Levels: 1}, "", "appears twice"},
		{"duplicate in a large object", `{` + largeObject(40) + `,"k7":1}`, Checker{}, "", `"k7" appears twice`},
		{"case variant in a large object", `{` + largeObject(40) + `,"K39":1}`, Checker{}, "", "differ only in case"},
		{"odd names in the path", `{"a.b":{"x":{"k":1,"k":1}}}`, Checker{}, `["a.b"].x`, "appears twice"},
		{"truncated", `{"a":`, Checker{}, "a", "not valid JSON"},
		{"trailing data", `{} x`, Checker{}, "", "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Check([]byte(tc.in))
			if tc.path == "-" {
				if err != nil {
					t.Fatalf("got error %q, want none", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Path != tc.path || !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("got path %q, error %q; want path %q and a message with %q", e.Path, e.Error(), tc.path, tc.msg)
			}
		})
	}
}

// largeObject is n members k0..k(n-1), without braces.
func largeObject(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	return b.String()
}

// goDuplicates reports whether an object of data has two members that
// encoding/json reads as one name, or as one struct field (it matches
// field names as bytes.EqualFold does): what Check must refuse. data must
// be valid JSON.
func goDuplicates(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference decoder: %v", err)
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return false
		}
		dup := false
		switch d {
		case '{':
			var keys []string
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatalf("reference decoder: %v", err)
				}
				for _, prev := range keys {
					if strings.EqualFold(prev, k.(string)) {
						dup = true
					}
				}
				keys = append(keys, k.(string))
				dup = walk() || dup
			}
		case '[':
			for dec.More() {
				dup = walk() || dup
			}
		}
		dec.Token() // the closing delimiter
		return dup
	}
	dup := walk()
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("reference decoder: trailing data")
	}
	return dup
}

// FuzzCheck: Check never panics, and on valid JSON it refuses every value
// in which encoding/json sees two members of one object as one name.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__b","arguments":{"text":"safe","text":"EVIL"}}}`,
		`{"a":[{"x":1},{"X":2}],"b":"\ud800"}`, `{"\ud800":1,"\udfff":2}`, `{"k":1,"\u212a":1}`, "{\"\xff\":1}",
		`[[[{"a":{"b":{"c":1,"C":2}}}]]]`, `{"a\"b":1,"a\u0022b":2}`, `{`, `"x`, `{"a":1,}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		if !json.Valid(data) {
			return
		}
		if goDuplicates(t, data) && err == nil {
			t.Fatalf("accepted %q, in which encoding/json sees a duplicate member", data)
		}
	})
}

// BenchmarkCheck: a typical tool call, and one with 1 MiB of arguments.
func BenchmarkCheck(b *testing.B) {
	var big strings.Builder
	big.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__write","arguments":{"path":"/tmp/x","lines":[`)
	for i := 0; big.Len() < 1<<20; i++ {
		if i > 0 {
			big.WriteByte(',')
		}
		big.WriteString(`{"n":` + strconv.Itoa(i) + `,"text":"some line of text \"quoted\" \u00e9"}`)
	}
	big.WriteString(`]}}}`)
	for _, bc := range []struct{ name, msg string }{
		{"call", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hello","n":3,"nested":{"a":[1,2,{"b":"c"}]}},"_meta":{"progressToken":"p1"}}}`},
		{"1MiB", big.String()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.msg)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := Check(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
