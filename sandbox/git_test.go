package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	mkdirs(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rel makes the guard's paths relative to ws, for comparison.
func rel(ws string, paths []string) []string {
	out := []string{}
	for _, p := range paths {
		out = append(out, strings.TrimPrefix(p, ws))
	}
	return out
}

func TestGuardGit(t *testing.T) {
	t.Parallel()
	t.Run("repository with submodules", func(t *testing.T) {
		ws := t.TempDir()
		mkdirs(t, filepath.Join(ws, ".git", "hooks"), filepath.Join(ws, ".git", "modules", "lib", "hooks"),
			filepath.Join(ws, ".git", "modules", "lib", "modules", "inner"), filepath.Join(ws, ".git", "worktrees", "wt"))
		writeText(t, filepath.Join(ws, ".git", "config"), "[core]\n")
		writeText(t, filepath.Join(ws, ".git", "modules", "lib", "HEAD"), "ref: refs/heads/main\n")
		writeText(t, filepath.Join(ws, ".git", "modules", "lib", "config"), "[core]\n")
		writeText(t, filepath.Join(ws, ".git", "modules", "lib", "modules", "inner", "HEAD"), "ref: refs/heads/main\n")
		writeText(t, filepath.Join(ws, ".git", "modules", "lib", "modules", "inner", "config"), "[core]\n")
		writeText(t, filepath.Join(ws, ".git", "worktrees", "wt", "HEAD"), "ref: refs/heads/wt\n")
		writeText(t, filepath.Join(ws, ".git", "worktrees", "wt", "commondir"), "../..\n")
		writeText(t, filepath.Join(ws, ".gitmodules"), "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = x\n[submodule \"up\"]\n\tpath = ../../etc\n")
		writeText(t, filepath.Join(ws, "vendor", "lib", ".git"), "gitdir: ../../.git/modules/lib\n")
		g := mustGuard(t, ws)
		// Every git directory, and every directory on the way to a guarded
		// path, outer ones first.
		wantSelf := []string{"/.git", "/vendor", "/.git/modules", "/.git/worktrees", "/vendor/lib", "/.git/modules/lib", "/.git/worktrees/wt",
			"/.git/modules/lib/modules", "/.git/modules/lib/modules/inner"}
		if got := rel(ws, g.Self); !slices.Equal(got, wantSelf) {
			t.Errorf("Self: got %v, want %v", got, wantSelf)
		}
		wantRO := []string{"/.git/config", "/.git/hooks", "/.git/modules/lib/config", "/.git/modules/lib/hooks", "/.git/modules/lib/modules/inner/config",
			"/.git/worktrees/wt/commondir", "/vendor/lib/.git"}
		if got := rel(ws, g.ReadOnly); !slices.Equal(got, wantRO) {
			t.Errorf("ReadOnly: got %v, want %v", got, wantRO)
		}
		if got, want := rel(ws, g.Empty), []string{"/.git/modules/lib/modules/inner/hooks", "/.git/worktrees/wt/hooks"}; !slices.Equal(got, want) {
			t.Errorf("Empty: got %v, want %v", got, want)
		}
	})

	t.Run("symlinks on the way are refused", func(t *testing.T) {
		for _, plant := range []func(ws, outside string) error{
			func(ws, outside string) error { return os.Symlink(outside, filepath.Join(ws, ".git")) },
			func(ws, outside string) error {
				mkdirs(t, filepath.Join(ws, ".git"))
				return os.Symlink(filepath.Join(outside, "id_rsa"), filepath.Join(ws, ".git", "commondir"))
			},
			func(ws, outside string) error {
				mkdirs(t, filepath.Join(ws, ".git", "modules"))
				return os.Symlink(outside, filepath.Join(ws, ".git", "modules", "x"))
			},
			func(ws, outside string) error {
				mkdirs(t, filepath.Join(ws, ".git", "modules", "x"))
				writeText(t, filepath.Join(ws, ".git", "modules", "x", "HEAD"), "ref: x\n")
				return os.Symlink(filepath.Join(outside, "id_rsa"), filepath.Join(ws, ".git", "modules", "x", "config"))
			},
		} {
			ws, outside := t.TempDir(), t.TempDir()
			writeText(t, filepath.Join(outside, "id_rsa"), "secret")
			if err := plant(ws, outside); err != nil {
				t.Fatal(err)
			}
			if _, err := guardGit(ws); err == nil || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("got %v, want an error naming the symbolic link", err)
			}
		}
	})

	t.Run(".git file pointing outside the workspace", func(t *testing.T) {
		ws, main := t.TempDir(), t.TempDir()
		mkdirs(t, filepath.Join(main, "worktrees", "wt", "hooks"))
		writeText(t, filepath.Join(ws, ".git"), "gitdir: "+filepath.Join(main, "worktrees", "wt")+"\n")
		g := mustGuard(t, ws)
		if got, want := rel(ws, g.ReadOnly), []string{"/.git"}; !slices.Equal(got, want) || len(g.Self)+len(g.Empty) != 0 {
			t.Errorf("got %+v, want only the .git file read-only (the git directory is not in the sandbox)", g)
		}
	})

	t.Run(".git file pointing inside the workspace", func(t *testing.T) {
		ws := t.TempDir()
		mkdirs(t, filepath.Join(ws, "meta", "gitdir"))
		writeText(t, filepath.Join(ws, "meta", "gitdir", "config"), "[core]\n")
		writeText(t, filepath.Join(ws, "meta", "gitdir", "commondir"), "..\n")
		writeText(t, filepath.Join(ws, ".git"), "gitdir: meta/gitdir\n")
		g := mustGuard(t, ws)
		if got, want := rel(ws, g.ReadOnly), []string{"/.git", "/meta/gitdir/commondir", "/meta/gitdir/config"}; !slices.Equal(got, want) {
			t.Errorf("ReadOnly: got %v, want %v", got, want)
		}
		if got, want := rel(ws, g.Empty), []string{"/meta/gitdir/hooks"}; !slices.Equal(got, want) {
			t.Errorf("Empty: got %v, want %v", got, want)
		}
	})

	t.Run("core.hooksPath inside the workspace", func(t *testing.T) {
		git, err := exec.LookPath("git")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("git is not installed (CI=true, so this test must run)")
			}
			t.Skip("git is not installed")
		}
		for _, tc := range []struct {
			name, hooksPath string
			exists          bool
			wantRO, wantMT  []string
		}{
			{"husky, existing", ".husky/_", true, []string{"/.git/config", "/.git/hooks", "/.husky/_"}, nil},
			{"missing", ".githooks", false, []string{"/.git/config", "/.git/hooks"}, []string{"/.githooks"}},
			{"outside", "/usr/share/git-core/hooks", false, []string{"/.git/config", "/.git/hooks"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ws := t.TempDir()
				for _, args := range [][]string{{"init", "-q"}, {"config", "core.hooksPath", tc.hooksPath}} {
					cmd := exec.Command(git, append([]string{"-C", ws}, args...)...)
					cmd.Env = gitEnv()
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("git %v: %v\n%s", args, err, out)
					}
				}
				if tc.exists {
					mkdirs(t, filepath.Join(ws, tc.hooksPath))
				}
				g := mustGuard(t, ws)
				if got := rel(ws, g.ReadOnly); !slices.Equal(got, tc.wantRO) {
					t.Errorf("ReadOnly: got %v, want %v", got, tc.wantRO)
				}
				if got := rel(ws, g.Empty); !slices.Equal(got, append([]string{}, tc.wantMT...)) && !(len(got) == 0 && len(tc.wantMT) == 0) {
					t.Errorf("Empty: got %v, want %v", got, tc.wantMT)
				}
			})
		}
	})
}

func mustGuard(t *testing.T, ws string) gitGuard {
	t.Helper()
	g, err := guardGit(ws)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
