package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestOutsideLinks(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	write := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(old, new string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(new), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(old, new); err != nil {
			t.Skipf("hard links are not possible here: %v", err)
		}
	}
	write(filepath.Join(root, "plain"))
	// Linked only inside the tree: nothing outside to protect.
	write(filepath.Join(root, "in1"))
	link(filepath.Join(root, "in1"), filepath.Join(root, "sub", "in2"))
	// A link to a file outside, and one to an outside file that also has
	// a second name inside: every inside name is pinned.
	write(filepath.Join(outside, "secret"))
	link(filepath.Join(outside, "secret"), filepath.Join(root, "sub", "deep", "secret"))
	write(filepath.Join(outside, "both"))
	link(filepath.Join(outside, "both"), filepath.Join(root, "both1"))
	link(filepath.Join(outside, "both"), filepath.Join(root, "both2"))
	// A symlink to an outside file is not a hard link (the sandbox does
	// not show its target), and the walk does not follow it.
	if err := os.Symlink(outside, filepath.Join(root, "outside-dir")); err != nil {
		t.Fatal(err)
	}

	got, err := OutsideLinks(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "both1"), filepath.Join(root, "both2"), filepath.Join(root, "sub", "deep", "secret")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// Two trees sharing a file are each other's outside; PinnedFiles
	// merges and sorts.
	other := t.TempDir()
	link(filepath.Join(root, "plain"), filepath.Join(other, "plain"))
	got, err = PinnedFiles(root, other)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, filepath.Join(root, "plain"), filepath.Join(other, "plain"))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("PinnedFiles: got %v, want %v", got, want)
	}

	// The same tree reached through a symlink, reported under the link.
	via := filepath.Join(t.TempDir(), "via")
	if err := os.Symlink(root, via); err != nil {
		t.Fatal(err)
	}
	got, err = OutsideLinks(via)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(via, "both1"), filepath.Join(via, "both2"), filepath.Join(via, "plain"), filepath.Join(via, "sub", "deep", "secret")}; !slices.Equal(got, want) {
		t.Errorf("through a symlink: got %v, want %v", got, want)
	}

	if _, err := OutsideLinks(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing tree: got no error, want one")
	}
}

func TestOutsideLinksBound(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	src := filepath.Join(outside, "f")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range MaxOutsideLinks + 1 {
		if err := os.Link(src, filepath.Join(root, "l"+strconv.Itoa(i))); err != nil {
			t.Skipf("hard links are not possible here: %v", err)
		}
	}
	_, err := OutsideLinks(root)
	if err == nil || !strings.Contains(err.Error(), "--no-hardlinks") || !strings.Contains(err.Error(), "4097") {
		t.Errorf("got %v, want an error that counts the links and says how to replace them", err)
	}
}
