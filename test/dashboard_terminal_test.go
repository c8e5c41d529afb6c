//go:build linux

package test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/coder/websocket"
)

// TestDashboardTerminal: a remote agent ('profiles run --remote') has a
// Terminal link on the Now page (a session without one has none); its
// page shows the agent's terminal in xterm.js with no CSP violation, takes
// keystrokes and gives the pty the window's size. The socket needs the
// login cookie, the page key in the subprotocol and the daemon's own
// Origin: a cookie without the key, a wrong key, a key in the address
// and a page of another origin with the right key all fail, and only the
// attaches that worked are on record, the dashboard's as its own actor.
// Neither the admin token nor the page key is in the page or the log.
func TestDashboardTerminal(t *testing.T) {
	requireSandbox(t)
	requireChromium(t)
	w := newSBWorld(t, nil)
	base := "http://" + w.d.Addr
	stdout, stderr, code, err := w.e.exec("profiles", "run", "p", "--remote", "--", "-c", "echo term-$((40+2))-up; exec /bin/sh")
	if err != nil || code != 0 {
		t.Fatalf("profiles run --remote: exit %d (%v), stderr %q", code, err, stderr)
	}
	m := regexp.MustCompile(`session (s_[0-9a-f]+)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("profiles run --remote: got %q, want the session", stdout)
	}
	id := m[1]
	// A session with no terminal of the daemon's: no link.
	w.mustRun(t, "profiles", "env", "p", "--json")

	b := newBrowser(t, base)
	ctx := b.ctx
	b.watchComplaints(t)
	b.run(ctx, "log in", chromedp.Navigate(uiLink(t, w)))
	b.waitText(ctx, "the Now page", "Live sessions")
	b.poll(ctx, "both sessions' rows", `document.querySelectorAll('#sessions tr[data-session]').length === 2`)
	links := eval[[]string](b, ctx, "the Terminal links", `[...document.querySelectorAll('#sessions a.terminal')].map(a => a.closest('tr').dataset.session + ' ' + a.getAttribute('href'))`)
	if want := id + " /ui/terminal/" + id; len(links) != 1 || links[0] != want {
		t.Fatalf("Terminal links on the Now page: got %q, want only %q", links, want)
	}
	b.click(ctx, "the Terminal link", `#sessions a.terminal`)

	// The scrollback, then typing through the page.
	rows := `(document.querySelector('#terminal .xterm-rows') || {innerText: ''}).innerText`
	b.poll(ctx, "the agent's output in xterm", rows+`.includes('term-42-up')`)
	b.poll(ctx, "attached", `document.getElementById('terminal-state').innerText.startsWith('attached')`)
	b.typeKeys(ctx, "echo $((6*7))ok\r")
	b.poll(ctx, "the command's output", rows+`.includes('42ok')`)
	b.shot(ctx, "terminal")

	// A smaller window: the pty follows.
	before := eval[string](b, ctx, "the size", `document.getElementById('terminal-state').innerText`)
	b.run(ctx, "resize the window", chromedp.EmulateViewport(700, 500))
	b.poll(ctx, "the new size", `document.getElementById('terminal-state').innerText !== `+fmt.Sprintf("%q", before))
	size := regexp.MustCompile(`(\d+) columns by (\d+) rows`).FindStringSubmatch(eval[string](b, ctx, "the size", `document.getElementById('terminal-state').innerText`))
	if size == nil {
		t.Fatalf("terminal state: got %q, want its size", before)
	}
	b.typeKeys(ctx, "stty size\r")
	b.poll(ctx, "stty size shows the window's size", rows+`.includes(`+fmt.Sprintf("%q", size[2]+" "+size[1])+`)`)
	b.shot(ctx, "terminal-resized")
	b.checkComplaints(t, "terminal")

	// No secret in the page or the log.
	key := eval[string](b, ctx, "the page key", `sessionStorage.getItem('ringlet-ui-key') || ''`)
	if !strings.HasPrefix(key, "rlk_") {
		t.Fatalf("page key: got %q", key)
	}
	html := eval[string](b, ctx, "the page's HTML", `document.documentElement.outerHTML`)
	for what, secret := range map[string]string{"admin token": w.e.Token(), "page key": key} {
		if strings.Contains(html, secret) {
			t.Errorf("the terminal page's HTML holds the %s", what)
		}
	}

	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	if err != nil || len(got.Cookies) != 1 {
		t.Fatalf("cookies: %v, %v", got, err)
	}
	cookie := got.Cookies[0].Name + "=" + got.Cookies[0].Value
	wsURL := "ws://" + w.d.Addr + "/ui/terminal/" + id + "/attach"
	dial := func(url string, protos []string, origin string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{"Cookie": {cookie}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: protos})
	}
	// The page's own way, from a client: it works, and the answer names
	// the protocol alone.
	c, resp, err := dial(wsURL, []string{"ringlet-page", key}, base)
	if err != nil {
		t.Fatalf("attach with the cookie and the key: %v", err)
	}
	if p := resp.Header.Values("Sec-WebSocket-Protocol"); len(p) != 1 || p[0] != "ringlet-page" {
		t.Errorf("the answer's Sec-WebSocket-Protocol: got %q, want ringlet-page alone", p)
	}
	c.CloseNow()
	for _, tc := range []struct {
		what, url, origin string
		protos            []string
	}{
		{"the cookie alone", wsURL, base, nil},
		{"a wrong key", wsURL, base, []string{"ringlet-page", "rlk_" + strings.Repeat("A", 43)}},
		{"the key in the address", wsURL + "?key=" + key + "&ringlet-page=" + key, base, nil},
		{"the key without the protocol's name", wsURL, base, []string{key}},
		{"the key with the admin's protocol name", wsURL, base, []string{"bearer", key}},
		{"the right key from another origin", wsURL, "http://127.0.0.1:1", []string{"ringlet-page", key}},
		{"the right key from another host", wsURL, "http://evil.example", []string{"ringlet-page", key}},
	} {
		c, resp, err := dial(tc.url, tc.protos, tc.origin)
		if err == nil {
			c.CloseNow()
			t.Errorf("%s: attached, want refused", tc.what)
		} else if resp == nil || resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: got %v, want 401 or 403", tc.what, err)
		}
	}

	// A page of another origin (another port of 127.0.0.1: same site,
	// so the cookie goes along) that even knows the key.
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(rw, `<!doctype html><title>evil</title><script>
window.result = 'pending';
const ws = new WebSocket(%q, ['ringlet-page', %q]);
ws.onopen = () => { window.result = 'open'; };
ws.onclose = () => { if (window.result === 'pending') window.result = 'refused'; };
</script>`, wsURL, key)
	}))
	t.Cleanup(evil.Close)
	b.run(ctx, "the cross-origin page", chromedp.Navigate(evil.URL))
	b.poll(ctx, "its socket", `window.result !== 'pending'`)
	if r := eval[string](b, ctx, "its socket", `window.result`); r != "refused" {
		t.Errorf("a page of another origin with the user's cookie and key: got %q, want refused", r)
	}

	// An attach with the admin token, as 'terminal attach' does.
	c, _, err = websocket.Dial(context.Background(), wsURL[:strings.Index(wsURL, "/ui/")]+"/api/sessions/"+id+"/terminal",
		&websocket.DialOptions{Subprotocols: []string{"bearer", w.e.Token()}})
	if err != nil {
		t.Fatalf("attach with the admin token: %v", err)
	}
	c.CloseNow()

	// On record: the browser's attach and the client's with the page
	// key (dashboard), the admin token's (admin), and nothing else.
	var actors []string
	for _, r := range w.records(t, "terminal.attach") {
		if r.Session != id || r.Profile != "p" {
			t.Errorf("terminal.attach of session %s profile %s, want %s of p", r.Session, r.Profile, id)
		}
		actors = append(actors, r.Actor)
	}
	if fmt.Sprint(actors) != "[admin dashboard dashboard]" {
		t.Errorf("terminal.attach records (newest first): got actors %v, want [admin dashboard dashboard]", actors)
	}

	// After the refusals too (one had the key in its address): neither
	// secret in the daemon's log or the audit log.
	records := w.mustRun(t, "audit", "query", "--json", "--limit", "1000")
	for what, secret := range map[string]string{"admin token": w.e.Token(), "page key": key} {
		if strings.Contains(w.d.Stderr(), secret) {
			t.Errorf("the daemon's log holds the %s", what)
		}
		if strings.Contains(records, secret) {
			t.Errorf("the audit log holds the %s", what)
		}
	}
}

// typeKeys types s into the focused element of ctx's page as a keyboard
// does: a keydown that carries its text (the browser makes the keypress
// and input of it, which a page that handled the keydown suppresses),
// then a keyup. chromedp.KeyEvent sends the text in a char event of its
// own, which xterm.js would take as a second keystroke.
func (b *browser) typeKeys(ctx context.Context, s string) {
	b.t.Helper()
	for _, r := range s {
		var text string
		for _, k := range kb.Encode(r) {
			if k.Type == kb.KeyChar {
				text = k.Text
			}
		}
		for _, k := range kb.Encode(r) {
			switch k.Type {
			case kb.KeyChar:
				continue
			case kb.KeyDown:
				k.Text, k.UnmodifiedText = text, text
			}
			if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, *k); err != nil {
				b.fail(ctx, fmt.Sprintf("type %q", s), err)
			}
		}
	}
}
