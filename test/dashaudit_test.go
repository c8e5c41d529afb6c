package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/ncruces/go-sqlite3"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// tracedWorld is what the dashboard's Audit and accessibility tests
// share: a daemon whose two claude profiles (work, other) use a fake
// provider, with an MCP server (up) and a pre-tool-use hook on work, a
// live session of work (profiles env), and one traced turn of it, as
// TestAuditTraceLinksATurn makes one: a provider answer with a tool_use
// of tracedTool, the agent's check, and the MCP call (which also makes
// the server's tools known).
type tracedWorld struct {
	e         *env
	d         *daemon
	fake      *fakeprovider.Provider
	sess      hkSession
	toolUseID string // the traced turn's
	t         *testing.T
}

// tracedTool is the tool the traced turn calls.
const tracedTool = "mcp__ringlet__up__echo"

// newTracedWorld builds a tracedWorld whose traced turn asks for model
// (JSON); name tags its provider key.
func newTracedWorld(t *testing.T, name, model string) *tracedWorld {
	t.Helper()
	e := newEnv(t)
	key := proxyCanary(name)
	fake := fakeprovider.New(key)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	bin := buildMCPTestServer(t)
	w := &tracedWorld{e: e, d: e.StartDaemon(), fake: fake, t: t}
	mustRun(t, e, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	for _, p := range []string{"work", "other"} {
		if _, stderr, code := e.RunInput(key, "profiles", "create", "claude", p, "--provider", "fake"); code != 0 {
			t.Fatalf("profiles create %s: exit %d, stderr %q", p, code, stderr)
		}
	}
	mustRun(t, e, "mcp", "add", "work", "up", "--no-sandbox", "--", bin)
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--shell", "exit 0")
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &w.sess); err != nil {
		t.Fatal(err)
	}
	cmd, tool, input := "x", tracedTool, `{"text":"hi"}`
	fake.ToolUse.Store(&cmd)
	fake.ToolName.Store(&tool)
	fake.ToolInput.Store(&input)
	answer := w.post(`{"model":` + model + `,"max_tokens":10,"stream":true,"messages":[{"role":"user","content":"echo hi"}]}`)
	if w.toolUseID = toolUseIDRE.FindString(answer); w.toolUseID == "" {
		t.Fatalf("no tool_use in the answer: %s", answer)
	}
	event := `{"session_id":"x","hook_event_name":"PreToolUse","tool_use_id":"` + w.toolUseID + `","tool_name":"` + tool + `","tool_input":` + input + `}`
	if stderr, code := hkClaude(t, e, w.sess, event, ringletBin, "hook", "claude-pre-tool-use"); code != 0 {
		t.Fatalf("hook claude-pre-tool-use: exit %d, stderr %q", code, stderr)
	}
	got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + w.sess.Token}, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "hi"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "hi") {
		t.Fatalf("tools/call up__echo: %q (error %v)", text, isErr)
	}
	return w
}

// post sends body to the session's /v1/messages and returns the answer,
// failing the test unless it is a 200.
func (w *tracedWorld) post(body string) string {
	w.t.Helper()
	code, b := postMessages(w.t, w.sess.BaseURL, w.sess.Token, body)
	if code != 200 {
		w.t.Fatalf("POST /v1/messages: %d %s", code, b)
	}
	return string(b)
}

// evilTool is a tool name an agent's provider answer chose: markup.
const evilTool = `<img src=x onerror="window.pwned=3">mcp__x<script>window.pwned=4</script>`

