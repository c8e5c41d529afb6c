package profile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A profile read once is served from memory until its file changes; any
// change, a mode others can read included, is seen by the next read.
func TestStoreGetSeesChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(t *testing.T, path string)
		model   string // the model Get returns, or
		wantErr string // its error
	}{
		{"rewritten", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, strings.Replace(string(data), "model-a", "model-b", 1))
		}, "model-b", ""},
		{"made readable by others", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "", "group or others"},
		{"replaced by a symbolic link", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other.toml")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, other, string(data))
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, "", "symbolic link"},
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "", "no profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newStoreEnv(t)
			if _, err := e.store.Create(e.cat, Profile{Alias: "work", Agent: "claude", Provider: "anthropic", Model: "model-a", Workspace: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			if p, err := e.store.Get("work"); err != nil || p.Model != "model-a" {
				t.Fatalf("Get before the change: got %+v, %v; want model-a", p, err)
			}
			tt.change(t, filepath.Join(e.configDir, "profiles", "work.toml"))
			p, err := e.store.Get("work")
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Get after the change: got %v, want an error containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Errorf("Get after the change: %v", err)
			case tt.wantErr == "" && p.Model != tt.model:
				t.Errorf("Get after the change: got model %q, want %q", p.Model, tt.model)
			}
		})
	}
}

// A profile handed out shares no slice with the cached one: clone copies
// every slice field, including any added later.
func TestProfileCloneCopiesEverySlice(t *testing.T) {
	t.Parallel()
	var p Profile
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	c := p.clone()
	cv := reflect.ValueOf(c)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Pointer() == cv.Field(i).Pointer() {
			t.Errorf("clone: field %s shares its array with the original", v.Type().Field(i).Name)
		}
	}
}

// A profile served from memory costs the copy it returns and nothing
// more: no path built, no FileInfo (every proxied request reads its
// profile).
func TestStoreGetAllocations(t *testing.T) {
	e := newStoreEnv(t)
	if _, err := e.store.Create(e.cat, Profile{Alias: "work", Agent: "claude", Provider: "anthropic", Model: "model-a", Workspace: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	// Judged long after its write: a file changed lately is read again.
	e.store.now = func() time.Time { return time.Now().Add(time.Hour) }
	p, err := e.store.Get("work")
	if err != nil {
		t.Fatal(err)
	}
	want := testing.AllocsPerRun(100, func() { _ = p.clone() })
	if got := testing.AllocsPerRun(100, func() {
		if _, err := e.store.Get("work"); err != nil {
			t.Fatal(err)
		}
	}); got > want {
		t.Errorf("Get of a cached profile: got %v allocations, want at most %v (its copy's)", got, want)
	}
}
