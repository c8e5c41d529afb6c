package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// TestEndNotHeldByARenewalWrite: the kill switch, a revoke and a forced
// end cut a session at once while the store still writes that session's
// renewal (a disk that hangs): its token is refused before the write
// returns (the rest of the end, taking it out of the store, waits for the
// write), and the write does not put the ended session back.
func TestEndNotHeldByARenewalWrite(t *testing.T) {
	t.Parallel()
	ends := map[string]func(w *slWorld, id string) error{
		"kill": func(w *slWorld, id string) error {
			return w.s.KillSession(context.Background(), id, KilledByCLI, "test")
		},
		"revoke": func(w *slWorld, id string) error {
			_, err := w.s.sessions.revoke(context.Background(), id, "test", audit.ActorAdmin)
			return err
		},
		"end": func(w *slWorld, id string) error {
			w.s.sessions.end(context.Background(), id, "test", audit.ActorDaemon)
			return nil
		},
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
			st := w.envSession(t, "work", "")
			g := gateStore(w)
			open := sync.OnceFunc(func() { close(g.gate) })
			t.Cleanup(open) // before the world stops, should the test fail
			w.clock.Advance(2 * time.Minute)
			w.admitted(t, st.Token)
			within(t, "the renewal's write", func() { <-g.entered })
			ended := make(chan error, 1)
			go func() { ended <- end(w, st.ID) }()
			waitUntil(t, "the token refused while the renewal's write hangs", func() bool { return !w.admitted(t, st.Token) })
			open()
			var err error
			within(t, "the "+name, func() { err = <-ended })
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			within(t, "the writer", w.s.sessions.renewals.wait)
			for _, s := range w.stored(t) {
				if s.ID == st.ID {
					t.Errorf("the session is in the store after the renewal's write returned")
				}
			}
		})
	}
}
