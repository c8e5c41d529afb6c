package privatefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	type doc struct {
		Version int      `json:"version"`
		Names   []string `json:"names"`
	}
	path := filepath.Join(t.TempDir(), "sub", "d.json")
	var got doc
	if found, err := ReadJSON(path, 1<<20, &got); found || err != nil {
		t.Fatalf("missing file: got found %v, err %v; want false, nil", found, err)
	}
	if err := WriteJSON(path, doc{Version: 1, Names: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != FileMode {
		t.Errorf("mode: got %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != DirMode {
		t.Errorf("dir mode: got %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if found, err := ReadJSON(path, 1<<20, &got); !found || err != nil || got.Version != 1 || len(got.Names) != 1 {
		t.Fatalf("read back: got %+v, found %v, err %v", got, found, err)
	}
	for name, content := range map[string]string{
		"unknown field": `{"version":1,"extra":true}`,
		"trailing data": `{"version":1} {"version":2}`,
		"not JSON":      `{`,
	} {
		if err := os.WriteFile(path, []byte(content), FileMode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadJSON(path, 1<<20, &got); err == nil || !strings.Contains(err.Error(), "not valid JSON") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming %s as not valid JSON", name, err, path)
		}
	}
}
