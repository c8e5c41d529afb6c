package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/token"
)

// kcFakeStore is an in-memory KeyStore that records what it was given.
type kcFakeStore struct {
	mu      sync.Mutex
	keys    map[credentials.Ref]string
	failAll error
	// failMigrate, when set, ends a migration to the keyring after one
	// key has moved.
	failMigrate error
}

func (f *kcFakeStore) List() ([]credentials.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return nil, f.failAll
	}
	var out []credentials.Entry
	for r := range f.keys {
		out = append(out, credentials.Entry{Provider: r.Provider, Alias: r.Alias, Backend: "file", Status: "ok"})
	}
	return out, nil
}

func (f *kcFakeStore) Set(r credentials.Ref, s credentials.Secret) (credentials.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return credentials.Entry{}, f.failAll
	}
	f.keys[r] = s.Reveal()
	return credentials.Entry{Provider: r.Provider, Alias: r.Alias, Backend: "file", Created: time.Now(), Updated: time.Now()}, nil
}

func (f *kcFakeStore) Get(r credentials.Ref) (credentials.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[r]
	if !ok {
		return credentials.Secret{}, credentials.ErrNotFound
	}
	return credentials.NewSecret(k), nil
}

func (f *kcFakeStore) Remove(r credentials.Ref) (credentials.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[r]; !ok {
		return credentials.Entry{}, fmt.Errorf("no credential %s: %w", r, credentials.ErrNotFound)
	}
	delete(f.keys, r)
	return credentials.Entry{Provider: r.Provider, Alias: r.Alias, Backend: "file"}, nil
}

// Backend: the fake keeps keys in a file.
func (f *kcFakeStore) Backend() (string, string, error) {
	return credentials.BackendFile, "credentials.backend is file", nil
}

// Migrate keeps every key in the file backend: a move to the file finds
// each there already; a move to the keyring moves them in order.
func (f *kcFakeStore) Migrate(to string, progress func(credentials.MigrateResult)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return f.failAll
	}
	refs := slices.SortedFunc(maps.Keys(f.keys), func(a, b credentials.Ref) int { return strings.Compare(a.String(), b.String()) })
	for i, r := range refs {
		if to == credentials.BackendKeyring && f.failMigrate != nil && i == 1 {
			return fmt.Errorf("migrate %s: %w", r, f.failMigrate)
		}
		e := credentials.Entry{Provider: r.Provider, Alias: r.Alias, Backend: to}
		result := "moved"
		if to == credentials.BackendFile {
			result = "already"
		}
		progress(credentials.MigrateResult{Entry: e, Result: result})
	}
	return nil
}

func kcServer(t *testing.T, store KeyStore, log *bytes.Buffer) (http.Handler, string) {
	t.Helper()
	tok, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(withParts(t, Options{
		Token: tok, TokenFile: t.TempDir() + "/http_token", Keys: store,
		Logger: slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}))
	if err != nil {
		t.Fatal(err)
	}
	s.port.Store(8765)
	return s.Handler(), tok.Value()
}

func kcDo(h http.Handler, tok, method, path, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://127.0.0.1:8765"+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestKeychainREST(t *testing.T) {
	t.Parallel()
	const canary = "sk-ant-canary-4f1d2c9a8b7e"
	store := &kcFakeStore{keys: map[credentials.Ref]string{}}
	var log bytes.Buffer
	h, tok := kcServer(t, store, &log)

	steps := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode                 string
	}{
		{"empty list", "GET", "/api/keychain", "", 200, ""},
		{"set", "PUT", "/api/keychain/anthropic/work", `{"key":"` + canary + `"}`, 200, ""},
		{"list after set", "GET", "/api/keychain", "", 200, ""},
		{"bad provider", "PUT", "/api/keychain/Anthropic/work", `{"key":"x"}`, 400, "invalid_name"},
		{"bad alias", "PUT", "/api/keychain/anthropic/-work", `{"key":"x"}`, 400, "invalid_name"},
		{"key with space", "PUT", "/api/keychain/anthropic/work", `{"key":"a b"}`, 400, "invalid_key"},
		{"empty key", "PUT", "/api/keychain/anthropic/work", `{"key":""}`, 400, "invalid_key"},
		{"unknown field", "PUT", "/api/keychain/anthropic/work", `{"key":"x","base_url":"http://evil"}`, 400, "bad_request"},
		{"not json", "PUT", "/api/keychain/anthropic/work", `key=x`, 400, "bad_request"},
		{"remove missing", "DELETE", "/api/keychain/anthropic/nope", "", 404, "not_found"},
		{"remove", "DELETE", "/api/keychain/anthropic/work", "", 200, ""},
		{"remove again", "DELETE", "/api/keychain/anthropic/work", "", 404, "not_found"},
		{"post not allowed", "POST", "/api/keychain/anthropic/work", `{}`, 405, "method_not_allowed"},
	}
	var all strings.Builder
	for _, st := range steps {
		w := kcDo(h, tok, st.method, st.path, st.body)
		all.WriteString(w.Body.String())
		if w.Code != st.wantStatus {
			t.Fatalf("%s: got status %d, want %d (body %s)", st.name, w.Code, st.wantStatus, w.Body)
		}
		if st.wantCode != "" {
			var e api.ErrorAnswer
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != st.wantCode {
				t.Errorf("%s: got body %s, want error code %q", st.name, w.Body, st.wantCode)
			}
		}
		if st.name == "list after set" {
			var got struct{ Entries []credentials.Entry }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Entries) != 1 || got.Entries[0].Alias != "work" {
				t.Errorf("list after set: got %s, want one entry anthropic/work", w.Body)
			}
		}
	}
	if got := store.keys; len(got) != 0 {
		t.Errorf("got %d keys left in the store, want 0", len(got))
	}
	for name, text := range map[string]string{"responses": all.String(), "log": log.String()} {
		if strings.Contains(text, canary) {
			t.Errorf("the key appears in the %s", name)
		}
	}
	if !strings.Contains(log.String(), `"credential":"anthropic/work"`) {
		t.Errorf("got log %q, want a line naming anthropic/work", log.String())
	}
}

