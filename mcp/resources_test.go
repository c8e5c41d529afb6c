package mcp

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// resourceURIs lists the resources a client sees, following cursors.
func (c *testClient) resourceURIs(method, key, field string) []string {
	c.t.Helper()
	var out []string
	cursor := ""
	for range 100 {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		m := c.call(method, params)
		if m.Error != nil {
			c.t.Fatalf("%s: error %d: %s", method, m.Error.Code, m.Error.Message)
		}
		var page map[string]json.RawMessage
		json.Unmarshal(m.Result, &page)
		var items []map[string]any
		json.Unmarshal(page[key], &items)
		for _, it := range items {
			s, _ := it[field].(string)
			out = append(out, s)
		}
		var next string
		json.Unmarshal(page["nextCursor"], &next)
		if next == "" {
			slices.Sort(out)
			return out
		}
		cursor = next
	}
	c.t.Fatalf("%s did not end", method)
	return nil
}

// read reads a resource; a JSON-RPC error is returned as such.
func (c *testClient) read(uri string) (text, contentURI string, m rpcMsg) {
	c.t.Helper()
	m = c.call("resources/read", map[string]any{"uri": uri})
	var r struct {
		Contents []struct {
			URI  string `json:"uri"`
			Text string `json:"text"`
		} `json:"contents"`
	}
	json.Unmarshal(m.Result, &r)
	for _, ct := range r.Contents {
		text += ct.Text
		contentURI = ct.URI
	}
	return text, contentURI, m
}

// TestResourcesAndPromptsAggregated: every server's resources, templates
// and prompts are served under its name (every page of each server's
// lists), read through the policy, with the server's own URI sent to it
// and the session's in the answer; what no server listed is refused
// before any policy or server sees it.
func TestResourcesAndPromptsAggregated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rec := filepath.Join(t.TempDir(), "one.log")
	w.addServer("a", "one", upstreamCommand(t, "-resources", "5", "-page", "2", "-record", rec))
	w.addServer("a", "two", upstreamCommand(t, "-resources", "2"))
	c := w.client(t, "a1")
	res := c.initialize("2025-11-25")
	var init struct {
		Capabilities map[string]json.RawMessage `json:"capabilities"`
	}
	json.Unmarshal(res, &init)
	if string(init.Capabilities["resources"]) != `{"subscribe":true,"listChanged":true}` || string(init.Capabilities["prompts"]) != `{"listChanged":true}` ||
		string(init.Capabilities["completions"]) != `{}` {
		t.Errorf("capabilities: got %s", res)
	}

	want := []string{"one+test://doc/1", "one+test://doc/2", "one+test://doc/3", "one+test://doc/4", "one+test://doc/5", "two+test://doc/1", "two+test://doc/2"}
	if got := c.resourceURIs("resources/list", "resources", "uri"); !slices.Equal(got, want) {
		t.Errorf("resources: got %q, want %q", got, want)
	}
	if got, want := c.resourceURIs("resources/templates/list", "resourceTemplates", "uriTemplate"), []string{"one+test://env/{name}", "two+test://env/{name}"}; !slices.Equal(got, want) {
		t.Errorf("templates: got %q, want %q", got, want)
	}
	if got, want := c.resourceURIs("prompts/list", "prompts", "name"), []string{"one__greet", "two__greet"}; !slices.Equal(got, want) {
		t.Errorf("prompts: got %q, want %q", got, want)
	}

	text, uri, m := c.read("one+test://doc/4")
	if m.Error != nil || text != "doc 4" || uri != "one+test://doc/4" {
		t.Errorf("read one+test://doc/4: got %q %q %+v, want doc 4 under one+test://doc/4", text, uri, m.Error)
	}
	if text, _, m := c.read("two+test://env/LANG"); m.Error != nil || text != "value: C.UTF-8" {
		t.Errorf("read through a template: got %q %+v, want value: C.UTF-8", text, m.Error)
	}
	m = c.call("prompts/get", map[string]any{"name": "two__greet", "arguments": map[string]string{"name": "Ann"}})
	if m.Error != nil || !strings.Contains(string(m.Result), "Hello, Ann") {
		t.Errorf("prompts/get two__greet: got %s %+v, want Hello, Ann", m.Result, m.Error)
	}

	accessed, done := w.accesses()
	wantAccess := []Access{
		{Kind: AccessResource, Server: "one", Name: "one+test://doc/4", Input: json.RawMessage(`{"uri":"test://doc/4"}`)},
		{Kind: AccessResource, Server: "two", Name: "two+test://env/LANG", Input: json.RawMessage(`{"uri":"test://env/LANG"}`)},
		{Kind: AccessPrompt, Server: "two", Name: "two__greet", Input: json.RawMessage(`{"arguments":{"name":"Ann"},"name":"greet"}`)},
	}
	if len(accessed) != len(wantAccess) {
		t.Fatalf("accesses: got %+v, want %+v", accessed, wantAccess)
	}
	for i := range wantAccess {
		if g, w := accessed[i], wantAccess[i]; g.Kind != w.Kind || g.Server != w.Server || g.Name != w.Name || string(g.Input) != string(w.Input) {
			t.Errorf("access %d: got %+v (%s), want %+v (%s)", i, g, g.Input, w, w.Input)
		}
	}
	if len(done) != 3 || !strings.Contains(done[0].Output, `"doc 4"`) || done[0].Err != "" {
		t.Errorf("done: got %+v, want three, the first with doc 4", done)
	}

	// Not listed, another server's, no server's, a bare upstream URI.
	for _, uri := range []string{"one+test://nope", "three+test://doc/1", "test://doc/1", "one+", "two+test://doc/3"} {
		if _, _, m := c.read(uri); m.Error == nil {
			t.Errorf("read %s: got a result, want an error", uri)
		}
	}
	if m := c.call("prompts/get", map[string]any{"name": "greet"}); m.Error == nil {
		t.Errorf("prompts/get greet: got a result, want an error")
	}
	if got, _ := w.accesses(); len(got) != 3 {
		t.Errorf("refused reads reached the policy: %+v", got[3:])
	}
	data, _ := os.ReadFile(rec)
	if strings.Contains(string(data), "nope") {
		t.Errorf("an unlisted URI reached the server: %s", data)
	}
}

