package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/mcp/stdiobridge"
)

// world is a gateway with four credentials, as the daemon would
// authenticate them: the admin token, two session tokens of profile a
// and one of profile b. The admin API and the session API are fakes that
// record what reached them; Vet records what it judged and denies while
// deny is set.
type world struct {
	t     *testing.T
	srv   *Server
	store *Store
	h     http.Handler
	homes map[string]string
	// unsandboxed are the HOMEs of --no-sandbox servers.
	unsandboxed map[string]string
	callers     map[string]*Caller

	mu     sync.Mutex
	api    []apiCall
	vetted []vetCall
	faults []Fault
	deny   string
	after  func(context.Context, json.RawMessage) Verdict // post-tool-use, when set
	// accessed are the resources/read and prompts/get vetted, and done
	// what each was told of how it went.
	accessed []Access
	done     []accessDone
}

type accessDone struct {
	Name   string
	Output string
	Err    string
}

type apiCall struct {
	Method, Target, Body, Session string
}

type vetCall struct {
	Session, Tool string
	Input         []byte
}

func newWorld(t *testing.T, opts ...func(*Options)) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{t: t, store: NewStore(filepath.Join(dir, "config")), homes: map[string]string{}, unsandboxed: map[string]string{}}
	for _, p := range []string{"a", "b"} {
		w.homes[p] = filepath.Join(dir, "home-"+p)
		w.unsandboxed[p] = filepath.Join(dir, "home-unsandboxed-"+p)
		for _, d := range []string{w.homes[p], w.unsandboxed[p]} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := Options{
		Store: w.store,
		Launch: func(p string) (Launch, error) {
			return Launch{Home: w.homes[p], Dir: w.homes[p], UnsandboxedHome: w.unsandboxed[p], UnsandboxedDir: w.unsandboxed[p]}, nil
		},
		Version:      "test",
		StartTimeout: 20 * time.Second,
		OnFault: func(f Fault) {
			w.mu.Lock()
			w.faults = append(w.faults, f)
			w.mu.Unlock()
		},
	}
	for _, f := range opts {
		f(&o)
	}
	w.srv = New(o)
	t.Cleanup(w.srv.Close)
	w.callers = map[string]*Caller{
		"admin": {Binding: "bind-admin", API: w.fakeAPI("")},
		"a1":    {Binding: "bind-a1", Profile: "a", Session: "s_a1", API: w.fakeAPI("s_a1"), Vet: w.vet("s_a1"), Access: w.access},
		"a2":    {Binding: "bind-a2", Profile: "a", Session: "s_a2", API: w.fakeAPI("s_a2"), Vet: w.vet("s_a2"), Access: w.access},
		"b1":    {Binding: "bind-b1", Profile: "b", Session: "s_b1", API: w.fakeAPI("s_b1"), Vet: w.vet("s_b1"), Access: w.access},
	}
	w.h = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c := w.callers[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if c == nil {
			http.Error(rw, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.srv.ServeHTTP(rw, r.WithContext(WithCaller(r.Context(), c)))
	})
	return w
}

// fakeAPI answers every request with what it received, except paths
// containing "missing", which get the daemon's 404 error body.
func (w *world) fakeAPI(session string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.api = append(w.api, apiCall{Method: r.Method, Target: r.URL.RequestURI(), Body: string(body), Session: session})
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "missing") {
			rw.WriteHeader(http.StatusNotFound)
			io.WriteString(rw, `{"error":{"code":"not_found","message":"no profile \"missing\""}}`)
			return
		}
		json.NewEncoder(rw).Encode(map[string]any{"method": r.Method, "target": r.URL.RequestURI()})
	})
}

func (w *world) apiCalls() []apiCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]apiCall(nil), w.api...)
}

func (w *world) vet(session string) func(context.Context, string, json.RawMessage) Verdict {
	return func(_ context.Context, tool string, input json.RawMessage) Verdict {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.vetted = append(w.vetted, vetCall{Session: session, Tool: tool, Input: append([]byte(nil), input...)})
		if w.deny != "" {
			return Verdict{Reason: w.deny}
		}
		return Verdict{Allow: true, After: w.after}
	}
}

