package gateway

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/profile"
)

// setBudget gives profile alias of w the budget bud.
func (w *mcpWorld) setBudget(t *testing.T, alias string, bud budget.Budget) {
	t.Helper()
	cat, err := profile.LoadCatalog(w.s.opts.CatalogDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.opts.Profiles.Update(cat, alias, func(p *profile.Profile) { p.Budget = bud }); err != nil {
		t.Fatal(err)
	}
}

// budgetKeys are the keys of the accounts the ledger holds.
func budgetKeys(b *budgets) []string {
	var keys []string
	for _, st := range b.ledger.States() {
		keys = append(keys, st.Key)
	}
	return keys
}

// TestKilledSessionDropsItsBudget: a session killed drops its budget
// account, as one that ends otherwise does, so ringlet_budget_remaining
// stops reporting it.
func TestKilledSessionDropsItsBudget(t *testing.T) {
	w := newMCPWorld(t)
	w.setBudget(t, "work", budget.Budget{Session: budget.Limits{ToolCalls: 5}})
	for _, end := range []string{"kill", "revoke"} {
		id, _ := w.session(t, "work")
		sess := w.s.sessions.get(id)
		if _, ok, err := w.s.budgets.sessionState(t.Context(), sess); err != nil || !ok {
			t.Fatalf("session budget: %v, %v", ok, err)
		}
		if keys := budgetKeys(w.s.budgets); !strings.Contains(strings.Join(keys, " "), "session/"+id) {
			t.Fatalf("accounts: %v, want session/%s", keys, id)
		}
		var err error
		if end == "kill" {
			err = w.s.KillSession(t.Context(), id, KilledByCLI, "test")
		} else {
			_, err = w.s.sessions.revoke(t.Context(), id, "test", "admin")
		}
		if err != nil {
			t.Fatal(err)
		}
		if keys := budgetKeys(w.s.budgets); strings.Contains(strings.Join(keys, " "), "session/"+id) {
			t.Errorf("after %s: accounts %v still hold session/%s", end, keys, id)
		}
	}
}

// TestToolCallCapKillsAfterTheLastCall: with the kill action, the tool
// call that reaches a session's tool-call cap runs and its answer reaches
// the agent; the session is killed after it, and the next call is
// refused.
func TestToolCallCapKillsAfterTheLastCall(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	w.addUp(t, bin)
	w.setBudget(t, "work", budget.Budget{Session: budget.Limits{ToolCalls: 2}, OnExhaust: budget.ActionKill})
	id, tok := w.session(t, "work")
	c := w.connect(t, tok)
	for _, msg := range []string{"one", "two"} {
		text, isErr := callTool(t, c, "up__echo", map[string]any{"text": msg})
		if isErr || text != `{"text":"`+msg+`"}` {
			t.Fatalf("call %q within the cap: got %v %q, want the upstream's echo", msg, isErr, text)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.s.sessions.get(id) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the session reached its tool-call cap with the kill action and is still live")
		}
		time.Sleep(10 * time.Millisecond)
	}
	req := mcpgo.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "up__echo", map[string]any{"text": "three"}
	if res, err := c.CallTool(t.Context(), req); err == nil && !res.IsError {
		t.Errorf("call after the kill: got %+v, want refused", res)
	}
	// The kill takes the session out of the table first and records
	// itself once its servers are stopped: its record is waited for.
	var count map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Session: id, Kinds: []string{audit.KindToolCall, audit.KindBudgetExhausted, audit.KindSessionKilled}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		count = map[string]int{}
		for _, r := range recs {
			count[r.Kind+"/"+r.Decision]++
		}
		if count[audit.KindSessionKilled+"/"+audit.Allow] > 0 || time.Now().After(deadline) {
			break
		}
	}
	if count[audit.KindToolCall+"/"+audit.Allow] != 2 || count[audit.KindBudgetExhausted+"/"+audit.Deny] != 1 || count[audit.KindSessionKilled+"/"+audit.Allow] != 1 {
		t.Errorf("audit: got %v, want 2 allowed tool calls, 1 budget.exhausted, 1 session.killed", count)
	}
}

// TestKillsAfterFlushFirst: over TCP the kills a request's budget asked
// for run once it answered, after the flush that puts the answer out
// before a kill closes the connection under it, and the answer is
// flushed only when a kill waits (a flushed answer goes chunked). A kill
// asked for after that runs at once.
func TestKillsAfterFlushFirst(t *testing.T) {
	var got []string
	w := &flushLog{ResponseRecorder: httptest.NewRecorder(), got: &got}
	_, k := withKillsAfter(t.Context())
	k.answerThenRun(t.Context(), w)
	if len(got) != 0 {
		t.Fatalf("no kill waiting: got %v, want no flush", got)
	}
	if k.add(func() { got = append(got, "late") }) {
		t.Errorf("add after the answer, none waiting: kept, want refused (the caller kills at once)")
	}

	_, k = withKillsAfter(t.Context())
	for _, name := range []string{"kill a", "kill b"} {
		if !k.add(func() { got = append(got, name) }) {
			t.Fatalf("add %s before the answer: refused", name)
		}
	}
	k.answerThenRun(t.Context(), w)
	if want := []string{"flush", "kill a", "kill b"}; !slices.Equal(got, want) {
		t.Errorf("answerThenRun: got %v, want %v", got, want)
	}
	if k.add(func() { got = append(got, "late") }) {
		t.Errorf("add after the answer: kept, want refused (the caller kills at once)")
	}
}

// flushLog notes each Flush in got.
type flushLog struct {
	*httptest.ResponseRecorder
	got *[]string
}

func (f *flushLog) Flush() { *f.got = append(*f.got, "flush"); f.ResponseRecorder.Flush() }
