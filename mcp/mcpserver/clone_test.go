package mcpserver

import (
	"reflect"
	"testing"
	"time"
)

// TestCloneSharesNothing: every slice, map and pointer of a Config is
// copied by Clone, including fields added later (the store hands out
// clones of what it keeps in memory).
func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := Config{Name: "fs", Command: []string{"a"}, ReadOnly: []string{"/r"}, ReadWrite: []string{"/w"},
		Shims: map[string]string{"s": "t"}, Pins: map[string]string{"tool": "h"}, Approved: &now,
		Pin: &Pin{Identity: &Identity{Command: "/bin/x"}, Tools: map[string]PinnedTool{"t": {Hash: "h"}}},
		Env: map[string]string{"MODE": "x"}, Secrets: map[string]string{"TOKEN": "mcp/t"},
		Headers: map[string]string{"X-Mode": "x"}, HeaderSecrets: map[string]string{"X-Api-Key": "mcp/t"},
		ToolRules:   []ToolRule{{Pattern: "write_*"}},
		PromptRules: []ToolRule{{Pattern: "review"}}, ResourceRules: []ToolRule{{Pattern: "file:///*"}}}
	got := c.Clone()
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("Clone: got %+v, want %+v", got, c)
	}
	v, w := reflect.ValueOf(c), reflect.ValueOf(got)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch f.Type.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			if v.Field(i).IsNil() {
				t.Fatalf("field %s is nil in the test's Config: set it so its copy is checked", f.Name)
			}
			if v.Field(i).Pointer() == w.Field(i).Pointer() {
				t.Errorf("field %s: the clone shares it with the original", f.Name)
			}
		case reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("field %s of kind %s: teach Clone to copy it", f.Name, f.Type.Kind())
		}
	}
}
