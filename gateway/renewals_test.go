package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/sessionstore"
)

// gatedStore is a session store whose Puts wait at a gate: each Put says
// it entered (on entered, when not nil) and waits until the gate opens;
// it records what each Put wrote.
type gatedStore struct {
	SessionStore
	entered chan sessionstore.Session
	gate    chan struct{}
	fail    error
	mu      sync.Mutex
	puts    []sessionstore.Session
}

// gateStore puts a gatedStore that holds every Put at its gate in front
// of w's session store.
func gateStore(w *slWorld) *gatedStore {
	g := &gatedStore{SessionStore: w.s.sessions.o.Store, entered: make(chan sessionstore.Session, 8), gate: make(chan struct{})}
	w.s.sessions.o.Store = g
	return g
}

func (g *gatedStore) Put(ctx context.Context, ss ...sessionstore.Session) error {
	for _, s := range ss {
		if g.entered != nil {
			g.entered <- s
		}
	}
	if g.gate != nil {
		<-g.gate
	}
	if g.fail != nil {
		return g.fail
	}
	g.mu.Lock()
	g.puts = append(g.puts, ss...)
	g.mu.Unlock()
	return g.SessionStore.Put(ctx, ss...)
}

func (g *gatedStore) written() []sessionstore.Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]sessionstore.Session(nil), g.puts...)
}

// within fails t unless f returns before the deadline: a wait on a
// condition, not a measure of time.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10s", what)
	}
}

// TestRenewalOffTheRequestPath: a request that renews a durable session
// is answered while the store is still writing the renewal; renewals
// that arrive meanwhile are written once, with the last use; the one
// written is what a restart reads.
func TestRenewalOffTheRequestPath(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	st := w.envSession(t, "work", "")
	g := gateStore(w)

	w.clock.Advance(2 * time.Minute)
	// Answered with the renewal's write held at the gate: a request
	// that wrote it itself would never be.
	within(t, "a renewing request while the store's write waits", func() { w.admitted(t, st.Token) })
	var first sessionstore.Session
	within(t, "the renewal's write", func() { first = <-g.entered })
	if first.ID != st.ID || !first.LastUsed.Equal(st.Created.Add(2*time.Minute)) {
		t.Fatalf("renewal written: got %s last used %s, want %s at +2m", first.ID, first.LastUsed, st.ID)
	}
	// Three more renewals while the first is written: one write.
	for range 3 {
		w.clock.Advance(2 * time.Minute)
		within(t, "a renewing request", func() { w.admitted(t, st.Token) })
	}
	close(g.gate)
	within(t, "the writer", w.s.sessions.renewals.wait)
	puts := g.written()
	if len(puts) != 2 || !puts[1].LastUsed.Equal(st.Created.Add(8*time.Minute)) {
		t.Fatalf("writes: got %d (%+v), want 2, the second with the last use at +8m", len(puts), puts)
	}
	if stored := w.stored(t); len(stored) != 1 || !stored[0].LastUsed.Equal(st.Created.Add(8*time.Minute)) {
		t.Errorf("store: got %+v, want the session last used at +8m", stored)
	}
}

// TestRenewalWriteErrorsLogged: each renewal the store refuses is
// logged once.
func TestRenewalWriteErrorsLogged(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	st := w.envSession(t, "work", "")
	w.s.sessions.o.Store = &gatedStore{SessionStore: w.s.sessions.o.Store, fail: errors.New("no space left on device")}
	const warn = "could not save a session's renewal"
	for i := 1; i <= 2; i++ {
		w.clock.Advance(2 * time.Minute)
		w.admitted(t, st.Token)
		w.s.sessions.renewals.wait()
		if got := strings.Count(w.log.String(), warn); got != i {
			t.Fatalf("after %d failed renewals: %d warnings, want %d; log:\n%s", i, got, i, w.log)
		}
	}
}

// memStore is a session store in memory that yields at each write, so
// that a race finds its interleavings.
type memStore struct {
	mu sync.Mutex
	m  map[string]sessionstore.Session
}

func (s *memStore) Load(context.Context) ([]sessionstore.Session, error) { return nil, nil }

func (s *memStore) Put(_ context.Context, ss ...sessionstore.Session) error {
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range ss {
		s.m[st.ID] = st
	}
	return nil
}

func (s *memStore) Delete(_ context.Context, ids ...string) error {
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.m, id)
	}
	return nil
}

func (s *memStore) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}

// TestRenewalRacingEndNeverResurrects: a session ended (revoked) while
// its renewal is marked or being written is never left in the store,
// whatever the order; run it with -race.
func TestRenewalRacingEndNeverResurrects(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	store := &memStore{m: map[string]sessionstore.Session{}}
	w.s.sessions.o.Store = store
	for i := range 300 {
		st := w.envSession(t, "work", "")
		if !store.has(st.ID) {
			t.Fatalf("round %d: the started session is not in the store", i)
		}
		// Its next request renews it.
		w.s.sessions.get(st.ID).saved.Store(0)
		var wg sync.WaitGroup
		wg.Go(func() { w.admitted(t, st.Token) })
		wg.Go(func() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("DELETE", "http://"+testHost+"/api/sessions/"+st.ID, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			w.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Errorf("round %d: revoke: got %d %s, want 200", i, rec.Code, rec.Body)
			}
		})
		wg.Wait()
		w.s.sessions.renewals.wait()
		if store.has(st.ID) {
			t.Fatalf("round %d: the revoked session is back in the store", i)
		}
	}
}

// TestStopSavesPendingRenewals: a graceful stop saves the last use of a
// session whose renewal was still pending behind a write, and leaves no
// writer running.
func TestStopSavesPendingRenewals(t *testing.T) {
	t.Parallel()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	st := w.envSession(t, "work", "")
	g := gateStore(w)
	sess := w.s.sessions.get(st.ID)
	w.clock.Advance(2 * time.Minute)
	w.admitted(t, st.Token)
	within(t, "the renewal's write", func() { <-g.entered })
	// Pending behind the write held at the gate.
	w.clock.Advance(2 * time.Minute)
	w.admitted(t, st.Token)
	kept := make(chan int)
	go func() { kept <- w.stop() }()
	close(g.gate)
	var n int
	within(t, "the stop", func() { n = <-kept })
	if n != 1 {
		t.Fatalf("stop: kept %d sessions, want 1", n)
	}
	running := func() bool {
		w.s.sessions.renewals.mu.Lock()
		defer w.s.sessions.renewals.mu.Unlock()
		return w.s.sessions.renewals.done != nil
	}
	if running() {
		t.Errorf("after the stop: a renewal writer still runs")
	}
	// A request that began before the stop and renews after it starts
	// no writer: the stop saved the session.
	w.clock.Advance(2 * time.Minute)
	w.s.sessions.used(sess)
	if running() {
		t.Errorf("a renewal after the stop started a writer")
	}
	if stored := w.stored(t); len(stored) != 1 || !stored[0].LastUsed.Equal(st.Created.Add(4*time.Minute)) {
		t.Errorf("store after the stop: got %+v, want the session last used at +4m", stored)
	}
}
