package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// evilHook is a hook command whose refusal (its stderr) is markup: the
// command and the reason must show as text.
const evilHook = `echo '<img src=x onerror="window.pwned=5">refused <b>by</b> the dashboard hook' >&2; exit 2`

// TestDashboardHooks drives the dashboard's Hooks and keys page in a real
// browser against a real daemon: a hook added from the page is what
// 'hooks list' shows and the audit log records with the dashboard as
// actor; tested on an input it denies, the reason shows as text (markup
// in it and in the command makes no element); removed from the page. A
// key typed into the password field is stored (keychain list names it,
// the fake provider gets it through the proxy) and is nowhere else: not
// in the page, an answer the page got, the daemon's log or the audit
// database. The cookie without the page key and a page on another port
// read nothing and change nothing.
func TestDashboardHooks(t *testing.T) {
	requireChromium(t)
	requireBwrap(t)
	e := newEnv(t)
	canary := proxyCanary("dashkey")
	fake := fakeprovider.New(canary)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	d := e.StartDaemon()
	base := "http://" + d.Addr
	mustRun(t, e, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	// The profile's key is not the one the fake takes: the one set from
	// the page is.
	if _, stderr, code := e.RunInput("sk-ant-old-"+randomHex(8), "profiles", "create", "claude", "work", "--provider", "fake"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	ask := func() int {
		t.Helper()
		var sess hkSession
		if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &sess); err != nil {
			t.Fatal(err)
		}
		code, _ := postMessages(t, sess.BaseURL, sess.Token, `{"model":"claude-test","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
		return code
	}
	if code := ask(); code == http.StatusOK {
		t.Fatalf("a request with the profile's first key: got 200, want the fake to refuse it")
	}
	type hookJSON struct{ ID, Event, Shell, Match string }
	hooksList := func() []hookJSON {
		t.Helper()
		var hs []hookJSON
		if err := json.Unmarshal([]byte(mustRun(t, e, "hooks", "list", "work", "--json")), &hs); err != nil {
			var wrapped struct{ Hooks []hookJSON }
			if err2 := json.Unmarshal([]byte(mustRun(t, e, "hooks", "list", "work", "--json")), &wrapped); err2 != nil {
				t.Fatalf("hooks list --json: %v", err)
			}
			hs = wrapped.Hooks
		}
		return hs
	}
	type recJSON struct {
		Kind, Actor, Target, Profile, Decision string
	}
	// records are the records of kind whose actor is not the admin token
	// ('profiles create' stores the profile's first key).
	records := func(kind string) []recJSON {
		t.Helper()
		var out struct{ Records []recJSON }
		if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", kind, "--json")), &out); err != nil {
			t.Fatal(err)
		}
		var rs []recJSON
		for _, r := range out.Records {
			if r.Actor != "admin" {
				rs = append(rs, r)
			}
		}
		return rs
	}

	b := newBrowser(t, base)
	ctx := b.ctx
	b.run(ctx, "log in", chromedp.Navigate(strings.TrimSpace(mustRun(t, e, "ui", "--no-browser"))))
	b.waitText(ctx, "logged in", "Live sessions")
	b.click(ctx, "the Hooks and keys link", `nav a[href="/ui/hooks"]`)
	b.poll(ctx, "the lists", `!!document.querySelector('#hook-list table[data-profile="work"]') && !!document.querySelector('#key-list table')`)
	b.poll(ctx, "the stream", `document.getElementById('live').textContent === 'live'`)
	// Every answer the page gets from here on, kept to look for the key.
	eval[bool](b, ctx, "watch the answers", `(() => { window.bodies = []; const f = window.fetch; window.fetch = (...a) => f(...a).then(r => { r.clone().text().then(t => window.bodies.push(t), () => {}); return r; }); return true; })()`)
	b.shot(ctx, "hooks-empty")

	// Add a hook from the page.
	fill := func(form string, fields map[string]string) {
		t.Helper()
		var s strings.Builder
		for k, v := range fields {
			fmt.Fprintf(&s, "f.elements[%q].value = %q; ", k, v)
		}
		eval[bool](b, ctx, "fill "+form, `(() => { const f = document.getElementById(`+fmt.Sprintf("%q", form)+`); `+s.String()+` f.requestSubmit(); return true; })()`)
	}
	fill("hook-add", map[string]string{"profile": "work", "event": "pre-tool-use", "match": "^Bash$", "shell": evilHook})
	b.poll(ctx, "the new hook in the list", `document.querySelectorAll('#hook-list tr[data-hook]').length === 1`)
	hs := hooksList()
	if len(hs) != 1 || hs[0].Shell != evilHook || hs[0].Match != "^Bash$" || hs[0].Event != "pre-tool-use" {
		t.Fatalf("hooks list after adding from the page: %+v, want the hook", hs)
	}
	id := hs[0].ID
	if shown := eval[string](b, ctx, "the command cell", `document.querySelector('#hook-list tr[data-hook] td.action').innerText`); shown != evilHook {
		t.Errorf("the hook's command on the page: %q, want %q as text", shown, evilHook)
	}
	if rs := records("hook.add"); len(rs) != 1 || rs[0].Actor != "dashboard" || rs[0].Profile != "work" {
		t.Errorf("hook.add records: %+v, want one by the dashboard", rs)
	}
	b.shot(ctx, "hooks-added")

	// Test it on an input it denies.
	fill("hook-test", map[string]string{"profile": "work", "input": `{"tool_name":"Bash","tool_input":{"command":"rm -rf /"}}`})
	b.waitText(ctx, "the test's decision", "Decision: deny")
	res := eval[string](b, ctx, "the result", `document.getElementById('hook-test-result').innerText`)
	if !strings.Contains(res, `<img src=x onerror="window.pwned=5">refused <b>by</b> the dashboard hook`) || !strings.Contains(res, "Hook: "+id) {
		t.Errorf("the test's result: %q, want the hook's reason as text and its id", res)
	}
	if n := eval[int](b, ctx, "markup", `document.querySelectorAll('#page img, #page b, #page script').length`); n != 0 || eval[bool](b, ctx, "pwned", `window.pwned !== undefined`) {
		t.Errorf("markup in a hook's command or reason became %d elements (or ran)", n)
	}
	b.shot(ctx, "hooks-tested")

	// The cookie without the page key, and a page on another port: no
	// list, no change.
	checkOutsiders(t, b, ctx, base, outsiders{page: "/ui/hooks", name: "the Hooks and keys page",
		data: []dashRoute{
			{http.MethodGet, "/ui/hooks/list"}, {http.MethodGet, "/ui/keys/list"}, {http.MethodPost, "/ui/hooks/add"},
			{http.MethodDelete, "/ui/hooks/work/" + id}, {http.MethodPost, "/ui/hooks/work/test"},
			{http.MethodPost, "/ui/keys/fake/work"}, {http.MethodDelete, "/ui/keys/fake/work"},
		},
		hidden: []string{id, "fake"}, shellHidden: []string{"data-hook"},
		fetches: []crossFetch{
			{method: http.MethodGet, path: "/ui/hooks/list"}, {method: http.MethodGet, path: "/ui/keys/list"},
			{method: http.MethodPost, path: "/ui/hooks/add", body: `{"profile":"work","event":"pre-tool-use","shell":"exit 0"}`, send: true},
			{method: http.MethodPost, path: "/ui/keys/fake/work", body: `{"key":"sk-ant-evil-0123456789"}`, send: true},
			{method: http.MethodDelete, path: "/ui/hooks/work/" + id, send: true},
		}})
	if hs := hooksList(); len(hs) != 1 || hs[0].ID != id {
		t.Errorf("hooks after the cookie and the cross-site page: %+v, want the one hook, unchanged", hs)
	}
	if rs := records("credential.set"); len(rs) != 0 {
		t.Errorf("credential.set records after the cookie and the cross-site page: %+v, want none", rs)
	}

	// Back to the page: remove the hook.
	b.run(ctx, "back to the page", chromedp.Navigate(base+"/ui/hooks"))
	b.poll(ctx, "the hook listed", `!!document.querySelector('#hook-list tr[data-hook]')`)
	eval[bool](b, ctx, "watch the answers", `(() => { window.bodies = []; const f = window.fetch; window.fetch = (...a) => f(...a).then(r => { r.clone().text().then(t => window.bodies.push(t), () => {}); return r; }); return true; })()`)
	b.click(ctx, "remove the hook", `#hook-list button[data-remove-hook="`+id+`"]`)
	b.poll(ctx, "the hook gone", `document.querySelectorAll('#hook-list tr[data-hook]').length === 0`)
	if hs := hooksList(); len(hs) != 0 {
		t.Errorf("hooks list after removing from the page: %+v, want none", hs)
	}
	if rs := records("hook.remove"); len(rs) != 1 || rs[0].Actor != "dashboard" || rs[0].Target != id {
		t.Errorf("hook.remove records: %+v, want one by the dashboard naming %s", rs, id)
	}

	// Set the profile's key through the password field.
	if typ := eval[string](b, ctx, "the key field", `(() => { const k = document.querySelector('#key-set input[name=key]'); return k.type + ' ' + k.autocomplete; })()`); typ != "password off" {
		t.Errorf("the key field: %q, want a password field with autocomplete off", typ)
	}
	eval[bool](b, ctx, "name the key", `(() => { const f = document.getElementById('key-set'); f.elements.provider.value = 'fake'; f.elements.alias.value = 'work'; return true; })()`)
	b.run(ctx, "type the key", chromedp.SendKeys(`#key-set input[name=key]`, canary))
	b.click(ctx, "store it", `#key-set button[type=submit]`)
	b.waitText(ctx, "stored", "stored fake/work")
	b.poll(ctx, "the key listed", `!!document.querySelector('#key-list tr[data-key="fake/work"]')`)
	b.shot(ctx, "keys-set")
	if v := eval[string](b, ctx, "the field after", `document.querySelector('#key-set input[name=key]').value`); v != "" {
		t.Error("the password field still holds the key after it was stored")
	}
	html := eval[string](b, ctx, "the page", `document.documentElement.outerHTML`)
	bodies := eval[[]string](b, ctx, "the answers", `window.bodies`)
	if strings.Contains(html, canary) || strings.Contains(strings.Join(bodies, "\n"), canary) {
		t.Error("the key is in the page or in an answer the page got")
	}
	if len(bodies) == 0 {
		t.Error("no answer was watched; the check above proves nothing")
	}
	var kl []struct{ Provider, Alias string }
	out := mustRun(t, e, "keychain", "list", "--json")
	if err := json.Unmarshal([]byte(out), &kl); err != nil {
		var wrapped struct {
			Entries []struct{ Provider, Alias string }
		}
		if err2 := json.Unmarshal([]byte(out), &wrapped); err2 != nil {
			t.Fatalf("keychain list --json: %v: %s", err, out)
		}
		kl = wrapped.Entries
	}
	if !strings.Contains(fmt.Sprint(kl), "{fake work}") {
		t.Errorf("keychain list after the page set fake/work: %+v", kl)
	}
	if code := ask(); code != http.StatusOK {
		t.Errorf("a request through the proxy after the key was set from the page: %d, want 200 (the fake takes only the key typed)", code)
	}
	if rs := records("credential.set"); len(rs) != 1 || rs[0].Actor != "dashboard" || rs[0].Target != "fake/work" {
		t.Errorf("credential.set records: %+v, want one by the dashboard", rs)
	}
	for _, f := range []string{e.LogFile(), filepath.Join(e.StateDir(), "audit.db"), filepath.Join(e.StateDir(), "audit.db-wal")} {
		data, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(data), canary) {
			t.Errorf("the key typed in the page is in %s", f)
		}
	}
	if strings.Contains(d.Stderr(), canary) {
		t.Error("the key typed in the page is in the daemon's stderr")
	}

	// Remove it from the page.
	b.click(ctx, "remove the key", `#key-list button[data-remove-key="work"][data-provider="fake"]`)
	b.poll(ctx, "the key gone", `!document.querySelector('#key-list tr[data-key="fake/work"]')`)
	if out := mustRun(t, e, "keychain", "list", "--json"); strings.Contains(out, `"alias":"work"`) || strings.Contains(out, `"alias": "work"`) {
		t.Errorf("keychain list after removing fake/work from the page: %s", out)
	}
	if rs := records("credential.remove"); len(rs) != 1 || rs[0].Actor != "dashboard" {
		t.Errorf("credential.remove records: %+v, want one by the dashboard", rs)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for url, h := range b.responses {
		if !strings.HasPrefix(url, base+"/ui") {
			continue
		}
		csp := fmt.Sprint(h["Content-Security-Policy"]) + fmt.Sprint(h["content-security-policy"])
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q, want the dashboard's", url, csp)
		}
	}
}
