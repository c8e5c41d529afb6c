package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// TestPageKey: the page key is the one KeyHeader, or on a WebSocket
// handshake only, exactly the subprotocol pair "ringlet-page, KEY";
// anything else is no key.
func TestPageKey(t *testing.T) {
	t.Parallel()
	const key = "rlk_abc"
	for _, tc := range []struct {
		name    string
		header  []string
		protos  []string
		upgrade bool
		query   string
		want    string
	}{
		{name: "header", header: []string{key}, want: key},
		{name: "pair on a handshake", protos: []string{"ringlet-page, " + key}, upgrade: true, want: key},
		{name: "pair in two header lines", protos: []string{"ringlet-page", key}, upgrade: true, want: key},
		{name: "nothing"},
		{name: "empty header", header: []string{""}},
		{name: "two headers", header: []string{key, key}},
		{name: "header and pair", header: []string{key}, protos: []string{"ringlet-page, " + key}, upgrade: true},
		{name: "pair on a plain request", protos: []string{"ringlet-page, " + key}},
		{name: "name alone", protos: []string{"ringlet-page"}, upgrade: true},
		{name: "empty key", protos: []string{"ringlet-page, "}, upgrade: true},
		{name: "key alone", protos: []string{key}, upgrade: true},
		{name: "reversed", protos: []string{key + ", ringlet-page"}, upgrade: true},
		{name: "three", protos: []string{"ringlet-page, " + key + ", x"}, upgrade: true},
		{name: "the admin's name", protos: []string{"bearer, " + key}, upgrade: true},
		{name: "another case", protos: []string{"Ringlet-Page, " + key}, upgrade: true},
		{name: "in the query", query: "?key=" + key + "&ringlet-page=" + key, upgrade: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ui/terminal/s_1/attach"+tc.query, nil)
			for _, h := range tc.header {
				r.Header.Add(dashboard.KeyHeader, h)
			}
			for _, p := range tc.protos {
				r.Header.Add("Sec-WebSocket-Protocol", p)
			}
			if tc.upgrade {
				r.Header.Set("Upgrade", "websocket")
			}
			got, ok := pageKey(r)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("got %q, %v, want %q, %v", got, ok, tc.want, tc.want != "")
			}
		})
	}
}

// TestDashboardTerminalSocket: the terminal page's socket attaches with
// the login cookie and the page key in the subprotocol pair, answers with
// the protocol's name alone (never the key), and carries the terminal's
// bytes; the cookie alone, a wrong key, a malformed list, the key in the
// query or another Origin is refused before any handshake.
func TestDashboardTerminalSocket(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, ts := newLiveServer(t, Options{})
	code, _ := s.logins.NewCode()
	cookie, key, _, err := s.logins.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	// A terminal running cat, as 'profiles run --remote' would run an
	// agent.
	sess := &session{ID: "s_0123456789abcdef", Profile: profile.Profile{Alias: "p", Agent: "sh"}}
	startTestTerminal(t, s, sess, exec.Command("cat"))

	// The page's shell: the cookie opens it, with the dashboard's CSP.
	for _, withCookie := range []bool{false, true} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/ui/terminal/"+sess.ID, nil)
		if withCookie {
			req.Header.Set("Cookie", dashboard.CookieName(int(s.port.Load()))+"="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[bool]int{false: http.StatusUnauthorized, true: http.StatusOK}[withCookie]
		if resp.StatusCode != want || resp.Header.Get("Content-Security-Policy") != dashboard.CSP {
			t.Errorf("the terminal page, cookie %v: got %d, CSP %q, want %d and the dashboard's CSP", withCookie, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), want)
		}
	}

	url := strings.Replace(ts.URL, "http://", "ws://", 1) + "/ui/terminal/" + sess.ID + "/attach"
	dial := func(url, origin string, protos ...string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{"Cookie": {dashboard.CookieName(int(s.port.Load())) + "=" + cookie}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: protos})
	}
	for _, tc := range []struct {
		name, url, origin string
		protos            []string
	}{
		{"the cookie alone", url, "", nil},
		{"a wrong key", url, "", []string{pageProtocol, dashboard.KeyPrefix + "wrong"}},
		{"the key alone", url, "", []string{key}},
		{"the pair and more", url, "", []string{pageProtocol, key, "x"}},
		{"the admin's name", url, "", []string{"bearer", key}},
		{"the key in the query", url + "?key=" + key, "", nil},
		{"another origin", url, "http://127.0.0.1:1", []string{pageProtocol, key}},
	} {
		c, resp, err := dial(tc.url, tc.origin, tc.protos...)
		if err == nil {
			c.CloseNow()
			t.Errorf("%s: attached, want refused", tc.name)
			continue
		}
		if resp == nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
			t.Errorf("%s: got %v, want 401 or 403", tc.name, err)
		}
	}

	c, resp, err := dial(url, ts.URL, pageProtocol, key)
	if err != nil {
		t.Fatalf("attach with the cookie and the key: %v", err)
	}
	defer c.CloseNow()
	if got := resp.Header.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != pageProtocol {
		t.Errorf("answer's Sec-WebSocket-Protocol: got %q, want %q alone", got, pageProtocol)
	}
	for k, v := range resp.Header {
		if strings.Contains(strings.Join(v, " "), key) {
			t.Errorf("answer's header %s holds the page key", k)
		}
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte("hello-pty\n")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for !strings.Contains(string(got), "hello-pty") {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v; got %q", err, got)
		}
		got = append(got, b...)
	}
	// The login ends: so does the socket.
	s.logins.End(cookie)
	var closed error
	for closed == nil {
		_, _, closed = c.Read(ctx) // the rest of cat's echo, then the close
	}
	if websocket.CloseStatus(closed) != websocket.StatusPolicyViolation || !strings.Contains(closed.Error(), "login ended") {
		t.Errorf("after logout: got %v, want closed because the login ended", closed)
	}
}

