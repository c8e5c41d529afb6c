//go:build linux

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// axeTags are the rule sets the dashboard is held to: WCAG 2.0 and 2.1,
// levels A and AA (labels, names, roles, landmarks, colour contrast...).
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"}

// axeSource is axe-core's script, from test/node (pinned in its
// package-lock.json; .ci/run installs it with npm ci). Missing, the test
// skips, and fails in CI.
func axeSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("axe-core: %v (npm ci --prefix test/node installs it)", err)
		}
		t.Skipf("skipping the dashboard's accessibility checks: %v; run 'npm ci --prefix test/node'", err)
	}
	return string(src)
}

// a11yWorld is a daemon with something on every dashboard page: two
// profiles with keys, a hook, an MCP server whose tools are known, a
// traced turn (spend, audit records, a trace) and a live session.
type a11yWorld struct {
	e       *env
	base    string
	session string
}

func newA11yWorld(t *testing.T) *a11yWorld {
	t.Helper()
	w := newTracedWorld(t, "a11y", `"claude-test"`)
	return &a11yWorld{e: w.e, base: "http://" + w.d.Addr, session: w.sess.ID}
}

// a11yPage is a dashboard page in the state a user sees it: ready is true
// once its data is in.
type a11yPage struct {
	name, path, ready string
}

func (w *a11yWorld) pages() []a11yPage {
	return []a11yPage{
		{"now", "/ui/", `document.querySelectorAll('#sessions tr[data-session]').length > 0 && document.getElementById('live').textContent === 'live'`},
		{"spend", "/ui/spend", `document.querySelectorAll('#table-profile th[scope=row]').length > 0 && document.querySelectorAll('#plot-profile canvas').length > 0`},
		{"audit", "/ui/audit", `document.querySelectorAll('#records tr[data-seq]').length > 5 && !!document.querySelector('#verify .ok')`},
		{"mcp", "/ui/mcp", `document.querySelectorAll('#servers tr[data-tool]').length > 0`},
		{"hooks", "/ui/hooks", `document.querySelectorAll('#hook-list tr[data-hook]').length > 0 && document.querySelectorAll('#key-list tr[data-key]').length > 0`},
		{"terminal", "/ui/terminal/" + w.session, `document.getElementById('terminal-state').textContent !== 'connecting…' && !!document.querySelector('#terminal textarea')`},
	}
}

// axeResult is what one axe run found.
type axeResult struct {
	Violations, Incomplete []axeViolation
	Passes                 int
}

// axeViolation is one rule axe found broken, with the elements that
// break it.
type axeViolation struct {
	ID, Impact, Help, HelpURL string
	Nodes                     []string
}

// checkAxe runs axe-core's WCAG 2.0/2.1 A and AA rules on ctx's page, in
// the light and the dark colour scheme, and fails the test for each
// violation and each check axe could not decide. axe goes in through the DevTools protocol, which the page's
// CSP does not govern: the product neither ships nor allows it.
func (b *browser) checkAxe(t *testing.T, ctx context.Context, src, state string) {
	t.Helper()
	if !eval[bool](b, ctx, "axe present", `typeof window.axe === 'object'`) {
		tctx, cancel := context.WithTimeout(ctx, browserTimeout)
		_, err := chromedp.Run(tctx, chromedp.Evaluate[bool](src+"\n;typeof window.axe === 'object'"))
		cancel()
		if err != nil {
			b.fail(ctx, "inject axe-core", err)
		}
	}
	tags, _ := json.Marshal(axeTags)
	for _, scheme := range []string{"light", "dark"} {
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		}); err != nil {
			b.fail(ctx, "emulate the "+scheme+" colour scheme", err)
		}
		tctx, cancel := context.WithTimeout(ctx, browserTimeout)
		res, err := chromedp.Run(tctx, chromedp.Evaluate[axeResult](`(() => {
			const list = vs => vs.map(v => ({ID: v.id, Impact: v.impact || '', Help: v.help, HelpURL: v.helpUrl,
				Nodes: v.nodes.map(n => n.target.join(' ') + ' | ' + (n.failureSummary || '').replace(/\s+/g, ' '))}));
			return axe.run(document, {runOnly: {type: 'tag', values: `+string(tags)+`}}).then(r =>
				({Violations: list(r.violations), Incomplete: list(r.incomplete), Passes: r.passes.length}));
		})()`, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			b.fail(ctx, "run axe-core", err)
		}
		// axe that checked nothing would pass anything.
		if res.Passes < 10 {
			t.Errorf("%s (%s scheme): axe passed only %d rules; did it run?", state, scheme, res.Passes)
		}
		vs := res.Violations
		for _, v := range vs {
			t.Errorf("%s (%s scheme): axe %s (%s): %s; %s\n\t%s", state, scheme, v.ID, v.Impact, v.Help, v.HelpURL, strings.Join(v.Nodes, "\n\t"))
		}
		// What axe could not decide (a colour over an image, an
		// attribute it cannot judge) is failed too: a person must look,
		// and the page be made decidable.
		for _, v := range res.Incomplete {
			t.Errorf("%s (%s scheme): axe could not decide %s (%s): %s; %s\n\t%s", state, scheme, v.ID, v.Impact, v.Help, v.HelpURL, strings.Join(v.Nodes, "\n\t"))
		}
		if len(vs) != 0 {
			b.shot(ctx, "a11y-"+state+"-"+scheme)
		}
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{}}); err != nil {
		b.fail(ctx, "reset the colour scheme", err)
	}
}

