package api

import (
	"fmt"

	"github.com/neullabs/ringlet/budget"
)

// BudgetRequest is the body of PUT /api/budgets/{profile}: the caps to
// set, per period (session, day, week, month; each replaces that
// period's caps, the others stay), and what to do when one is exhausted.
type BudgetRequest struct {
	Limits    map[string]budget.Limits `json:"limits,omitempty"`
	OnExhaust string                   `json:"on_exhaust,omitempty"` // kill or refuse
	Stream    string                   `json:"stream,omitempty"`     // cut or finish
}

// Apply returns b with the request's changes, checked.
func (r BudgetRequest) Apply(b budget.Budget) (budget.Budget, error) {
	for period, l := range r.Limits {
		dst := b.Of(period)
		if dst == nil {
			return b, fmt.Errorf("period %q: want session, day, week or month", period)
		}
		*dst = l
	}
	if r.OnExhaust != "" {
		b.OnExhaust = r.OnExhaust
	}
	if r.Stream != "" {
		b.Stream = r.Stream
	}
	if err := b.Validate(); err != nil {
		return b, err
	}
	return b, nil
}

// BudgetView is the answer to GET and PUT /api/budgets/{profile}: the
// profile's budgets, the actions in effect, and the state of every
// budget the daemon holds for it (its periods, and each live session
// with a budget): spent, reserved by requests in flight, remaining.
type BudgetView struct {
	Profile   string         `json:"profile"`
	Budget    budget.Budget  `json:"budget"`
	OnExhaust string         `json:"on_exhaust"`
	Stream    string         `json:"stream"`
	States    []budget.State `json:"states"`
}
