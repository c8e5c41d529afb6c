package privatefile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRewrite(t *testing.T) {
	t.Parallel()
	add := func(suffix string) func([]byte) ([]byte, error) {
		return func(old []byte) ([]byte, error) { return append(old, suffix...), nil }
	}
	t.Run("creates the directory and the file, private", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "home", ".agent")
		var got []byte
		if err := Rewrite(dir, "config", 100, func(old []byte) ([]byte, error) { got = old; return []byte("a"), nil }); err != nil {
			t.Fatal(err)
		}
		if got != nil {
			t.Errorf("change got %q for a missing file, want nil", got)
		}
		if p := perm(t, dir); p != DirMode {
			t.Errorf("directory mode: got %04o, want %04o", p, DirMode)
		}
		if p := perm(t, filepath.Join(dir, "config")); p != FileMode {
			t.Errorf("file mode: got %04o, want %04o", p, FileMode)
		}
	})
	t.Run("changes an existing file, made private", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "config"), []byte("a"), 0o644)
		if err := Rewrite(dir, "config", 100, add("b")); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "config")); string(data) != "ab" {
			t.Errorf("content: got %q, want %q", data, "ab")
		}
		if p := perm(t, filepath.Join(dir, "config")); p != FileMode {
			t.Errorf("file mode: got %04o, want %04o", p, FileMode)
		}
	})
	t.Run("an empty file is not a missing one", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "config"), nil, 0o600)
		if err := Rewrite(dir, "config", 100, func(old []byte) ([]byte, error) {
			if old == nil {
				t.Error("change got nil for an empty file, want an empty slice")
			}
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	refused := []struct {
		name  string
		setup func(t *testing.T, dir, elsewhere string) (file string)
		want  string
	}{
		{"a bad name", func(*testing.T, string, string) string { return "../x" }, "not a file name"},
		{"too large", func(t *testing.T, dir, _ string) string {
			writeFile(t, filepath.Join(dir, "config"), []byte(strings.Repeat("x", 101)), 0o600)
			return "config"
		}, "larger than 100 bytes"},
		{"the file a symlink", func(t *testing.T, dir, elsewhere string) string {
			if err := os.Symlink(filepath.Join(elsewhere, "f"), filepath.Join(dir, "config")); err != nil {
				t.Fatal(err)
			}
			return "config"
		}, "symbolic link"},
		{"the directory a symlink", func(t *testing.T, dir, elsewhere string) string {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, dir); err != nil {
				t.Fatal(err)
			}
			return "config"
		}, "symbolic link"},
		{"a FIFO", func(t *testing.T, dir, _ string) string {
			if err := syscall.Mkfifo(filepath.Join(dir, "config"), 0o600); err != nil {
				t.Skip(err)
			}
			return "config"
		}, "not a regular file"},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), ".agent")
			elsewhere := t.TempDir()
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			name := tt.setup(t, dir, elsewhere)
			err := Rewrite(dir, name, 100, add("b"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Rewrite: got %v, want an error with %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
				t.Errorf("the link's target directory got %d entries, want none", len(entries))
			}
		})
	}
}
