package toolchain

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// runtimeDirs are the binds of program.
func runtimeDirs(program string) ([]string, error) {
	res, err := Resolve(program, Options{})
	if err != nil {
		return nil, err
	}
	return res.Binds, nil
}

// TestNpm: an npm-installed program is bound with its package and the
// dependencies installed beside it.
func TestNpm(t *testing.T) {
	t.Parallel()
	mkfile := func(t *testing.T, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(t *testing.T, target, link string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("npm bin symlink binds the package root", func(t *testing.T) {
		t.Parallel()
		prefix := t.TempDir()
		pkg := filepath.Join(prefix, "lib", "node_modules", "@anthropic-ai", "claude-code")
		mkfile(t, filepath.Join(pkg, "package.json"))
		mkfile(t, filepath.Join(pkg, "bin", "cli.js"))
		// A package.json below the root (an ESM marker) is not the root.
		mkfile(t, filepath.Join(pkg, "bin", "package.json"))
		symlink(t, "../lib/node_modules/@anthropic-ai/claude-code/bin/cli.js", filepath.Join(prefix, "bin", "claude"))

		got, err := runtimeDirs(filepath.Join(prefix, "bin", "claude"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(prefix, "bin"), pkg}
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("installed dependencies beside the package are bound", func(t *testing.T) {
		t.Parallel()
		// Codex CLI: a launcher package whose native binary is in an
		// optional dependency installed beside it; one dependency nested
		// in the package, one not installed, one name that tries to climb.
		nm := filepath.Join(t.TempDir(), "node_modules")
		pkg := filepath.Join(nm, "@openai", "codex")
		native := filepath.Join(nm, "@openai", "codex-linux-x64")
		helper := filepath.Join(nm, "helper")
		writeJSON := func(path, body string) {
			t.Helper()
			mkfile(t, path)
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeJSON(filepath.Join(pkg, "package.json"), `{"optionalDependencies":{"@openai/codex-linux-x64":"npm:@openai/codex@1-linux-x64","@openai/codex-darwin-arm64":"1"},
			"dependencies":{"nested":"1","../../etc":"1","@x/../../y":"1"}}`)
		writeJSON(filepath.Join(pkg, "node_modules", "nested", "package.json"), `{}`)
		writeJSON(filepath.Join(native, "package.json"), `{"dependencies":{"helper":"1"}}`)
		writeJSON(filepath.Join(helper, "package.json"), `{"dependencies":{"@openai/codex":"1"}}`)
		mkfile(t, filepath.Join(pkg, "bin", "codex.js"))
		symlink(t, filepath.Join(pkg, "bin", "codex.js"), filepath.Join(nm, ".bin", "codex"))

		got, err := runtimeDirs(filepath.Join(nm, ".bin", "codex"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(nm, ".bin"), pkg, native, helper}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("unscoped package", func(t *testing.T) {
		t.Parallel()
		prefix := t.TempDir()
		pkg := filepath.Join(prefix, "lib", "node_modules", "pkg")
		mkfile(t, filepath.Join(pkg, "package.json"))
		mkfile(t, filepath.Join(pkg, "cli.js"))
		symlink(t, "../lib/node_modules/pkg/cli.js", filepath.Join(prefix, "bin", "pkg"))
		got, err := runtimeDirs(filepath.Join(prefix, "bin", "pkg"))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{filepath.Join(prefix, "bin"), pkg}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("a package.json far above is not a package root", func(t *testing.T) {
		t.Parallel()
		// ~/package.json from an npm install run in ~, and a native
		// installer's ~/.local/bin/agent -> ~/.local/share/agent/1.0/agent:
		// binding "the package" would bind the whole home.
		home := t.TempDir()
		mkfile(t, filepath.Join(home, "package.json"))
		real := filepath.Join(home, ".local", "share", "agent", "1.0", "agent")
		mkfile(t, real)
		symlink(t, real, filepath.Join(home, ".local", "bin", "agent"))
		got, err := runtimeDirs(filepath.Join(home, ".local", "bin", "agent"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(home, ".local", "bin"), filepath.Dir(real)}
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v (never %s)", got, want, home)
		}
	})

	t.Run("a program in the system dirs needs nothing", func(t *testing.T) {
		t.Parallel()
		got, err := runtimeDirs("/bin/sh")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("got %v, want nothing to bind", got)
		}
	})

	t.Run("a missing program is an error", func(t *testing.T) {
		t.Parallel()
		if _, err := runtimeDirs(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Error("got no error, want one")
		}
	})
}

func TestValidPackageName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"pkg": true, "@scope/pkg": true, "lodash.merge": true,
		"": false, "..": false, ".": false, "../x": false, "@scope/..": false, "@x/../../y": false,
		"a/b": false, "@scope": false, "@/x": false, "@s/a/b": false, `a\b`: false, "a\x00": false,
	} {
		if got := validPackageName(name); got != want {
			t.Errorf("validPackageName(%q) = %v, want %v", name, got, want)
		}
	}
}
