package hook

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// newHook is a valid pre-tool-use hook for profile.
func newHook(profile, shell string) Hook {
	return Hook{Profile: profile, Event: PreToolUse, Shell: shell}
}

// shells lists the hooks' shell commands, in order.
func shells(hooks []Hook) []string {
	var out []string
	for _, h := range hooks {
		out = append(out, h.Shell)
	}
	return out
}

// sameHook compares hooks field by field (times with Equal).
func sameHook(a, b Hook) bool {
	return a.ID == b.ID && a.Profile == b.Profile && a.Event == b.Event && a.Shell == b.Shell &&
		a.Match == b.Match && a.Timeout == b.Timeout && a.Created.Equal(b.Created)
}

// assertMode checks path has mode perm.
func assertMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if got := fi.Mode().Perm(); got != perm {
		t.Errorf("mode of %s: got %04o, want %04o", path, got, perm)
	}
}

func TestStoreAddListRemove(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(dir)

	if got, err := s.List("work"); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty store: got %v, %v; want no hooks, nil", got, err)
	}
	before := time.Now().UTC().Add(-time.Second)
	var added []Hook
	for _, sh := range []string{"exit 0", "exit 1", "exit 2"} {
		h, err := s.Add(newHook("work", sh))
		if err != nil {
			t.Fatalf("Add %q: %v", sh, err)
		}
		if !strings.HasPrefix(h.ID, "h_") || len(h.ID) != len("h_")+8 {
			t.Errorf("ID: got %q, want h_ and 8 hex digits", h.ID)
		}
		if h.Created.Before(before) || h.Created.After(time.Now().UTC()) {
			t.Errorf("Created: got %v, want about now", h.Created)
		}
		if h.Timeout != DefaultTimeout {
			t.Errorf("Timeout: got %v, want the default %v", h.Timeout, DefaultTimeout)
		}
		added = append(added, h)
	}
	if _, err := s.Add(newHook("other", "true")); err != nil {
		t.Fatalf("Add to other: %v", err)
	}

	got, err := s.List("work")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"exit 0", "exit 1", "exit 2"}; !slices.Equal(shells(got), want) {
		t.Errorf("List: got %v, want %v in the order they were added", shells(got), want)
	}
	if !slices.EqualFunc(got, added, func(a, b Hook) bool { return a.ID == b.ID && a.Created.Equal(b.Created) && a.Timeout == b.Timeout }) {
		t.Errorf("List: got %+v, want what Add returned %+v", got, added)
	}

	path := filepath.Join(dir, "hooks", "work.json")
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Join(dir, "hooks"), 0o700)

	removed, err := s.Remove("work", added[1].ID)
	if err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if removed.ID != added[1].ID || removed.Shell != "exit 1" {
		t.Errorf("Remove: got %+v, want the removed hook %+v", removed, added[1])
	}
	got, _ = s.List("work")
	if want := []string{"exit 0", "exit 2"}; !slices.Equal(shells(got), want) {
		t.Errorf("List after Remove: got %v, want %v", shells(got), want)
	}
	assertMode(t, path, 0o600)

	for _, c := range []struct{ profile, id string }{
		{"work", added[1].ID}, // already removed
		{"work", "h_00000000"},
		{"other", added[0].ID}, // another profile's hook
		{"nobody", added[0].ID},
	} {
		if _, err := s.Remove(c.profile, c.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q, %q): got %v, want ErrNotFound", c.profile, c.id, err)
		}
	}
	if got, _ := s.List("other"); len(got) != 1 {
		t.Errorf("List other: got %d hooks, want 1", len(got))
	}
}

func TestStoreAddInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(dir)
	for _, h := range []Hook{
		{Profile: "work", Event: "bogus", Shell: "true"},
		{Profile: "work", Event: PreToolUse, Shell: ""},
		{Profile: "work", Event: PreToolUse, Shell: "true", Match: "("},
		{Profile: "work", Event: PreToolUse, Shell: "true", Timeout: time.Millisecond},
	} {
		if got, err := s.Add(h); err == nil {
			t.Errorf("Add(%+v): got %+v, nil; want an error", h, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hooks", "work.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hooks file after invalid adds: got stat %v, want none written", err)
	}
}

func TestStoreImport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(dir)
	first, err := s.Add(newHook("work", "first"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hooks", "work.json")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// One invalid hook: none are imported and the file is untouched.
	bad := []Hook{newHook("work", "a"), {Event: PreToolUse, Shell: "b", Match: "("}, newHook("work", "c")}
	if got, err := s.Import("work", bad); err == nil || !strings.Contains(err.Error(), "hook 2") {
		t.Errorf("Import with an invalid second hook: got %v, %v; want an error naming hook 2", got, err)
	}
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Errorf("hooks file after a refused import: got %s, want unchanged %s", now, orig)
	}

	// An export from another profile: ids and profile are replaced.
	in := []Hook{
		{ID: first.ID, Profile: "other", Event: PreToolUse, Shell: "second", Match: "^Bash$", Timeout: 5 * time.Second},
		{ID: "h_deadbeef", Profile: "other", Event: PostToolUse, Shell: "third"},
	}
	got, err := s.Import("work", in)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Import: got %d hooks, want 2", len(got))
	}
	list, _ := s.List("work")
	if want := []string{"first", "second", "third"}; !slices.Equal(shells(list), want) {
		t.Errorf("List after Import: got %v, want %v", shells(list), want)
	}
	ids := map[string]bool{}
	for _, h := range list {
		if h.Profile != "work" {
			t.Errorf("imported hook %s: got profile %q, want work", h.ID, h.Profile)
		}
		if ids[h.ID] {
			t.Errorf("id %s appears twice after Import: want new ids for imported hooks", h.ID)
		}
		ids[h.ID] = true
	}
	if list[1].Match != "^Bash$" || list[1].Timeout != 5*time.Second || list[2].Event != PostToolUse || list[2].Timeout != DefaultTimeout {
		t.Errorf("imported hooks: got %+v, want match, timeout and event kept (default timeout filled in)", list[1:])
	}
	if ids["h_deadbeef"] {
		t.Errorf("imported hook kept id h_deadbeef: want a new id")
	}
	if got, err := s.Import("work", nil); err != nil || len(got) != 0 {
		t.Errorf("Import of nothing: got %v, %v; want no hooks, nil", got, err)
	}
	assertMode(t, path, 0o600)
}

func TestStoreDeleteProfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(dir)
	for _, p := range []string{"work", "other"} {
		if _, err := s.Add(newHook(p, "true")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteProfile("work"); err != nil {
		t.Fatalf("DeleteProfile: %v", err)
	}
	if got, err := s.List("work"); err != nil || len(got) != 0 {
		t.Errorf("List after DeleteProfile: got %v, %v; want none", got, err)
	}
	if got, _ := s.List("other"); len(got) != 1 {
		t.Errorf("List other after deleting work: got %d hooks, want 1", len(got))
	}
	if err := s.DeleteProfile("work"); err != nil {
		t.Errorf("DeleteProfile twice: got %v, want nil", err)
	}
	if err := s.DeleteProfile("never"); err != nil {
		t.Errorf("DeleteProfile of a profile without hooks: got %v, want nil", err)
	}
}

// TestStoreConcurrentAdds adds hooks from many goroutines: none is lost
// and every id is unique.
func TestStoreConcurrentAdds(t *testing.T) {
	t.Parallel()
	s := NewStore(t.TempDir())
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Add(newHook("work", "true"))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Add: %v", err)
	}
	list, err := s.List("work")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Errorf("List: got %d hooks, want %d", len(list), n)
	}
	ids := map[string]bool{}
	for _, h := range list {
		if ids[h.ID] {
			t.Errorf("id %s appears twice", h.ID)
		}
		ids[h.ID] = true
	}
}

func TestStoreFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		errPart string
	}{
		{"not JSON", "{", 0o600, "not valid JSON"},
		{"group-readable", `{"version":1,"hooks":[]}`, 0o640, "hooks of work"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "hooks"), 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "hooks", "work.json")
			if err := os.WriteFile(path, []byte(c.content), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			s := NewStore(dir)
			if got, err := s.List("work"); err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("List: got %v, %v; want an error containing %q", got, err, c.errPart)
			}
			if _, err := s.Add(newHook("work", "true")); err == nil {
				t.Errorf("Add over a bad file: got nil, want an error (not overwriting it)")
			}
			if data, _ := os.ReadFile(path); string(data) != c.content {
				t.Errorf("file after refused Add: got %q, want unchanged %q", data, c.content)
			}
		})
	}

	// The file is what an export prints: version 1 and the hooks.
	dir := t.TempDir()
	s := NewStore(dir)
	h, err := s.Add(Hook{Profile: "work", Event: PreToolUse, Shell: "true", Match: "^Bash$", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "hooks", "work.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version int               `json:"version"`
		Hooks   []json.RawMessage `json:"hooks"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Version != 1 || len(f.Hooks) != 1 {
		t.Fatalf("hooks file: got %s (%v), want version 1 with one hook", data, err)
	}
	var back Hook
	if err := json.Unmarshal(f.Hooks[0], &back); err != nil || !sameHook(back, h) {
		t.Errorf("stored hook: got %+v (%v), want %+v", back, err, h)
	}
}
