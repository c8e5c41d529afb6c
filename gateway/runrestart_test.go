package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/sessionstore"
	"github.com/neullabs/ringlet/token"
)

// serve serves the world's daemon on a loopback listener, for leases.
func (w *slWorld) serve(t *testing.T) *client.Client {
	t.Helper()
	// The daemon answers only to its own address (testPort).
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		r.Host = "127.0.0.1:" + itoaInt(testPort)
		w.h.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL, token.FromString(testToken))
}

// runSession starts a session as 'profiles run' has it once its agent
// runs: with a socket, its plan handed out, held by its launcher (c).
func (w *slWorld) runSession(t *testing.T, c *client.Client) (api.SessionStarted, *client.Lease) {
	t.Helper()
	st := w.envSession(t, "work", `,"socket":true`)
	sess := w.s.sessions.get(st.ID)
	sess.launch = true
	sess.plan, sess.planTaken = &launch.Plan{}, true
	sess.launchedIn.Store("/home/u/ws")
	lease, err := c.HoldSession(t.Context(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lease.Release)
	if ev := <-lease.Events; !ev.Held {
		t.Fatalf("first lease event: got %+v, want held", ev)
	}
	return st, lease
}

// socketAdmits reports whether the session socket at path answers GET
// /session for tok.
func socketAdmits(t *testing.T, path, tok string) bool {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://127.0.0.1:"+itoaInt(sandbox.ForwarderPort)+"/session", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestRunSessionSurvivesRestart: a graceful stop keeps a 'profiles run'
// session its launcher holds, tells the launcher, and leaves its socket
// directory; the next daemon serves the socket there again and keeps the
// session only if its launcher holds it again within the grace.
func TestRunSessionSurvivesRestart(t *testing.T) {
	t.Parallel()
	// kept is a run session kept by a stop, and the next daemon.
	kept := func(t *testing.T, edit func(*sessionstore.Session)) (*slWorld, *hkAuditor, api.SessionStarted) {
		t.Helper()
		dirs, a := newSlDirs(t), &hkAuditor{}
		w1 := newSlWorld(t, dirs, a, time.Time{})
		st, lease := w1.runSession(t, w1.serve(t))
		if !socketAdmits(t, st.Socket, st.Token) {
			t.Fatal("before the stop: the socket refused the session")
		}
		if n := w1.stop(); n != 1 {
			t.Fatalf("stop kept %d sessions, want the run session", n)
		}
		ev, ok := <-lease.Events
		if !ok || !ev.Restarting || ev.GraceSeconds != int64(DefaultRestartGrace/time.Second) {
			t.Errorf("lease event at the stop: got %+v (%v), want restarting with the grace", ev, ok)
		}
		if !w1.s.KeptSockets() {
			t.Error("KeptSockets: got false, want the socket root kept")
		}
		stored := w1.stored(t)
		if len(stored) != 1 || !stored[0].Launch || stored[0].SocketDir != filepath.Dir(st.Socket) || stored[0].Workspace != "/home/u/ws" {
			t.Fatalf("store after the stop: got %+v, want the launch with its socket dir and workspace", stored)
		}
		if fi, err := os.Stat(filepath.Dir(st.Socket)); err != nil || !fi.IsDir() {
			t.Fatalf("socket dir after the stop: %v, want it kept", err)
		}
		if edit != nil {
			edit(&stored[0])
			if err := sessionstore.NewDir(dirs.storePath(), sessionstore.Options{}).Put(t.Context(), stored[0]); err != nil {
				t.Fatal(err)
			}
		}
		open := openIn(a)
		w2 := newSlWorld(t, dirs, a, time.Time{})
		w2.s.RestoreSessions(t.Context(), open)
		return w2, a, st
	}

	t.Run("held again, it lives on", func(t *testing.T) {
		t.Parallel()
		w2, a, st := kept(t, nil)
		// Until its launcher holds it again, it waits: 503, which
		// agents retry, on its socket and on the daemon's address.
		resp := w2.do(t, st.Token, "POST", "/session/hooks/check", `{"tool_name":"Bash","tool_input":{}}`)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("before its launcher is back: got %d (Retry-After %q), want 503 to retry", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if socketAdmits(t, st.Socket, st.Token) {
			t.Error("before its launcher is back: the socket served the session, want 503")
		}
		lease, err := w2.serve(t).HoldSession(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release()
		if !w2.admitted(t, st.Token) || !socketAdmits(t, st.Socket, st.Token) {
			t.Fatal("after the restart: the token or the socket refused the session")
		}
		restores := a.kind(audit.KindSessionRestore)
		if len(restores) != 1 || restores[0].Session != st.ID || !strings.Contains(string(restores[0].Detail), `"launch":true`) {
			t.Errorf("session.restore: got %+v, want one for the launch", restores)
		}
		if got := w2.stored(t); len(got) != 0 {
			t.Errorf("store after the restore: got %+v, want the launch out of it (it ends with its agent)", got)
		}
		if got := w2.s.sessions.get(st.ID).workspace(); got != "/home/u/ws" {
			t.Errorf("workspace after the restore: got %q, want /home/u/ws", got)
		}
		w2.clock.Advance(DefaultRestartGrace + time.Minute)
		if !w2.admitted(t, st.Token) {
			t.Errorf("held again, after the grace: refused, want it live; ends %q", a.ends(st.ID))
		}
		// And kept again by the next stop.
		<-lease.Events // held
		if n := w2.stop(); n != 1 {
			t.Fatalf("the second stop kept %d sessions, want the run session again", n)
		}
		if ev := <-lease.Events; !ev.Restarting {
			t.Errorf("lease event at the second stop: got %+v, want restarting", ev)
		}
		w3 := newSlWorld(t, w2.dirs, a, time.Time{})
		w3.s.RestoreSessions(t.Context(), openIn(a))
		lease, err = w3.serve(t).HoldSession(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release()
		if !w3.admitted(t, st.Token) || !socketAdmits(t, st.Socket, st.Token) {
			t.Fatalf("after the second restart, held again: refused, want the session live; ends %q", a.ends(st.ID))
		}
		lease.Release()
		waitUntil(t, "the session to end with its lease", func() bool { return !w3.admitted(t, st.Token) })
	})

	t.Run("not held again, it ends", func(t *testing.T) {
		t.Parallel()
		w2, a, st := kept(t, nil)
		w2.clock.Advance(DefaultRestartGrace)
		if w2.admitted(t, st.Token) || socketAdmits(t, st.Socket, st.Token) {
			t.Error("no launcher after the grace: admitted, want the session over")
		}
		if got := a.ends(st.ID); len(got) != 1 || !strings.HasPrefix(got[0], "launcher did not hold it again within 2m0s") {
			t.Errorf("session.end: got %q, want the launcher's absence", got)
		}
		if _, err := os.Stat(filepath.Dir(st.Socket)); !os.IsNotExist(err) {
			t.Errorf("its socket dir: got %v, want it removed", err)
		}
	})

	t.Run("revoked before it is held again, it stays revoked", func(t *testing.T) {
		t.Parallel()
		w2, _, st := kept(t, nil)
		if resp := w2.do(t, testToken, "DELETE", "/api/sessions/"+st.ID, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: got %d, want 200", resp.StatusCode)
		}
		_, err := w2.serve(t).HoldSession(t.Context(), st.ID)
		if ce, ok := err.(*client.Error); !ok || ce.Status != http.StatusNotFound {
			t.Errorf("the launcher holding it again: got %v, want 404", err)
		}
	})

	// The store names where the socket is served again: only a directory
	// the daemon would have made is taken.
	other := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(*sessionstore.Session)
	}{
		{"a directory elsewhere", func(s *sessionstore.Session) { s.SocketDir = filepath.Join(other, "ringlet-0123456789ab") }},
		{"a symbolic link", func(s *sessionstore.Session) {
			if err := os.RemoveAll(s.SocketDir); err != nil {
				t.Error(err)
			}
			if err := os.Symlink(other, s.SocketDir); err != nil {
				t.Error(err)
			}
		}},
		{"a directory others can enter", func(s *sessionstore.Session) {
			if err := os.Chmod(s.SocketDir, 0o755); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(other, "ringlet-0123456789ab"), 0o700); err != nil {
				t.Fatal(err)
			}
			w2, a, st := kept(t, tc.edit)
			if w2.admitted(t, st.Token) {
				t.Error("admitted, want the session refused")
			}
			if got := a.ends(st.ID); len(got) != 1 || got[0] != "not restored: its socket could not be served again" {
				t.Errorf("session.end: got %q, want the socket refused", got)
			}
			if entries, _ := os.ReadDir(other); len(entries) != 1 || entries[0].Name() != "ringlet-0123456789ab" {
				t.Errorf("the other directory: got %v, want it untouched", entries)
			}
			if _, err := os.Lstat(filepath.Join(other, "ringlet-0123456789ab", sandbox.SocketFile)); !os.IsNotExist(err) {
				t.Errorf("a socket in the other directory: got %v, want none", err)
			}
		})
	}

	t.Run("not held, it ends at the stop", func(t *testing.T) {
		t.Parallel()
		dirs, a := newSlDirs(t), &hkAuditor{}
		w := newSlWorld(t, dirs, a, time.Time{})
		st := w.envSession(t, "work", `,"socket":true`)
		sess := w.s.sessions.get(st.ID)
		sess.launch, sess.plan, sess.planTaken = true, &launch.Plan{}, true
		if n := w.stop(); n != 0 {
			t.Errorf("stop kept %d sessions, want none: no launcher holds it", n)
		}
		if got := a.ends(st.ID); len(got) != 1 || got[0] != "daemon stopped" {
			t.Errorf("session.end: got %q, want daemon stopped", got)
		}
		if _, err := os.Stat(filepath.Dir(st.Socket)); !os.IsNotExist(err) {
			t.Errorf("its socket dir: got %v, want it removed", err)
		}
	})
}