// TestResourceReadVetted: a refused read never reaches the server, and a
// refused answer never reaches the session.
func TestResourceReadVetted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rec := filepath.Join(t.TempDir(), "one.log")
	w.addServer("a", "one", upstreamCommand(t, "-resources", "1", "-record", rec))
	c := w.ready(t, "a1")
	w.setDeny("reads are off")
	if _, _, m := c.read("one+test://doc/1"); m.Error == nil || !strings.Contains(m.Error.Message, "reads are off") {
		t.Errorf("denied read: got %+v, want the reason", m.Error)
	}
	if m := c.call("prompts/get", map[string]any{"name": "one__greet", "arguments": map[string]string{"name": "x"}}); m.Error == nil || !strings.Contains(m.Error.Message, "reads are off") {
		t.Errorf("denied prompt: got %+v, want the reason", m.Error)
	}
	data, _ := os.ReadFile(rec)
	if strings.Contains(string(data), "resources/read") || strings.Contains(string(data), "prompts/get") {
		t.Errorf("a denied read reached the server: %s", data)
	}
	w.setDeny("")
	w.setAfter(func(context.Context, json.RawMessage) Verdict { return Verdict{Reason: "withheld by a post hook"} })
	if text, _, m := c.read("one+test://doc/1"); m.Error == nil || text != "" || !strings.Contains(m.Error.Message, "withheld by a post hook") {
		t.Errorf("withheld read: got %q %+v, want the reason", text, m.Error)
	}
}

// TestResourcesCapabilitiesOnlyWhenOffered: a profile whose servers offer
// no resources or prompts is not told of them.
func TestResourcesCapabilitiesOnlyWhenOffered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("b", "plain", upstreamCommand(t))
	res := w.client(t, "b1").initialize("2025-11-25")
	var init struct {
		Capabilities map[string]json.RawMessage `json:"capabilities"`
	}
	json.Unmarshal(res, &init)
	if _, ok := init.Capabilities["resources"]; ok {
		t.Errorf("capabilities: got resources in %s", res)
	}
	if _, ok := init.Capabilities["prompts"]; ok {
		t.Errorf("capabilities: got prompts in %s", res)
	}
	if _, ok := init.Capabilities["completions"]; ok {
		t.Errorf("capabilities: got completions in %s", res)
	}
}