// press sends one key to ctx's page as the keyboard does: down, then up.
func (b *browser) press(ctx context.Context, key string, code int64) {
	b.t.Helper()
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeRawKeyDown, Key: key, Code: key, WindowsVirtualKeyCode: code, NativeVirtualKeyCode: code}
	switch key {
	case "Enter":
		down.Type, down.Text, down.UnmodifiedText = input.DispatchKeyEventTypeKeyDown, "\r", "\r"
	case " ":
		down.Type, down.Code, down.Text, down.UnmodifiedText = input.DispatchKeyEventTypeKeyDown, "Space", " ", " "
	}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	for _, p := range []input.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, p); err != nil {
			b.fail(ctx, "press "+key, err)
		}
	}
}

// focusStop is where one Tab took the focus, and how it shows.
type focusStop struct {
	Index                     int // in the page's list of controls; -1: not one of them
	What                      string
	Visible                   bool // :focus-visible matches
	Outline, Width, BoxShadow string
}

// focusJS describes the focused element: its index among the marked
// controls and its focus indicator.
const focusJS = `(() => {
	const e = document.activeElement;
	if (!e || e === document.body) return {Index: -1, What: 'body'};
	// xterm.js takes keys in a textarea off screen: its ring is the terminal's.
	const s = getComputedStyle(e.closest('.xterm') ? e.closest('#terminal') : e);
	return {Index: e.dataset.a11yIndex === undefined ? -1 : +e.dataset.a11yIndex,
		What: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' + (e.getAttribute('aria-label') || e.innerText || e.name || '').trim().slice(0, 40) + '"',
		Visible: e.matches(':focus-visible'), Outline: s.outlineStyle, Width: s.outlineWidth, BoxShadow: s.boxShadow};
})()`

// markControls numbers the page's visible, enabled interactive controls
// in document order (the order Tab must follow: no positive tabindex) and
// returns their descriptions.
const markControls = `(() => {
	const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
	const all = [...document.querySelectorAll(sel)].filter(e => !e.disabled && e.checkVisibility({visibilityProperty: true}));
	all.forEach((e, i) => { e.dataset.a11yIndex = i; });
	return all.map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' + (e.getAttribute('aria-label') || e.innerText || e.name || '').trim().slice(0, 40) + '"');
})()`

