package budget

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Limits
		err  bool
	}{
		{"usd=5", Limits{USD: 5}, false},
		{"usd=$0.5,input=2M,output=200k,requests=100,tools=50,runtime=2h", Limits{USD: 0.5, InputTokens: 2e6, OutputTokens: 200e3, Requests: 100, ToolCalls: 50, Runtime: Duration(2 * time.Hour)}, false},
		{"", Limits{}, true},
		{"usd=-1", Limits{}, true},
		{"usd=NaN", Limits{}, true},
		{"output=0", Limits{}, true},
		{"output=1.5k", Limits{}, true},
		{"cats=3", Limits{}, true},
		{"runtime=-1h", Limits{}, true},
		{"requests", Limits{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("Parse(%q) error = %v, want error %v", tc.in, err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if err == nil {
				again, err := Parse(got.String())
				if err != nil || again != got {
					t.Fatalf("Parse(String()) = %+v, %v; want %+v", again, err, got)
				}
			}
		})
	}
}

func TestPeriodStart(t *testing.T) {
	t.Parallel()
	// Sunday 2026-12-06 23:30 in UTC+2 is 21:30 UTC.
	at := time.Date(2026, 12, 6, 23, 30, 0, 0, time.FixedZone("X", 2*3600))
	for _, tc := range []struct {
		period string
		want   time.Time
	}{
		{PeriodDay, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)},
		{PeriodWeek, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{PeriodMonth, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got := PeriodStart(tc.period, at); !got.Equal(tc.want) {
			t.Errorf("PeriodStart(%s) = %v, want %v", tc.period, got, tc.want)
		}
	}
}

func TestReserveRefusesAndSettles(t *testing.T) {
	t.Parallel()
	l := NewLedger(nil)
	ctx := t.Context()
	sess, _ := l.Account(ctx, Scope{Period: PeriodSession, Session: "s1", Profile: "p"}, Limits{OutputTokens: 100})
	day, _ := l.Account(ctx, Scope{Period: PeriodDay, Profile: "p", Since: PeriodStart(PeriodDay, time.Now())}, Limits{Requests: 2})
	r1, ref := l.Reserve([]*Account{sess, day}, Amount{OutputTokens: 60, Requests: 1})
	if ref != nil {
		t.Fatalf("first reservation refused: %v", ref)
	}
	if _, ref := l.Reserve([]*Account{sess, day}, Amount{OutputTokens: 60, Requests: 1}); ref == nil || ref.Cap != "output_tokens" || ref.Scope.Key() != "session/s1" {
		t.Fatalf("second reservation: got %v, want refusal of session/s1 output_tokens", ref)
	}
	if ex := r1.Settle(Amount{OutputTokens: 10, Requests: 1}); len(ex) != 0 {
		t.Fatalf("settle exhausted %d accounts, want 0", len(ex))
	}
	r2, ref := l.Reserve([]*Account{sess, day}, Amount{OutputTokens: 60, Requests: 1})
	if ref != nil {
		t.Fatalf("reservation after settle refused: %v", ref)
	}
	ex := r2.Settle(Amount{OutputTokens: 5, Requests: 1})
	if len(ex) != 1 || ex[0] != day {
		t.Fatalf("second settle exhausted %v, want the day account", ex)
	}
	if _, ref := l.Reserve([]*Account{sess, day}, Amount{OutputTokens: 1, Requests: 1}); ref == nil || ref.Cap != "requests" {
		t.Fatalf("third reservation: got %v, want the requests refusal", ref)
	}
	st := l.State(sess)
	if st.Spent.OutputTokens != 15 || st.Reserved != (Amount{}) || st.Remaining.OutputTokens != 85 {
		t.Fatalf("state = %+v, want 15 spent, nothing reserved, 85 left", st)
	}
}

func TestAccountLoadsSpend(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	l := NewLedger(func(_ context.Context, s Scope) (Amount, error) {
		loads.Add(1)
		return Amount{USD: 0.9}, nil
	})
	s := Scope{Period: PeriodSession, Session: "s", Profile: "p"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := l.Account(t.Context(), s, Limits{USD: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	a, _ := l.Account(t.Context(), s, Limits{USD: 1})
	if n := loads.Load(); n != 1 {
		t.Fatalf("loaded %d times, want once", n)
	}
	if _, ref := l.Reserve([]*Account{a}, Amount{USD: 0.2}); ref == nil {
		t.Fatal("a reservation past the loaded spend was taken")
	}
	bad := NewLedger(func(context.Context, Scope) (Amount, error) { return Amount{}, errors.New("disk gone") })
	if _, err := bad.Account(t.Context(), s, Limits{USD: 1}); err == nil {
		t.Fatal("an account whose spend could not be read was handed out")
	}
}

// TestConcurrentReserveBound has many goroutines reserve near the cap at
// once: what they spend together never passes the cap when each spends
// at most its reservation, and passes it by no more than the sum of the
// estimate errors when they spend more.
func TestConcurrentReserveBound(t *testing.T) {
	t.Parallel()
	const workers, capTokens, per = 64, 10_000, 300
	for _, tc := range []struct {
		name  string
		spend int64 // per request
	}{{"exact", per}, {"under", per / 2}, {"over", per + 20}} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(nil)
			a, _ := l.Account(t.Context(), Scope{Period: PeriodSession, Session: "s"}, Limits{OutputTokens: capTokens})
			var spent, admitted atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for {
						r, ref := l.Reserve([]*Account{a}, Amount{OutputTokens: per})
						if ref != nil {
							return
						}
						admitted.Add(1)
						spent.Add(tc.spend)
						r.Settle(Amount{OutputTokens: tc.spend})
					}
				})
			}
			wg.Wait()
			over := spent.Load() - capTokens
			bound := int64(0)
			if tc.spend > per {
				// Every request in flight at once may pass its estimate.
				bound = int64(workers) * (tc.spend - per)
			}
			if over > bound {
				t.Fatalf("spent %d against a cap of %d: over by %d, bound %d", spent.Load(), capTokens, over, bound)
			}
			if st := l.State(a); st.Reserved != (Amount{}) {
				t.Fatalf("reserved %+v after every request settled, want none", st.Reserved)
			}
			if tc.spend <= per && spent.Load() < capTokens-per {
				t.Fatalf("spent %d: the cap of %d refused requests that fit", spent.Load(), capTokens)
			}
		})
	}
}

