package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// budgetedSession starts a session of a new profile alias with budget b.
func (bs *benchSetup) budgetedSession(b testing.TB, alias string, bud budget.Budget) (*session, string) {
	b.Helper()
	o := bs.srv.opts
	cat, err := profile.LoadCatalog(o.CatalogDir)
	if err != nil {
		b.Fatal(err)
	}
	p, err := o.Profiles.Get("bench")
	if err != nil {
		b.Fatal(err)
	}
	p.Alias, p.Budget = alias, bud
	if _, err := o.Profiles.Create(cat, p); err != nil {
		b.Fatal(err)
	}
	if err := copyKey(o, alias); err != nil {
		b.Fatal(err)
	}
	benchnet.Settle(b, o.CatalogDir)
	sess, tok, err := bs.srv.sessions.start(context.Background(), alias, time.Hour, audit.ActorAdmin)
	if err != nil {
		b.Fatal(err)
	}
	return sess, tok
}

func copyKey(o Options, alias string) error {
	k, err := o.Keys.Get(profile.Profile{Alias: "bench", Provider: "fake"}.CredentialRef())
	if err != nil {
		return err
	}
	_, err = o.Keys.Set(profile.Profile{Alias: alias, Provider: "fake"}.CredentialRef(), k)
	return err
}

// maxTokensUpstream answers every Messages request with output usage of
// its max_tokens times pct/100: at 100 the provider uses all the request
// allows (the reservation is exact), above it the provider passes it.
func maxTokensUpstream(pct int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			MaxTokens int64 `json:"max_tokens"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req) // a bad body answers 0 tokens
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"m","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":%d}}`,
			req.MaxTokens*pct/100)
	})
}

// BenchmarkBudgetOvershoot: 32 clients send requests as fast as they can
// against a session's output-token cap of 50 requests' worth, until each
// is refused. It prints what was spent past the cap: 0 when the provider
// keeps to max_tokens (the reservation is the worst case), and at most
// one reservation's estimate error per request in flight when it does not
// (the upstream answering 10% past max_tokens).
func BenchmarkBudgetOvershoot(b *testing.B) {
	const workers, perReq, requests = 32, 1024, 50
	for _, pct := range []int64{100, 110} {
		b.Run(fmt.Sprintf("provider-%d%%", pct), func(b *testing.B) {
			var over, admitted []float64
			for range b.N {
				bs := newBenchSetupWith(b, maxTokensUpstream(pct))
				sess, tok := bs.budgetedSession(b, "tight", budget.Budget{OnExhaust: budget.ActionRefuse,
					Session: budget.Limits{OutputTokens: requests * perReq}})
				var ok atomic.Int64
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for {
							req, _ := http.NewRequest("POST", bs.ringlet+"/v1/messages", bytes.NewReader(benchnet.Body))
							req.Header.Set("Content-Type", "application/json")
							req.Header.Set("Anthropic-Version", "2023-06-01")
							req.Header.Set("X-Api-Key", tok)
							resp, err := bs.client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != http.StatusOK {
								return
							}
							ok.Add(1)
						}
					})
				}
				wg.Wait()
				st, _, err := bs.srv.budgets.sessionState(context.Background(), sess)
				if err != nil {
					b.Fatal(err)
				}
				over = append(over, float64(st.Spent.OutputTokens-requests*perReq))
				admitted = append(admitted, float64(ok.Load()))
			}
			slices.Sort(over)
			b.ReportMetric(over[len(over)-1], "max-overshoot-tokens")
			b.ReportMetric(float64(workers*perReq*(pct-100)/100), "bound-tokens")
			b.ReportMetric(admitted[len(admitted)/2], "admitted-requests")
			b.ReportMetric(0, "ns/op")
			b.Logf("32 clients against a cap of %d output tokens (%d requests of max_tokens %d), provider at %d%% of max_tokens: overshoot %v tokens (bound %d), admitted %v",
				requests*perReq, requests, perReq, pct, over, workers*perReq*(pct-100)/100, admitted)
		})
	}
}

// BenchmarkBudgetCost: what the budget check adds to the proxy path: the
// same requests through a session with no budget and through one whose
// session and day budgets are never reached, interleaved, at concurrency
// 1 (p50 latency) and 32 (throughput).
func BenchmarkBudgetCost(b *testing.B) {
	bs := newBenchSetup(b, 0)
	_, tok := bs.budgetedSession(b, "budgeted", budget.Budget{
		Session: budget.Limits{OutputTokens: 1 << 50, Requests: 1 << 50},
		Day:     budget.Limits{InputTokens: 1 << 50, Requests: 1 << 50}})
	plain := bs.bench
	budgeted := &benchnet.Client{HTTP: bs.client, Upstream: bs.direct, Token: tok}
	for range 50 {
		if err := plain.Post(bs.ringlet); err != nil {
			b.Fatal(err)
		}
		if err := budgeted.Post(bs.ringlet); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var lp, lb []time.Duration
	for range b.N {
		for _, c := range []struct {
			cl  *benchnet.Client
			lat *[]time.Duration
		}{{plain, &lp}, {budgeted, &lb}} {
			start := time.Now()
			if err := c.cl.Post(bs.ringlet); err != nil {
				b.Fatal(err)
			}
			*c.lat = append(*c.lat, time.Since(start))
		}
	}
	var ratios []float64
	for range 5 {
		rp, err := plain.Rate(bs.ringlet, 32, 40)
		if err != nil {
			b.Fatal(err)
		}
		rb, err := budgeted.Rate(bs.ringlet, 32, 40)
		if err != nil {
			b.Fatal(err)
		}
		ratios = append(ratios, rp/rb)
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(us(p50(lp)), "c1-no-budget-p50-µs")
	b.ReportMetric(us(p50(lb)), "c1-budget-p50-µs")
	b.ReportMetric(float64(p50(lb))/float64(p50(lp)), "c1-latency-ratio")
	b.ReportMetric(ratios[len(ratios)/2], "c32-time-per-req-ratio")
	b.ReportMetric(0, "ns/op")
	b.Logf("c32 time-per-request ratios (budget / no budget), 5 runs: %.3f", ratios)
}
