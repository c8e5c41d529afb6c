//go:build linux

package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"

	"github.com/neullabs/ringlet/credentials"
)

// These tests run against the private gnome-keyring of TestMain. They are
// not parallel: the locked-keyring test locks the one login collection they
// share. Each uses its own aliases and removes its items afterwards.

// testKey returns a fresh key, so that a test can tell its item from any
// other.
func testKey(t *testing.T) credentials.Secret {
	t.Helper()
	b := make([]byte, 12)
	rand.Read(b)
	return credentials.NewSecret("sk-test-" + hex.EncodeToString(b))
}

// cleanupKeyring deletes r's keyring item when the test ends.
func cleanupKeyring(t *testing.T, refs ...credentials.Ref) {
	t.Cleanup(func() {
		for _, r := range refs {
			if err := keyring.Delete(KeyringService, r.String()); err != nil && !errors.Is(err, keyring.ErrNotFound) {
				t.Errorf("clean up %s: %v", r, err)
			}
		}
	})
}

func openStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	return s
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(%s): got %v, want it not to exist", path, err)
	}
}

// searchResult is what secret-tool reports about the matching items.
type searchResult struct {
	items   int
	attrs   map[string]string // of the items, merged
	secrets []string
}

// secretToolSearch lists the items with service=ringlet and username=<r>.
// The output carries the secrets, so it is never logged.
func secretToolSearch(t *testing.T, r credentials.Ref) searchResult {
	t.Helper()
	bin := requireTool(t, "secret-tool")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "search", "--all", "service", KeyringService, "username", r.String())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res := searchResult{attrs: map[string]string{}}
	if err := cmd.Run(); err != nil {
		// secret-tool exits 1 when nothing matches.
		var ee *exec.ExitError
		if !errors.As(err, &ee) || stdout.Len() != 0 {
			t.Fatalf("secret-tool search %s: %v: %s", r, err, stderr.String())
		}
		return res
	}
	// Each item goes to stdout as "[path]" and "name = value" lines, its
	// attributes to stderr as "attribute.name = value".
	for line := range strings.Lines(stdout.String()) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			res.items++
		} else if v, ok := strings.CutPrefix(line, "secret = "); ok {
			res.secrets = append(res.secrets, v)
		}
	}
	for line := range strings.Lines(stderr.String()) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " = ")
		if name, ok := strings.CutPrefix(k, "attribute."); ok {
			res.attrs[name] = v
		}
	}
	return res
}

func TestKeyringSetGet(t *testing.T) {
	addr := requireKeyring(t)
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, Backend: credentials.BackendKeyring, SessionBus: addr})
	r := credentials.Ref{Provider: "anthropic", Alias: "set-get"}
	cleanupKeyring(t, r)

	first, key := testKey(t), testKey(t)
	for _, k := range []credentials.Secret{first, key} { // the second Set replaces the first
		e, err := s.Set(r, k)
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		if e.Backend != credentials.BackendKeyring {
			t.Errorf("Set entry backend: got %q, want %q", e.Backend, credentials.BackendKeyring)
		}
	}
	got, err := s.Get(r)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Reveal() != key.Reveal() {
		t.Errorf("Get: got a different key than the one set")
	}
	assertNoFile(t, s.FilePath())

	// The item is where the documentation says, once.
	found := secretToolSearch(t, r)
	if found.items != 1 {
		t.Fatalf("secret-tool search service %s username %s: got %d items, want 1", KeyringService, r, found.items)
	}
	for k, want := range map[string]string{"service": KeyringService, "username": r.String()} {
		if got := found.attrs[k]; got != want {
			t.Errorf("item attribute %s: got %q, want %q", k, got, want)
		}
	}
	if !slices.Equal(found.secrets, []string{key.Reveal()}) {
		t.Errorf("secret-tool: got %d secrets that are not all the key last set, want the key once", len(found.secrets))
	}
}

