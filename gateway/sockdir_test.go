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

	// A daemon starts, opens session socket directories and is killed.
	first, err := PrepareSocketRoot(state, tmp, log)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(first.Dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || filepath.Dir(first.Dir) != tmp {
		t.Fatalf("socket root: got %v, %v; want a 0700 directory in %s", fi, err, tmp)
	}
	if data, _ := os.ReadFile(record); strings.TrimSpace(string(data)) != first.Dir {
		t.Fatalf("record: got %q, want %s", data, first.Dir)
	}
	outside := canary(t, filepath.Join(dir, "outside"))
	stale := canary(t, filepath.Join(first.Dir, "ringlet-0123456789ab"))
	kept := canary(t, filepath.Join(first.Dir, "ringlet-ba9876543210"))
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(first.Dir, "link")); err != nil {
		t.Fatal(err)
	}
	// Another daemon's directory (another state dir) beside it.
	other := canary(t, filepath.Join(tmp, "ringlet-sockets-aaaaaaaaaaaa"))

	// The next daemon takes the directory over (the sandboxes of the
	// sessions it admits again are bound in it) and removes what none of
	// its sessions holds, and only that.
	second, err := PrepareSocketRoot(state, tmp, log)
	if err != nil {
		t.Fatal(err)
	}
	if second.Dir != first.Dir {
		t.Errorf("got %s, want the previous daemon's %s taken over", second.Dir, first.Dir)
	}
	second.Sweep([]string{filepath.Dir(kept)})
	for _, p := range []string{filepath.Dir(stale), filepath.Join(first.Dir, "link")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("the killed daemon's %s: got %v, want it removed", p, err)
		}
	}
	for _, f := range []string{outside, other, kept} {
		if data, err := os.ReadFile(f); err != nil || string(data) != "keep" {
			t.Errorf("%s: got %q, %v; want it untouched", f, data, err)
		}
	}
	// A stop that keeps sessions leaves the directory for the next
	// daemon; one that keeps none removes it and its record.
	second.Close(true)
	if _, err := os.Lstat(kept); err != nil {
		t.Errorf("after a stop that kept sessions: %s: got %v, want it there", kept, err)
	}
	second.Close(false)
	for _, p := range []string{second.Dir, record} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after cleanup: %s: got %v, want it gone", p, err)
		}
	}
	third, err := PrepareSocketRoot(state, tmp, log)
	if err != nil {
		t.Fatal(err)
	}
	if third.Dir == first.Dir {
		t.Errorf("after a clean stop: got the same directory %s, want a fresh one", third.Dir)
	}
	third.Close(false)

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
		root, err := PrepareSocketRoot(state, tmp, log)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if root.Dir == c.path {
			t.Errorf("%s: took %s over, want a fresh directory", c.name, c.path)
		}
		root.Sweep(nil)
		if _, err := os.Lstat(c.path); err != nil {
			t.Errorf("%s: %s: got %v, want it left alone", c.name, c.path, err)
		}
		if data, err := os.ReadFile(targetCanary); err != nil || string(data) != "keep" {
			t.Errorf("%s: the link's target: got %q, %v; want it untouched", c.name, data, err)
		}
		root.Close(false)
	}

	// A record that is itself a symbolic link is refused: the daemon
	// says so and does not start.
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), record); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareSocketRoot(state, tmp, log); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked record: got %v, want a refusal that names the link", err)
	}
}
