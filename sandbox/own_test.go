package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExposesOwn(t *testing.T) {
	root := t.TempDir()
	cfg := filepath.Join(root, ".config", "ringlet")
	data := filepath.Join(root, ".local", "share", "ringlet")
	home := filepath.Join(data, "profiles", "p1", "home")
	other := filepath.Join(data, "profiles", "p2", "home")
	project := filepath.Join(root, "src", "app")
	for _, d := range []string{cfg, home, other, project} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(root, "src", "cfg-link")
	if err := os.Symlink(cfg, link); err != nil {
		t.Fatal(err)
	}
	own := []string{cfg, data}
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{project, true},
		{filepath.Join(root, "src"), true},
		{home, true},                              // the profile's own HOME
		{filepath.Join(home, "work"), true},       // and what is in it
		{root, false},                             // ~: holds the config dir
		{cfg, false},                              // the config dir itself
		{filepath.Join(cfg, "http_token"), false}, // a file in it
		{other, false},                            // another profile's HOME
		{data, false},                             // every profile's HOME
		{link, false},                             // a symlink to the config dir
	} {
		err := ExposesOwn(tc.path, home, own)
		if (err == nil) != tc.ok {
			t.Errorf("ExposesOwn(%s): got %v, want allowed %v", strings.TrimPrefix(tc.path, root), err, tc.ok)
		}
	}
}
