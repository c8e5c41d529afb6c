package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/internal/fulldisk"
)

// TestSessionStoreFull: with the session store's file system full (a real
// one: a small tmpfs filled up), a durable session still starts and
// works; the daemon logs that it cannot keep it across restarts, and each
// renewal and the stop that could not be saved; nothing of it is left in
// the store, and the next daemon, started on the full disk, does not admit
// it. A session kept before the disk filled keeps the file of its start
// and is admitted again.
func TestSessionStoreFull(t *testing.T) {
	mnt, ok := fulldisk.Dir(t, 256<<10)
	if !ok {
		return
	}
	dirs, a := newSlDirs(t), &hkAuditor{}
	dirs.state = filepath.Join(mnt, "state")
	w := newSlWorld(t, dirs, a, time.Time{})
	before := w.envSession(t, "other", "")
	fulldisk.Fill(t, mnt)

	st := w.envSession(t, "work", "")
	if !w.admitted(t, st.Token) {
		t.Fatalf("a session started with the store full: refused, want admitted; log:\n%s", w.log)
	}
	w.clock.Advance(2 * time.Minute)
	w.admitted(t, st.Token)
	w.s.sessions.renewals.wait()
	if n := w.stop(); n != 2 {
		t.Errorf("stop: kept %d, want 2 (it tried)", n)
	}
	for _, want := range []string{
		"could not keep a session across restarts; it ends when the daemon stops",
		"could not save a session's renewal; after a restart it may end early",
		"could not keep the sessions for the next start; they end with this daemon",
	} {
		if got := strings.Count(w.log.String(), want); got != 1 {
			t.Errorf("log: %q %d times, want once; log:\n%s", want, got, w.log)
		}
	}
	if !strings.Contains(w.log.String(), "no space left on device") {
		t.Errorf("log: no ENOSPC, want the reason; log:\n%s", w.log)
	}
	entries, err := os.ReadDir(dirs.storePath())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != before.ID+".json" {
		t.Errorf("store directory: got %v, want only the file of %s: no partial or temporary file", entries, before.ID)
	}

	w2 := newSlWorld(t, dirs, a, st.Created.Add(5*time.Minute))
	w2.s.RestoreSessions(t.Context(), openIn(a))
	if w2.admitted(t, st.Token) {
		t.Errorf("after the restart: admitted a session the full store never kept")
	}
	if !w2.admitted(t, before.Token) {
		t.Errorf("after the restart: refused the session kept before the disk filled; log:\n%s", w2.log)
	}
}