// access records what it vetted and how it went; it denies while deny is
// set, and withholds the answer while after refuses.
func (w *world) access(_ context.Context, a Access) AccessVerdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.accessed = append(w.accessed, a)
	if w.deny != "" {
		return AccessVerdict{Reason: w.deny}
	}
	after := w.after
	return AccessVerdict{Allow: true, Done: func(ctx context.Context, out json.RawMessage, err error) Verdict {
		d := accessDone{Name: a.Name, Output: string(out)}
		if err != nil {
			d.Err = err.Error()
		}
		w.mu.Lock()
		w.done = append(w.done, d)
		w.mu.Unlock()
		if after != nil && err == nil {
			return after(ctx, out)
		}
		return Verdict{Allow: true}
	}}
}

func (w *world) accesses() ([]Access, []accessDone) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Access(nil), w.accessed...), append([]accessDone(nil), w.done...)
}

// faultsOf returns the faults reported for profile p's server name.
func (w *world) faultsOf(p, name string) []Fault {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Fault
	for _, f := range w.faults {
		if f.Profile == p && f.Server == name {
			out = append(out, f)
		}
	}
	return out
}

func (w *world) setAfter(after func(context.Context, json.RawMessage) Verdict) {
	w.mu.Lock()
	w.after = after
	w.mu.Unlock()
}

func (w *world) setDeny(reason string) {
	w.mu.Lock()
	w.deny = reason
	w.mu.Unlock()
}

func (w *world) vets() []vetCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]vetCall(nil), w.vetted...)
}

// addServer stores an upstream for profile p.
func (w *world) addServer(p, name string, argv []string) {
	w.t.Helper()
	// The gateway's logic is tested here; the daemon's sandbox for servers
	// is tested end to end (test/mcpsandbox_test.go).
	if _, err := w.srv.AddServer(p, mcpserver.Config{Name: name, Command: argv, Timeout: 10 * time.Second, NoSandbox: true}); err != nil {
		w.t.Fatalf("AddServer: %v", err)
	}
}

// testClient speaks raw MCP over HTTP to the world with one token.
type testClient struct {
	t   *testing.T
	w   *world
	tok string
	sid string
	ver string
	id  int
}

func (w *world) client(t *testing.T, tok string) *testClient {
	return &testClient{t: t, w: w, tok: tok}
}

// ready returns a client of tok that has initialized its MCP session and
// listed the tools (which starts the profile's upstreams).
func (w *world) ready(t *testing.T, tok string) *testClient {
	c := w.client(t, tok)
	c.initialize("2025-11-25")
	c.toolNames()
	return c
}

// toolCall is a tool and its arguments.
type toolCall struct {
	tool string
	args map[string]any
}

// refused calls each tool and fails the test unless every call is an
// error result and none of them reached the API.
func (c *testClient) refused(calls ...toolCall) {
	c.t.Helper()
	before := len(c.w.apiCalls())
	for _, tc := range calls {
		if r := c.tool(tc.tool, tc.args); !r.IsError {
			c.t.Errorf("%s %v: got a result, want an error", tc.tool, tc.args)
		}
	}
	if got := c.w.apiCalls()[before:]; len(got) != 0 {
		c.t.Errorf("refused calls reached the API: %+v", got)
	}
}

// post sends body with the client's token, session and version headers
// (and any extra), returning the recorded answer.
func (c *testClient) post(body string, extra ...string) *httptest.ResponseRecorder {
	c.t.Helper()
	return c.send(http.MethodPost, body, extra...)
}

func (c *testClient) send(method, body string, extra ...string) *httptest.ResponseRecorder {
	c.t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:8765/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	if c.tok != "" {
		r.Header.Set("Authorization", "Bearer "+c.tok)
	}
	if c.sid != "" {
		r.Header.Set("Mcp-Session-Id", c.sid)
	}
	if c.ver != "" {
		r.Header.Set("Mcp-Protocol-Version", c.ver)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			r.Header.Del(extra[i])
		} else {
			r.Header.Set(extra[i], extra[i+1])
		}
	}
	rec := httptest.NewRecorder()
	c.w.h.ServeHTTP(rec, r)
	return rec
}

