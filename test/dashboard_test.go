//go:build linux

package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserTimeout bounds one step in the browser (a page load, a wait for
// text to appear).
const browserTimeout = 30 * time.Second

// requireChromium is the path of the chromium the dashboard's tests
// drive: $RINGLET_CHROMIUM, else chromium on PATH. Missing, the tests
// skip, and fail in CI (CI=true), where .ci/deps installs it.
func requireChromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("RINGLET_CHROMIUM")
	if path == "" {
		p, err := exec.LookPath("chromium")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("the dashboard's browser tests must run in CI: chromium is not installed (.ci/deps installs it)")
			}
			t.Skip("skipping the dashboard's browser tests: chromium is not installed")
		}
		path = p
	}
	return path
}

// artifactDir is where a test's screenshots go: $RINGLET_ARTIFACTS/<test>
// when set (kept), else the test's temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if root := os.Getenv("RINGLET_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// browser is a headless chromium, with the response headers of every
// answer it got from the daemon.
type browser struct {
	t         *testing.T
	ctx       context.Context
	shots     string
	mu        sync.Mutex
	responses map[string]network.Headers // URL: headers
	// complaints: what chromium reported (watchComplaints), under mu.
	complaints []string
}

// watchComplaints records, from now on, what the tab complains of: a
// CSP violation (a securitypolicyviolation listener installed before any
// of the page's scripts, into window.cspViolations), and chromium's
// console errors and warnings, exceptions and security log entries.
// checkComplaints fails the test for any of them.
func (b *browser) watchComplaints(t *testing.T) {
	t.Helper()
	err := chromedp.Listen(b.ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Source == log.EntrySourceSecurity || e.Entry.Source == log.EntrySourceViolation {
				msg = fmt.Sprintf("log %s/%s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				msg = fmt.Sprintf("console %s: %d args", e.Type, len(e.Args))
				for _, a := range e.Args {
					msg += " " + string(a.Value) + a.Description
				}
			}
		case *runtime.EventExceptionThrown:
			msg = fmt.Sprintf("exception: %s %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber)
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.complaints = append(b.complaints, msg)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for what, call := range map[string]func() error{
		"log.enable":     func() error { _, err := chromedp.Call(b.ctx, log.Enable, cdp.Empty{}); return err },
		"runtime.enable": func() error { _, err := chromedp.Call(b.ctx, runtime.Enable, cdp.Empty{}); return err },
		"the page's CSP listener": func() error {
			_, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`})
			return err
		},
	} {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// checkComplaints fails the test for every CSP violation the current page
// saw and everything chromium complained of since watchComplaints.
func (b *browser) checkComplaints(t *testing.T, pageName string) {
	t.Helper()
	if v := eval[[]string](b, b.ctx, "CSP violations", `window.cspViolations`); len(v) != 0 {
		t.Errorf("CSP violations on the %s page: %q", pageName, v)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.complaints) != 0 {
		t.Errorf("chromium reported on the dashboard: %q", b.complaints)
	}
}

func newBrowser(t *testing.T, daemonBase string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(requireChromium(t)), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800))
	if os.Geteuid() == 0 {
		// Chromium's own sandbox does not run as root; this is the
		// browser's sandbox, not Ringlet's.
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, shots: artifactDir(t), responses: map[string]network.Headers{}}
	b.watch(ctx, daemonBase)
	return b
}

// watch records the headers of every response from the daemon in ctx's
// tab.
func (b *browser) watch(ctx context.Context, daemonBase string) {
	b.t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && strings.HasPrefix(e.Response.URL, daemonBase) {
			b.mu.Lock()
			b.responses[e.Response.URL] = e.Response.Headers
			b.mu.Unlock()
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	}
	if err != nil {
		b.t.Fatalf("start chromium: %v", err)
	}
}

// fresh is a new tab with a cookie jar of its own (another browser
// profile, as far as cookies go).
func (b *browser) fresh(daemonBase string) context.Context {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	b.watch(ctx, daemonBase)
	return ctx
}

// run runs actions in ctx's tab, within browserTimeout.
func (b *browser) run(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		b.fail(ctx, what, err)
	}
}

// eval is the value of a JavaScript expression in ctx's page.
func eval[T any](b *browser, ctx context.Context, what, expr string) T {
	b.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(ctx, what, err)
	}
	return v
}

// fail ends the test with the page's address, text and a screenshot.
func (b *browser) fail(ctx context.Context, what string, err error) {
	b.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	url, _ := chromedp.Run(tctx, chromedp.Location())
	body, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	b.shot(ctx, "failed-"+regexp.MustCompile(`\W+`).ReplaceAllString(what, "-"))
	b.t.Fatalf("%s: %v\npage %s:\n%s", what, err, url, body)
}

// waitText waits until the page's text contains s.
func (b *browser) waitText(ctx context.Context, what, s string) {
	b.t.Helper()
	q, _ := json.Marshal(s)
	b.poll(ctx, what, `document.body && document.body.innerText.includes(`+string(q)+`)`)
}

// poll waits until a JavaScript expression is true in ctx's page.
func (b *browser) poll(ctx context.Context, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(browserTimeout)
	for {
		tctx, cancel := context.WithDeadline(ctx, deadline.Add(5*time.Second))
		_, err := chromedp.Run(tctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		// A page that navigates while it is polled (a login, a form
		// post) ends the poll's JavaScript context: poll the next page.
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "(-32000)") {
			b.fail(ctx, what, err)
		}
	}
}

// click clicks the element selector names, as a user's click does (its
// form is submitted).
func (b *browser) click(ctx context.Context, what, selector string) {
	b.t.Helper()
	q, _ := json.Marshal(selector)
	if !eval[bool](b, ctx, what, `(() => { const e = document.querySelector(`+string(q)+`); if (!e) return false; e.click(); return true; })()`) {
		b.fail(ctx, what, fmt.Errorf("no element %s", selector))
	}
}

// shot writes a screenshot of ctx's page to the artifacts.
func (b *browser) shot(ctx context.Context, name string) {
	tctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// uiLink is a new one-time dashboard link, from 'ringlet ui'.
func uiLink(t *testing.T, w *sbWorld) string {
	t.Helper()
	out := strings.TrimSpace(w.mustRun(t, "ui", "--no-browser"))
	if !strings.Contains(out, "/ui/login#code=rlc_") {
		t.Fatalf("ringlet ui --no-browser: got %q, want a link to /ui/login with a code in its fragment", out)
	}
	return out
}

// dashboardAgent is the agent of the dashboard's test: it asks the
// provider, through the proxy, for a model whose name is markup (an agent
// chooses it; the page must show it as text), then waits to be killed.
const dashboardAgent = `
import json, os, sys, time, urllib.request
body = json.dumps({"model": sys.argv[1], "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}).encode()
req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=body,
    headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "content-type": "application/json", "anthropic-version": "2023-06-01"})
urllib.request.urlopen(req).read()
os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 600; :", sys.argv[2]])
`

// evilModel is markup an agent puts where the page shows it.
const evilModel = `<script>window.pwned=1</script>"><img src=x onerror="window.pwned=2">`

// TestDashboard drives the dashboard in a real browser against a real
// daemon: the one-time login (a link works once), a 'profiles run'
// session appearing live with its spend and last action (markup from the
// agent shown as text), its kill button ending the agent's processes, a
// page on another localhost port that can neither read nor change
// anything, logout and rotate-token ending the login, and the security
// headers on every answer. Screenshots of each page go to the artifacts.
func TestDashboard(t *testing.T) {
	requireSandbox(t)
	requireChromium(t)
	w := newSBWorld(t, nil)
	base := "http://" + w.d.Addr
	b := newBrowser(t, base)
	ctx := b.ctx

	// Log in with the one-time link.
	link := uiLink(t, w)
	b.run(ctx, "open the link", chromedp.Navigate(link))
	b.waitText(ctx, "the Now page after login", "Live sessions")
	b.waitText(ctx, "no sessions yet", "No live sessions")
	if loc := eval[string](b, ctx, "location", `location.href`); loc != base+"/ui/" {
		t.Errorf("after login: at %s, want %s/ui/ (no code left in the address)", loc, base)
	}
	b.shot(ctx, "now-empty")

	// The cookie: HttpOnly, SameSite=Strict, Path=/, host-only.
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := got.Cookies
	if len(cookies) != 1 {
		t.Fatalf("cookies after login: got %d, want 1", len(cookies))
	}
	ck := cookies[0]
	cookieName := "ringlet_ui_" + w.d.Addr[strings.LastIndex(w.d.Addr, ":")+1:]
	if ck.Name != cookieName || !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || ck.Domain != "127.0.0.1" {
		t.Errorf("login cookie: got %s HttpOnly=%v SameSite=%s Path=%s Domain=%s, want %s, HttpOnly, Strict, /, host-only 127.0.0.1",
			ck.Name, ck.HTTPOnly, ck.SameSite, ck.Path, ck.Domain, cookieName)
	}
	// The page key: in this origin's sessionStorage, not in the cookie.
	if key := eval[string](b, ctx, "the page key", `sessionStorage.getItem('ringlet-ui-key') || ''`); !strings.HasPrefix(key, "rlk_") || strings.Contains(ck.Value, key) {
		t.Errorf("page key in sessionStorage: got %q, want rlk_... apart from the cookie", key)
	}
	if strings.Contains(eval[string](b, ctx, "document.cookie", `document.cookie`), ck.Value) {
		t.Error("the page's scripts can read the login cookie")
	}

	// The link works once: in another browser profile it is refused.
	other := b.fresh(base)
	b.run(other, "the used link again", chromedp.Navigate(link))
	b.waitText(other, "a used link is refused", "not valid (used or expired)")
	b.shot(other, "login-refused")
	b.run(other, "the Now page without a login", chromedp.Navigate(base+"/ui/"))
	b.waitText(other, "the sign-in page", "ringlet ui")
	b.shot(other, "signed-out")
	// A code never issued (as an expired one is: both unknown) fails too.
	b.run(other, "a forged link", chromedp.Navigate(base+"/ui/login#code=rlc_forged"))
	b.waitText(other, "a forged code is refused", "not valid (used or expired)")

	// A session starts: its row appears without a reload.
	eval[bool](b, ctx, "mark the page", `window.sameLoad = true`)
	tag := "ringlet-dash-" + sbRandomHex(4)
	launcher := w.e.command(context.Background(), ringletBin, "profiles", "run", "p", "--", "-c", `exec /usr/bin/python3 -c "$1" "$2" "$3"`, "sh", dashboardAgent, evilModel, tag)
	var launcherOut strings.Builder
	launcher.Stdout, launcher.Stderr = &launcherOut, &launcherOut
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = launcher.Wait() // killed: its status says nothing more
		close(exited)
	}()
	t.Cleanup(func() {
		launcher.Process.Kill()
		<-exited
	})
	b.waitText(ctx, "the session's row", "model=")
	if !eval[bool](b, ctx, "same page", `window.sameLoad === true`) {
		t.Error("the row appeared by reloading the page; want it from the event stream")
	}
	type rowView struct {
		Text    string
		Markup  int
		Pwned   any
		Spend   string
		Sandbox string
	}
	row := eval[rowView](b, ctx, "read the row", `(() => {
		const r = document.querySelector('#sessions tr[data-session]');
		return {Text: r.innerText, Markup: document.querySelectorAll('#sessions img, #sessions script').length,
			Pwned: window.pwned === undefined ? null : window.pwned, Spend: r.cells[4].innerText, Sandbox: r.cells[3].innerText};
	})()`)
	if !strings.Contains(row.Text, "<script>window.pwned=1</script>") || !strings.Contains(row.Text, `"><img src=x onerror=`) {
		t.Errorf("row text: got %q, want the model name shown as text", row.Text)
	}
	if row.Markup != 0 || row.Pwned != nil {
		t.Errorf("the agent's model name became markup: %d img/script elements, window.pwned %v", row.Markup, row.Pwned)
	}
	if !strings.Contains(row.Spend, "1 req") || strings.Contains(row.Spend, " 0 in") {
		t.Errorf("spend: got %q, want the request and its tokens counted", row.Spend)
	}
	if row.Sandbox != "sandboxed" {
		t.Errorf("sandbox: got %q, want sandboxed", row.Sandbox)
	}
	if len(markedProcesses(tag)) == 0 {
		t.Fatalf("the agent is not running; launcher said:\n%s", launcherOut.String())
	}
	b.shot(ctx, "now-live")

	// The cookie replayed by a plain client (as any server of 127.0.0.1
	// the browser visits receives it), with a forged Sec-Fetch-Site but
	// without the page key: the shell and nothing else.
	id := w.sessionID(t, "p")
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/ui/now/sessions"}, {http.MethodGet, "/ui/events"},
		{http.MethodPost, "/ui/sessions/" + id + "/kill"}, {http.MethodPost, "/ui/logout"},
	} {
		if code, body := replay(t, r.method, base+r.path, cookieName, ck.Value); code != http.StatusUnauthorized || strings.Contains(body, id) {
			t.Errorf("the cookie replayed without the key: %s %s: got %d, want 401 and nothing of the session", r.method, r.path, code)
		}
	}
	if code, body := replay(t, http.MethodGet, base+"/ui/", cookieName, ck.Value); code != http.StatusOK || strings.Contains(body, id) || strings.Contains(body, "model=") {
		t.Errorf("the cookie replayed on the Now page: got %d, want its shell with no session in it:\n%s", code, body)
	}
	if w.sessionID(t, "p") != id {
		t.Fatal("the replayed cookie killed the session")
	}
	// Another tab of this browser: the cookie, but not the page key
	// (sessionStorage is per tab and per origin). It says so, and shows
	// nothing of the session.
	tab, cancelTab := chromedp.NewContext(ctx)
	b.watch(tab, base) // opens the tab (not under a deadline, which would close it)
	b.run(tab, "a tab with the cookie alone", chromedp.Navigate(base+"/ui/"))
	b.waitText(tab, "a tab without the key", "This tab is not signed in")
	if text := eval[string](b, tab, "its text", `document.body.innerText`); strings.Contains(text, id) || strings.Contains(text, "model=") {
		t.Errorf("a tab without the page key shows the session:\n%s", text)
	}
	cancelTab()

	// A page on another port of localhost: same site as the daemon, so
	// the SameSite cookie goes along; it must still read and change
	// nothing.
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(rw, `<!doctype html><title>evil</title>
<form id="f" method="post" action="%[1]s/ui/sessions/%[2]s/kill" target="sink"></form>
<form id="g" method="post" action="%[1]s/ui/logout" target="sink2"></form>
<iframe name="sink"></iframe><iframe name="sink2"></iframe><iframe id="frame" src="%[1]s/ui/"></iframe>
<script>
window.result = 'pending';
window.key = sessionStorage.getItem('ringlet-ui-key');
fetch(%[3]q, {credentials: 'include'}).then(r => r.text()).then(t => { window.result = 'read ' + t.length; }, () => { window.result = 'blocked'; });
document.getElementById('f').submit();
document.getElementById('g').submit();
</script>`, base, id, base+"/ui/now/sessions")
	}))
	t.Cleanup(evil.Close)
	denied := len(w.records(t, "auth.failure"))
	b.run(ctx, "the cross-site page", chromedp.Navigate(evil.URL))
	b.poll(ctx, "its fetch", `window.result !== 'pending'`)
	if result := eval[string](b, ctx, "its result", `window.result`); result != "blocked" {
		t.Errorf("a cross-site page's fetch of the dashboard: got %q, want blocked", result)
	}
	if key := eval[any](b, ctx, "its sessionStorage", `window.key`); key != nil {
		t.Errorf("a page on another port read the page key: %v", key)
	}
	// Both posts and the frame reached the daemon and were refused.
	if !waitFor(browserTimeout, func() bool { return len(w.records(t, "auth.failure")) >= denied+3 }) {
		t.Errorf("the cross-site requests were not refused and recorded: %d auth.failure records, want at least %d", len(w.records(t, "auth.failure")), denied+3)
	}
	b.shot(ctx, "cross-site-page")
	if w.sessionID(t, "p") != id {
		t.Fatal("the cross-site page's form killed the session")
	}
	b.run(ctx, "back to the dashboard", chromedp.Navigate(base+"/ui/"))
	b.waitText(ctx, "still logged in after the cross-site page", "model=")

	// The rows' answer is put in the page only when it is a page of rows,
	// or the daemon's refusal (400, its one line escaped): markup of any
	// other answer (a proxy's error page, a broken download) is not.
	eval[bool](b, ctx, "a cursor of markup", `(() => {
		const n = document.createElement('button');
		n.setAttribute('data-after', '<b id="injected">x</b>');
		document.getElementById('now-pager').append(n);
		n.click();
		return true;
	})()`)
	b.waitText(ctx, "the daemon's refusal", "go back to the first page")
	for _, answer := range []string{
		`new Response('<b id="injected">x</b>', {status: 502, headers: {'Content-Type': 'text/html'}})`,
		`new Response('<b id="injected">x</b>', {status: 200, headers: {'Content-Type': 'text/plain'}})`,
	} {
		eval[bool](b, ctx, "an answer not of the daemon", `(() => {
			const f = window.fetch;
			window.fetch = function (u) {
				if (!String(u).includes('/ui/now/sessions')) return f.apply(this, arguments);
				window.fetch = f;
				return Promise.resolve(`+answer+`);
			};
			document.getElementById('now-filters').requestSubmit();
			return true;
		})()`)
		b.waitText(ctx, "what the page says of it", "reload the page")
		if n := eval[int](b, ctx, "markup of the answer", `document.querySelectorAll('#injected').length`); n != 0 {
			t.Errorf("%s: %d elements of its markup in the page; want none", answer, n)
		}
		eval[bool](b, ctx, "the rows again", `(document.getElementById('now-filters').requestSubmit(), true)`)
		b.poll(ctx, "the summary again", `document.getElementById('now-summary').innerText.includes('1 live session')`)
	}

	// Kill it from its row: the agent's processes go, the launcher ends.
	// Clicked in the page: the rows may be replaced under a click from
	// outside.
	b.click(ctx, "kill", `#sessions tr[data-session] button.kill`)
	b.waitText(ctx, "the row is gone", "No live sessions")
	if !waitFor(endDeadline, func() bool { return len(markedProcesses(tag)) == 0 }) {
		t.Errorf("the agent's processes outlived the kill: %v", markedProcesses(tag))
	}
	select {
	case <-exited:
	case <-time.After(endDeadline):
		t.Error("profiles run did not end after the kill")
	}
	var by []string
	for _, r := range w.records(t, "session.killed") {
		by = append(by, fmt.Sprint(r.Session == id, "/", r.Detail["by"]))
	}
	if fmt.Sprint(by) != "[true/dashboard]" {
		t.Errorf("session.killed records: got %v, want one of this session by the dashboard", by)
	}
	b.shot(ctx, "now-after-kill")

	// Logout ends the login: the cookie opens nothing any more.
	b.click(ctx, "log out", `#logout`)
	b.waitText(ctx, "signed out", "not signed in")
	if code, _ := replay(t, http.MethodGet, base+"/ui/", cookieName, ck.Value); code != http.StatusUnauthorized {
		t.Errorf("the logged-out cookie: got %d, want 401", code)
	}

	// rotate-token ends a login, and its open page follows.
	b.run(ctx, "log in again", chromedp.Navigate(uiLink(t, w)))
	b.waitText(ctx, "logged in again", "Live sessions")
	b.waitText(ctx, "the page's stream is open", "live")
	w.mustRun(t, "daemon", "rotate-token")
	b.waitText(ctx, "the page signs out on rotation", "not signed in")
	b.shot(ctx, "after-rotate")

	// Every answer of the daemon to the browser had the headers.
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.responses) < 5 {
		t.Errorf("responses seen: %d, want the pages, assets, rows and events", len(b.responses))
	}
	for url, h := range b.responses {
		got := map[string]string{}
		for k, v := range h {
			got[strings.ToLower(k)] = fmt.Sprint(v)
		}
		csp := got["content-security-policy"]
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
			got["x-content-type-options"] != "nosniff" || got["referrer-policy"] != "no-referrer" {
			t.Errorf("%s: headers %v, want the dashboard's CSP, nosniff and no-referrer", url, got)
		}
	}
}

