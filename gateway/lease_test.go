package gateway

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/token"
)

// leaseWorld is the hook world served on a real loopback listener: a
// lease is a connection whose closing the daemon must see.
func leaseWorld(t *testing.T) (*hkWorld, *client.Client) {
	t.Helper()
	w := newHookWorld(t)
	srv := httptest.NewUnstartedServer(nil)
	w.s.port.Store(int64(srv.Listener.Addr().(*net.TCPAddr).Port))
	srv.Config.Handler = w.s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return w, client.New(srv.URL, token.FromString(testToken))
}

// endReasons are the reasons of the session.end records of id.
func endReasons(w *hkWorld, id string) []string {
	var out []string
	for _, r := range w.audit.kind(audit.KindSessionEnd) {
		if r.Session == id {
			var d struct{ Reason string }
			json.Unmarshal(r.Detail, &d)
			out = append(out, d.Reason)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSessionLease(t *testing.T) {
	t.Parallel()
	w, c := leaseWorld(t)

	t.Run("the launcher goes, the session ends", func(t *testing.T) {
		id, tok := w.session(t, "work")
		release, ended, err := c.Hold(t.Context(), "POST", "/api/sessions/"+id+"/lease")
		if err != nil {
			t.Fatal(err)
		}
		// One lease per session.
		if _, _, err := c.Hold(t.Context(), "POST", "/api/sessions/"+id+"/lease"); err == nil {
			t.Error("a second lease: got none, want 409")
		} else if ce, ok := err.(*client.Error); !ok || ce.Status != http.StatusConflict {
			t.Errorf("a second lease: got %v, want 409", err)
		}
		if w.s.sessions.lookup(tok) == nil {
			t.Fatal("the session ended while its lease was held")
		}
		release()
		waitUntil(t, "the session to end", func() bool { return w.s.sessions.lookup(tok) == nil })
		select {
		case <-ended:
		default:
			t.Error("ended: got open, want closed after release")
		}
		waitUntil(t, "its session.end", func() bool { return len(endReasons(w, id)) == 1 })
		if got := endReasons(w, id); got[0] != LeaseReason {
			t.Errorf("session.end reason: got %q, want %q", got, LeaseReason)
		}
		resp := w.do(t, tok, "POST", "/session/hooks/check", `{"tool":"Bash","input":{}}`)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the ended session's token: got %d, want 401", resp.StatusCode)
		}
	})

	t.Run("the session ends first, the lease ends, one record", func(t *testing.T) {
		id, _ := w.session(t, "work")
		release, ended, err := c.Hold(t.Context(), "POST", "/api/sessions/"+id+"/lease")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		if err := c.Do(t.Context(), "DELETE", "/api/sessions/"+id+"?reason=exited&exit_code=3", nil, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("the lease stayed open after its session ended")
		}
		release()
		if got := endReasons(w, id); len(got) != 1 || got[0] != "agent exited with code 3" {
			t.Errorf("session.end reasons: got %q, want only the launcher's", got)
		}
	})

	t.Run("no such session", func(t *testing.T) {
		_, _, err := c.Hold(t.Context(), "POST", "/api/sessions/s_0000000000000000/lease")
		if ce, ok := err.(*client.Error); !ok || ce.Status != http.StatusNotFound || ce.Code != "not_found" {
			t.Errorf("got %v, want 404 not_found", err)
		}
	})

	t.Run("admin token only", func(t *testing.T) {
		id, tok := w.session(t, "other")
		resp := w.do(t, tok, "POST", "/api/sessions/"+id+"/lease", "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a lease with the session token: got %d, want 401", resp.StatusCode)
		}
	})
}