// rpcMsg is a JSON-RPC answer.
type rpcMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// messages are the JSON-RPC messages of an answer, JSON or SSE.
func messages(t *testing.T, rec *httptest.ResponseRecorder) []rpcMsg {
	t.Helper()
	var datas [][]byte
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
		// A recorded body cannot fail to be read.
		_ = stdiobridge.ReadEvents(bytes.NewReader(rec.Body.Bytes()), func(d []byte) { datas = append(datas, append([]byte(nil), d...)) })
	} else if len(bytes.TrimSpace(rec.Body.Bytes())) > 0 {
		datas = append(datas, rec.Body.Bytes())
	}
	var out []rpcMsg
	for _, d := range datas {
		var m rpcMsg
		if err := json.Unmarshal(d, &m); err != nil {
			t.Fatalf("answer is not JSON-RPC: %v: %s", err, d)
		}
		out = append(out, m)
	}
	return out
}

// answer is the response to request id in rec.
func answer(t *testing.T, rec *httptest.ResponseRecorder, id int) rpcMsg {
	t.Helper()
	for _, m := range messages(t, rec) {
		if string(m.ID) == strconv.Itoa(id) {
			return m
		}
	}
	t.Fatalf("no answer to request %d (HTTP %d): %s", id, rec.Code, rec.Body.String())
	return rpcMsg{}
}

func (c *testClient) initialize(version string) json.RawMessage {
	c.t.Helper()
	c.id++
	rec := c.post(`{"jsonrpc":"2.0","id":` + strconv.Itoa(c.id) + `,"method":"initialize","params":{"protocolVersion":"` + version + `","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}`)
	if rec.Code != http.StatusOK {
		c.t.Fatalf("initialize: HTTP %d: %s", rec.Code, rec.Body.String())
	}
	m := answer(c.t, rec, c.id)
	if m.Error != nil {
		c.t.Fatalf("initialize: error %d %s", m.Error.Code, m.Error.Message)
	}
	c.sid = rec.Header().Get("Mcp-Session-Id")
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	json.Unmarshal(m.Result, &r)
	c.ver = r.ProtocolVersion
	if rec := c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); rec.Code != http.StatusAccepted {
		c.t.Fatalf("initialized: HTTP %d: %s", rec.Code, rec.Body.String())
	}
	return m.Result
}

// call sends a request and returns its answer.
func (c *testClient) call(method string, params any) rpcMsg {
	c.t.Helper()
	c.id++
	p, err := json.Marshal(params)
	if err != nil {
		c.t.Fatal(err)
	}
	body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(c.id) + `,"method":"` + method + `"`
	if params != nil {
		body += `,"params":` + string(p)
	}
	rec := c.post(body + "}")
	return answer(c.t, rec, c.id)
}

// toolResult is a tools/call result.
type toolResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

func (r toolResult) text() string {
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

// tool calls a tool and returns its result; a JSON-RPC error fails t.
func (c *testClient) tool(name string, args any) toolResult {
	c.t.Helper()
	m := c.call("tools/call", map[string]any{"name": name, "arguments": args})
	if m.Error != nil {
		c.t.Fatalf("tools/call %s: JSON-RPC error %d: %s", name, m.Error.Code, m.Error.Message)
	}
	var r toolResult
	if err := json.Unmarshal(m.Result, &r); err != nil {
		c.t.Fatalf("tools/call %s: %v", name, err)
	}
	return r
}

// toolNames lists the tools the client sees.
func (c *testClient) toolNames() []string {
	c.t.Helper()
	m := c.call("tools/list", map[string]any{})
	if m.Error != nil {
		c.t.Fatalf("tools/list: error %d: %s", m.Error.Code, m.Error.Message)
	}
	var r struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	json.Unmarshal(m.Result, &r)
	var out []string
	for _, t := range r.Tools {
		out = append(out, t.Name)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
