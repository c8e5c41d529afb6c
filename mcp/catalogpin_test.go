package mcp

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// TestCatalogPinned: a server's prompts and resources are pinned with
// its tools: a prompt described anew and a resource added while it runs
// (list_changed) are hidden, and a get or read of them refused (audited)
// until approved; the diff names their kind; approving one by name
// leaves the other hidden.
func TestCatalogPinned(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var refusedAccess []string
	w := newWorld(t)
	w.callers["a1"].RefusedAccess = func(_ context.Context, a Access, reason string) {
		mu.Lock()
		refusedAccess = append(refusedAccess, a.Kind+" "+a.Name+": "+reason)
		mu.Unlock()
	}
	w.addServer("a", "one", upstreamCommand(t, "-resources", "1"))
	c := w.ready(t, "a1")
	if got := c.resourceURIs("prompts/list", "prompts", "name"); !slices.Contains(got, "one__greet") {
		t.Fatalf("prompts at first: got %q, want one__greet", got)
	}
	if r := c.tool("one__set_prompt", map[string]any{"desc": "Now rewrites the conversation."}); r.IsError {
		t.Fatalf("set_prompt: %s", r.text())
	}
	if r := c.tool("one__add_doc", map[string]any{}); r.IsError {
		t.Fatalf("add_doc: %s", r.text())
	}
	waitFor(t, time.Minute, "both changes seen", func() bool {
		_, diff, err := w.srv.Pending(t.Context(), "a", "one")
		return err == nil && len(diff.Items) == 2
	})
	if got := c.resourceURIs("prompts/list", "prompts", "name"); slices.Contains(got, "one__greet") {
		t.Errorf("prompts: got %q, want the changed one hidden", got)
	}
	if got, want := c.resourceURIs("resources/list", "resources", "uri"), []string{"one+test://doc/1"}; !slices.Equal(got, want) {
		t.Errorf("resources: got %q, want %q (the added one hidden)", got, want)
	}
	m := c.call("prompts/get", map[string]any{"name": "one__greet", "arguments": map[string]any{"name": "x"}})
	if m.Error == nil || !strings.Contains(m.Error.Message, "changed since it was approved") || !strings.Contains(m.Error.Message, "ringlet mcp approve a one") {
		t.Errorf("get of the changed prompt: got %+v, want refused with how to approve", m)
	}
	if _, _, m := c.read("one+test://doc/2"); m.Error == nil || !strings.Contains(m.Error.Message, "new since the server was approved") {
		t.Errorf("read of the added resource: got %+v, want refused", m.Error)
	}
	if _, done := w.accesses(); len(done) != 0 {
		t.Errorf("a refused get or read reached the policy: %+v", done)
	}
	mu.Lock()
	if len(refusedAccess) != 2 {
		t.Errorf("refusals audited: got %q, want the get and the read", refusedAccess)
	}
	mu.Unlock()
	if got := w.status("a", "one").PendingItems; len(got) != 2 || got[0] != (mcpserver.PendingItem{Kind: mcpserver.KindPrompt, Name: "greet", Change: mcpserver.ChangeChanged}) {
		t.Errorf("mcp list: got pending %+v, want the prompt and the resource", got)
	}
	// Tools are untouched by a change of prompts.
	if !slices.Contains(c.toolNames(), "one__echo") {
		t.Error("a tool of the server was hidden by a prompt's change")
	}

	obs, diff, err := w.srv.Pending(t.Context(), "a", "one")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, i := range diff.Items {
		kinds = append(kinds, i.Kind+" "+i.Change+" "+i.Name+" "+strings.Join(i.Fields, ","))
	}
	if want := []string{"prompt changed greet description", "resource added test://doc/2 "}; !slices.Equal(kinds, want) {
		t.Fatalf("diff items: got %q, want %q", kinds, want)
	}
	if !strings.Contains(diff.Items[0].Diff, "+Now rewrites the conversation.") {
		t.Errorf("prompt diff: got %q, want the new description", diff.Items[0].Diff)
	}
	if err := diff.CheckApprove([]string{"prompt:nope"}); err == nil {
		t.Error("approving a prompt with no change: got nil, want an error")
	}
	if err := w.srv.Approve("a", "one", obs, []string{"prompt:greet"}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); !slices.Contains(got, "one__greet") {
		t.Errorf("prompts after approve: got %q, want one__greet", got)
	}
	if got := c.resourceURIs("resources/list", "resources", "uri"); slices.Contains(got, "one+test://doc/2") {
		t.Errorf("resources after approving the prompt alone: got %q, want doc/2 still hidden", got)
	}
	if err := w.srv.Approve("a", "one", obs, []string{"resource:test://doc/2"}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("resources/list", "resources", "uri"); !slices.Contains(got, "one+test://doc/2") {
		t.Errorf("resources after approve: got %q, want doc/2", got)
	}
	if _, diff, _ := w.srv.Pending(t.Context(), "a", "one"); !diff.Empty() {
		t.Errorf("after both approvals: got %+v, want no change", diff)
	}
}

// TestCatalogPinnedOnUpgrade: a pin of a version that pinned tools alone
// gains the server's prompts and resources at its next start, recorded
// as a pin, not as a change.
func TestCatalogPinnedOnUpgrade(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var pins []PinEvent
	var changed []ToolsChanged
	w := newWorld(t, func(o *Options) {
		o.OnPin = func(e PinEvent) error { mu.Lock(); pins = append(pins, e); mu.Unlock(); return nil }
		o.OnToolsChanged = func(c ToolsChanged) error { mu.Lock(); changed = append(changed, c); mu.Unlock(); return nil }
	})
	w.addServer("a", "one", upstreamCommand(t, "-resources", "1"))
	c := w.ready(t, "a1")
	c.toolNames()
	// As an older version stored it: identity and tools, no catalog.
	err := w.store.approve("a", "one", func(p mcpserver.Pin) (mcpserver.Pin, error) {
		p.CatalogPinned, p.Prompts, p.Resources, p.Templates = false, nil, nil, nil
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	pins, changed = nil, nil
	mu.Unlock()
	w.srv.KillServers("a")
	c = w.ready(t, "a1")
	if got := c.resourceURIs("prompts/list", "prompts", "name"); !slices.Contains(got, "one__greet") {
		t.Errorf("prompts after the upgrade: got %q, want one__greet served", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pins) != 1 || pins[0].Reason != PinCatalog || !slices.Equal(pins[0].Prompts, []string{"greet"}) || !slices.Equal(pins[0].Resources, []string{"test://doc/1"}) || !slices.Equal(pins[0].Templates, []string{"test://env/{name}"}) {
		t.Errorf("pins: got %+v, want one %s of greet, doc/1 and the template", pins, PinCatalog)
	}
	if len(changed) != 0 {
		t.Errorf("changes: got %+v, want none", changed)
	}
	cfgs, _ := w.store.List("a")
	if p := cfgs[0].Pin; p == nil || !p.CatalogPinned || p.Prompts["greet"].Description != "Greet someone." {
		t.Errorf("stored pin: got %+v, want the catalog pinned", p)
	}
}

// TestCatalogControl: with the profile's default none nothing of a
// server is offered, its resources and prompts included, and a read or
// get of them is refused (audited) until turned on; each switch governs
// its kind alone.
func TestCatalogControl(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var refusedAccess []string
	w := newWorld(t, func(o *Options) {
		o.ToolsDefault = func(context.Context, string) (string, error) { return mcpserver.ToolsNone, nil }
	})
	w.callers["a1"].RefusedAccess = func(_ context.Context, a Access, reason string) {
		mu.Lock()
		refusedAccess = append(refusedAccess, reason)
		mu.Unlock()
	}
	w.addServer("a", "one", upstreamCommand(t, "-resources", "1"))
	c := w.ready(t, "a1")
	for _, l := range [][3]string{{"resources/list", "resources", "uri"}, {"resources/templates/list", "resourceTemplates", "uriTemplate"}, {"prompts/list", "prompts", "name"}} {
		if got := c.resourceURIs(l[0], l[1], l[2]); len(got) != 0 {
			t.Errorf("%s with default none: got %q, want none", l[0], got)
		}
	}
	_, _, m := c.read("one+test://doc/1")
	if m.Error == nil || !strings.Contains(m.Error.Message, "ringlet mcp tools a one --resources on") {
		t.Errorf("read with default none: got %+v, want refused naming the fix", m.Error)
	}
	if m := c.call("prompts/get", map[string]any{"name": "one__greet", "arguments": map[string]any{"name": "x"}}); m.Error == nil {
		t.Error("get with default none: got a result, want refused")
	}
	mu.Lock()
	if len(refusedAccess) != 2 {
		t.Errorf("refusals audited: got %q, want 2", refusedAccess)
	}
	mu.Unlock()

	if _, err := w.srv.SetTools("a", "one", mcpserver.ToolChange{Resources: mcpserver.SwitchOn}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("resources/list", "resources", "uri"); !slices.Equal(got, []string{"one+test://doc/1"}) {
		t.Errorf("resources on: got %q, want doc/1", got)
	}
	if text, _, m := c.read("one+test://doc/1"); m.Error != nil || text != "doc 1" {
		t.Errorf("read with resources on: got %q %+v", text, m.Error)
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); len(got) != 0 {
		t.Errorf("prompts with resources on alone: got %q, want none", got)
	}
	if _, err := w.srv.SetTools("a", "one", mcpserver.ToolChange{Prompts: mcpserver.SwitchOn, Resources: mcpserver.SwitchOff}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); !slices.Contains(got, "one__greet") {
		t.Errorf("prompts on: got %q, want greet", got)
	}
	if got := c.resourceURIs("resources/list", "resources", "uri"); len(got) != 0 {
		t.Errorf("resources off: got %q, want none", got)
	}
	if _, _, m := c.read("one+test://doc/1"); m.Error == nil || !strings.Contains(m.Error.Message, "with '--resources off'") {
		t.Errorf("read with resources off: got %+v, want refused naming the switch", m.Error)
	}
}

// TestCatalogItemControl: single prompts, resources and templates are
// disabled by name, URI or glob: each is absent from its list while the
// rest stay, and a get, read, completion or subscription of it is
// refused with the command that enables it, audited; a URI matched only
// by a disabled template is refused alike (not "not found"); a rule that
// names a URI refuses a read of it through an enabled template.
func TestCatalogItemControl(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var refused []string
	w := newWorld(t)
	w.callers["a1"].RefusedAccess = func(_ context.Context, a Access, reason string) {
		mu.Lock()
		refused = append(refused, a.Kind+" "+a.Name+" "+a.Method+": "+reason)
		mu.Unlock()
	}
	// Of a server without tools, which has two prompts.
	w.addServer("a", "one", upstreamCommand(t, "-resources", "2", "-no-tools"))
	c := w.ready(t, "a1")
	if got := c.resourceURIs("prompts/list", "prompts", "name"); !slices.Contains(got, "one__greet") {
		t.Fatalf("prompts at first: got %q, want one__greet", got)
	}
	if _, err := w.srv.SetTools("a", "one", mcpserver.ToolChange{DisablePrompts: []string{"greet"},
		DisableResources: []string{"test://doc/2", "test://env/{*}"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); slices.Contains(got, "one__greet") || !slices.Contains(got, "one__add_tool") {
		t.Errorf("prompts: got %q, want greet gone and add_tool kept", got)
	}
	if got, want := c.resourceURIs("resources/list", "resources", "uri"), []string{"one+test://doc/1"}; !slices.Equal(got, want) {
		t.Errorf("resources: got %q, want %q", got, want)
	}
	if got := c.resourceURIs("resources/templates/list", "resourceTemplates", "uriTemplate"); len(got) != 0 {
		t.Errorf("templates: got %q, want none", got)
	}
	for _, tc := range []struct {
		what, method string
		params       map[string]any
		want         string
	}{
		{"get", "prompts/get", map[string]any{"name": "one__greet", "arguments": map[string]any{"name": "x"}}, `disabled by the rule "greet"; the user can enable it with 'ringlet mcp tools a one --enable-prompt greet'`},
		{"read", "resources/read", map[string]any{"uri": "one+test://doc/2"}, "--enable-resource test://doc/2"},
		{"read through a disabled template", "resources/read", map[string]any{"uri": "one+test://env/HOME"}, `one+test://env/HOME matches no served resource template: one+test://env/{name} is not offered: it is disabled by the rule "test://env/{*}"`},
		{"completion of a prompt", "completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "one__greet"}, "argument": map[string]any{"name": "name", "value": "A"}}, "--enable-prompt greet"},
		{"completion of a template", "completion/complete", map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "one+test://env/{name}"}, "argument": map[string]any{"name": "name", "value": "A"}}, `--enable-resource "test://env/{name}"`},
		{"subscribe", "resources/subscribe", map[string]any{"uri": "one+test://doc/2"}, "--enable-resource test://doc/2"},
	} {
		if m := c.call(tc.method, tc.params); m.Error == nil || !strings.Contains(m.Error.Message, tc.want) {
			t.Errorf("%s: got %+v, want refused with %q", tc.what, m.Error, tc.want)
		}
	}
	if text, _, m := c.read("one+test://doc/1"); m.Error != nil || text != "doc 1" {
		t.Errorf("read of the enabled resource: got %q %+v", text, m.Error)
	}
	mu.Lock()
	if len(refused) != 6 {
		t.Errorf("refusals audited: got %d %q, want 6", len(refused), refused)
	}
	mu.Unlock()
	states := map[string]string{}
	for _, it := range w.status("a", "one").Items {
		states[it.Kind+" "+it.Name] = it.State + " " + it.By + " " + it.Rule
	}
	for k, want := range map[string]string{
		"prompt greet":               "disabled explicit greet",
		"prompt add_tool":            "visible default ",
		"resource test://doc/1":      "visible default ",
		"resource test://doc/2":      "disabled explicit test://doc/2",
		"template test://env/{name}": "disabled explicit test://env/{*}",
	} {
		if states[k] != want {
			t.Errorf("mcp tools: %s: got %q, want %q", k, states[k], want)
		}
	}

	// The template back, but one URI under it named by a rule.
	if _, err := w.srv.SetTools("a", "one", mcpserver.ToolChange{EnableResources: []string{"test://env/{*}"}, DisableResources: []string{"test://env/SECRET*"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("resources/templates/list", "resourceTemplates", "uriTemplate"); !slices.Equal(got, []string{"one+test://env/{name}"}) {
		t.Errorf("templates once enabled: got %q", got)
	}
	if _, _, m := c.read("one+test://env/HOME"); m.Error != nil {
		t.Errorf("read through the enabled template: got %+v", m.Error)
	}
	if _, _, m := c.read("one+test://env/SECRET_TOKEN"); m.Error == nil || !strings.Contains(m.Error.Message, `disabled by the rule "test://env/SECRET*"`) {
		t.Errorf("read of a URI a rule disables, through an enabled template: got %+v, want refused", m.Error)
	}
	// The server's switch off: a rule of an item still enables it.
	if _, err := w.srv.SetTools("a", "one", mcpserver.ToolChange{Reset: true, Prompts: mcpserver.SwitchOff, EnablePrompts: []string{"greet"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); !slices.Equal(got, []string{"one__greet"}) {
		t.Errorf("prompts off but greet enabled: got %q, want only greet", got)
	}
	if m := c.call("prompts/get", map[string]any{"name": "one__add_tool"}); m.Error == nil || !strings.Contains(m.Error.Message, "with '--prompts off'") || !strings.Contains(m.Error.Message, "--enable-prompt add_tool") {
		t.Errorf("get of a prompt the switch hides: got %+v", m.Error)
	}
}
