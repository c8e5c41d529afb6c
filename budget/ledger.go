package budget

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Amount is what a request spends, or may spend.
type Amount struct {
	USD          float64 `json:"usd"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	Requests     int64   `json:"requests"`
	ToolCalls    int64   `json:"tool_calls"`
}

func (a Amount) add(b Amount) Amount {
	return Amount{a.USD + b.USD, a.InputTokens + b.InputTokens, a.OutputTokens + b.OutputTokens, a.Requests + b.Requests, a.ToolCalls + b.ToolCalls}
}

func (a Amount) sub(b Amount) Amount {
	return Amount{a.USD - b.USD, a.InputTokens - b.InputTokens, a.OutputTokens - b.OutputTokens, a.Requests - b.Requests, a.ToolCalls - b.ToolCalls}
}

// Scope is what a budget covers: one session, or one profile over the
// period that began at Since.
type Scope struct {
	Profile string
	Session string // set for PeriodSession
	Period  string
	Since   time.Time
}

// Key names the scope in the ledger, events and metrics:
// "session/ID" or "profile/ALIAS/day".
func (s Scope) Key() string {
	if s.Period == PeriodSession {
		return "session/" + s.Session
	}
	return "profile/" + s.Profile + "/" + s.Period
}

// LoadFunc reads what a scope has spent so far from the record of what
// was spent (the audit log): the ledger's truth across restarts.
type LoadFunc func(ctx context.Context, s Scope) (Amount, error)

// Account is one budget's running sums.
type Account struct {
	Scope  Scope
	limits Limits
	// spent is what answered requests cost; reserved what requests in
	// flight may still cost.
	spent, reserved Amount
	ready           chan struct{}
	loadErr         error
}

// Ledger holds every account; one lock covers them all, so a request
// reserves against all the budgets that cover it at once.
type Ledger struct {
	mu       sync.Mutex
	accounts map[string]*Account
	load     LoadFunc
}

// NewLedger returns a ledger whose accounts start from what load reads.
func NewLedger(load LoadFunc) *Ledger {
	return &Ledger{accounts: map[string]*Account{}, load: load}
}

// Account returns the account of scope with limits, made (and its spend
// so far loaded) the first time it is asked for. A period account of an
// earlier period of the same profile is dropped when the next begins.
func (l *Ledger) Account(ctx context.Context, s Scope, limits Limits) (*Account, error) {
	key := s.Key()
	l.mu.Lock()
	a := l.accounts[key]
	if a != nil && !a.Scope.Since.Equal(s.Since) {
		if a.Scope.Since.After(s.Since) {
			// A request of the period before, still in flight as the
			// next began: it is counted in the current one.
			s = a.Scope
		} else {
			a = nil
		}
	}
	if a == nil {
		a = &Account{Scope: s, limits: limits, ready: make(chan struct{})}
		l.accounts[key] = a
		l.mu.Unlock()
		if l.load != nil {
			spent, err := l.load(ctx, s)
			l.mu.Lock()
			a.spent, a.loadErr = a.spent.add(spent), err
			l.mu.Unlock()
		}
		close(a.ready)
	} else {
		a.limits = limits
		l.mu.Unlock()
	}
	select {
	case <-a.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if a.loadErr != nil {
		l.mu.Lock()
		if l.accounts[key] == a {
			// Asked again next time.
			delete(l.accounts, key)
		}
		l.mu.Unlock()
		return nil, fmt.Errorf("read the spend of budget %s: %w", key, a.loadErr)
	}
	return a, nil
}

// Forget drops the account of scope (a session that ended).
func (l *Ledger) Forget(s Scope) {
	l.mu.Lock()
	delete(l.accounts, s.Key())
	l.mu.Unlock()
}

// Refusal says which budget a request would pass, and by what.
type Refusal struct {
	Scope Scope
	// Cap is the cap that would be passed: usd, input_tokens,
	// output_tokens, requests or tool_calls.
	Cap string
	// Limit, Spent and Reserved are that cap's values; Want what the
	// request needed.
	Limit, Spent, Reserved, Want float64
	// Why, when set, says why in place of the sums.
	Why string
}

func (r *Refusal) Error() string {
	if r.Why != "" {
		return "budget " + r.Scope.Key() + ": " + r.Why
	}
	return fmt.Sprintf("budget %s: %s cap %s reached (spent %s, reserved by requests in flight %s, this request needs up to %s)",
		r.Scope.Key(), r.Cap, num(r.Limit), num(r.Spent), num(r.Reserved), num(r.Want))
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// over returns the first cap of lim that spent+reserved+want passes.
func over(lim Limits, spent, reserved, want Amount) (string, float64, float64, float64, float64, bool) {
	type capv struct {
		name            string
		lim, s, r, want float64
	}
	for _, c := range [...]capv{
		{"usd", lim.USD, spent.USD, reserved.USD, want.USD},
		{"input_tokens", float64(lim.InputTokens), float64(spent.InputTokens), float64(reserved.InputTokens), float64(want.InputTokens)},
		{"output_tokens", float64(lim.OutputTokens), float64(spent.OutputTokens), float64(reserved.OutputTokens), float64(want.OutputTokens)},
		{"requests", float64(lim.Requests), float64(spent.Requests), float64(reserved.Requests), float64(want.Requests)},
		{"tool_calls", float64(lim.ToolCalls), float64(spent.ToolCalls), float64(reserved.ToolCalls), float64(want.ToolCalls)},
	} {
		if c.lim > 0 && c.want > 0 && c.s+c.r+c.want > c.lim {
			return c.name, c.lim, c.s, c.r, c.want, true
		}
	}
	return "", 0, 0, 0, 0, false
}

// Reservation is a request's hold on its accounts.
type Reservation struct {
	l     *Ledger
	accts []*Account
	held  Amount
	done  bool
}

// Reserve holds want against every account of accts, or against none:
// when one of them cannot take it, it returns that account's refusal.
func (l *Ledger) Reserve(accts []*Account, want Amount) (*Reservation, *Refusal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range accts {
		if c, lim, s, r, w, ok := over(a.limits, a.spent, a.reserved, want); ok {
			return nil, &Refusal{Scope: a.Scope, Cap: c, Limit: lim, Spent: s, Reserved: r, Want: w}
		}
	}
	for _, a := range accts {
		a.reserved = a.reserved.add(want)
	}
	return &Reservation{l: l, accts: accts, held: want}, nil
}

// Grow raises the reservation to to (usage reported while an answer
// streams) if every account can take the difference; otherwise it holds
// nothing more and returns the refusal.
func (r *Reservation) Grow(to Amount) *Refusal {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.done {
		return nil
	}
	more := to.sub(r.held)
	more = Amount{max(more.USD, 0), max(more.InputTokens, 0), max(more.OutputTokens, 0), max(more.Requests, 0), max(more.ToolCalls, 0)}
	if more == (Amount{}) {
		return nil
	}
	for _, a := range r.accts {
		if c, lim, s, res, w, ok := over(a.limits, a.spent, a.reserved, more); ok {
			return &Refusal{Scope: a.Scope, Cap: c, Limit: lim, Spent: s, Reserved: res, Want: w}
		}
	}
	for _, a := range r.accts {
		a.reserved = a.reserved.add(more)
	}
	r.held = r.held.add(more)
	return nil
}

// Settle replaces the reservation with what the request spent, once, and
// returns the accounts this settle exhausted: those whose cap it reached.
// An account already exhausted is not returned again, so the settles of
// requests still in flight when it was do not report it once more.
func (r *Reservation) Settle(spent Amount) []*Account {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	var exhausted []*Account
	for _, a := range r.accts {
		was := a.exhausted()
		a.reserved = a.reserved.sub(r.held)
		a.spent = a.spent.add(spent)
		if !was && a.exhausted() {
			exhausted = append(exhausted, a)
		}
	}
	return exhausted
}

// exhausted reports whether a cap is reached: spent at or above it.
func (a *Account) exhausted() bool {
	l, s := a.limits, a.spent
	return l.USD > 0 && s.USD >= l.USD || l.InputTokens > 0 && s.InputTokens >= l.InputTokens ||
		l.OutputTokens > 0 && s.OutputTokens >= l.OutputTokens || l.Requests > 0 && s.Requests >= l.Requests ||
		l.ToolCalls > 0 && s.ToolCalls >= l.ToolCalls
}

// State is an account as shown: its limits, what was spent, what requests
// in flight hold, and what is left of each cap.
type State struct {
	Key       string    `json:"key"`
	Period    string    `json:"period"`
	Profile   string    `json:"profile"`
	Session   string    `json:"session,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Limits    Limits    `json:"limits"`
	Spent     Amount    `json:"spent"`
	Reserved  Amount    `json:"reserved"`
	Remaining Amount    `json:"remaining"` // of the capped fields only; the others 0
	Exhausted bool      `json:"exhausted"`
}

