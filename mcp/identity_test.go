package mcp

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestIdentity: a program is known by its path and digest; a script an
// interpreter runs by its digest too; a launcher's package is named as
// not digested. One byte changed is another identity.
func TestIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bin := write("srv", "#!/bin/sh\necho a\n")
	node := write("node", "not really node")
	npx := write("npx", "not really npx")
	script := write("server.js", "console.log(1)\n")
	var d digests

	a := d.identityOf(bin, nil, dir)
	if a.Command != bin || !strings.HasPrefix(a.Digest, "sha256:") || a.Script != "" {
		t.Errorf("a program: got %+v", a)
	}
	write("srv", "#!/bin/sh\necho b\n")
	if b := d.identityOf(bin, nil, dir); b.Same(a) {
		t.Errorf("a program with one byte changed: got the same identity %+v", b)
	}
	js := d.identityOf(node, []string{"--no-warnings", "server.js", "--port", "1"}, dir)
	if js.Script != script || !strings.HasPrefix(js.ScriptDigest, "sha256:") {
		t.Errorf("node server.js: got %+v, want the script digested", js)
	}
	write("server.js", "console.log(2)\n")
	if js2 := d.identityOf(node, []string{"--no-warnings", "server.js", "--port", "1"}, dir); js2.Same(js) {
		t.Error("node with its script changed: got the same identity")
	}
	if m := d.identityOf(filepath.Join(dir, "python3"), []string{"-m", "srv"}, dir); m.Script != "" || !strings.Contains(m.Note, "module") {
		t.Errorf("python3 -m: got %+v, want a note that the module is not digested", m)
	}
	if x := d.identityOf(npx, []string{"-y", "@scope/server@1.2.3"}, dir); !strings.Contains(x.Note, "npx fetches what it runs") {
		t.Errorf("npx: got %+v, want a note that the package is not digested", x)
	}
	if gone := d.identityOf(filepath.Join(dir, "missing"), nil, dir); gone.Digest != "" || gone.Note == "" {
		t.Errorf("a missing program: got %+v, want no digest and a note", gone)
	}
}

// TestIdentityOfAFIFO: a FIFO planted where a program was does not hold
// the daemon up; it is pinned without a digest, as a note says.
func TestIdentityOfAFIFO(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "srv")
	if err := syscall.Mkfifo(p, 0o700); err != nil {
		t.Fatal(err)
	}
	var d digests
	if id := d.identityOf(p, nil, "/"); id.Digest != "" || !strings.Contains(id.Note, "not a regular file") {
		t.Errorf("got %+v, want no digest and a note", id)
	}
}
