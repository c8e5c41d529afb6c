package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sessionstore"
	"github.com/neullabs/ringlet/token"
)

// fakeClock is a clock that moves only when the test says: Advance runs
// the timers that fall due, in order, on the test's goroutine. No sleeps.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	at     time.Time
	f      func()
	active bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, active: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	return was
}

// Advance moves the clock by d, firing each timer that falls due at its
// time (a timer reset meanwhile waits for its new time).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if t.active && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.active = false
		c.mu.Unlock()
		next.f()
	}
}

// slWorld is a daemon with a claude profile "work" and a generic one
// "other", their keys, an in-memory audit log, a session store file and a
// fake clock. Worlds made with the same dirs share their files: a
// second one is the daemon started again.
type slWorld struct {
	s     *Server
	h     http.Handler
	clock *fakeClock
	audit *hkAuditor
	dirs  slDirs
	keys  *keystore.Store
	prof  *profile.Store
	log   *bytes.Buffer
}

type slDirs struct{ config, data, state, sockets string }

func newSlDirs(t testing.TB) slDirs {
	t.Helper()
	d := slDirs{config: t.TempDir(), data: t.TempDir(), state: filepath.Join(t.TempDir(), "state"), sockets: shortTempDir(t)}
	cat, err := profile.LoadCatalog(d.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "local", BaseURL: "http://127.0.0.1:9", Format: "anthropic", Auth: profile.AuthXAPIKey,
		Endpoints: map[string]string{"eu": "http://127.0.0.1:10"}}); err != nil {
		t.Fatalf("AddProvider: %v", err)
	}
	profiles := profile.NewStore(d.config, d.data)
	keys, err := keystore.Open(keystore.Options{Dir: d.config, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []profile.Profile{{Alias: "work", Agent: "claude", Provider: "local"}, {Alias: "other", Agent: "claude", Provider: "local"}} {
		if _, err := profiles.Create(cat, p); err != nil {
			t.Fatalf("Create %s: %v", p.Alias, err)
		}
		if _, err := keys.Set(credentials.Ref{Provider: "local", Alias: p.Alias}, credentials.NewSecret("sk-ant-test-"+p.Alias)); err != nil {
			t.Fatalf("set key: %v", err)
		}
	}
	return d
}

// shortTempDir is a temporary directory with a path short enough for the
// Unix sockets in it (108 bytes).
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (d slDirs) storePath() string { return filepath.Join(d.state, "sessions") }

// storeFile is the file of the stored session id.
func (d slDirs) storeFile(id string) string { return filepath.Join(d.storePath(), id+".json") }

// newSlWorld starts a daemon on dirs, its clock at now (zero: the fake
// clock's start).
func newSlWorld(t testing.TB, d slDirs, a *hkAuditor, now time.Time) *slWorld {
	t.Helper()
	keys, err := keystore.Open(keystore.Options{Dir: d.config, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	w := &slWorld{clock: newFakeClock(), audit: a, dirs: d, keys: keys, prof: profile.NewStore(d.config, d.data), log: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(w.log, nil))
	if !now.IsZero() {
		w.clock.now = now
	}
	w.s, err = New(withParts(t, Options{
		Token: token.FromString(testToken), TokenFile: filepath.Join(d.config, "http_token"), Profiles: w.prof, CatalogDir: d.config,
		Keys: keys, Launch: launch.New(launch.Options{}), Hooks: hook.NewStore(d.config), Audit: a, StateDir: d.state,
		SessionStore: sessionstore.NewDir(d.storePath(), sessionstore.Options{Log: logger}), Logger: logger, SocketDir: d.sockets,
	}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Before any session starts, so each lives by it.
	w.s.sessions.clock = w.clock
	w.s.port.Store(testPort)
	t.Cleanup(w.s.life.stop)
	// The renewal writer a request started may still be writing to the
	// store: waited for before the test's directories are removed (their
	// cleanups run after this one), as a graceful stop waits for it.
	t.Cleanup(w.s.sessions.renewals.wait)
	w.h = w.s.Handler()
	return w
}

func (w *slWorld) do(t *testing.T, tok, method, path, body string) *http.Response {
	t.Helper()
	return (&hkWorld{h: w.h}).do(t, tok, method, path, body)
}

// envSession starts a session as 'profiles env' does; req is the JSON
// body's fields after the profile.
func (w *slWorld) envSession(t *testing.T, alias, extra string) api.SessionStarted {
	t.Helper()
	var st api.SessionStarted
	decode(t, w.do(t, testToken, "POST", "/api/sessions", `{"profile":"`+alias+`"`+extra+`}`), http.StatusCreated, &st)
	return st
}

// admitted reports whether a request with tok gets past the gate (a hook
// check: anything but 401).
func (w *slWorld) admitted(t *testing.T, tok string) bool {
	t.Helper()
	resp := w.do(t, tok, "POST", "/session/hooks/check", `{"tool_name":"Bash","tool_input":{}}`)
	resp.Body.Close()
	return resp.StatusCode != http.StatusUnauthorized
}

// stored reads the store as it is on disk.
func (w *slWorld) stored(t *testing.T) []sessionstore.Session {
	t.Helper()
	ss, err := sessionstore.NewDir(w.dirs.storePath(), sessionstore.Options{Log: slog.New(slog.DiscardHandler)}).Load(t.Context())
	if err != nil {
		t.Fatalf("load the store: %v", err)
	}
	return ss
}

// ends are the session.end reasons recorded for id.
func (a *hkAuditor) ends(id string) []string {
	var out []string
	for _, r := range a.kind(audit.KindSessionEnd) {
		if r.Session == id {
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(r.Detail, &d) // a record without one says ""
			out = append(out, d.Reason)
		}
	}
	return out
}

// TestSlidingExpiry: a session no launcher holds ends after its idle
// timeout with no request; each request renews it, a request in flight
// keeps it, and its deadline ends it however much it is used.
func TestSlidingExpiry(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		use     bool // a request with the token (renews it, or finds it gone)
		hold    bool // a request begins and stays in flight
		release bool // the request in flight ends
		live    bool // the token is admitted after the step
	}
	tests := []struct {
		name   string
		body   string
		steps  []step
		reason string // the session.end reason, "" for still live
	}{
		{name: "unused, it idles out at 2h", steps: []step{
			{advance: 2*time.Hour - time.Second, live: true},
			{advance: time.Second, live: false},
		}, reason: "expired: no request for 2h0m0s"},
		{name: "each request renews it", steps: []step{
			{advance: 90 * time.Minute, use: true, live: true},
			{advance: 119 * time.Minute, use: true, live: true},
			{advance: 119 * time.Minute, live: true},
			{advance: time.Minute, live: false},
		}, reason: "expired: no request for 2h0m0s"},
		{name: "the deadline ends it however much it is used", body: `,"ttl":"3h"`, steps: []step{
			{advance: time.Hour, use: true, live: true},
			{advance: time.Hour, use: true, live: true},
			{advance: time.Hour - time.Second, use: true, live: true},
			{advance: time.Second, live: false},
		}, reason: "expired"},
		{name: "a request in flight is not idle", steps: []step{
			{advance: time.Minute, hold: true, live: true},
			{advance: 5 * time.Hour, live: true},
			{release: true, live: true},
			{advance: 2*time.Hour - time.Second, live: true},
			{advance: time.Second, live: false},
		}, reason: "expired: no request for 2h0m0s"},
		{name: "idle 0 keeps it to its deadline", body: `,"idle":"0","ttl":"5h"`, steps: []step{
			{advance: 5*time.Hour - time.Second, live: true},
			{advance: time.Second, live: false},
		}, reason: "expired"},
		{name: "a shorter idle of its own", body: `,"idle":"10m"`, steps: []step{
			{advance: 9 * time.Minute, use: true, live: true},
			{advance: 10 * time.Minute, live: false},
		}, reason: "expired: no request for 10m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &hkAuditor{}
			w := newSlWorld(t, newSlDirs(t), a, time.Time{})
			st := w.envSession(t, "work", tt.body)
			sess := w.s.sessions.get(st.ID)
			for i, s := range tt.steps {
				w.clock.Advance(s.advance)
				if s.use && !w.admitted(t, st.Token) {
					t.Fatalf("step %d: a request with the token was refused, want it admitted", i)
				}
				if s.hold {
					w.s.sessions.begin(sess)
				}
				if s.release {
					w.s.sessions.finished(sess)
				}
				// The timer ended it, or did not: the table says which,
				// without a request that would renew it.
				if live := w.s.sessions.get(st.ID) != nil; live != s.live {
					t.Fatalf("step %d (at +%s): got live %v, want %v", i, w.clock.Now().Sub(st.Created), live, s.live)
				}
			}
			if w.admitted(t, st.Token) {
				t.Errorf("after its end: the token was admitted, want 401")
			}
			if got := a.ends(st.ID); len(got) != 1 || got[0] != tt.reason {
				t.Errorf("session.end reasons: got %q, want [%q]", got, tt.reason)
			}
			if got := w.stored(t); len(got) != 0 {
				t.Errorf("store after the end: got %d sessions, want none", len(got))
			}
		})
	}
}

// TestSessionInfoLifetime: what the API says of a session's lifetime
// follows its use.
func TestSessionInfoLifetime(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	st := w.envSession(t, "work", `,"ttl":"8h"`)
	start := w.clock.Now()
	if !st.Durable || st.Idle != "2h0m0s" || !st.Expires.Equal(start.Add(2*time.Hour)) || !st.Deadline.Equal(start.Add(8*time.Hour)) {
		t.Errorf("started: got durable %v, idle %q, expires %s, deadline %s; want durable, 2h0m0s, +2h, +8h", st.Durable, st.Idle, st.Expires, st.Deadline)
	}
	w.clock.Advance(time.Hour)
	if !w.admitted(t, st.Token) {
		t.Fatal("a request with the token was refused")
	}
	var info api.SessionInfo
	decode(t, w.do(t, testToken, "GET", "/api/sessions/"+st.ID, ""), http.StatusOK, &info)
	if want := start.Add(3 * time.Hour); !info.Expires.Equal(want) || !info.LastUsed.Equal(start.Add(time.Hour)) || info.Requests != 0 {
		t.Errorf("after a use at +1h: got expires %s, last used %s; want %s and +1h", info.Expires, info.LastUsed, want)
	}
}

// TestSessionStoreHoldsHashes: a session no launcher holds is in the store
// from its start, by the SHA-256 of its token and never the token, in a
// 0600 file; a session with a socket is not (it ends with the daemon).
func TestSessionStoreHoldsHashes(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	st := w.envSession(t, "work", "")
	sock := w.envSession(t, "other", `,"socket":true`)
	got := w.stored(t)
	if len(got) != 1 || got[0].ID != st.ID {
		t.Fatalf("store: got %+v, want only %s", got, st.ID)
	}
	h := sha256.Sum256([]byte(st.Token))
	if got[0].TokenSHA256 != hex.EncodeToString(h[:]) || got[0].KeyRef != "local/work" || got[0].IdleSeconds != 7200 {
		t.Errorf("stored: got %+v, want the token's SHA-256, key local/work and idle 7200s", got[0])
	}
	data, err := os.ReadFile(w.dirs.storeFile(st.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{st.Token, sock.Token, strings.TrimPrefix(st.Token, api.SessionTokenPrefix), "sk-ant-test-work"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the store file holds a secret (%d bytes of it), want none", len(secret))
		}
	}
	fi, err := os.Stat(w.dirs.storeFile(st.ID))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("store file mode: got %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(w.dirs.storePath()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("store directory mode: got %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	// The store is written at the start and the end, not at every request.
	before, _ := os.Stat(w.dirs.storeFile(st.ID))
	for range 3 {
		if !w.admitted(t, st.Token) {
			t.Fatal("a request was refused")
		}
	}
	after, _ := os.Stat(w.dirs.storeFile(st.ID))
	if !os.SameFile(before, after) {
		t.Errorf("the store was replaced by requests within a minute, want it left alone")
	}
}

// stop stops the daemon of w as a graceful stop does (keeping the durable
// sessions).
func (w *slWorld) stop() int { return w.s.sessions.stopAll("daemon stopped") }

// openIn is the open set of the audit log a: sessions started and not
// ended, as audit.OpenSessions finds them.
func openIn(a *hkAuditor) map[string]bool {
	open := map[string]bool{}
	for _, r := range a.kind(audit.KindSessionStart) {
		open[r.Session] = true
	}
	for _, r := range a.kind(audit.KindSessionEnd) {
		delete(open, r.Session)
	}
	return open
}

// TestRestoreSessions: a restarted daemon admits the sessions its
// predecessor kept, unless they expired, were revoked, or their profile or
// key changed meanwhile; each is recorded.
func TestRestoreSessions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// meanwhile happens between the two daemons; it returns the clock
		// of the second.
		meanwhile func(t *testing.T, w *slWorld, st api.SessionStarted) time.Time
		// noAudit restores without the audit log's open set.
		noAudit bool
		// revoked revokes the session before the stop, and puts its
		// record back in the store after it: the store's write was lost.
		revoked bool
		reason  string // "" restored; else the session.end reason, or "-" for none recorded
	}{
		{name: "restored", meanwhile: func(_ *testing.T, w *slWorld, _ api.SessionStarted) time.Time { return w.clock.Now().Add(time.Hour) }},
		{name: "restored without an audit log", noAudit: true,
			meanwhile: func(_ *testing.T, w *slWorld, _ api.SessionStarted) time.Time { return w.clock.Now() }},
		{name: "idle past its timeout", reason: "expired: no request for 2h0m0s while the daemon was stopped",
			meanwhile: func(_ *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				return w.clock.Now().Add(2 * time.Hour)
			}},
		{name: "past its deadline", reason: "expired while the daemon was stopped",
			meanwhile: func(_ *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				return w.clock.Now().Add(13 * time.Hour)
			}},
		{name: "key replaced", reason: "key replaced while the daemon was stopped",
			meanwhile: func(t *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				if _, err := w.keys.Set(credentials.Ref{Provider: "local", Alias: "work"}, credentials.NewSecret("sk-ant-new")); err != nil {
					t.Fatal(err)
				}
				return w.clock.Now()
			}},
		{name: "key removed", reason: "key removed while the daemon was stopped",
			meanwhile: func(t *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				if _, err := w.keys.Remove(credentials.Ref{Provider: "local", Alias: "work"}); err != nil {
					t.Fatal(err)
				}
				return w.clock.Now()
			}},
		{name: "profile deleted", reason: "profile deleted while the daemon was stopped",
			meanwhile: func(t *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				if _, err := w.prof.Delete("work"); err != nil {
					t.Fatal(err)
				}
				return w.clock.Now()
			}},
		{name: "profile created again", reason: "profile changed while the daemon was stopped",
			meanwhile: func(t *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				if _, err := w.prof.Delete("work"); err != nil {
					t.Fatal(err)
				}
				cat, _ := profile.LoadCatalog(w.dirs.config)
				// Later than the first: created within the same second,
				// the two would be alike in all the session depends on.
				if _, err := w.prof.Create(cat, profile.Profile{Alias: "work", Agent: "claude", Provider: "local", Created: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}); err != nil {
					t.Fatal(err)
				}
				return w.clock.Now()
			}},
		{name: "endpoint changed", reason: "profile changed while the daemon was stopped",
			meanwhile: func(t *testing.T, w *slWorld, _ api.SessionStarted) time.Time {
				resp := w.do(t, testToken, "PATCH", "/api/profiles/work", `{"endpoint":"eu"}`)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("profiles set --endpoint: got %d %s", resp.StatusCode, readBody(t, resp))
				}
				resp.Body.Close()
				return w.clock.Now()
			}},
		{name: "revoked, its removal from the store lost", reason: "-", revoked: true,
			meanwhile: func(_ *testing.T, w *slWorld, _ api.SessionStarted) time.Time { return w.clock.Now() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dirs, a := newSlDirs(t), &hkAuditor{}
			w1 := newSlWorld(t, dirs, a, time.Time{})
			st := w1.envSession(t, "work", "")
			w1.clock.Advance(time.Minute)
			if !w1.admitted(t, st.Token) {
				t.Fatal("before the restart: the token was refused")
			}
			kept, err := os.ReadFile(dirs.storeFile(st.ID))
			if err != nil {
				t.Fatal(err)
			}
			if tt.revoked {
				decode(t, w1.do(t, testToken, "DELETE", "/api/sessions/"+st.ID, ""), http.StatusOK, &api.SessionInfo{})
			}
			// The store hears of renewals coarsely, but of every
			// session's last use at a stop.
			if n, want := w1.stop(), map[bool]int{false: 1, true: 0}[tt.revoked]; n != want {
				t.Fatalf("stop: kept %d sessions, want %d", n, want)
			}
			if tt.revoked {
				if err := os.WriteFile(dirs.storeFile(st.ID), kept, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			now := tt.meanwhile(t, w1, st)
			endsBefore := len(a.ends(st.ID))

			w2 := newSlWorld(t, dirs, a, now)
			open := openIn(a)
			if tt.noAudit {
				open = nil
			}
			w2.s.RestoreSessions(t.Context(), open)
			if tt.reason == "" {
				var info api.SessionInfo
				decode(t, w2.do(t, testToken, "GET", "/api/sessions/"+st.ID, ""), http.StatusOK, &info)
				if !info.LastUsed.Equal(st.Created.Add(time.Minute)) || !info.Durable {
					t.Errorf("restored: got last used %s, durable %v; want the use at +1m that the stop saved, durable", info.LastUsed, info.Durable)
				}
			}
			restored := w2.admitted(t, st.Token)
			if want := tt.reason == ""; restored != want {
				t.Fatalf("after the restart: admitted %v, want %v; log:\n%s", restored, want, w2.log)
			}
			ends := a.ends(st.ID)[endsBefore:]
			switch tt.reason {
			case "":
				var got []audit.Record
				for _, r := range a.kind(audit.KindSessionRestore) {
					if r.Session == st.ID {
						got = append(got, r)
					}
				}
				if len(got) != 1 || len(ends) != 0 {
					t.Errorf("records: got %d session.restore and ends %q, want one restore and no end", len(got), ends)
				}
			case "-":
				if len(ends) != 0 {
					t.Errorf("session.end records: got %q, want none (it had one already)", ends)
				}
			default:
				if len(ends) != 1 || ends[0] != tt.reason {
					t.Errorf("session.end reasons: got %q, want [%q]", ends, tt.reason)
				}
			}
			if stored := w2.stored(t); (len(stored) == 1) != (tt.reason == "") {
				t.Errorf("store after the restart: got %d sessions, want %d", len(stored), map[bool]int{true: 1, false: 0}[tt.reason == ""])
			}
		})
	}
}

// TestRestoreKeepsCoarseRenewals: a daemon killed (no stop) loses at most
// a minute of a session's renewals; the restarted one admits the session
// until idle after the last renewal it heard of.
func TestRestoreKeepsCoarseRenewals(t *testing.T) {
	t.Parallel()
	dirs, a := newSlDirs(t), &hkAuditor{}
	w1 := newSlWorld(t, dirs, a, time.Time{})
	st := w1.envSession(t, "work", "")
	w1.clock.Advance(90 * time.Minute)
	w1.admitted(t, st.Token) // saved: a minute and more since the last save
	w1.s.sessions.renewals.wait()
	w1.clock.Advance(30 * time.Second)
	w1.admitted(t, st.Token) // not saved: within a minute of the last
	saved := w1.stored(t)
	if len(saved) != 1 || !saved[0].LastUsed.Equal(st.Created.Add(90*time.Minute)) {
		t.Fatalf("store before the kill: got %+v, want last used at +90m", saved)
	}
	// Killed: no stop. The next daemon starts at +3h29m.
	w2 := newSlWorld(t, dirs, a, st.Created.Add(3*time.Hour+29*time.Minute))
	w2.s.RestoreSessions(t.Context(), openIn(a))
	if w2.s.sessions.get(st.ID) == nil {
		t.Fatalf("restored: not live at +3h29m, want it live until +3h30m; log:\n%s", w2.log)
	}
	w2.clock.Advance(time.Minute)
	if w2.s.sessions.get(st.ID) != nil {
		t.Errorf("at +3h30m: still live, want ended (idle 2h after the saved use)")
	}
}

// TestRestoreRefusesUnsafeStore: a stored session's file that is not safe
// or not valid restores nothing of that session, and says why in the log;
// the other sessions are restored. A store directory that is not safe
// restores nothing.
func TestRestoreRefusesUnsafeStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// spoil spoils the store of dirs, in which id's file is.
		spoil func(t *testing.T, dirs slDirs, id string)
		// whole: the whole store is refused, not one session.
		whole  bool
		logged string
	}{
		{"readable by others", func(t *testing.T, dirs slDirs, id string) {
			if err := os.Chmod(dirs.storeFile(id), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false, "group or others can access it"},
		{"a symbolic link", func(t *testing.T, dirs slDirs, id string) {
			path := dirs.storeFile(id)
			real := filepath.Join(dirs.state, "elsewhere.json")
			if err := os.Rename(path, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, path); err != nil {
				t.Fatal(err)
			}
		}, false, "symbolic link"},
		{"not JSON", func(t *testing.T, dirs slDirs, id string) {
			if err := os.WriteFile(dirs.storeFile(id), []byte(`{"version":1,"id":`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, "not valid JSON"},
		{"a field no daemon writes", func(t *testing.T, dirs slDirs, id string) {
			data, _ := os.ReadFile(dirs.storeFile(id))
			data = bytes.Replace(data, []byte(`"sandboxed"`), []byte(`"token": "x", "sandboxed"`), 1)
			if err := os.WriteFile(dirs.storeFile(id), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, "unknown field"},
		{"a directory others can enter", func(t *testing.T, dirs slDirs, _ string) {
			if err := os.Chmod(dirs.storePath(), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true, "group or others can access it"},
		{"a directory that is a symbolic link", func(t *testing.T, dirs slDirs, _ string) {
			real := filepath.Join(dirs.state, "elsewhere")
			if err := os.Rename(dirs.storePath(), real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, dirs.storePath()); err != nil {
				t.Fatal(err)
			}
		}, true, "symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dirs, a := newSlDirs(t), &hkAuditor{}
			w1 := newSlWorld(t, dirs, a, time.Time{})
			st := w1.envSession(t, "work", "")
			other := w1.envSession(t, "work", "")
			w1.stop()
			tt.spoil(t, dirs, st.ID)
			w2 := newSlWorld(t, dirs, a, time.Time{})
			w2.s.RestoreSessions(t.Context(), openIn(a))
			if w2.admitted(t, st.Token) {
				t.Fatal("a token from a spoiled store was admitted, want 401")
			}
			refusal := "refusing a stored session"
			if tt.whole {
				refusal = "refusing the stored sessions"
			}
			if log := w2.log.String(); !strings.Contains(log, refusal) || !strings.Contains(log, tt.logged) {
				t.Errorf("log: got %s, want %q saying %q", log, refusal, tt.logged)
			}
			if got := w2.admitted(t, other.Token); got == tt.whole {
				t.Errorf("the other session admitted: got %v, want %v", got, !tt.whole)
			}
		})
	}
}

// TestRestoreRefusedWhenUnaudited: a session whose restore cannot be
// recorded is not admitted.
func TestRestoreRefusedWhenUnaudited(t *testing.T) {
	t.Parallel()
	dirs, a := newSlDirs(t), &hkAuditor{}
	w1 := newSlWorld(t, dirs, a, time.Time{})
	st := w1.envSession(t, "work", "")
	w1.stop()
	open := openIn(a)
	a.fail.Store(true)
	w2 := newSlWorld(t, dirs, a, time.Time{})
	w2.s.RestoreSessions(t.Context(), open)
	if w2.admitted(t, st.Token) {
		t.Fatal("admitted a restored session whose restore was not recorded, want 401")
	}
}

// TestPruneSessions: prune ends what is over or left behind, audited;
// --dry-run ends nothing.
func TestPruneSessions(t *testing.T) {
	t.Parallel()
	a := &hkAuditor{}
	w := newSlWorld(t, newSlDirs(t), a, time.Time{})
	idle := w.envSession(t, "work", "")
	w.clock.Advance(90 * time.Minute)
	busy := w.envSession(t, "work", "")
	gone := w.envSession(t, "other", "")
	expired := w.envSession(t, "work", "")
	// Past its deadline, its timer not yet fired.
	w.s.sessions.get(expired.ID).Deadline = w.clock.Now().Add(-time.Second)
	// A launch that its launcher never took up, and one it holds.
	orphan := w.envSession(t, "work", `,"idle":"0"`)
	held := w.envSession(t, "work", `,"idle":"0"`)
	for _, id := range []string{orphan.ID, held.ID} {
		s := w.s.sessions.get(id)
		s.plan, s.launch = &launch.Plan{}, true
	}
	w.s.sessions.get(held.ID).leased.Store(true)
	if _, err := w.prof.Delete("other"); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Minute)
	if !w.admitted(t, busy.Token) {
		t.Fatal("busy: refused")
	}
	want := map[string]string{idle.ID: "unused for 1h32m0s", gone.ID: "its profile is gone", expired.ID: "expired",
		orphan.ID: "orphaned: its launcher never took it up"}

	prune := func(body string) map[string]string {
		var out api.SessionsEnded
		decode(t, w.do(t, testToken, "POST", "/api/sessions/prune", body), http.StatusOK, &out)
		got := map[string]string{}
		for _, s := range out.Sessions {
			got[s.ID] = s.Reason
		}
		return got
	}
	if got := prune(`{"dry_run":true}`); !equalMaps(got, want) {
		t.Errorf("dry run: got %v, want %v", got, want)
	}
	for id := range want {
		if w.s.sessions.get(id) == nil {
			t.Errorf("dry run ended %s, want it live", id)
		}
	}
	if got := prune(`{}`); !equalMaps(got, want) {
		t.Errorf("prune: got %v, want %v", got, want)
	}
	for id, why := range want {
		if got := a.ends(id); len(got) != 1 || got[0] != "pruned: "+why {
			t.Errorf("session.end of %s: got %q, want [%q]", id, got, "pruned: "+why)
		}
	}
	for _, id := range []string{busy.ID, held.ID} {
		if w.s.sessions.get(id) == nil {
			t.Errorf("prune ended %s, want it live", id)
		}
	}
	w.clock.Advance(2 * time.Minute)
	if got := prune(`{"idle":"1m"}`); len(got) != 1 || got[busy.ID] != "unused for 2m0s" {
		t.Errorf("prune with idle 1m: got %v, want only the busy session, unused for 2m", got)
	}
	assertError(t, w.do(t, testToken, "POST", "/api/sessions/prune", `{"idle":"soon"}`), http.StatusBadRequest, "bad_request")
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRevokeAllSessions: every session, or every one of a profile, each
// audited as a revoke; a revoke that cannot be recorded leaves the rest
// live.
func TestRevokeAllSessions(t *testing.T) {
	t.Parallel()
	a := &hkAuditor{}
	w := newSlWorld(t, newSlDirs(t), a, time.Time{})
	work1, work2, other := w.envSession(t, "work", ""), w.envSession(t, "work", ""), w.envSession(t, "other", "")
	var out api.SessionsEnded
	decode(t, w.do(t, testToken, "POST", "/api/sessions/revoke", `{"profile":"work"}`), http.StatusOK, &out)
	var ids []string
	for _, s := range out.Sessions {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	want := []string{work1.ID, work2.ID}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("revoked: got %v, want %v", ids, want)
	}
	for _, id := range want {
		if got := a.ends(id); len(got) != 1 || got[0] != "revoked" {
			t.Errorf("session.end of %s: got %q, want [revoked]", id, got)
		}
	}
	if !w.admitted(t, other.Token) || w.admitted(t, work1.Token) {
		t.Errorf("after revoking profile work's: want other's admitted and work's refused")
	}
	if got := w.stored(t); len(got) != 1 || got[0].ID != other.ID {
		t.Errorf("store: got %+v, want only %s", got, other.ID)
	}
	assertError(t, w.do(t, testToken, "POST", "/api/sessions/revoke", `{"profile":"Bad Name"}`), http.StatusBadRequest, "bad_request")

	a.fail.Store(true)
	assertError(t, w.do(t, testToken, "POST", "/api/sessions/revoke", `{}`), http.StatusServiceUnavailable, "audit_unavailable")
	if !w.admitted(t, other.Token) {
		t.Errorf("a revoke that could not be recorded ended the session, want it live")
	}
}

// hookedStore runs beforePut (once) before a Put reaches the store.
type hookedStore struct {
	SessionStore
	once      sync.Once
	beforePut func()
}

func (h *hookedStore) Put(ctx context.Context, ss ...sessionstore.Session) error {
	if h.beforePut != nil {
		h.once.Do(h.beforePut)
	}
	return h.SessionStore.Put(ctx, ss...)
}

// TestRenewalNeverKeepsAnEnded: a renewal being written to the store as
// its session is revoked does not leave the revoked session in the store
// (where a daemon without an audit log would admit it again).
func TestRenewalNeverKeepsAnEnded(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	st := w.envSession(t, "work", "")
	// The next request is a renewal the store hears of. As it is written,
	// the session is revoked: the hook waits for the revoke to finish,
	// or, when the revoke waits for the renewal (as it should), a moment.
	w.clock.Advance(2 * time.Minute)
	revoked := make(chan struct{})
	var code int
	var body string
	hooked := &hookedStore{SessionStore: w.s.sessions.o.Store}
	hooked.beforePut = func() {
		go func() {
			defer close(revoked)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("DELETE", "http://"+testHost+"/api/sessions/"+st.ID, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			w.h.ServeHTTP(rec, req)
			code, body = rec.Code, rec.Body.String()
		}()
		select {
		case <-revoked:
		case <-time.After(300 * time.Millisecond):
		}
	}
	w.s.sessions.o.Store = hooked
	w.admitted(t, st.Token)
	<-revoked
	if code != http.StatusOK {
		t.Fatalf("revoke: got %d %s, want 200", code, body)
	}
	if got := w.stored(t); len(got) != 0 {
		t.Errorf("store after the revoke: got %d sessions, want none", len(got))
	}
}