// TestDashboardAudit drives the dashboard's Audit page in a real browser
// against a real daemon, with a real traced turn (a provider answer with
// a tool_use, the agent's check, the MCP call): the integrity banner, a
// record appearing live at the head, filters by kind and profile, pages
// older and newer, a record expanded, the turn's trace tree, markup from
// the agent (model and tool names) shown as text, the cookie without the
// page key and a page on another port getting nothing, and the banner
// when a record was edited in the database.
func TestDashboardAudit(t *testing.T) {
	requireChromium(t)
	modelJSON, _ := json.Marshal(evilModel)
	// A traced turn asking for a model whose name is markup.
	w := newTracedWorld(t, "dashaudit", string(modelJSON))
	e, d, fake, post := w.e, w.d, w.fake, w.post
	base := "http://" + d.Addr
	name, toolUseID := tracedTool, w.toolUseID
	// A second turn whose tool_use names a tool with markup.
	evilName := evilTool
	fake.ToolName.Store(&evilName)
	post(`{"model":"claude-test","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"again"}]}`)

	var reqs struct {
		Records []struct {
			Seq     int64  `json:"seq"`
			TraceID string `json:"trace_id"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "provider.request", "--json")), &reqs); err != nil || len(reqs.Records) != 2 {
		t.Fatalf("provider.request records: %+v (%v), want 2", reqs, err)
	}
	firstReq, evilReq := reqs.Records[1], reqs.Records[0]
	if firstReq.TraceID == "" || evilReq.TraceID == "" {
		t.Fatalf("provider.request records without a trace: %+v", reqs)
	}

	b := newBrowser(t, base)
	ctx := b.ctx
	b.run(ctx, "log in", chromedp.Navigate(strings.TrimSpace(mustRun(t, e, "ui", "--no-browser"))))
	b.waitText(ctx, "logged in", "Live sessions")
	b.click(ctx, "the Audit link", `nav a[href="/ui/audit"]`)
	b.waitText(ctx, "the integrity status", "Audit log intact")
	b.poll(ctx, "the stream", `document.getElementById('live').textContent === 'live'`)
	b.poll(ctx, "the rows", `document.querySelectorAll('#records tr[data-seq]').length > 5`)
	b.shot(ctx, "audit-head")

	type rowsView struct {
		Seqs     []int64
		Kinds    []string
		Profiles []string
		Markup   int
		Pwned    any
	}
	rows := func(what string) rowsView {
		t.Helper()
		return eval[rowsView](b, ctx, what, `(() => {
			const rs = [...document.querySelectorAll('#records tr[data-seq]')];
			return {Seqs: rs.map(r => +r.dataset.seq), Kinds: rs.map(r => r.cells[2].innerText), Profiles: rs.map(r => r.cells[3].innerText.split('\n')[0]),
				Markup: document.querySelectorAll('#page img, #page script, #page iframe').length, Pwned: window.pwned === undefined ? null : window.pwned};
		})()`)
	}
	head := rows("the head")
	// A new record joins the head without a reload: the stream, not a poll.
	eval[bool](b, ctx, "mark the page", `window.sameLoad = true`)
	post(`{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"live"}]}`)
	b.poll(ctx, "the new record at the head", `+document.querySelector('#records tr[data-seq]').dataset.seq > `+strconv.FormatInt(head.Seqs[0], 10))
	if !eval[bool](b, ctx, "same page", `window.sameLoad === true`) {
		t.Error("the new record appeared by reloading the page; want it from the event stream")
	}

	filter := func(what string, fields map[string]string) rowsView {
		t.Helper()
		eval[bool](b, ctx, what, `(() => { const f = document.getElementById('filters'); for (const el of f.elements) { if (el.name) el.value = ''; } `+func() string {
			var s strings.Builder
			for k, v := range fields {
				fmt.Fprintf(&s, "f.elements[%q].value = %q; ", k, v)
			}
			return s.String()
		}()+` window.loaded = document.getElementById('records').firstElementChild; f.requestSubmit(); return true; })()`)
		b.poll(ctx, what, `document.getElementById('records').firstElementChild !== window.loaded`)
		return rows(what)
	}
	byKind := filter("filter by kind", map[string]string{"kind": "provider.request"})
	if len(byKind.Seqs) != 3 || strings.Join(byKind.Kinds, ",") != "provider.request,provider.request,provider.request" {
		t.Errorf("filtered by kind provider.request: got %v %v, want the 3 provider requests", byKind.Seqs, byKind.Kinds)
	}
	byProfile := filter("filter by profile", map[string]string{"profile": "other"})
	if len(byProfile.Seqs) == 0 {
		t.Error("filtered by profile other: no records, want its creation")
	}
	for _, p := range byProfile.Profiles {
		if p != "other" {
			t.Errorf("filtered by profile other: a row of profile %q", p)
		}
	}
	byText := filter("free text", map[string]string{"q": "UP__ECHO", "kind": "tool.call"})
	if len(byText.Seqs) == 0 {
		t.Error("free text up__echo among tool calls: no records, want the MCP call")
	}
	b.shot(ctx, "audit-filtered")

	// Pages: three records a page, older then newer again.
	page1 := filter("three a page", map[string]string{"limit": "3"})
	if len(page1.Seqs) != 3 {
		t.Fatalf("limit 3: got %v", page1.Seqs)
	}
	eval[bool](b, ctx, "older", `(() => { window.loaded = document.getElementById('records').firstElementChild; document.getElementById('older').click(); return true; })()`)
	b.poll(ctx, "the older page", `document.getElementById('records').firstElementChild !== window.loaded`)
	page2 := rows("the older page")
	if len(page2.Seqs) != 3 || page2.Seqs[0] != page1.Seqs[2]-1 {
		t.Errorf("the older page: got %v after %v, want the 3 records before", page2.Seqs, page1.Seqs)
	}
	eval[bool](b, ctx, "newer", `(() => { window.loaded = document.getElementById('records').firstElementChild; document.getElementById('newer').click(); return true; })()`)
	b.poll(ctx, "the newer page", `document.getElementById('records').firstElementChild !== window.loaded`)
	if back := rows("the newer page"); fmt.Sprint(back.Seqs) != fmt.Sprint(page1.Seqs) {
		t.Errorf("back to the newer page: got %v, want %v", back.Seqs, page1.Seqs)
	}

	// The first request's record, expanded: its fields as text, the
	// agent's model name among them.
	filter("the traced request", map[string]string{"kind": "provider.request", "q": firstReq.TraceID})
	b.click(ctx, "expand the record", `#records tr[data-seq="`+strconv.FormatInt(firstReq.Seq, 10)+`"] summary`)
	fields := eval[string](b, ctx, "the record's fields", `document.querySelector('#records details[open] pre').innerText`)
	for _, want := range []string{`"seq": ` + strconv.FormatInt(firstReq.Seq, 10), `"trace_id": "` + firstReq.TraceID + `"`, `<script>window.pwned=1</script>`, toolUseID} {
		if !strings.Contains(fields, want) {
			t.Errorf("the expanded record: no %q in\n%s", want, fields)
		}
	}
	b.shot(ctx, "audit-expanded")
	// Its trace: the tool_use under the request, the check and the MCP
	// call under the tool_use.
	b.click(ctx, "show the trace", `#records details[open] button[data-trace]`)
	b.waitText(ctx, "the trace", "Trace "+firstReq.TraceID)
	tree := eval[string](b, ctx, "the tree", `(() => {
		const use = [...document.querySelectorAll('#trace li')].find(li => li.firstChild.textContent.startsWith('tool_use '));
		if (!use) return 'no tool_use';
		const kids = [...use.querySelectorAll(':scope > ul > li')].map(li => li.firstChild.textContent);
		return use.parentElement.closest('li').firstChild.textContent + ' > ' + use.firstChild.textContent + ' > ' + kids.join(' | ');
	})()`)
	for _, want := range []string{"provider.request /v1/messages model " + evilModel, "> tool_use " + name + " (" + toolUseID + ")", "tool.call up__echo"} {
		if !strings.Contains(tree, want) {
			t.Errorf("the trace tree: no %q in\n%s", want, tree)
		}
	}
	b.shot(ctx, "audit-trace")
	// The second turn's trace names the tool with markup: text.
	filter("the second request", map[string]string{"q": evilReq.TraceID, "kind": "provider.request"})
	b.click(ctx, "expand it", `#records tr[data-seq] summary`)
	b.click(ctx, "its trace", `#records details[open] button[data-trace]`)
	b.waitText(ctx, "the hostile tool name as text", "tool_use "+evilTool)
	if v := rows("markup check"); v.Markup != 0 || v.Pwned != nil {
		t.Errorf("markup from the audit log ran or became elements: %d img/script/iframe, window.pwned %v", v.Markup, v.Pwned)
	}
	b.shot(ctx, "audit-hostile")

	// The cookie without the page key: the shell, and no record. A page
	// on another port of localhost reads nothing.
	checkOutsiders(t, b, ctx, base, outsiders{page: "/ui/audit", name: "the Audit page",
		data: []dashRoute{
			{http.MethodGet, "/ui/audit/records"}, {http.MethodGet, "/ui/audit/records?kind=provider.request"},
			{http.MethodGet, "/ui/audit/traces/" + firstReq.TraceID}, {http.MethodGet, "/ui/audit/verify"}, {http.MethodPost, "/ui/audit/verify"},
		},
		hidden: []string{firstReq.TraceID, "intact"}, shellHidden: []string{"data-seq"},
		fetches: []crossFetch{
			{method: http.MethodGet, path: "/ui/audit/records"}, {method: http.MethodGet, path: "/ui/audit/verify"},
			{method: http.MethodGet, path: "/ui/audit/traces/" + firstReq.TraceID},
		}})

	// A record edited in the database: the whole-chain check says so,
	// prominently, and it stays said.
	b.run(ctx, "back to the Audit page", chromedp.Navigate(base+"/ui/audit"))
	b.waitText(ctx, "intact before the edit", "Audit log intact")
	conn, err := sqlite3.Open(filepath.Join(e.StateDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`UPDATE records SET target = 'GET /api/forged' WHERE seq = 3`); err != nil || conn.Changes() != 1 {
		t.Fatalf("edit record 3: %v (%d changed)", err, conn.Changes())
	}
	conn.Close()
	b.click(ctx, "check the whole chain", `#verify-all`)
	b.waitText(ctx, "the banner", "The audit log is not intact.")
	alarm := eval[string](b, ctx, "the banner", `(document.querySelector('#verify [role=alert]') || {innerText: ''}).innerText`)
	if !strings.Contains(alarm, "record 3 was edited") || !strings.Contains(alarm, "first bad record: 3") {
		t.Errorf("the banner: got %q, want it to name record 3 as edited", alarm)
	}
	b.shot(ctx, "audit-tampered")
	b.run(ctx, "reload", chromedp.Reload())
	b.waitText(ctx, "the banner after a reload", "The audit log is not intact.")

	// Every answer to the browser had the dashboard's headers.
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
