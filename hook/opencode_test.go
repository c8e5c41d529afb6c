package hook

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOpenCodeEvent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tool, args       string
		wantName, wantIn string
		wantErr          bool
	}{
		{tool: "bash", args: `{"command":"rm x","workdir":"/w"}`, wantName: "Bash", wantIn: `{"command":"rm x","workdir":"/w"}`},
		{tool: "write", args: `{"filePath":"/w/a","content":"hi"}`, wantName: "Write", wantIn: `{"content":"hi","file_path":"/w/a"}`},
		{tool: "edit", args: `{"filePath":"/a","oldString":"x","newString":"y","replaceAll":true}`, wantName: "Edit", wantIn: `{"file_path":"/a","new_string":"y","old_string":"x","replace_all":true}`},
		{tool: "read", args: `null`, wantName: "Read", wantIn: `{}`},
		// Other tools keep OpenCode's name and arguments.
		{tool: "apply_patch", args: `{"patchText":"*** Begin"}`, wantName: "apply_patch", wantIn: `{"patchText":"*** Begin"}`},
		{tool: "ringlet_profiles_list", args: `{"someKey":1}`, wantName: "ringlet_profiles_list", wantIn: `{"someKey":1}`},
		{tool: "bash", args: `["rm"]`, wantErr: true},
		{tool: "bash", args: `{"file_path":"a","filePath":"b"}`, wantErr: true},
		{tool: "", args: `{}`, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.tool+" "+c.args, func(t *testing.T) {
			name, in, err := OpenCodeEvent(c.tool, json.RawMessage(c.args))
			if c.wantErr {
				if err == nil {
					t.Fatalf("got %s %s, want an error", name, in)
				}
				return
			}
			if err != nil || name != c.wantName || string(in) != c.wantIn {
				t.Errorf("got %s %s (%v), want %s %s", name, in, err, c.wantName, c.wantIn)
			}
		})
	}
}

func TestOpenCodePlugin(t *testing.T) {
	t.Parallel()
	src, err := OpenCodePlugin("/opt/ring'let\u2028/ringlet")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`const ringlet = "/opt/ring'let\u2028/ringlet";`, `const adapterArgs = ["hook","opencode-pre-tool-use"];`, `"tool.execute.before"`} {
		if !strings.Contains(string(src), want) {
			t.Errorf("plugin source lacks %q:\n%s", want, src)
		}
	}
	for _, bad := range []string{"ringlet", "/bin/ring\nlet", ""} {
		if _, err := OpenCodePlugin(bad); err == nil {
			t.Errorf("OpenCodePlugin(%q): got no error, want one", bad)
		}
	}
}