func TestKeyringListMissingAndRemove(t *testing.T) {
	addr := requireKeyring(t)
	secretTool := requireTool(t, "secret-tool")
	s := openStore(t, Options{Dir: t.TempDir(), Backend: credentials.BackendKeyring, SessionBus: addr})
	kept, gone := credentials.Ref{Provider: "anthropic", Alias: "list-kept"}, credentials.Ref{Provider: "anthropic", Alias: "list-gone"}
	cleanupKeyring(t, kept, gone)
	for _, r := range []credentials.Ref{kept, gone} {
		if _, err := s.Set(r, testKey(t)); err != nil {
			t.Fatalf("Set %s: %v", r, err)
		}
	}
	status := func() map[credentials.Ref]string {
		t.Helper()
		entries, err := s.List()
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		m := map[credentials.Ref]string{}
		for _, e := range entries {
			m[e.Ref()] = e.Status
			if e.Backend != credentials.BackendKeyring {
				t.Errorf("List %s backend: got %q, want %q", e.Ref(), e.Backend, credentials.BackendKeyring)
			}
		}
		return m
	}
	if got, want := status(), map[credentials.Ref]string{kept: "ok", gone: "ok"}; !maps.Equal(got, want) {
		t.Fatalf("List: got %v, want %v", got, want)
	}

	// Delete the item behind Ringlet's back.
	out, err := exec.CommandContext(t.Context(), secretTool, "clear", "service", KeyringService, "username", gone.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("secret-tool clear: %v: %s", err, out)
	}
	if n := secretToolSearch(t, gone).items; n != 0 {
		t.Fatalf("secret-tool search after clear: got %d items, want 0", n)
	}
	if got, want := status(), map[credentials.Ref]string{kept: "ok", gone: "missing"}; !maps.Equal(got, want) {
		t.Fatalf("List: got %v, want %v", got, want)
	}
	if _, err := s.Get(gone); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("Get of the deleted item: got %v, want ErrNotFound", err)
	}
	if err := (keyringBackend{}).Delete(gone); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("keyring Delete of the deleted item: got %v, want ErrNotFound", err)
	}

	// Remove drops an entry whose secret is gone (documented), and then
	// there is nothing left to remove.
	if _, err := s.Remove(gone); err != nil {
		t.Errorf("Remove of the missing entry: got %v, want nil", err)
	}
	if _, err := s.Remove(gone); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("Remove again: got %v, want ErrNotFound", err)
	}
	if _, err := s.Remove(credentials.Ref{Provider: "anthropic", Alias: "never-set"}); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("Remove of an entry never set: got %v, want ErrNotFound", err)
	}
	if got, want := status(), map[credentials.Ref]string{kept: "ok"}; !maps.Equal(got, want) {
		t.Errorf("List after Remove: got %v, want %v", got, want)
	}

	// Remove of a present key deletes the item too.
	if _, err := s.Remove(kept); err != nil {
		t.Fatalf("Remove %s: %v", kept, err)
	}
	if n := secretToolSearch(t, kept).items; n != 0 {
		t.Errorf("secret-tool search after Remove: got %d items, want 0", n)
	}
}

func TestKeyringAutoChoosesKeyring(t *testing.T) {
	addr := requireKeyring(t)
	type choice struct{ backend, reason string }
	var chosen []choice
	s := openStore(t, Options{Dir: t.TempDir(), Backend: credentials.BackendAuto, SessionBus: addr, OnChoose: func(b, why string) {
		chosen = append(chosen, choice{b, why})
	}})
	refs := []credentials.Ref{{Provider: "anthropic", Alias: "auto-1"}, {Provider: "openai", Alias: "auto-2"}}
	cleanupKeyring(t, refs...)
	for _, r := range refs {
		e, err := s.Set(r, testKey(t))
		if err != nil {
			t.Fatalf("Set %s: %v", r, err)
		}
		if e.Backend != credentials.BackendKeyring {
			t.Errorf("Set %s backend: got %q, want %q", r, e.Backend, credentials.BackendKeyring)
		}
		if _, err := s.Get(r); err != nil {
			t.Errorf("Get %s: %v", r, err)
		}
	}
	if len(chosen) != 1 || chosen[0].backend != credentials.BackendKeyring {
		t.Errorf("OnChoose calls: got %v, want one with %q", chosen, credentials.BackendKeyring)
	}
	assertNoFile(t, s.FilePath())
}

func TestKeyringLockedAutoRefuses(t *testing.T) {
	addr := requireKeyring(t)
	dir := t.TempDir()
	t.Cleanup(lockLogin(t, addr))

	tests := []struct {
		name    string
		backend string
	}{
		{"auto", credentials.BackendAuto},
		{"keyring", credentials.BackendKeyring},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			s := openStore(t, Options{Dir: dir, Backend: tt.backend, SessionBus: addr, OnChoose: func(string, string) { called = true }})
			_, err := s.Set(credentials.Ref{Provider: "anthropic", Alias: "locked"}, testKey(t))
			if err == nil || !strings.Contains(err.Error(), "locked") {
				t.Errorf("Set with the keyring locked: got %v, want an error that mentions locked", err)
			}
			if called {
				t.Errorf("OnChoose: called, want no backend chosen")
			}
			// Never a silent fall back to the plain-text file.
			assertNoFile(t, s.FilePath())
			assertNoFile(t, filepath.Join(dir, "keychain.json"))
		})
	}
}

