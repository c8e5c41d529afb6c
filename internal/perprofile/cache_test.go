package perprofile

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// aged is a store whose clock runs an hour ahead, so that every file
// it reads is old enough to be kept (see privatefile.RacyWindow).
func aged(t *testing.T) *Store[item] {
	s := New[item](t.TempDir(), "things", "things")
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	return s
}

func set(t *testing.T, s *Store[item], items ...item) {
	t.Helper()
	if err := s.Update("work", func([]item) ([]item, error) { return items, nil }); err != nil {
		t.Fatal(err)
	}
}

// list is List's answer, checked against what View shows.
func list(t *testing.T, s *Store[item]) ([]item, error) {
	t.Helper()
	items, err := s.List("work")
	var viewed []item
	verr := s.View("work", func(it []item) { viewed = slices.Clone(it) })
	if (err == nil) != (verr == nil) || !slices.Equal(items, viewed) {
		t.Errorf("View: got %v (err %v), want List's %v (err %v)", viewed, verr, items, err)
	}
	return items, err
}

// kept reports whether the store holds profile work's items in memory.
func kept(s *Store[item]) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.cache["work"]
	return ok
}

// TestCacheSeesChanges: what a file held is kept, and every way the file
// can change behind the daemon's back, or through it, is seen at the next
// List.
func TestCacheSeesChanges(t *testing.T) {
	t.Parallel()
	file := `{"version": 1, "things": [{"name": "a", "n": 1}]}` + "\n"
	past := time.Now().Add(-time.Minute)
	cases := []struct {
		name    string
		change  func(t *testing.T, s *Store[item], path string)
		want    []item
		wantErr string
	}{
		{"the store's own write, the same size", func(t *testing.T, s *Store[item], _ string) { set(t, s, item{Name: "a", N: 2}) },
			[]item{{Name: "a", N: 2}}, ""},
		{"edited in place, the same size", func(t *testing.T, _ *Store[item], path string) {
			if err := os.WriteFile(path, []byte(strings.Replace(file, `"n": 1`, `"n": 3`, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []item{{Name: "a", N: 3}}, ""},
		{"replaced by another file", func(t *testing.T, _ *Store[item], path string) {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, []byte(strings.Replace(file, `"n": 1`, `"n": 4`, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, past, past); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}, []item{{Name: "a", N: 4}}, ""},
		{"made readable by others", func(t *testing.T, _ *Store[item], path string) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, "group or others can access it"},
		{"replaced by a symbolic link", func(t *testing.T, _ *Store[item], path string) {
			other := path + ".elsewhere"
			if err := os.WriteFile(other, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, nil, "symbolic link"},
		{"removed", func(t *testing.T, _ *Store[item], path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, nil, ""},
		{"profile deleted through the store", func(t *testing.T, s *Store[item], _ string) {
			if err := s.DeleteProfile("work"); err != nil {
				t.Fatal(err)
			}
		}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := aged(t)
			set(t, s, item{Name: "a", N: 1})
			path := s.Path("work")
			// The file's times put in the past, so that a change made
			// now gives it other times whatever the clock's tick.
			if err := os.Chtimes(path, past, past); err != nil {
				t.Fatal(err)
			}
			if got, err := list(t, s); err != nil || len(got) != 1 || got[0] != (item{Name: "a", N: 1}) {
				t.Fatalf("first List: got %v, %v", got, err)
			}
			if !kept(s) {
				t.Fatal("the items were not kept after the first List")
			}
			c.change(t, s, path)
			got, err := list(t, s)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("List after the change: got %v, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(c.want) || (len(got) == 1 && got[0] != c.want[0]) {
				t.Fatalf("List after the change: got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// TestCacheSkipsRacyFiles: a file changed within privatefile.RacyWindow of its read is
// read again at the next List rather than kept.
func TestCacheSkipsRacyFiles(t *testing.T) {
	t.Parallel()
	s := New[item](t.TempDir(), "things", "things")
	set(t, s, item{Name: "a"})
	if _, err := list(t, s); err != nil {
		t.Fatal(err)
	}
	if kept(s) {
		t.Fatal("a file written just now was kept")
	}
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := list(t, s); err != nil {
		t.Fatal(err)
	}
	if !kept(s) {
		t.Fatal("a file older than the racy window was not kept")
	}
}

type shared struct {
	Tags []string `json:"tags"`
}

func (s shared) Clone() shared { return shared{Tags: append([]string(nil), s.Tags...)} }

// TestCacheHandsOutCopies: changing what List returned does not change
// what the next List returns.
func TestCacheHandsOutCopies(t *testing.T) {
	t.Parallel()
	s := New[shared](t.TempDir(), "things", "things")
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	if err := s.Update("work", func([]shared) ([]shared, error) { return []shared{{Tags: []string{"x"}}}, nil }); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := s.List("work")
		if err != nil || len(got) != 1 || len(got[0].Tags) != 1 || got[0].Tags[0] != "x" {
			t.Fatalf("List: got %v, %v; want [{[x]}]", got, err)
		}
		got[0].Tags[0] = "changed"
		got[0] = shared{}
	}
}

// TestViewsOfKeptItemsRunTogether: a View of kept items does not wait for
// another View still reading them, as the tool calls of many sessions of
// one profile read the same files at once.
func TestViewsOfKeptItemsRunTogether(t *testing.T) {
	t.Parallel()
	s := aged(t)
	set(t, s, item{Name: "a"})
	if _, err := list(t, s); err != nil || !kept(s) {
		t.Fatalf("first List: err %v, kept %v; want the items kept", err, kept(s))
	}
	reading, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.View("work", func([]item) { close(reading); <-release })
	}()
	<-reading
	type viewed struct {
		items []item
		err   error
	}
	second := make(chan viewed, 1)
	go func() {
		var v viewed
		v.err = s.View("work", func(items []item) { v.items = slices.Clone(items) })
		second <- v
	}()
	select {
	case v := <-second:
		if v.err != nil || len(v.items) != 1 || v.items[0].Name != "a" {
			t.Errorf("second View: got %v, %v; want [{a 0}]", v.items, v.err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a View of kept items waited for another View to finish")
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first View: %v", err)
	}
}