// TestCompletionsForwarded: completion/complete of a served prompt's or
// template's argument is asked of its server under the server's own
// names, with its credentials redacted; of anything else, refused.
func TestCompletionsForwarded(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	sw.add(t, "gh", nil, map[string]string{"env": "github/work"}, "-resources", "1")
	c := sw.ready(t, "a1")
	complete := func(ref map[string]any) rpcMsg {
		return c.call("completion/complete", map[string]any{"ref": ref, "argument": map[string]any{"name": "name", "value": "A"}})
	}
	for _, tc := range []struct {
		ref  map[string]any
		want string
	}{
		{map[string]any{"type": "ref/prompt", "name": "gh__greet"}, "prompt:greet name=A"},
		{map[string]any{"type": "ref/resource", "uri": "gh+test://env/{name}"}, "resource:test://env/{name} name=A"},
	} {
		m := complete(tc.ref)
		if m.Error != nil || !strings.Contains(string(m.Result), `"Ann"`) || !strings.Contains(string(m.Result), tc.want) || strings.Contains(string(m.Result), envCanary) {
			t.Errorf("complete %v: got %s %+v, want Ann and %q, the secret redacted", tc.ref, m.Result, m.Error, tc.want)
		}
	}
	for _, ref := range []map[string]any{
		{"type": "ref/prompt", "name": "greet"}, {"type": "ref/prompt", "name": "gh__nope"},
		{"type": "ref/resource", "uri": "test://env/{name}"}, {"type": "ref/resource", "uri": "gh+test://doc/{x}"},
	} {
		if m := complete(ref); m.Error == nil {
			t.Errorf("complete %v: got %s, want an error", ref, m.Result)
		}
	}
}

// TestResourcesRedacted: a server's secret it echoes in a resource, a
// prompt or its resource list reaches neither the policy nor the session.
func TestResourcesRedacted(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	sw.add(t, "gh", nil, map[string]string{"TOKEN": "github/work", "env": "github/work"}, "-resources", "1")
	c := sw.ready(t, "a1")
	text, _, m := c.read("gh+test://env/TOKEN")
	if m.Error != nil || strings.Contains(text, envCanary) || !strings.HasPrefix(text, "value: ") {
		t.Errorf("read: got %q %+v, want the value redacted", text, m.Error)
	}
	m = c.call("prompts/get", map[string]any{"name": "gh__greet", "arguments": map[string]string{"name": "Ann"}})
	if m.Error != nil || strings.Contains(string(m.Result), envCanary) || !strings.Contains(string(m.Result), "Hello, Ann") {
		t.Errorf("prompt: got %s %+v, want it redacted", m.Result, m.Error)
	}
	_, done := sw.accesses()
	for _, d := range done {
		if strings.Contains(d.Output, envCanary) {
			t.Errorf("the policy saw the secret: %+v", d)
		}
	}
}

// TestResourcesFollowTheServer: a server's new resource is served once it
// says its list changed; its resources are hidden while one of its tools
// is changed and unapproved.
func TestResourcesFollowTheServer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("a", "one", upstreamCommand(t, "-resources", "1"))
	c := w.ready(t, "a1")
	if r := c.tool("one__add_doc", map[string]any{}); r.IsError {
		t.Fatalf("add_doc: %s", r.text())
	}
	// A resource added is a change of what was approved: served once
	// approved.
	waitFor(t, 10*time.Second, "the new resource seen", func() bool {
		_, diff, err := w.srv.Pending(t.Context(), "a", "one")
		return err == nil && len(diff.Items) == 1
	})
	if slices.Contains(c.resourceURIs("resources/list", "resources", "uri"), "one+test://doc/2") {
		t.Error("a resource added is listed before approval")
	}
	obs, _, _ := w.srv.Pending(t.Context(), "a", "one")
	if err := w.srv.Approve("a", "one", obs, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.resourceURIs("resources/list", "resources", "uri"), "one+test://doc/2") {
		t.Error("an approved resource is not listed")
	}
	if r := c.tool("one__set_desc", map[string]any{"desc": "Now does something else."}); r.IsError {
		t.Fatalf("set_desc: %s", r.text())
	}
	waitFor(t, 10*time.Second, "the changed server's resources hidden", func() bool {
		return len(c.resourceURIs("resources/list", "resources", "uri")) == 0
	})
	if _, _, m := c.read("one+test://doc/1"); m.Error == nil {
		t.Errorf("read from a changed server: got a result, want an error")
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); len(got) != 0 {
		t.Errorf("prompts of a changed server: got %q, want none", got)
	}
}

