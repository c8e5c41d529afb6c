package mcp

import (
	"encoding/json"
	"testing"
)

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
