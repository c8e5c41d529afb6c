package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// budgetState is one entry of 'budgets show --json'.
type budgetState struct {
	Key   string `json:"key"`
	Spent struct {
		USD          float64 `json:"usd"`
		InputTokens  int64   `json:"input_tokens"`
		OutputTokens int64   `json:"output_tokens"`
		Requests     int64   `json:"requests"`
	} `json:"spent"`
	Reserved struct {
		OutputTokens int64 `json:"output_tokens"`
	} `json:"reserved"`
	Remaining struct {
		OutputTokens int64 `json:"output_tokens"`
	} `json:"remaining"`
}

func budgetStates(t *testing.T, e *env, alias string) map[string]budgetState {
	t.Helper()
	var v struct {
		States []budgetState `json:"states"`
	}
	out := mustRun(t, e, "budgets", "show", alias, "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("budgets show --json: %v in %q", err, out)
	}
	m := map[string]budgetState{}
	for _, s := range v.States {
		m[s.Key] = s
	}
	return m
}

func messages(maxTokens int, stream bool) string {
	return fmt.Sprintf(`{"model":"fake-model","max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"hi"}]}`, maxTokens, stream)
}

// budgetRecords are the budget records of a session.
func budgetRecords(t *testing.T, e *env, session, kind string) []sessionRecord {
	t.Helper()
	var out []sessionRecord
	for _, r := range sessionRecords(t, e, session) {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// TestBudgetSessionCap sets a per-session output budget with the refuse
// action: the request that would pass it is refused before it reaches
// the provider, in Anthropic's error shape with Ringlet's code naming the
// budget, and audited; the session lives on and a request that fits
// passes; 'budgets show' and 'sessions inspect' show the spend, which a
// daemon restart does not forget.
func TestBudgetSessionCap(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "capped", "fake", "--command", "true")
	mustRun(t, w.e, "budgets", "set", "capped", "--session", "output=100", "--on-exhaust", "refuse")
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 10, Output: 60})
	s := w.startSession("capped")

	if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messages(64, false)); status != 200 {
		t.Fatalf("first request: got %d %s, want 200", status, body)
	}
	before := len(w.fake.Requests())
	status, h, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messages(64, false))
	if status != http.StatusBadRequest {
		t.Fatalf("request past the cap: got %d %s, want 400", status, body)
	}
	if n := len(w.fake.Requests()); n != before {
		t.Fatalf("the refused request reached the provider (%d requests, want %d)", n, before)
	}
	var ans struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Ringlet struct {
				Code, Budget, Cap string
			} `json:"ringlet"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Type != "error" || ans.Error.Type != "invalid_request_error" ||
		ans.Error.Ringlet.Code != "budget_exhausted" || ans.Error.Ringlet.Budget != "session/"+s.ID || ans.Error.Ringlet.Cap != "output_tokens" ||
		!strings.Contains(ans.Error.Message, "ringlet budgets set") || h.Get("X-Ringlet-Budget") != "session/"+s.ID {
		t.Fatalf("refusal: got %s (%v), want Anthropic's error shape naming session/%s and its output cap", body, err, s.ID)
	}
	refused := budgetRecords(t, w.e, s.ID, "budget.refused")
	if len(refused) != 1 || refused[0].Target != "session/"+s.ID || refused[0].Detail["cap"] != "output_tokens" || refused[0].Decision != "deny" {
		t.Fatalf("budget.refused records: got %+v, want one naming the session's output cap", refused)
	}
	// Refuse, not kill: a request that fits still passes.
	if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messages(30, false)); status != 200 {
		t.Fatalf("request within the cap after a refusal: got %d %s, want 200", status, body)
	}
	st := budgetStates(t, w.e, "capped")["session/"+s.ID]
	if st.Spent.OutputTokens != 120 || st.Spent.Requests != 2 || st.Reserved.OutputTokens != 0 || st.Remaining.OutputTokens != 0 {
		t.Fatalf("budgets show: got %+v, want 120 output tokens spent by 2 requests, none reserved, none left", st)
	}
	var info struct {
		Budget *budgetState `json:"budget"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "sessions", "inspect", s.ID, "--json")), &info); err != nil || info.Budget == nil || info.Budget.Spent.OutputTokens != 120 {
		t.Fatalf("sessions inspect: got %+v (%v), want the budget with 120 output tokens spent", info.Budget, err)
	}
	if out := mustRun(t, w.e, "sessions", "inspect", s.ID); !strings.Contains(out, "budget output_tokens") || !strings.Contains(out, "120 spent") {
		t.Fatalf("sessions inspect: got %q, want the budget's spend", out)
	}

	// A restart does not lift it: the spend is read back from the audit
	// log.
	w.restart(t, false)
	if st := budgetStates(t, w.e, "capped")["session/"+s.ID]; st.Spent.OutputTokens != 120 || st.Spent.Requests != 2 {
		t.Fatalf("after a restart: got %+v, want the 120 output tokens and 2 requests spent before", st)
	}
	if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messages(1, false)); status != http.StatusBadRequest {
		t.Fatalf("after a restart, a request past the cap: got %d %s, want 400", status, body)
	}
}