// TestResourceSubscriptions: a session subscribes to a resource a server
// listed and that server is subscribed; what no server listed is refused.
func TestResourceSubscriptions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rec := filepath.Join(t.TempDir(), "one.log")
	w.addServer("a", "one", upstreamCommand(t, "-resources", "2", "-record", rec))
	w.addServer("a", "plain", upstreamCommand(t))
	c := w.ready(t, "a1")
	if m := c.call("resources/subscribe", map[string]any{"uri": "one+test://doc/2"}); m.Error != nil {
		t.Fatalf("subscribe: %+v", m.Error)
	}
	waitFor(t, 10*time.Second, "the upstream subscription", func() bool {
		data, _ := os.ReadFile(rec)
		return strings.Contains(string(data), `"method":"resources/subscribe","params":{"uri":"test://doc/2"}`)
	})
	for _, uri := range []string{"one+test://doc/9", "plain+test://doc/1", "test://doc/2"} {
		if m := c.call("resources/subscribe", map[string]any{"uri": uri}); m.Error == nil {
			t.Errorf("subscribe %s: got a result, want an error", uri)
		}
	}
	if m := c.call("resources/unsubscribe", map[string]any{"uri": "one+test://doc/2"}); m.Error != nil {
		t.Fatalf("unsubscribe: %+v", m.Error)
	}
	waitFor(t, 10*time.Second, "the upstream unsubscription", func() bool {
		data, _ := os.ReadFile(rec)
		return strings.Contains(string(data), `"method":"resources/unsubscribe"`)
	})
}

// TestSubscriptionsBounded: a session cannot hold more subscriptions than
// the bound, however many URIs a template matches.
func TestSubscriptionsBounded(t *testing.T) {
	t.Parallel()
	var s subscriptions
	for i := range maxSubscriptions {
		if _, ok := s.add("s1", "a+test://env/"+strconv.Itoa(i)); !ok {
			t.Fatalf("subscription %d refused", i)
		}
	}
	if _, ok := s.add("s1", "a+test://env/more"); ok {
		t.Error("a subscription past the bound: got it, want refused")
	}
	if first, ok := s.add("s1", "a+test://env/7"); !ok || first {
		t.Errorf("the same subscription again: got first %v ok %v, want held", first, ok)
	}
	if first, ok := s.add("s2", "a+test://env/more"); !ok || !first {
		t.Errorf("another session: got first %v ok %v, want its first", first, ok)
	}
	if last := s.remove("s1", nil); len(last) != maxSubscriptions {
		t.Errorf("ending s1: got %d URIs no session holds, want %d", len(last), maxSubscriptions)
	}
}