// TestTerminalAttachRefusedWhenAuditFails: a viewer whose terminal.attach
// record cannot be written is sent away (1013, try again later) before a
// byte of the scrollback reaches it; once the log takes records again the
// same attach gets the scrollback.
func TestTerminalAttachRefusedWhenAuditFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	k := &kindRefuser{Auditor: &recordingAuditor{}}
	s, ts := newLiveServer(t, Options{Audit: k})
	code, _ := s.logins.NewCode()
	cookie, key, _, err := s.logins.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	const scrollback = "ringlet-scrollback-5c1e"
	sess := &session{ID: "s_0123456789abcdef", Profile: profile.Profile{Alias: "p", Agent: "sh"}}
	term := startTestTerminal(t, s, sess, exec.Command("sh", "-c", "echo "+scrollback+"; exec cat"))
	// The scrollback holds the line before anyone attaches.
	for {
		term.mu.Lock()
		held := strings.Contains(string(term.scroll), scrollback)
		term.mu.Unlock()
		if held {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the terminal's scrollback never held its first line")
		case <-time.After(10 * time.Millisecond):
		}
	}

	url := strings.Replace(ts.URL, "http://", "ws://", 1) + "/ui/terminal/" + sess.ID + "/attach"
	attach := func() (got []byte, closed error) {
		h := http.Header{"Cookie": {dashboard.CookieName(int(s.port.Load())) + "=" + cookie}, "Origin": {ts.URL}}
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{pageProtocol, key}})
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		defer c.CloseNow()
		for !strings.Contains(string(got), scrollback) {
			_, b, err := c.Read(ctx)
			if err != nil {
				return got, err
			}
			got = append(got, b...)
		}
		return got, nil
	}

	kind := audit.KindTerminalAttach
	k.refuse.Store(&kind)
	got, closed := attach()
	if len(got) != 0 || websocket.CloseStatus(closed) != websocket.StatusTryAgainLater {
		t.Errorf("attach with terminal.attach refused: got %q and %v; want no byte and a close with %d", got, closed, websocket.StatusTryAgainLater)
	}
	k.refuse.Store(nil)
	if got, closed := attach(); closed != nil {
		t.Errorf("attach once the log takes records: got %q and %v; want the scrollback", got, closed)
	}
}

// startTestTerminal runs cmd under a pseudo-terminal as sess's remote
// terminal in s, as 'profiles run --remote' runs an agent; the test's
// end kills it.
func startTestTerminal(t *testing.T, s *Server, sess *session, cmd *exec.Cmd) *terminal {
	t.Helper()
	f, err := startOnPTY(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{sess: sess, cmd: cmd, pty: f, started: time.Now(), viewers: map[*termViewer]struct{}{}, done: make(chan struct{}),
		lease: sandbox.NewLease(t.TempDir())}
	s.terminals.mu.Lock()
	s.terminals.byID[sess.ID] = term
	s.terminals.mu.Unlock()
	go s.terminals.run(term)
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the test is over
		<-term.done
	})
	return term
}
