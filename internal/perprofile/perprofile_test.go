package perprofile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type item struct {
	Name string `json:"name"`
	N    int    `json:"n,omitempty"`
}

func TestRoundTripAndFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := New[item](dir, "things", "things")
	if got, err := s.List("work"); err != nil || len(got) != 0 {
		t.Fatalf("List with no file: got %v, %v; want none", got, err)
	}
	if err := s.Update("work", func(l []item) ([]item, error) { return append(l, item{Name: "a", N: 1}, item{Name: "b"}), nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.List("work")
	if err != nil || len(got) != 2 || got[0] != (item{"a", 1}) || got[1] != (item{Name: "b"}) {
		t.Fatalf("List: got %v, %v", got, err)
	}
	// The bytes are those a struct {version, <key>} marshals to: files
	// written before this package read and compare the same.
	want, _ := json.MarshalIndent(struct {
		Version int    `json:"version"`
		Things  []item `json:"things"`
	}{1, got}, "", "  ")
	data, err := os.ReadFile(s.Path("work"))
	if err != nil || string(data) != string(want)+"\n" {
		t.Errorf("file: got %q (%v), want %q", data, err, string(want)+"\n")
	}
	fi, err := os.Stat(s.Path("work"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: got %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if err := s.DeleteProfile("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path("work")); !os.IsNotExist(err) {
		t.Errorf("after DeleteProfile: %v, want the file gone", err)
	}
	if err := s.DeleteProfile("work"); err != nil {
		t.Errorf("DeleteProfile of none: %v", err)
	}
}

// TestRefusesWhatItCannotRead: a file with an unknown field, another
// version or trailing data is an error that names the file, never a list
// read partly; a bad profile name never becomes a path.
func TestRefusesWhatItCannotRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := New[item](dir, "things", "things")
	for name, content := range map[string]string{
		"unknown-member": `{"version":1,"things":[],"other":1}`,
		"unknown-field":  `{"version":1,"things":[{"name":"a","extra":true}]}`,
		"version":        `{"version":2,"things":[]}`,
		"trailing":       `{"version":1,"things":[]} {}`,
		"not-json":       `{"version":1,"things":[`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := s.List(name); err == nil || !strings.Contains(err.Error(), name+".json") {
			t.Errorf("%s: got %v, %v; want an error naming the file", name, got, err)
		}
		if err := s.Update(name, func(l []item) ([]item, error) { return l, nil }); err == nil {
			t.Errorf("%s: Update over it succeeded, want it refused (it would lose what it cannot read)", name)
		}
	}
	for _, bad := range []string{"../x", "", "A", "a/b"} {
		if _, err := s.List(bad); err == nil {
			t.Errorf("List(%q): got no error", bad)
		}
		if err := s.Update(bad, func(l []item) ([]item, error) { return l, nil }); err == nil {
			t.Errorf("Update(%q): got no error", bad)
		}
	}
}

// TestConcurrentUpdatesKeepEveryChange: updates from many goroutines are
// serialised, none lost.
func TestConcurrentUpdatesKeepEveryChange(t *testing.T) {
	t.Parallel()
	s := New[item](t.TempDir(), "things", "things")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := s.Update("work", func(l []item) ([]item, error) { return append(l, item{Name: "x", N: i}), nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := s.List("work"); err != nil || len(got) != 50 {
		t.Errorf("after 50 concurrent updates: got %d items (%v), want 50", len(got), err)
	}
}