// copyProgram copies the test binary (which serves as the upstream) to a
// file of the test's own, that the test may then change.
func copyProgram(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "upstream")
	if err := os.WriteFile(path, data, 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestToollessServerPinned: a server of resources and prompts alone is
// checked as any: a program replaced since it was added serves nothing
// and is announced as changed, and a tool an approved one adds later
// waits for approval.
func TestToollessServerPinned(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var changed []ToolsChanged
	w := newWorld(t, func(o *Options) {
		o.OnToolsChanged = func(tc ToolsChanged) error {
			mu.Lock()
			defer mu.Unlock()
			changed = append(changed, tc)
			return nil
		}
	})
	exe := copyProgram(t)
	argv := upstreamCommand(t, "-resources", "1", "-no-tools")
	argv[0] = exe
	w.addServer("a", "swapped", argv)
	w.addServer("a", "plain", upstreamCommand(t, "-resources", "1", "-no-tools"))
	// The program is replaced after it was added.
	f, err := os.OpenFile(exe, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c := w.ready(t, "a1")
	if got, want := c.resourceURIs("resources/list", "resources", "uri"), []string{"plain+test://doc/1"}; !slices.Equal(got, want) {
		t.Errorf("resources: got %q, want %q (none of the replaced program)", got, want)
	}
	if _, _, m := c.read("swapped+test://doc/1"); m.Error == nil {
		t.Error("read from a replaced program: got a result, want an error")
	}
	if got := c.resourceURIs("prompts/list", "prompts", "name"); slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, "swapped__") }) {
		t.Errorf("prompts: got %q, want none of the replaced program", got)
	}
	mu.Lock()
	announced := slices.ContainsFunc(changed, func(tc ToolsChanged) bool { return tc.Server == "swapped" && tc.Diff.Identity != nil })
	mu.Unlock()
	if !announced {
		t.Errorf("changes announced: got %+v, want the replaced program's", changed)
	}
	// Approved, the new program's resources are served.
	current, diff, err := w.srv.Pending(t.Context(), "a", "swapped")
	if err != nil || diff.Identity == nil {
		t.Fatalf("Pending: got %+v, %v; want the program changed", diff, err)
	}
	if err := w.srv.Approve("a", "swapped", current, nil); err != nil {
		t.Fatal(err)
	}
	if got := c.resourceURIs("resources/list", "resources", "uri"); !slices.Contains(got, "swapped+test://doc/1") {
		t.Errorf("resources after approve: got %q, want the approved program's", got)
	}

	// The approved server grows a tool: it is not trusted on first use.
	if m := c.call("prompts/get", map[string]any{"name": "plain__add_tool"}); m.Error != nil {
		t.Fatalf("add_tool: %+v", m.Error)
	}
	waitFor(t, 10*time.Second, "the late tool to be seen", func() bool {
		return toolState(w.status("a", "plain"), "late").State != ""
	})
	if ts := toolState(w.status("a", "plain"), "late"); ts.State != mcpserver.ToolChanged || ts.Change != mcpserver.ChangeAdded {
		t.Errorf("late tool: got %+v, want it added and waiting for approval", ts)
	}
	if slices.Contains(c.toolNames(), "plain__late") {
		t.Error("a tool added later is listed before approval")
	}
}

// TestResourcesPaced: resources/read, prompts/get and completion/complete
// are paced as tool calls by the profile's rate limits: each asks Admit
// under what it reads, and one not admitted is a rate-limit error that
// reaches neither the policy nor the server.
func TestResourcesPaced(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rec := filepath.Join(t.TempDir(), "one.log")
	w.addServer("a", "one", upstreamCommand(t, "-resources", "1", "-record", rec))
	var mu sync.Mutex
	var admitted []string
	w.callers["a1"].Admit = func(_ context.Context, _, name string) (time.Duration, string) {
		mu.Lock()
		defer mu.Unlock()
		admitted = append(admitted, name)
		return 30 * time.Second, "rate limit reached"
	}
	c := w.ready(t, "a1")
	for _, tc := range []struct {
		method string
		params map[string]any
	}{
		{"resources/read", map[string]any{"uri": "one+test://doc/1"}},
		{"prompts/get", map[string]any{"name": "one__greet", "arguments": map[string]string{"name": "Ann"}}},
		{"completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "one__greet"}, "argument": map[string]any{"name": "name", "value": "A"}}},
	} {
		if m := c.call(tc.method, tc.params); m.Error == nil || m.Error.Code != -32029 {
			t.Errorf("%s past the limit: got %s %+v, want a rate-limit error", tc.method, m.Result, m.Error)
		}
	}
	mu.Lock()
	if want := []string{"one+test://doc/1", "one__greet", "one__greet"}; !slices.Equal(admitted, want) {
		t.Errorf("admitted: got %q, want %q", admitted, want)
	}
	mu.Unlock()
	if accessed, _ := w.accesses(); len(accessed) != 0 {
		t.Errorf("the policy saw a refused read: %+v", accessed)
	}
	data, _ := os.ReadFile(rec) // what the server received; nothing if absent
	for _, method := range []string{"resources/read", "prompts/get", "completion/complete"} {
		if strings.Contains(string(data), method) {
			t.Errorf("the server received a %s past the limit", method)
		}
	}
}

// TestPromptGetCrash: a server that exits while answering a prompts/get
// is told apart as a tool call's would be: the error says it exited and
// is restarting.
func TestPromptGetCrash(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.addServer("a", "up", upstreamCommand(t, "-resources", "1", "-no-tools"))
	c := w.ready(t, "a1")
	m := c.call("prompts/get", map[string]any{"name": "up__crash"})
	if m.Error == nil || !strings.Contains(m.Error.Message, "the server exited during the call") || !strings.Contains(m.Error.Message, "it is restarting") {
		t.Errorf("prompts/get of a crashing server: got %s %+v, want an error saying it exited and is restarting", m.Result, m.Error)
	}
}