// sessionID is the one live session of alias ("" when none).
func (w *sbWorld) sessionID(t *testing.T, alias string) string {
	t.Helper()
	var ss []struct{ ID, Profile string }
	if err := json.Unmarshal([]byte(w.mustRun(t, "sessions", "list", "--json")), &ss); err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Profile == alias {
			return s.ID
		}
	}
	return ""
}

// replay sends the login cookie as a client that is not the dashboard's
// page would: with Sec-Fetch-Site and Origin forged to the daemon's own,
// without the page key. It returns the status and the body.
func replay(t *testing.T, method, url, name, cookie string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: name, Value: cookie})
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", url[:strings.Index(url, "/ui")])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a short read shows in the assertions
	return resp.StatusCode, string(body)
}

// TestDashboardBrowserFile: 'ringlet ui' gives the browser a private file
// that sends it on to the link, never the link itself: the one-time code
// is in no command line (/proc/PID/cmdline is readable by every user).
// Chromium follows the file to the dashboard, signed in; the command
// then says so and removes the file.
func TestDashboardBrowserFile(t *testing.T) {
	requireChromium(t)
	e := newEnv(t)
	d := e.StartDaemon()
	argvFile := filepath.Join(e.Root, "browser-argv")
	script := filepath.Join(e.Root, "fake-browser")
	writeFile(t, script, "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > "+argvFile+".tmp && mv "+argvFile+".tmp "+argvFile+"\n", 0o755)
	e.ExtraEnv = append(e.ExtraEnv, "BROWSER="+script)
	cmd := e.command(context.Background(), ringletBin, "ui")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // ended already when the test passed
		<-exited
	})
	if !waitFor(browserTimeout, func() bool { _, err := os.Stat(argvFile); return err == nil }) {
		t.Fatalf("ringlet ui did not start the browser; it said:\n%s", out.String())
	}
	data, err := os.ReadFile(argvFile)
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimSpace(string(data)), "\n")
	if strings.Contains(string(data), "rlc_") || strings.Contains(string(data), "code=") || len(argv) != 2 {
		t.Fatalf("the browser's argv: got %q, want the script and one file, no login code", argv)
	}
	page := argv[1]
	if filepath.Dir(page) != filepath.Join(e.StateDir(), "ui") {
		t.Errorf("the login file: got %s, want it in %s", page, filepath.Join(e.StateDir(), "ui"))
	}
	for path, want := range map[string]os.FileMode{page: 0o600, filepath.Dir(page): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: got %v (%v), want mode %04o", path, fi.Mode().Perm(), err, want)
		}
	}
	if body, err := os.ReadFile(page); err != nil || !strings.Contains(string(body), "/ui/login#code=rlc_") {
		t.Errorf("the login file: got %q (%v), want the link", body, err)
	}

	b := newBrowser(t, "http://"+d.Addr)
	b.run(b.ctx, "open the login file", chromedp.Navigate("file://"+page))
	b.waitText(b.ctx, "the dashboard, signed in, with its data", "No live sessions")
	if loc := eval[string](b, b.ctx, "location", `location.href`); loc != "http://"+d.Addr+"/ui/" {
		t.Errorf("after the login file: at %s, want http://%s/ui/", loc, d.Addr)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil || !strings.Contains(out.String(), "signed in") {
			t.Errorf("ringlet ui: got %v, said:\n%s\nwant it to say the browser signed in", err, out.String())
		}
	case <-time.After(browserTimeout):
		t.Fatalf("ringlet ui did not end after the browser signed in; it said:\n%s", out.String())
	}
	if _, err := os.Stat(page); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the login file after sign-in: got %v, want it removed", err)
	}
}

