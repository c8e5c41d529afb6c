package cli

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/token"
)

// leaseDaemon answers the lease of session s_1 with lines, then keeps the
// answer open (hold) or ends it; gone is closed when the launcher's
// request ends.
func leaseDaemon(t *testing.T, lines string, hold bool) (*client.Client, chan struct{}) {
	t.Helper()
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/sessions/s_1/lease" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(lines))
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
		close(gone)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL, token.FromString("rlt_admin")), gone
}

// noDaemonApp is an app with no daemon to find: its state dir is empty.
func noDaemonApp(t *testing.T) *app {
	t.Helper()
	env := map[string]string{"HOME": t.TempDir(), "XDG_CONFIG_HOME": t.TempDir(), "XDG_STATE_HOME": t.TempDir(), "XDG_DATA_HOME": t.TempDir()}
	a := &app{getenv: func(k string) string { return env[k] }, environ: func() []string { return nil }}
	a.paths, a.pathsErr = config.PathsFromEnv(a.getenv)
	return a
}

// within waits for ch, or fails the test after a generous deadline.
func within(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not within 20s", what)
	}
}

func TestRunHold(t *testing.T) {
	t.Parallel()

	t.Run("release lets go while the daemon holds it", func(t *testing.T) {
		t.Parallel()
		c, gone := leaseDaemon(t, `{"held":true}`+"\n", true)
		h, err := noDaemonApp(t).holdRun(t.Context(), c, "s_1")
		if err != nil {
			t.Fatal(err)
		}
		released := make(chan struct{})
		go func() { h.release(); close(released) }()
		within(t, "release", released)
		within(t, "the daemon to see the lease go", gone)
		if why := h.stopped(); why != "" {
			t.Errorf("stopped: got %q, want the agent left alone", why)
		}
	})

	// A session ended while its agent runs (revoked, expired) leaves
	// nothing for the agent but refusals: it is stopped, with a grace;
	// a killed one at once.
	for _, tc := range []struct {
		name, event, why string
		hard             bool
	}{
		{"ended: the agent is stopped", `{"ended":true,"reason":"revoked"}`, "session s_1 ended (revoked)", false},
		{"killed: the agent is stopped at once", `{"ended":true,"killed":true,"reason":"killed: loop"}`, "session s_1 ended (killed: loop)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := leaseDaemon(t, `{"held":true}`+"\n"+tc.event+"\n", false)
			h, err := noDaemonApp(t).holdRun(t.Context(), c, "s_1")
			if err != nil {
				t.Fatal(err)
			}
			within(t, "the agent to be stopped", h.stop)
			if why, hard := h.stopped(), h.stopHard(); why != tc.why || hard != tc.hard {
				t.Errorf("stopped: got %q (at once %v), want %q (at once %v)", why, hard, tc.why, tc.hard)
			}
			h.release()
		})
	}

	t.Run("restarting, no daemon comes back: the agent stops", func(t *testing.T) {
		t.Parallel()
		c, _ := leaseDaemon(t, `{"held":true}`+"\n"+`{"restarting":true,"grace_seconds":1}`+"\n", false)
		h, err := noDaemonApp(t).holdRun(t.Context(), c, "s_1")
		if err != nil {
			t.Fatal(err)
		}
		defer h.release()
		within(t, "the agent to be stopped", h.stop)
		if why := h.stopped(); !strings.Contains(why, "no daemon came back within 1s to hold session s_1 again") {
			t.Errorf("stopped: got %q, want the grace passed", why)
		}
	})

	t.Run("refused by the daemon", func(t *testing.T) {
		t.Parallel()
		_, err := noDaemonApp(t).holdRun(t.Context(), client.New("http://127.0.0.1:1", token.FromString("rlt_admin")), "s_1")
		if !errors.Is(err, client.ErrNotRunning) {
			t.Errorf("no daemon: got %v, want not running", err)
		}
	})
}
