package gateway

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareSocketRoot(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	state, tmp := filepath.Join(dir, "state"), filepath.Join(dir, "tmp")
	for _, d := range []string{state, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	record := filepath.Join(state, "sockets")
	canary := func(t *testing.T, dir string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "canary")
		if err := os.WriteFile(f, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// A daemon starts, opens a session socket directory and is killed.
	first, _, err := PrepareSocketRoot(state, tmp, log)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(first); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || filepath.Dir(first) != tmp {
		t.Fatalf("socket root: got %v, %v; want a 0700 directory in %s", fi, err, tmp)
	}
	if data, _ := os.ReadFile(record); strings.TrimSpace(string(data)) != first {
		t.Fatalf("record: got %q, want %s", data, first)
	}
	outside := canary(t, filepath.Join(dir, "outside"))
	canary(t, filepath.Join(first, "ringlet-0123456789ab"))
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(first, "link")); err != nil {
		t.Fatal(err)
	}
	// Another daemon's directory (another state dir) beside it.
	other := canary(t, filepath.Join(tmp, "ringlet-sockets-aaaaaaaaaaaa"))

	// The next daemon removes the killed one's directory, and only it.
	second, cleanup, err := PrepareSocketRoot(state, tmp, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(first); !os.IsNotExist(err) {
		t.Errorf("the killed daemon's %s: got %v, want it removed", first, err)
	}
	for _, f := range []string{outside, other} {
		if data, err := os.ReadFile(f); err != nil || string(data) != "keep" {
			t.Errorf("%s: got %q, %v; want it untouched", f, data, err)
		}
	}
	if second == first {
		t.Errorf("got the same directory %s twice, want a fresh one", second)
	}
	cleanup()
	for _, p := range []string{second, record} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after cleanup: %s: got %v, want it gone", p, err)
		}
	}

	// What the record names is left alone unless it is a private
	// directory of this user's with Ringlet's name.
	target := filepath.Join(dir, "target")
	targetCanary := canary(t, target)
	type leftAlone struct {
		name string
		make func(p string) error
		path string
	}
	cases := []leftAlone{
		{"symbolic link", func(p string) error { return os.Symlink(target, p) }, filepath.Join(tmp, "ringlet-sockets-bbbbbbbbbbbb")},
		{"not private", func(p string) error { return os.Mkdir(p, 0o755) }, filepath.Join(tmp, "ringlet-sockets-cccccccccccc")},
		{"another name", func(p string) error { return os.Mkdir(p, 0o700) }, filepath.Join(tmp, "important")},
		{"a file", func(p string) error { return os.WriteFile(p, []byte("x"), 0o700) }, filepath.Join(tmp, "ringlet-sockets-dddddddddddd")},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, leftAlone{"another user's", func(p string) error {
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			return os.Chown(p, 65534, 65534)
		}, filepath.Join(tmp, "ringlet-sockets-eeeeeeeeeeee")})
	}
	for _, c := range cases {
		if err := c.make(c.path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(record, []byte(c.path+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, cleanup, err := PrepareSocketRoot(state, tmp, log)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := os.Lstat(c.path); err != nil {
			t.Errorf("%s: %s: got %v, want it left alone", c.name, c.path, err)
		}
		if data, err := os.ReadFile(targetCanary); err != nil || string(data) != "keep" {
			t.Errorf("%s: the link's target: got %q, %v; want it untouched", c.name, data, err)
		}
		cleanup()
	}

	// A record that is itself a symbolic link is refused: the daemon
	// says so and does not start.
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), record); err != nil {
		t.Fatal(err)
	}
	if _, _, err := PrepareSocketRoot(state, tmp, log); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked record: got %v, want a refusal that names the link", err)
	}
}
