package gateway

import (
	"strings"
	"testing"

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
