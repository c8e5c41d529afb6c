package mcp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

func TestStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(dir)
	if got, err := s.List("work"); err != nil || got != nil {
		t.Fatalf("empty store: got %v, %v", got, err)
	}
	if _, err := s.Add("work", mcpserver.Config{Name: "fs", Command: []string{"server"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("work", mcpserver.Config{Name: "fs", Command: []string{"other"}}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate: got %v, want ErrExists", err)
	}
	if _, err := s.Add("../x", mcpserver.Config{Name: "fs", Command: []string{"x"}}); err == nil {
		t.Error("a profile name with a path was accepted")
	}
	fi, err := os.Stat(filepath.Join(dir, "mcp", "work.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: got %v %v, want 0600", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Join(dir, "mcp")); di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode: got %v, want 0700", di.Mode())
	}
	pins, err := s.pin("work", "fs", map[string]string{"read": "h1"})
	if err != nil || pins["read"] != "h1" {
		t.Fatalf("pin: got %v, %v", pins, err)
	}
	// A pin is kept when the tool changes; only approve replaces it.
	if pins, _ := s.pin("work", "fs", map[string]string{"read": "h2", "write": "h3"}); pins["read"] != "h1" || pins["write"] != "h3" {
		t.Errorf("pins after a change: got %v, want read=h1 write=h3", pins)
	}
	if err := s.approve("work", "fs", map[string]string{"read": "h2"}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.List("work")
	if len(got) != 1 || got[0].Pins["read"] != "h2" || got[0].Pins["write"] != "" || got[0].Approved == nil {
		t.Errorf("after approve: got %+v", got)
	}
	if _, err := s.Remove("work", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.Remove("work", "fs"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List("work"); len(got) != 0 {
		t.Errorf("after remove: got %v", got)
	}
}

func TestStoreRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(dir)
	if _, err := s.Add("work", mcpserver.Config{Name: "fs", Command: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mcp", "work.json")
	for name, content := range map[string]string{
		"unknown field": `{"version":1,"servers":[{"name":"fs","command":["x"],"environment":{"KEY":"v"}}]}`,
		"bad version":   `{"version":2,"servers":[]}`,
		"not JSON":      `{`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List("work"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