// TestBudgetKillOpenAI exhausts a day budget of a profile on an OpenAI
// provider with the default action: the refusal is a 400
// invalid_request_error (budget_exhausted), and the session is ended,
// recorded with the budget as the reason; its token's next request is answered with the same
// refusal (which agents show and stop at), not a 401 they retry.
func TestBudgetKillOpenAI(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "oa", "fakeoa", "--command", "true", "--budget-day", "output=100")
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 10, Output: 60})
	s := w.startSession("oa")
	chat := `{"model":"fake-model","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
	if status, _, body := w.send(t, "POST", "/chat/completions", openaiHeaders(s.Token), chat); status != 200 {
		t.Fatalf("first request: got %d %s, want 200", status, body)
	}
	status, _, body := w.send(t, "POST", "/chat/completions", openaiHeaders(s.Token), chat)
	var ans struct {
		Error struct {
			Type, Code, Message string
			Ringlet             struct{ Code, Budget string }
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &ans); status != http.StatusBadRequest || err != nil || ans.Error.Type != "invalid_request_error" ||
		ans.Error.Code != "budget_exhausted" || ans.Error.Ringlet.Budget != "profile/oa/day" {
		t.Fatalf("request past the day's cap: got %d %s, want 400 invalid_request_error budget_exhausted naming profile/oa/day", status, body)
	}
	if reason := endReason(t, w.e, s.ID); !strings.Contains(reason, "profile/oa/day") {
		t.Fatalf("session.end reason: got %q, want the budget (default action kill)", reason)
	}
	if _, _, code := w.e.Run("sessions", "inspect", s.ID); code == 0 {
		t.Fatal("sessions inspect: the session a budget ended is still live")
	}
	before := len(w.fake.Requests())
	if status, _, body := w.send(t, "POST", "/chat/completions", openaiHeaders(s.Token), chat); status != http.StatusBadRequest ||
		!strings.Contains(string(body), "profile/oa/day") || len(w.fake.Requests()) != before {
		t.Fatalf("the ended session's next request: got %d %s, want the budget's 400, not forwarded", status, body)
	}
	// The day's budget covers the profile's next session too.
	s2 := w.startSession("oa")
	if status, _, body := w.send(t, "POST", "/chat/completions", openaiHeaders(s2.Token), chat); status != http.StatusBadRequest {
		t.Fatalf("a new session of the profile: got %d %s, want 400 (the day's budget is spent)", status, body)
	}
}

// TestBudgetStreamCut: a stream whose usage, as the provider reports it,
// passes a cap is cut at the next event boundary with an error event in
// Anthropic's stream format, and charged what was reported.
func TestBudgetStreamCut(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "st", "fake", "--command", "true")
	mustRun(t, w.e, "budgets", "set", "st", "--session", "input=5000", "--on-exhaust", "refuse")
	// The body is a few hundred bytes: the estimate fits, the reported
	// input does not.
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 90000, Output: 5})
	w.fake.TextEvents.Store(50)
	s := w.startSession("st")
	resp := w.open(t, t.Context(), "POST", "/v1/messages", anthropicHeaders(s.Token), messages(64, true))
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	body := string(raw)
	if resp.StatusCode != 200 || !strings.Contains(body, "event: error") || !strings.Contains(body, "budget_exhausted") ||
		strings.Contains(body, "message_stop") || strings.Contains(body, "text_delta") {
		t.Fatalf("stream past the cap: got %d %q, want it cut after message_start with an error event", resp.StatusCode, body)
	}
	// Every event but the last is whole.
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if last := events[len(events)-1]; !strings.HasPrefix(last, "event: error\ndata: {") {
		t.Fatalf("last event: got %q, want the error event alone", last)
	}
	if !strings.HasPrefix(events[0], "event: message_start") {
		t.Fatalf("first event: got %q, want message_start", events[0])
	}
	w.waitRecords(t, s.ID, 1)
	if recs := budgetRecords(t, w.e, s.ID, "budget.refused"); len(recs) != 1 || recs[0].Detail["request"] != "stream" {
		t.Fatalf("budget.refused: got %+v, want one for the stream", recs)
	}
	if st := budgetStates(t, w.e, "st")["session/"+s.ID]; st.Spent.InputTokens != 90000 {
		t.Fatalf("spent: got %+v, want the 90000 input tokens reported", st)
	}
}

// TestBudgetUSDNeedsPrice: a USD budget on a profile whose model has no
// price is refused at 'budgets set' with the fix; once the price is
// imported it is taken, and requests are charged in USD.
func TestBudgetUSDNeedsPrice(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	const model = "claude-sonnet-4-5-20250929"
	w.newProfile("generic", "usd", "fake", "--command", "true", "--model", model)
	_, stderr, code := w.e.Run("budgets", "set", "usd", "--day", "usd=1")
	if code == 0 || !strings.Contains(stderr, "has no price") || !strings.Contains(stderr, "ringlet prices import") {
		t.Fatalf("budgets set usd on an unpriced model: exit %d, stderr %q; want a refusal naming the fix", code, stderr)
	}
	mustRun(t, w.e, "prices", "import", "../provider/testdata/prices/litellm.json")
	mustRun(t, w.e, "budgets", "set", "usd", "--day", "usd=1")
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 1000, Output: 200})
	s := w.startSession("usd")
	body := `{"model":"` + model + `","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
	if status, _, b := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), body); status != 200 {
		t.Fatalf("request: got %d %s, want 200", status, b)
	}
	if st := budgetStates(t, w.e, "usd")["profile/usd/day"]; st.Spent.USD <= 0 || st.Spent.Requests != 1 {
		t.Fatalf("day budget: got %+v, want the request charged in USD", st)
	}
	// A request for a model without a price cannot pass the USD cap
	// uncounted: refused, not forwarded.
	before := len(w.fake.Requests())
	status, _, b := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), `{"model":"unpriced-model","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)
	if status != http.StatusBadRequest || !strings.Contains(string(b), "has no price") || len(w.fake.Requests()) != before {
		t.Fatalf("request for an unpriced model under a USD cap: got %d %s, want 400 naming the missing price, not forwarded", status, b)
	}
	// Bad input: one line, non-zero.
	for _, args := range [][]string{
		{"budgets", "set", "usd", "--day", "usd=-1"},
		{"budgets", "set", "usd", "--day", "cats=2"},
		{"budgets", "set", "usd"},
		{"budgets", "set", "usd", "--day", "runtime=1h"},
		{"budgets", "clear", "usd", "--period", "year"},
		{"budgets", "show", "nosuch"},
	} {
		if _, stderr, code := w.e.Run(args...); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
			t.Errorf("ringlet %s: exit %d, stderr %q; want one line and a non-zero exit", strings.Join(args, " "), code, stderr)
		}
	}
	// Completion of the new arguments and flags.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"budgets", "show", "us"}, "usd"},
		{[]string{"budgets", "set", "usd", "--on-exhaust", ""}, "refuse"},
		{[]string{"budgets", "set", "usd", "--day", "usd=1,"}, "usd=1,output="},
		{[]string{"budgets", "clear", "usd", "--period", ""}, "month"},
		{[]string{"profiles", "set", "usd", "--budget-stream", ""}, "finish"},
		{[]string{"profiles", "run", "usd", "--budget", ""}, "runtime="},
	} {
		if out := mustRun(t, w.e, append([]string{"__complete"}, tc.args...)...); !strings.Contains(out, tc.want) {
			t.Errorf("completion of %v: got %q, want %s", tc.args, out, tc.want)
		}
	}
	mustRun(t, w.e, "budgets", "clear", "usd")
	if out := mustRun(t, w.e, "budgets", "show", "usd"); !strings.Contains(out, "no budget") {
		t.Fatalf("after clear: got %q, want no budget", out)
	}
}

// TestBudgetToolCalls caps a session's MCP tool calls through the
// gateway, set with the admin MCP tool budgets_set: the call past the cap
// is refused with the budget named, before it reaches the upstream server,
// and audited; budgets_show shows the spend.
func TestBudgetToolCalls(t *testing.T) {
	requireMCPNode(t)
	t.Parallel()
	e, d := newMCPEnv(t)
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "mcp", "add", "work", "everything", "--ro", filepath.Dir(modules), "--",
		"node", filepath.Join(modules, "server-everything", "dist", "index.js"), "stdio")
	url := d.URL + "/mcp"
	admin := runSDK(t, e, e.Token(), map[string]any{"url": url, "steps": []any{
		map[string]any{"call": "budgets_set", "args": map[string]any{"profile": "work", "period": "session", "tool_calls": 2, "on_exhaust": "refuse"}},
	}})
	if text, isErr := admin.text(0); isErr || !strings.Contains(text, `"tool_calls":2`) {
		t.Fatalf("budgets_set: got %v %q, want the budget set", isErr, text)
	}
	tok := mcpSessionToken(t, e, "work")
	echo := func(msg string) any {
		return map[string]any{"call": "everything__echo", "args": map[string]any{"message": msg}}
	}
	r := runSDK(t, e, tok, map[string]any{"url": url, "steps": []any{echo("one"), echo("two"), echo("three")}})
	for i, want := range []string{"Echo: one", "Echo: two"} {
		if text, isErr := r.text(i); isErr || text != want {
			t.Fatalf("call %d: got %v %q, want %q", i+1, isErr, text, want)
		}
	}
	if text, isErr := r.text(2); !isErr || !strings.Contains(text, "budget session/") || !strings.Contains(text, "tool_calls cap 2 reached") || !strings.Contains(text, "'ringlet budgets set work'") {
		t.Fatalf("call past the cap: got %v %q, want refused naming the session's tool_calls budget", isErr, text)
	}
	// A resource read is a tool call to the budget: refused past the cap.
	read := runSDKPlan(t, e, tok, map[string]any{"url": url, "steps": []any{
		map[string]any{"read": "everything+demo://resource/static/document/features.md"},
	}})
	if msg := string(read.Steps[0]["error"]); !strings.Contains(msg, "tool_calls cap 2 reached") {
		t.Fatalf("read past the cap: got error %q (read: %v), want refused naming the tool_calls budget", msg, read.Steps[0]["contents"] != nil)
	}
	if out := mustRun(t, e, "audit", "query", "--kind", "budget.refused", "--json"); !strings.Contains(out, "tool.call everything__echo") ||
		!strings.Contains(out, "tool.call everything+demo://resource/static/document/features.md") ||
		!strings.Contains(out, `"change": "Raise it with 'ringlet budgets set work'`) || !strings.Contains(out, `"reason": "budget session/`) {
		t.Fatalf("audit: got %s, want the refused tool call and read, each with its reason and how to change it", out)
	}
	show := runSDK(t, e, e.Token(), map[string]any{"url": url, "steps": []any{
		map[string]any{"call": "budgets_show", "args": map[string]any{"profile": "work"}},
	}})
	if text, isErr := show.text(0); isErr || !strings.Contains(text, `"requests":0,"tool_calls":2`) {
		t.Fatalf("budgets_show: got %v %q, want the spend of 2 tool calls", isErr, text)
	}
}

// TestBudgetMetrics: what is left of each budget is a gauge per budget
// and cap, which promtool accepts.
func TestBudgetMetrics(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "met", "fake", "--command", "true", "--budget-day", "requests=10", "--budget-session", "output=1000")
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 10, Output: 60})
	s := w.startSession("met")
	if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messages(64, false)); status != 200 {
		t.Fatalf("request: got %d %s, want 200", status, body)
	}
	status, _, body := w.d.MustGet(t, "/metrics", w.e.Token(), nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: got %d", status)
	}
	for _, want := range []string{
		`ringlet_budget_remaining{budget="profile/met/day",cap="requests",profile="met"} 9`,
		`ringlet_budget_remaining{budget="session/` + s.ID + `",cap="output_tokens",profile="met"} 940`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics: no %s in\n%s", want, grepLines(string(body), "ringlet_budget"))
		}
	}
	promtoolCheck(t, body)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBudgetConcurrentStreams: 32 clients stream through one session at
// once against its output cap, each until it is refused: what they spend
// together stays within the cap (the provider keeps to max_tokens, so the
// bound on the overshoot is 0), and the requests that fit are admitted.
func TestBudgetConcurrentStreams(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "many", "fake", "--command", "true")
	const limit = 20 * 64
	mustRun(t, w.e, "budgets", "set", "many", "--session", fmt.Sprintf("output=%d", limit), "--on-exhaust", "refuse")
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 10, Output: 60})
	s := w.startSession("many")
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				resp := w.open(t, t.Context(), "POST", "/v1/messages", anthropicHeaders(s.Token), messages(64, true))
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "budget_exhausted") {
						t.Errorf("refusal: got %d %s, want 400 budget_exhausted", resp.StatusCode, raw)
					}
					return
				}
				if !strings.Contains(string(raw), "message_stop") {
					t.Errorf("admitted stream: got %q, want it whole", raw)
					return
				}
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := budgetStates(t, w.e, "many")["session/"+s.ID]
	if st.Spent.OutputTokens > limit || st.Reserved.OutputTokens != 0 {
		t.Fatalf("32 concurrent streams: spent %d output tokens (reserved %d) against a cap of %d, want at most the cap and nothing reserved", st.Spent.OutputTokens, st.Reserved.OutputTokens, limit)
	}
	if admitted < limit/64 || int64(admitted)*60 != st.Spent.OutputTokens {
		t.Fatalf("admitted %d streams, spent %d: want at least %d admitted, each charged its 60 tokens", admitted, st.Spent.OutputTokens, limit/64)
	}
	t.Logf("32 concurrent streams: %d admitted, %d of %d output tokens spent", admitted, st.Spent.OutputTokens, limit)
}

// TestBudgetClaudeCode: the real Claude Code (-p) whose session's budget
// cannot take its request stops at once with Ringlet's message, not a
// retry loop or a login prompt, and the request never reaches the
// provider.
func TestBudgetClaudeCode(t *testing.T) {
	t.Parallel()
	requireNode(t)
	bin := claudeBin(t)
	w := newProxyWorld(t)
	key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5", "--budget-session", "output=10")
	s := w.startSession("cc")
	cenv := clientEnv(t, s, t.TempDir(), key, claudeOffline...)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", "say hi", "--output-format", "json")
	cmd.Dir, cmd.Env, cmd.WaitDelay = t.TempDir(), cenv, 5*time.Second
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		var seen []string
		for _, r := range sessionRecords(t, w.e, s.ID) {
			seen = append(seen, fmt.Sprintf("%s %s %d %v", r.Kind, r.Target, r.Status, r.Detail))
		}
		t.Fatalf("claude -p did not stop within 90s: stdout %q stderr %q; records:\n%s", out.String(), errb.String(), strings.Join(seen, "\n"))
	}
	var res claudeResult
	_ = json.Unmarshal([]byte(out.String()), &res) // checked below
	if err == nil && !res.IsError || !strings.Contains(out.String()+errb.String(), "Ringlet refused the request: budget session/"+s.ID) {
		t.Fatalf("claude -p under an exhausted budget: exit %v, stdout %q, stderr %q; want an error showing Ringlet's budget message", err, out.String(), errb.String())
	}
	for _, r := range w.fake.Requests() {
		if r.Key == key && strings.Contains(r.Path, "/v1/messages") && !strings.Contains(r.Path, "count_tokens") {
			t.Fatalf("a Messages request reached the provider: %s", r.Path)
		}
	}
	t.Logf("claude -p showed: %s", strings.TrimSpace(res.Result))
}
