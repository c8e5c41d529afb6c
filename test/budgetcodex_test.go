package test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBudgetCodex: the real Codex `exec` whose session's budget cannot
// take its request stops at once and does not retry, showing Ringlet's
// message: the refusal is a 400 invalid_request_error, which Codex
// prints with its body (at OpenAI's 429 insufficient_quota it printed
// only its own "Quota exceeded"). The request never reaches the provider,
// and the audit names the budget.
func TestBudgetCodex(t *testing.T) {
	t.Parallel()
	requireNode(t)
	bin := nodeBin(t, "codex")
	w := newProxyWorld(t)
	key := w.newProfile("codex", "cxb", "fakeoa", "--model", "gpt-5.5", "--budget-session", "output=10")
	s := w.startSession("cxb")
	cenv := clientEnv(t, s, w.unsandboxedHome("cxb"), key)
	// Codex retries what it takes for a rate limit or a passing failure
	// with backoff: a run that has not stopped in 60s retries.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(slices.Clone(s.Launch.Args), codexArgs("say hi")...)...)
	cmd.Dir, cmd.Env, cmd.WaitDelay = t.TempDir(), cenv, 5*time.Second
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	refused := budgetRecords(t, w.e, s.ID, "budget.refused")
	if ctx.Err() != nil {
		t.Fatalf("codex exec did not stop within 60s (%d budget.refused records: it retries): stdout %q stderr %q", len(refused), out.String(), errb.String())
	}
	// Codex prints a 400's body: Ringlet's message, naming the budget.
	all := out.String() + errb.String()
	if err == nil || !strings.Contains(all, "Ringlet refused the request") || !strings.Contains(all, "session/"+s.ID) {
		t.Fatalf("codex exec under an exhausted budget: exit %v, stdout %q, stderr %q; want a failure showing Ringlet's refusal naming session/%s", err, out.String(), errb.String(), s.ID)
	}
	if len(refused) > 0 && refused[0].Target != "session/"+s.ID {
		t.Fatalf("budget.refused: got %+v, want the session's budget named", refused[0])
	}
	// One refusal: Codex asked once and gave up.
	if len(refused) != 1 {
		var seen []string
		for _, r := range sessionRecords(t, w.e, s.ID) {
			seen = append(seen, fmt.Sprintf("%s %s %d %v", r.Kind, r.Target, r.Status, r.Detail))
		}
		t.Fatalf("budget.refused records: got %d, want 1 (no retry); records:\n%s", len(refused), strings.Join(seen, "\n"))
	}
	for _, r := range w.fake.Requests() {
		if r.Key == key && strings.Contains(r.Path, "/responses") {
			t.Fatalf("a Responses request reached the provider: %s", r.Path)
		}
	}
	t.Logf("codex exec showed: %s", grepLines(all, "ERROR"))
}