func TestKeyringMigrateRoundTrip(t *testing.T) {
	addr := requireKeyring(t)
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, Backend: credentials.BackendFile, SessionBus: addr})
	keys := map[credentials.Ref]credentials.Secret{
		{Provider: "anthropic", Alias: "mig-1"}: testKey(t),
		{Provider: "anthropic", Alias: "mig-2"}: testKey(t),
		{Provider: "openai", Alias: "mig-3"}:    testKey(t),
	}
	refs := make([]credentials.Ref, 0, len(keys))
	for r, k := range keys {
		refs = append(refs, r)
		if _, err := s.Set(r, k); err != nil {
			t.Fatalf("Set %s: %v", r, err)
		}
	}
	cleanupKeyring(t, refs...)
	backends := map[string]backend{credentials.BackendFile: s.file, credentials.BackendKeyring: keyringBackend{}}

	steps := []struct{ from, to string }{
		{credentials.BackendFile, credentials.BackendKeyring},
		{credentials.BackendKeyring, credentials.BackendFile},
	}
	for _, st := range steps {
		t.Run(st.from+"-to-"+st.to, func(t *testing.T) {
			var results []string
			err := s.Migrate(st.to, func(r credentials.MigrateResult) { results = append(results, r.Entry.Ref().String()+":"+r.Result) })
			if err != nil {
				t.Fatalf("Migrate(%s): %v", st.to, err)
			}
			var want []string
			for _, r := range refs {
				want = append(want, r.String()+":moved")
			}
			slices.Sort(results)
			slices.Sort(want)
			if !slices.Equal(results, want) {
				t.Errorf("progress: got %v, want %v", results, want)
			}
			for r, k := range keys {
				if got, err := s.Get(r); err != nil || got.Reveal() != k.Reveal() {
					t.Errorf("Get %s: got err %v or another key, want the key", r, err)
				}
				if got, err := backends[st.to].Get(r); err != nil || got.Reveal() != k.Reveal() {
					t.Errorf("%s backend Get %s: got err %v or another key, want the key", st.to, r, err)
				}
				if _, err := backends[st.from].Get(r); !errors.Is(err, credentials.ErrNotFound) {
					t.Errorf("%s backend Get %s: got %v, want ErrNotFound", st.from, r, err)
				}
			}
			entries, err := s.readIndex()
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(keys) {
				t.Errorf("index: got %d entries, want %d", len(entries), len(keys))
			}
			for _, e := range entries {
				if e.Backend != st.to {
					t.Errorf("index %s backend: got %q, want %q", e.Ref(), e.Backend, st.to)
				}
			}
			// A second run has nothing to move.
			results = nil
			if err := s.Migrate(st.to, func(r credentials.MigrateResult) { results = append(results, r.Result) }); err != nil {
				t.Fatalf("Migrate(%s) again: %v", st.to, err)
			}
			if want := slices.Repeat([]string{"already"}, len(keys)); !slices.Equal(results, want) {
				t.Errorf("progress of a second run: got %v, want %v", results, want)
			}
		})
	}
}

// The listing that List uses finds Ringlet's items by their attributes:
// an item of another service with the same username is not Ringlet's.
func TestKeyringPresentListing(t *testing.T) {
	addr := requireKeyring(t)
	secretTool := requireTool(t, "secret-tool")
	s := openStore(t, Options{Dir: t.TempDir(), Backend: credentials.BackendKeyring, SessionBus: addr})
	held, decoy, never := credentials.Ref{Provider: "anthropic", Alias: "present-held"}, credentials.Ref{Provider: "anthropic", Alias: "present-decoy"}, credentials.Ref{Provider: "anthropic", Alias: "present-never"}
	cleanupKeyring(t, held)
	if _, err := s.Set(held, testKey(t)); err != nil {
		t.Fatalf("Set %s: %v", held, err)
	}
	cmd := exec.CommandContext(t.Context(), secretTool, "store", "--label", "decoy", "service", "not-ringlet", "username", decoy.String())
	cmd.Stdin = strings.NewReader("sk-decoy-value")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v: %s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command(secretTool, "clear", "service", "not-ringlet", "username", decoy.String()).Run() // best effort: the private keyring goes with the test binary
	})
	refs := []credentials.Ref{held, decoy, never}
	cached := keyringBackend{items: &itemAccounts{}}
	for _, k := range []keyringBackend{{}, cached, cached} { // no cache, cache filled, cache used
		got, err := k.present(refs)
		if err != nil {
			t.Fatalf("present: %v", err)
		}
		if want := map[credentials.Ref]bool{held: true, decoy: false, never: false}; !maps.Equal(got, want) {
			t.Errorf("present: got %v, want %v", got, want)
		}
	}
	if n := len(cached.items.m); n == 0 {
		t.Errorf("item cache: got %d paths, want the listed items", n)
	}
	// The cache hides neither a deletion nor a new item.
	cleanupKeyring(t, never)
	if _, err := s.Set(never, testKey(t)); err != nil {
		t.Fatalf("Set %s: %v", never, err)
	}
	if out, err := exec.CommandContext(t.Context(), secretTool, "clear", "service", KeyringService, "username", held.String()).CombinedOutput(); err != nil {
		t.Fatalf("secret-tool clear: %v: %s", err, out)
	}
	got, err := cached.present(refs)
	if err != nil {
		t.Fatalf("present: %v", err)
	}
	if want := map[credentials.Ref]bool{held: false, decoy: false, never: true}; !maps.Equal(got, want) {
		t.Errorf("present after a deletion and a new item: got %v, want %v", got, want)
	}
}
