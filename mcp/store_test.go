package mcp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	idA := mcpserver.Identity{Command: "/bin/server", Digest: "sha256:a"}
	obs := func(id mcpserver.Identity, tools map[string]string) mcpserver.Pin {
		p := mcpserver.Pin{Identity: &id, ToolsPinned: true, Tools: map[string]mcpserver.PinnedTool{}}
		for n, h := range tools {
			p.Tools[n] = mcpserver.PinnedTool{Description: "d " + n, Hash: h}
		}
		return p
	}
	var events []PinEvent
	record := func(e PinEvent) error { events = append(events, e); return nil }
	pin, err := s.observe("work", "fs", obs(idA, map[string]string{"read": "h1"}), record)
	if err != nil || pin.Tools["read"].Hash != "h1" || !pin.ToolsPinned || pin.Identity == nil || *pin.Identity != idA {
		t.Fatalf("first observation: got %+v, %v; want read=h1 and identity pinned", pin, err)
	}
	if len(events) != 1 || events[0].Reason != PinFirst || len(events[0].Tools) != 1 {
		t.Errorf("record of the first pin: got %+v", events)
	}
	// Later observations pin nothing: only approve replaces a pin.
	pin, _ = s.observe("work", "fs", obs(mcpserver.Identity{Command: "/bin/other"}, map[string]string{"read": "h2", "write": "h3"}), record)
	if pin.Tools["read"].Hash != "h1" || len(pin.Tools) != 1 || *pin.Identity != idA || len(events) != 1 {
		t.Errorf("pin after a change: got %+v (events %d), want read=h1 alone", pin, len(events))
	}
	// A record that cannot be written stores nothing.
	if _, err := s.Add("work", mcpserver.Config{Name: "gh", Command: []string{"gh"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.observe("work", "gh", obs(idA, map[string]string{"x": "h"}), func(PinEvent) error { return errors.New("disk full") }); err == nil {
		t.Error("a pin whose record failed: got no error")
	}
	if got, _ := s.List("work"); got[1].Pin != nil {
		t.Errorf("a pin whose record failed was stored: %+v", got[1].Pin)
	}
	err = s.approve("work", "fs", func(cur mcpserver.Pin) (mcpserver.Pin, error) {
		return mcpserver.Approve(cur, obs(idA, map[string]string{"read": "h2"}), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.List("work")
	if len(got) != 2 || got[0].Pin.Tools["read"].Hash != "h2" || len(got[0].Pin.Tools) != 1 || got[0].Approved == nil {
		t.Errorf("after approve: got %+v", got[0])
	}
	if _, err := s.Remove("work", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.Remove("work", "fs"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List("work"); len(got) != 1 {
		t.Errorf("after remove: got %v", got)
	}
}

// TestStoreMigratesPins: a store written by a version that pinned each
// tool's hash by name loads, and its pins become the tool set at the
// server's next start: a tool with the same hash is approved (its
// definition kept from now on), one with another is changed, one never
// pinned is new, one gone is removed. Nothing pinned is lost.
func TestStoreMigratesPins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "mcp"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{"version":1,"servers":[{"name":"fs","command":["/bin/fs"],"created":"2026-01-02T03:04:05Z",` +
		`"pins":{"read":"sha256:r","write":"sha256:w","gone":"sha256:g"},"approved":"2026-01-03T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(dir, "mcp", "work.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewStore(dir)
	cfgs, err := s.List("work")
	if err != nil || len(cfgs) != 1 || cfgs[0].Pins["read"] != "sha256:r" {
		t.Fatalf("the old store: got %+v, %v; want it loaded with its pins", cfgs, err)
	}
	id := mcpserver.Identity{Command: "/bin/fs", Digest: "sha256:fs"}
	obs := mcpserver.Pin{Identity: &id, ToolsPinned: true, Tools: map[string]mcpserver.PinnedTool{
		"read":  {Description: "Read a file.", Hash: "sha256:r"},
		"write": {Description: "Write a file, and upload it.", Hash: "sha256:w2"},
		"new":   {Description: "New.", Hash: "sha256:n"},
	}}
	var events []PinEvent
	pin, err := s.observe("work", "fs", obs, func(e PinEvent) error { events = append(events, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Reason != PinMigrated || events[0].Identity != id {
		t.Errorf("record of the migration: got %+v, want one %s with the identity", events, PinMigrated)
	}
	d := mcpserver.Diff(pin, obs)
	var changes []string
	for _, c := range d.Tools {
		changes = append(changes, c.Name+":"+c.Change)
	}
	if d.Identity != nil || strings.Join(changes, ",") != "new:added,write:changed" || strings.Join(d.Removed, ",") != "gone" {
		t.Errorf("diff after the migration: got identity %v, tools %v, removed %v; want new added, write changed, gone removed", d.Identity, changes, d.Removed)
	}
	cfgs, _ = s.List("work")
	if cfgs[0].Pins != nil || cfgs[0].Pin.Tools["read"].Description != "Read a file." || cfgs[0].Pin.Tools["write"].Hash != "sha256:w" {
		t.Errorf("stored after the migration: got %+v", cfgs[0])
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
