package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// evilDesc is a tool description an MCP server chose: markup.
const evilDesc = `Say alpha.<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`

// TestDashboardMCP drives the dashboard's MCP page in a real browser
// against a real daemon with real stdio MCP servers (pinserver.py, one in
// the sandbox, one not): their state and tools, a tool disabled from the
// page ('mcp tools' says so, the mcp.tools record says by: dashboard),
// a changed tool's diff shown live and approved from the page (the
// mcp.approve record says by: dashboard), markup in a description and in
// a schema shown as text, and the cookie without the page key and a page
// on another port that can neither read nor change anything.
func TestDashboardMCP(t *testing.T) {
	requireChromium(t)
	e, d := newMCPEnv(t)
	base := "http://" + d.Addr
	dir := filepath.Join(e.Root, "pinsrv")
	alpha := map[string]any{"name": "alpha", "description": evilDesc, "inputSchema": map[string]any{"type": "object"}}
	script, toolsFile := pinServer(t, dir, []map[string]any{alpha, pinBeta})
	mustRun(t, e, "mcp", "add", "work", "pin", "--rw", dir, "--", script, toolsFile)
	plainDir := filepath.Join(e.Root, "plainsrv")
	plainScript, plainTools := pinServer(t, plainDir, []map[string]any{pinBeta})
	mustRun(t, e, "mcp", "add", "other", "plain", "--no-sandbox", "--", plainScript, plainTools)
	// A server with prompts, resources and a resource template.
	mustRun(t, e, "mcp", "add", "other", "res", "--no-sandbox", "--", buildMCPTestServer(t), "-resources", "1")
	tools := func(profile, server string) api.MCPTools {
		t.Helper()
		var out api.MCPTools
		if err := json.Unmarshal([]byte(mustRun(t, e, "mcp", "tools", profile, server, "--json")), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	toolState := func(ts api.MCPTools, name string) (state string, enabled bool) {
		for _, tl := range ts.Tools {
			if tl.Name == name {
				return tl.State, tl.Enabled
			}
		}
		return "absent", false
	}
	// Started (and pinned: a first start).
	if st := tools("work", "pin"); st.State != "running" || len(st.Tools) != 4 {
		t.Fatalf("mcp tools work pin: %+v", st)
	}
	tools("other", "plain")
	tools("other", "res")

	b := newBrowser(t, base)
	ctx := b.ctx
	b.watchComplaints(t)
	b.run(ctx, "log in", chromedp.Navigate(strings.TrimSpace(mustRun(t, e, "ui", "--no-browser"))))
	b.waitText(ctx, "logged in", "Live sessions")
	b.click(ctx, "the MCP link", `nav a[href="/ui/mcp"]`)
	b.poll(ctx, "the stream", `document.getElementById('live').textContent === 'live'`)
	b.poll(ctx, "the servers", `document.querySelectorAll('#servers article.mcp-server').length === 3`)
	b.shot(ctx, "mcp")

	type serverView struct {
		State, Sandbox, Text string
		Tools                []string
		States               []string
		Pending              bool
		Diff                 string
	}
	server := func(what, profile, name string) serverView {
		t.Helper()
		return eval[serverView](b, ctx, what, fmt.Sprintf(`(() => {
			const a = document.querySelector('section[data-profile=%q] article[data-server=%q]');
			if (!a) return {State: 'absent'};
			const rows = [...a.querySelectorAll('table.tools tbody tr[data-tool]')];
			const p = a.querySelector('.pending');
			return {State: a.querySelector('.state').innerText, Sandbox: a.querySelector('h3').innerText, Text: a.innerText,
				Tools: rows.map(r => r.dataset.tool), States: rows.map(r => r.querySelector('.tool-state').innerText.split('\n')[0]),
				Pending: !!p, Diff: p ? p.innerText : ''};
		})()`, profile, name))
	}
	markup := func(what string) {
		t.Helper()
		if v := eval[[]any](b, ctx, what, `[document.querySelectorAll('#page img, #page script, #page iframe').length, window.pwned === undefined ? null : window.pwned]`); v[0] != float64(0) || v[1] != nil {
			t.Errorf("%s: markup from an MCP server became elements or ran: %v", what, v)
		}
	}
	pin := server("the pin server", "work", "pin")
	if pin.State != "running" || !strings.Contains(pin.Sandbox, "sandboxed") || strings.Contains(pin.Sandbox, "not sandboxed") ||
		!slices.Equal(pin.Tools, []string{"alpha", "beta", "relist", "write"}) || !strings.Contains(pin.Text, evilDesc) || !strings.Contains(pin.Text, script) {
		t.Errorf("the pin server: got %+v, want it running, sandboxed, its four tools, the description as text", pin)
	}
	if plain := server("the plain server", "other", "plain"); !strings.Contains(plain.Sandbox, "not sandboxed") || !slices.Contains(plain.Tools, "beta") {
		t.Errorf("the plain server: got %+v, want it not sandboxed with beta", plain)
	}
	markup("the listing")

	// Disable beta from the page: 'mcp tools' says so, and the record
	// says the dashboard did it. The row follows without a reload.
	eval[bool](b, ctx, "mark the page", `window.sameLoad = true`)
	b.click(ctx, "disable beta", `section[data-profile="work"] article[data-server="pin"] tr[data-tool="beta"] button.toggle`)
	b.poll(ctx, "beta disabled", `(document.querySelector('section[data-profile="work"] article[data-server="pin"] tr[data-tool="beta"] .tool-state') || {}).innerText.startsWith('disabled')`)
	if st, on := toolState(tools("work", "pin"), "beta"); st != mcpserver.ToolDisabled || on {
		t.Errorf("mcp tools after Disable: beta %s (enabled %v), want disabled", st, on)
	}
	if st, on := toolState(tools("other", "plain"), "beta"); st != mcpserver.ToolVisible || !on {
		t.Errorf("the other profile's beta: %s (enabled %v), want untouched", st, on)
	}
	recs := auditRecords(t, e, "mcp.tools")
	if len(recs) != 1 || recs[0].Profile != "work" || recs[0].Target != "pin" || recs[0].Decision != "allow" || recs[0].Detail["by"] != "dashboard" ||
		fmt.Sprint(recs[0].Detail["disable"]) != "[beta]" {
		t.Errorf("the mcp.tools record: got %+v, want work/pin disable [beta] by dashboard", recs)
	}
	b.shot(ctx, "mcp-disabled")

	// beta changes (markup in its description and its schema) and delta
	// appears: the page shows the diff when the change is recorded.
	beta2 := map[string]any{"name": "beta", "description": "Say beta.</pre><script>window.pwned=6</script>",
		"inputSchema": map[string]any{"type": "object", "properties": map[string]any{"<img src=x onerror=window.pwned=7>": map[string]any{"type": "string"}}}}
	delta := map[string]any{"name": "delta", "description": "Delete everything.", "inputSchema": map[string]any{"type": "object"}}
	writeTools(t, toolsFile, []map[string]any{alpha, beta2, delta})
	mustRun(t, e, "mcp", "set", "work", "pin", "--env", "REV=2") // restarts it
	tools("work", "pin")                                         // started again: the change is found and recorded
	b.poll(ctx, "the pending changes", `!!document.querySelector('section[data-profile="work"] article[data-server="pin"] .pending button.approve')`)
	pin = server("the changed server", "work", "pin")
	for _, want := range []string{"tool beta changed", "-Say beta.", "+Say beta.</pre><script>window.pwned=6</script>", `+    "\u003cimg src=x onerror=window.pwned=7\u003e": {`, "tool delta added", "+description: Delete everything."} {
		if !strings.Contains(pin.Diff, want) {
			t.Errorf("the diff on the page: no %q in\n%s", want, pin.Diff)
		}
	}
	if !eval[bool](b, ctx, "same page", `window.sameLoad === true`) {
		t.Error("the page was reloaded; want changes from the event stream")
	}
	markup("the diff")
	b.shot(ctx, "mcp-changed")
	if st, _ := toolState(tools("work", "pin"), "delta"); st != mcpserver.ToolChanged {
		t.Fatalf("delta before approval: %s, want changed (hidden)", st)
	}
	b.click(ctx, "approve", `section[data-profile="work"] article[data-server="pin"] .pending button.approve`)
	b.poll(ctx, "approved", `!document.querySelector('section[data-profile="work"] article[data-server="pin"] .pending')`)
	after := tools("work", "pin")
	if st, _ := toolState(after, "delta"); st != mcpserver.ToolVisible {
		t.Errorf("delta after Approve: %s, want visible", st)
	}
	if st, _ := toolState(after, "beta"); st != mcpserver.ToolDisabled {
		t.Errorf("beta after Approve: %s, want still disabled", st)
	}
	appr := auditRecords(t, e, "mcp.approve")
	if len(appr) != 1 || appr[0].Detail["by"] != "dashboard" || appr[0].Decision != "allow" || !strings.Contains(mustJSON(appr[0].Detail["approved"]), "delta") {
		t.Errorf("the mcp.approve record: got %+v, want delta approved by dashboard", appr)
	}
	markup("after approval")
	b.shot(ctx, "mcp-approved")

	// Enable takes the same path back.
	b.click(ctx, "enable beta", `section[data-profile="work"] article[data-server="pin"] tr[data-tool="beta"] button.toggle[data-enable="true"]`)
	b.poll(ctx, "beta enabled", `(document.querySelector('section[data-profile="work"] article[data-server="pin"] tr[data-tool="beta"] .tool-state') || {}).innerText.startsWith('visible')`)
	if st, on := toolState(tools("work", "pin"), "beta"); st != mcpserver.ToolVisible || !on {
		t.Errorf("mcp tools after Enable: beta %s (enabled %v), want visible", st, on)
	}
	if recs := auditRecords(t, e, "mcp.tools"); len(recs) != 2 || recs[0].Detail["by"] != "dashboard" || fmt.Sprint(recs[0].Detail["enable"]) != "[beta]" {
		t.Errorf("the mcp.tools records after Enable: got %+v, want enable [beta] by dashboard", recs)
	}

	// A prompt and a resource template, disabled from the page as
	// 'mcp tools --disable-prompt/--disable-resource' would.
	itemState := func(kind, name string) (string, bool) {
		for _, it := range tools("other", "res").Items {
			if it.Kind == kind && it.Name == name {
				return it.State, it.Enabled
			}
		}
		return "absent", false
	}
	for _, it := range []struct{ kind, name string }{{"prompt", "greet"}, {"template", "test://env/{name}"}} {
		if st, on := itemState(it.kind, it.name); st != mcpserver.ToolVisible || !on {
			t.Fatalf("%s %s before: %s (enabled %v), want visible", it.kind, it.name, st, on)
		}
		sel := fmt.Sprintf(`section[data-profile="other"] article[data-server="res"] tr[data-kind=%q][data-item=%q]`, it.kind, it.name)
		b.click(ctx, "disable "+it.name, sel+` button.toggle`)
		b.poll(ctx, it.name+" disabled", `(document.querySelector('`+sel+` .tool-state') || {innerText: ''}).innerText.startsWith('disabled')`)
		if st, on := itemState(it.kind, it.name); st != mcpserver.ToolDisabled || on {
			t.Errorf("mcp tools after disabling %s %s: %s (enabled %v), want disabled", it.kind, it.name, st, on)
		}
	}
	if recs := auditRecords(t, e, "mcp.tools"); len(recs) != 4 || recs[1].Detail["by"] != "dashboard" || fmt.Sprint(recs[1].Detail["disable_prompts"]) != "[greet]" ||
		fmt.Sprint(recs[0].Detail["disable_resources"]) != `[test://env/\{name\}]` && fmt.Sprint(recs[0].Detail["disable_resources"]) != "[test://env/{name}]" {
		t.Errorf("the mcp.tools records of the prompt and template: got %+v", recs[:min(2, len(recs))])
	}
	b.shot(ctx, "mcp-items")

	// No CSP violation, no console error, on the page the whole time.
	b.checkComplaints(t, "MCP")

	// An approval of a diff other than the server's now is refused,
	// with the page key and from the page itself.
	eval[bool](b, ctx, "a stale approval", `(window.ringlet.post('/ui/mcp/servers/work/pin/approve?observed=sha256:stale').then(r => r.text().then(t => { window.stale = [r.status, t]; })), true)`)
	b.poll(ctx, "its answer", `window.stale !== undefined`)
	stale := eval[[]any](b, ctx, "its answer", `window.stale`)
	if len(stale) != 2 || stale[0] != float64(http.StatusConflict) || !strings.Contains(fmt.Sprint(stale[1]), "changed again since its diff was shown") {
		t.Errorf("approve with a stale diff: got %v, want 409 saying it changed again", stale)
	}
	if n := len(auditRecords(t, e, "mcp.approve")); n != 1 {
		t.Errorf("mcp.approve records after the stale approval: %d, want 1", n)
	}

	// The cookie without the page key: the shell, nothing else, and no
	// change. A page on another port of localhost: nothing read, nothing
	// changed.
	checkOutsiders(t, b, ctx, base, outsiders{page: "/ui/mcp", name: "the MCP page",
		data: []dashRoute{
			{http.MethodGet, "/ui/mcp/servers"},
			{http.MethodPost, "/ui/mcp/servers/work/pin/tools?tool=alpha&enable=false"},
			{http.MethodPost, "/ui/mcp/servers/work/pin/approve?observed=x"},
		},
		hidden: []string{"alpha"}, shellHidden: []string{"data-tool"},
		fetches: []crossFetch{
			{method: http.MethodGet, path: "/ui/mcp/servers"},
			{method: http.MethodPost, path: "/ui/mcp/servers/work/pin/tools?tool=alpha&enable=false", send: true},
			{method: http.MethodPost, path: "/ui/mcp/servers/other/plain/tools?tool=beta&enable=false"},
		}})
	if st, on := toolState(tools("work", "pin"), "alpha"); st != mcpserver.ToolVisible || !on {
		t.Errorf("alpha after the cross-site page: %s (enabled %v), want untouched", st, on)
	}
	if st, on := toolState(tools("other", "plain"), "beta"); st != mcpserver.ToolVisible || !on {
		t.Errorf("plain's beta after the cross-site page: %s (enabled %v), want untouched", st, on)
	}
	if n := len(auditRecords(t, e, "mcp.tools")); n != 4 {
		t.Errorf("mcp.tools records after the cookie replays and the cross-site page: %d, want the four changes the page made", n)
	}

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