// checkTabOrder tabs through ctx's page from the top: every control is
// reached once, in document order, each with a visible focus indicator
// (an outline of at least 2px, or a box-shadow). stopAt (a selector, or
// "") ends the walk on a control that keeps Tab for itself, as a
// terminal does.
func (b *browser) checkTabOrder(t *testing.T, ctx context.Context, name, stopAt string) {
	t.Helper()
	controls := eval[[]string](b, ctx, "the controls", markControls)
	if len(controls) == 0 {
		t.Errorf("%s: no interactive control found", name)
		return
	}
	if f := eval[focusStop](b, ctx, "the focus at the start", focusJS); f.What != "body" {
		t.Fatalf("%s: the walk must start from a freshly loaded page; the focus is on %s", name, f.What)
	}
	var reached []int
	for range len(controls) + 2 {
		b.press(ctx, "Tab", 9)
		f := eval[focusStop](b, ctx, "the focus", focusJS)
		if f.Index < 0 {
			if len(reached) >= len(controls) {
				break // past the last control: the browser's own UI
			}
			t.Errorf("%s: Tab reached %s, which is not among the page's controls", name, f.What)
			continue
		}
		reached = append(reached, f.Index)
		width, _ := strconv.ParseFloat(strings.TrimSuffix(f.Width, "px"), 64) // not a length: 0, not shown
		indicator := (f.Outline != "none" && width >= 2) || (f.BoxShadow != "" && f.BoxShadow != "none")
		if !f.Visible || !indicator {
			t.Errorf("%s: focus on %s is not visible: :focus-visible %v, outline %s %s, box-shadow %s", name, f.What, f.Visible, f.Outline, f.Width, f.BoxShadow)
		}
		if stopAt != "" && eval[bool](b, ctx, "the stop", `document.activeElement.matches(`+jsString(stopAt)+`)`) {
			controls = controls[:f.Index+1]
			break
		}
		if f.Index == len(controls)-1 {
			break
		}
	}
	want := make([]int, len(controls))
	for i := range want {
		want[i] = i
	}
	if fmt.Sprint(reached) != fmt.Sprint(want) {
		t.Errorf("%s: Tab order: got %v, want %v over the controls:\n\t%s", name, reached, want, strings.Join(controls, "\n\t"))
	}
}

// tabTo presses Tab until the focused element matches selector (within
// as many presses as the page has controls).
func (b *browser) tabTo(ctx context.Context, what, selector string) {
	b.t.Helper()
	n := eval[int](b, ctx, "count the controls", `document.querySelectorAll('a[href], button, input, select, textarea, summary').length + 2`)
	for range n {
		if eval[bool](b, ctx, what, `!!document.activeElement && document.activeElement.matches(`+jsString(selector)+`)`) {
			return
		}
		b.press(ctx, "Tab", 9)
	}
	b.fail(ctx, what, fmt.Errorf("Tab never reached %s", selector))
}