// dashRoute is a request for a dashboard page's data or a change.
type dashRoute struct{ method, path string }

// crossFetch is a request that a page on another port of localhost makes
// with the login cookie: a read (a CORS fetch, whose answer it would
// see), which must be blocked, or a send (no-cors: it never sees the
// answer), whose effect the caller checks.
type crossFetch struct {
	method, path, body string
	send               bool
	// guessKey sends a guessed page key along with a read.
	guessKey bool
}

// outsiders is what one dashboard page must give to those who hold the
// login cookie but not the page key.
type outsiders struct {
	// page is the page's path, name its name in messages.
	page, name string
	// data are its data and change routes.
	data []dashRoute
	// hidden is in no answer to the cookie replayed without the key;
	// shellHidden, besides, not in the page's shell.
	hidden, shellHidden []string
	// fetches are what the page on another port tries.
	fetches []crossFetch
}

// checkOutsiders: the login cookie (the only cookie of base) replayed by
// a plain client without the page key gets 401 and none of o.hidden from
// each data route, and the page's shell (200) with none of it; a page on
// another port of localhost (same site as the daemon, so the SameSite
// cookie goes along) has each of its reads blocked and does not read the
// page key. What its sends would have changed, the caller checks.
func checkOutsiders(t *testing.T, b *browser, ctx context.Context, base string, o outsiders) {
	t.Helper()
	cks, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	if err != nil || len(cks.Cookies) != 1 {
		t.Fatalf("cookies: got %v, %v; want the login's", cks, err)
	}
	ck := cks.Cookies[0]
	leaks := func(body string, hidden []string) bool {
		return slices.ContainsFunc(hidden, func(h string) bool { return strings.Contains(body, h) })
	}
	for _, r := range o.data {
		if code, body := replay(t, r.method, base+r.path, ck.Name, ck.Value); code != http.StatusUnauthorized || leaks(body, o.hidden) {
			t.Errorf("the cookie without the key: %s %s: got %d %.200q, want 401 and nothing of %q", r.method, r.path, code, body, o.hidden)
		}
	}
	if code, body := replay(t, http.MethodGet, base+o.page, ck.Name, ck.Value); code != http.StatusOK || leaks(body, o.hidden) || leaks(body, o.shellHidden) {
		t.Errorf("the cookie on %s: got %d, want its shell with nothing of %q %q:\n%s", o.name, code, o.hidden, o.shellHidden, body)
	}

	type jsFetch struct {
		URL    string `json:"u"`
		Method string `json:"m"`
		Body   string `json:"b"`
		Send   bool   `json:"send"`
		Guess  bool   `json:"guess"`
	}
	var fs []jsFetch
	for _, f := range o.fetches {
		fs = append(fs, jsFetch{URL: base + f.path, Method: f.method, Body: f.body, Send: f.send, Guess: f.guessKey})
	}
	fsJSON, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(rw, `<!doctype html><title>evil</title><script>
window.results = null;
window.key = sessionStorage.getItem('ringlet-ui-key');
Promise.all(%s.map(f => {
  const o = {method: f.m, credentials: 'include'};
  if (f.b) o.body = f.b;
  if (f.send) {
    o.mode = 'no-cors';
    if (f.b) o.headers = {'Content-Type': 'text/plain'};
    return fetch(f.u, o).then(() => 'sent', () => 'blocked');
  }
  if (f.guess) o.headers = {'X-Ringlet-UI': 'rlk_guess'};
  return fetch(f.u, o).then(r => r.text()).then(t => 'read ' + t.slice(0, 40), () => 'blocked');
})).then(rs => { window.results = rs; });
</script>`, fsJSON)
	}))
	t.Cleanup(evil.Close)
	b.run(ctx, "the cross-site page", chromedp.Navigate(evil.URL))
	b.poll(ctx, "its fetches", fmt.Sprintf(`window.results !== null && window.results.length === %d`, len(fs)))
	res := eval[[]string](b, ctx, "their results", `window.results`)
	for i, f := range o.fetches {
		if !f.send && res[i] != "blocked" {
			t.Errorf("a cross-site page's read of %s's data, %s %s: got %q, want blocked", o.name, f.method, f.path, res[i])
		}
	}
	if key := eval[any](b, ctx, "its sessionStorage", `window.key`); key != nil {
		t.Errorf("a page on another port read the page key: %v", key)
	}
}