// State returns a's state now.
func (l *Ledger) State(a *Account) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, s, r := a.limits, a.spent, a.reserved
	left := func(limit, used float64) float64 {
		if limit <= 0 {
			return 0
		}
		return max(limit-used, 0)
	}
	rem := Amount{
		USD:          left(lim.USD, s.USD+r.USD),
		InputTokens:  int64(left(float64(lim.InputTokens), float64(s.InputTokens+r.InputTokens))),
		OutputTokens: int64(left(float64(lim.OutputTokens), float64(s.OutputTokens+r.OutputTokens))),
		Requests:     int64(left(float64(lim.Requests), float64(s.Requests+r.Requests))),
		ToolCalls:    int64(left(float64(lim.ToolCalls), float64(s.ToolCalls+r.ToolCalls))),
	}
	return State{Key: a.Scope.Key(), Period: a.Scope.Period, Profile: a.Scope.Profile, Session: a.Scope.Session, Since: a.Scope.Since,
		Limits: lim, Spent: s, Reserved: r, Remaining: rem, Exhausted: a.exhausted()}
}

// States returns the state of every account, ordered by key.
func (l *Ledger) States() []State {
	l.mu.Lock()
	accts := make([]*Account, 0, len(l.accounts))
	for _, a := range l.accounts {
		select {
		case <-a.ready:
			if a.loadErr == nil {
				accts = append(accts, a)
			}
		default:
		}
	}
	l.mu.Unlock()
	out := make([]State, 0, len(accts))
	for _, a := range accts {
		out = append(out, l.State(a))
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Key, b.Key) })
	return out
}