func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// TestDashboardAccessibility holds every dashboard page, with real data
// in it, to WCAG 2.0/2.1 A and AA as axe-core checks them (names and
// labels, roles, landmarks and headings, colour contrast in both colour
// schemes), and walks each page with the keyboard alone: Tab reaches
// every control in document order with a visible focus indicator, an
// audit record opens and its trace shows from the keyboard, and a
// session is killed with Enter.
func TestDashboardAccessibility(t *testing.T) {
	requireChromium(t)
	src := axeSource(t)
	w := newA11yWorld(t)
	b := newBrowser(t, w.base)
	ctx := b.ctx

	// The login page a used or missing link leaves a user on, and the
	// page of a browser that is not signed in.
	other := b.fresh(w.base)
	b.run(other, "the login page without a code", chromedp.Navigate(w.base+"/ui/login"))
	b.waitText(other, "its status", "No login code")
	b.checkAxe(t, other, src, "login")
	b.run(other, "the dashboard signed out", chromedp.Navigate(w.base+"/ui/"))
	b.waitText(other, "the sign-in page", "ringlet ui")
	b.checkAxe(t, other, src, "signed-out")

	b.run(ctx, "log in", chromedp.Navigate(strings.TrimSpace(mustRun(t, w.e, "ui", "--no-browser"))))
	b.waitText(ctx, "logged in", "Live sessions")
	for _, p := range w.pages() {
		b.run(ctx, "open "+p.name, chromedp.Navigate(w.base+p.path))
		b.poll(ctx, p.name+" with its data", p.ready)
		b.shot(ctx, "a11y-"+p.name)
		b.checkAxe(t, ctx, src, p.name)
		stop := ""
		if p.name == "terminal" {
			// A terminal takes Tab for the program in it.
			stop = "#terminal textarea"
		}
		b.checkTabOrder(t, ctx, p.name, stop)
		if p.name == "terminal" {
			// No keyboard trap (WCAG 2.1.2): Tab stays with the program,
			// Esc then Tab moves the focus out of the terminal.
			inTerminal := `!!document.activeElement && !!document.activeElement.closest('#terminal')`
			b.press(ctx, "Tab", 9)
			if !eval[bool](b, ctx, "the focus after Tab", inTerminal) {
				t.Errorf("terminal: Tab left the terminal; want it sent to the program")
			}
			b.press(ctx, "Escape", 27)
			b.press(ctx, "Tab", 9)
			b.poll(ctx, "Esc then Tab leaves the terminal", "!("+inTerminal+")")
		}
	}

	// Audit from the keyboard: open a record, show its trace, close it.
	b.run(ctx, "open audit", chromedp.Navigate(w.base+"/ui/audit"))
	b.poll(ctx, "the records", `document.querySelectorAll('#records tr[data-seq] button.trace').length > 0`)
	seq := eval[string](b, ctx, "a traced record", `document.querySelector('#records button.trace').closest('tr').dataset.seq`)
	b.tabTo(ctx, "its summary", `#records tr[data-seq="`+seq+`"] summary`)
	b.press(ctx, "Enter", 13)
	b.poll(ctx, "the record opens with Enter", `document.querySelector('#records tr[data-seq="`+seq+`"] details').open`)
	b.tabTo(ctx, "its trace button", `#records tr[data-seq="`+seq+`"] button.trace`)
	b.press(ctx, " ", 32)
	b.poll(ctx, "the trace shows with Space", `!document.getElementById('trace').hidden && document.querySelectorAll('#trace .tree li').length > 0`)
	b.poll(ctx, "the focus goes to the trace", `document.activeElement && document.activeElement.id === 'trace-close'`)
	b.checkAxe(t, ctx, src, "audit-expanded-trace")
	b.shot(ctx, "a11y-audit-trace")
	b.press(ctx, "Enter", 13)
	b.poll(ctx, "the trace closes with Enter", `document.getElementById('trace').hidden`)

	// Now from the keyboard: kill the session with Enter; the page says
	// so, and the focus is not dropped on the page's body.
	b.run(ctx, "open now", chromedp.Navigate(w.base+"/ui/"))
	b.poll(ctx, "the session", `!!document.querySelector('#sessions tr[data-session] button.kill') && document.getElementById('live').textContent === 'live'`)
	// A refresh is in flight when the kill's answer comes, its page still
	// holding the row (its answer held here until the kill is done): the
	// focus must not land on the dead session's Kill button, which the
	// next Enter would press; that old page is dropped for the one asked
	// after the kill.
	eval[bool](b, ctx, "hold the answer of a refresh", `(() => {
		window.focusLog = [];
		document.addEventListener('focusin', e => window.focusLog.push(e.target.matches('button.kill') ? 'a Kill button' : (e.target.id || e.target.tagName)));
		window.released = new Promise(r => { window.release = r; });
		const f = window.fetch;
		let held = false;
		window.fetch = function (u) {
			const p = f.apply(this, arguments);
			if (held || !String(u).includes('/ui/now/sessions')) return p;
			held = true;
			return p.then(r => { window.heldAnswer = true; return window.released.then(() => r); });
		};
		document.getElementById('now-filters').requestSubmit();
		return true;
	})()`)
	b.poll(ctx, "the held refresh answered", `window.heldAnswer === true`)
	b.tabTo(ctx, "the Kill button", `#sessions button.kill`)
	b.press(ctx, "Enter", 13)
	b.poll(ctx, "the kill is announced", `[...document.querySelectorAll('[role=status]')].some(e => e.textContent.includes('killed'))`)
	eval[bool](b, ctx, "release the old page", `(() => { window.focusLog = []; window.release(); return true; })()`)
	b.waitText(ctx, "the row is gone", "No live sessions")
	// The focus goes to the heading: not lost on the body, and not on
	// another session's Kill button, which a second Enter would press.
	b.poll(ctx, "the focus on the heading after the kill", `document.activeElement && document.activeElement.id === 'now-h'`)
	if log := eval[[]string](b, ctx, "where the focus went after the kill", `window.focusLog`); slices.Contains(log, "a Kill button") {
		t.Errorf("after the kill the focus went to %v; want never a Kill button", log)
	}
	b.checkAxe(t, ctx, src, "now-after-kill")
	b.shot(ctx, "a11y-now-after-kill")
	if id := w.e.sessionIDOf(t, "work"); id != "" {
		t.Errorf("session %s still live after Enter on Kill", id)
	}
}

// sessionIDOf is the one live session of alias ("" when none).
func (e *env) sessionIDOf(t *testing.T, alias string) string {
	t.Helper()
	var ss []struct{ ID, Profile string }
	if err := json.Unmarshal([]byte(mustRun(t, e, "sessions", "list", "--json")), &ss); err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Profile == alias {
			return s.ID
		}
	}
	return ""
}