func TestGrow(t *testing.T) {
	t.Parallel()
	l := NewLedger(nil)
	a, _ := l.Account(t.Context(), Scope{Period: PeriodSession, Session: "s"}, Limits{InputTokens: 1000})
	r, _ := l.Reserve([]*Account{a}, Amount{InputTokens: 400})
	if ref := r.Grow(Amount{InputTokens: 900}); ref != nil {
		t.Fatalf("grow within the cap refused: %v", ref)
	}
	if ref := r.Grow(Amount{InputTokens: 1200}); ref == nil || ref.Cap != "input_tokens" {
		t.Fatalf("grow past the cap: got %v, want the input_tokens refusal", ref)
	}
	r.Settle(Amount{InputTokens: 1200})
	if st := l.State(a); st.Spent.InputTokens != 1200 || st.Reserved.InputTokens != 0 || !st.Exhausted {
		t.Fatalf("state = %+v, want 1200 spent, none reserved, exhausted", st)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"usd=5", "input=2M,output=200k", "runtime=2h", "tools=1,requests=9", "usd=1e308", "output=9223372036854775807k", ",", "=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		l, err := Parse(spec)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil || l.IsZero() {
			t.Fatalf("Parse(%q) = %+v, which Validate refuses (%v) or caps nothing", spec, l, err)
		}
		again, err := Parse(l.String())
		if err != nil || again != l {
			t.Fatalf("Parse(%q).String() = %q does not read back: %+v, %v", spec, l.String(), again, err)
		}
	})
}

// TestSettleReportsTheCrossingOnce: of the requests in flight when a cap
// is reached, only the settle that reached it reports the account; the
// others, settled past the cap, do not report it again.
func TestSettleReportsTheCrossingOnce(t *testing.T) {
	t.Parallel()
	l := NewLedger(nil)
	day, _ := l.Account(t.Context(), Scope{Period: PeriodDay, Profile: "p", Since: PeriodStart(PeriodDay, time.Now())}, Limits{OutputTokens: 100})
	var held []*Reservation
	for range 3 {
		r, ref := l.Reserve([]*Account{day}, Amount{OutputTokens: 10})
		if ref != nil {
			t.Fatalf("reservation refused: %v", ref)
		}
		held = append(held, r)
	}
	var reported []int
	for i, r := range held {
		// Each answer used more than it was estimated to.
		if ex := r.Settle(Amount{OutputTokens: 60}); len(ex) != 0 {
			reported = append(reported, i)
		}
	}
	if len(reported) != 1 || reported[0] != 1 {
		t.Fatalf("settles that reported the account exhausted: %v, want only the second (the one that reached the cap)", reported)
	}
}