func TestKeychainRESTStoreFailure(t *testing.T) {
	t.Parallel()
	store := &kcFakeStore{keys: map[credentials.Ref]string{}, failAll: errors.New("the Secret Service's login keyring is locked")}
	var log bytes.Buffer
	h, tok := kcServer(t, store, &log)
	for _, m := range []struct{ method, body string }{{"GET", ""}, {"PUT", `{"key":"abc"}`}} {
		path := "/api/keychain"
		if m.method == "PUT" {
			path += "/anthropic/work"
		}
		w := kcDo(h, tok, m.method, path, m.body)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "locked") {
			t.Errorf("%s: got %d %s, want 503 naming the cause", m.method, w.Code, w.Body)
		}
	}
}

func TestKeychainRESTMigrate(t *testing.T) {
	t.Parallel()
	store := &kcFakeStore{keys: map[credentials.Ref]string{{Provider: "anthropic", Alias: "a"}: "sk-1", {Provider: "openai", Alias: "b"}: "sk-2"}}
	var log bytes.Buffer
	h, tok := kcServer(t, store, &log)
	for _, tc := range []struct {
		name, body  string
		failMigrate error
		wantStatus  int
		want        string // in the body
	}{
		{"to the file", `{"to":"file"}`, nil, 200, `{"results":[{"entry":{"provider":"anthropic","alias":"a","backend":"file"`},
		{"to the keyring", `{"to":"keyring"}`, nil, 200, `"result":"moved"`},
		{"unknown backend", `{"to":"disk"}`, nil, 400, "to must be file or keyring"},
		{"unknown field", `{"to":"file","from":"keyring"}`, nil, 400, `"bad_request"`},
		{"stops at a failure", `{"to":"keyring"}`, errors.New("the keyring is locked"), 503, "the keyring is locked (moved before that: anthropic/a)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store.mu.Lock()
			store.failMigrate = tc.failMigrate
			store.mu.Unlock()
			w := kcDo(h, tok, "POST", "/api/keychain/migrate", tc.body)
			if w.Code != tc.wantStatus || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("POST /api/keychain/migrate %s: got %d %s, want %d with %q", tc.body, w.Code, w.Body, tc.wantStatus, tc.want)
			}
		})
	}
	if w := kcDo(h, "wrong", "POST", "/api/keychain/migrate", `{"to":"file"}`); w.Code != http.StatusUnauthorized {
		t.Errorf("migrate with a wrong token: got %d, want 401", w.Code)
	}
}

func TestKeychainRESTNeedsToken(t *testing.T) {
	t.Parallel()
	store := &kcFakeStore{keys: map[credentials.Ref]string{}}
	var log bytes.Buffer
	h, _ := kcServer(t, store, &log)
	w := kcDo(h, "wrong", "PUT", "/api/keychain/anthropic/work", `{"key":"abc"}`)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", w.Code)
	}
	if len(store.keys) != 0 {
		t.Errorf("got %d keys stored by an unauthenticated request, want 0", len(store.keys))
	}
}

// TestKeychainRESTHidesOAuthRecords: the OAuth authorizations 'mcp auth'
// keeps are not listed as keys, and setting or removing one by hand is
// refused with the command that does it.
func TestKeychainRESTHidesOAuthRecords(t *testing.T) {
	t.Parallel()
	store := &kcFakeStore{keys: map[credentials.Ref]string{
		{Provider: "mcp-oauth", Alias: "docs.work"}: "record",
		{Provider: "anthropic", Alias: "work"}:      "sk-ant",
	}}
	var log bytes.Buffer
	h, tok := kcServer(t, store, &log)
	w := kcDo(h, tok, "GET", "/api/keychain", "")
	var got struct{ Entries []credentials.Entry }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Entries) != 1 || got.Entries[0].Provider != "anthropic" {
		t.Errorf("list: got %s, want anthropic/work only", w.Body)
	}
	for _, method := range []string{"DELETE", "PUT"} {
		w := kcDo(h, tok, method, "/api/keychain/mcp-oauth/docs.work", `{"key":"planted"}`)
		var e api.ErrorAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "'ringlet mcp auth work docs' (or --revoke to remove it)") {
			t.Errorf("%s mcp-oauth/docs.work: got %d %s, want 400 naming 'ringlet mcp auth work docs'", method, w.Code, w.Body)
		}
	}
	if store.keys[credentials.Ref{Provider: "mcp-oauth", Alias: "docs.work"}] != "record" {
		t.Error("the record was changed")
	}
}
