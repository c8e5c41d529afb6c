package keystore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/privatefile"
)

// A listing parses the credentials file once, not once per key.
func TestFileListParsesOnce(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{Dir: t.TempDir(), Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if _, err := s.Set(credentials.Ref{Provider: "anthropic", Alias: fmt.Sprintf("k%02d", i)}, credentials.NewSecret(fmt.Sprintf("sk-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	before := s.file.parses
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("List: got %d entries, want %d", len(entries), n)
	}
	for _, e := range entries {
		if e.Status != "ok" {
			t.Errorf("List %s: got status %q, want ok", e.Ref(), e.Status)
		}
	}
	for i := range n {
		if _, err := s.Get(credentials.Ref{Provider: "anthropic", Alias: fmt.Sprintf("k%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.file.parses - before; got > 1 {
		t.Errorf("List and %d Gets parsed the credentials file %d times, want at most 1", n, got)
	}
}

// What is cached never hides a change made outside: another content, a
// mode that group or others can read, a symbolic link, a removal.
func TestFileCacheSeesOutsideChanges(t *testing.T) {
	t.Parallel()
	r := credentials.Ref{Provider: "anthropic", Alias: "work"}
	write := func(t *testing.T, path, key string) {
		t.Helper()
		if err := privatefile.WriteAtomic(path, []byte(fmt.Sprintf("[anthropic]\nwork = %q\n", key)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		change  func(t *testing.T, path string)
		want    string // the key Get returns, or
		wantErr string // the error it returns
	}{
		{"replaced", func(t *testing.T, path string) { write(t, path, "sk-replaced") }, "sk-replaced", ""},
		{"rewritten in place, same size", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(data), "sk-cached", "sk-CACHED", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "sk-CACHED", ""},
		{"made readable by others", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "", "chmod 600"},
		{"replaced by a symbolic link", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere.toml")
			write(t, target, "sk-elsewhere")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "", "symbolic link"},
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "", "no such credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(Options{Dir: t.TempDir(), Backend: credentials.BackendFile})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Set(r, credentials.NewSecret("sk-cached")); err != nil {
				t.Fatal(err)
			}
			if k, err := s.Get(r); err != nil || k.Reveal() != "sk-cached" {
				t.Fatalf("Get before the change: got %v, want the key set", err)
			}
			tt.change(t, s.FilePath())
			k, err := s.Get(r)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Get after the change: got %v, want an error containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Errorf("Get after the change: %v", err)
			case tt.wantErr == "" && k.Reveal() != tt.want:
				t.Errorf("Get after the change: got another key than %q", tt.want)
			}
		})
	}
}

// Another writer (here a second Store on the same directory, as another
// process would be) is seen at the next read of the index and the file.
func TestCachedIndexSeesAnotherWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *Store {
		s, err := Open(Options{Dir: dir, Backend: credentials.BackendFile})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	first, second := credentials.Ref{Provider: "anthropic", Alias: "first"}, credentials.Ref{Provider: "anthropic", Alias: "second"}
	if _, err := a.Set(first, credentials.NewSecret("sk-first")); err != nil {
		t.Fatal(err)
	}
	if entries, err := a.List(); err != nil || len(entries) != 1 {
		t.Fatalf("List: got %v, %v; want one entry", entries, err)
	}
	if _, err := b.Set(second, credentials.NewSecret("sk-second")); err != nil {
		t.Fatal(err)
	}
	entries, err := a.List()
	if err != nil || len(entries) != 2 || entries[1].Ref() != second || entries[1].Status != "ok" {
		t.Fatalf("List after the other writer: got %+v, %v; want %s ok too", entries, err, second)
	}
	if k, err := a.Get(second); err != nil || k.Reveal() != "sk-second" {
		t.Errorf("Get of the other writer's key: %v", err)
	}
}
