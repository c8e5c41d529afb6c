package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/dashboard"
)

// errNoAuditLog: with the audit log off there is no usage to plot.
var errNoAuditLog = errors.New("the audit log is off, so there is no usage to show")

// handleSpend is the Spend page's shell: no data, so the cookie alone
// opens it.
func (u *ui) handleSpend(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderSpend(w)
}

// handleSpendPlot answers one plot of the Spend page as JSON
// (dashboard.SpendPlot), handleSpendTable the table behind it as HTML
// rows and handleSpendCSV that table as CSV: all three from one
// dashboard.Spend, so the download is the table shown.
func (u *ui) handleSpendPlot(w http.ResponseWriter, r *http.Request) {
	if s, ok := u.spendOf(w, r); ok {
		writeJSON(w, http.StatusOK, s.Plot())
	}
}

func (u *ui) handleSpendTable(w http.ResponseWriter, r *http.Request) {
	if s, ok := u.spendOf(w, r); ok {
		dashboard.RenderSpendTable(w, s)
	}
}

func (u *ui) handleSpendCSV(w http.ResponseWriter, r *http.Request) {
	if s, ok := u.spendOf(w, r); ok {
		dashboard.WriteSpendCSV(w, s)
	}
}

// spendOf reads the request's query and builds its plot, or answers the
// error.
func (u *ui) spendOf(w http.ResponseWriter, r *http.Request) (dashboard.Spend, bool) {
	q, err := dashboard.ParseSpendQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", err.Error())
		return dashboard.Spend{}, false
	}
	s, err := u.spend(r.Context(), q, time.Now())
	switch {
	case errors.Is(err, errNoAuditLog):
		writeError(w, http.StatusServiceUnavailable, "audit_off", err.Error())
		return s, false
	case err != nil:
		u.log.Warn("spend page", "err", err)
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "the usage could not be read from the audit log")
		return s, false
	}
	return s, true
}

// spend is the plot of q at now: the usage series from the audit log's
// hourly summary (audit.UsageSeries: whole hours from the summary, only
// the summary's short tail from the records, so a request costs the same
// with a million records as with a hundred), priced with the table
// budgets use, and the profile budgets whose period is q's bucket.
func (u *ui) spend(ctx context.Context, q dashboard.SpendQuery, now time.Time) (dashboard.Spend, error) {
	if u.budgets.o.AuditPath == "" {
		return dashboard.Spend{}, errNoAuditLog
	}
	prices, err := u.budgets.prices.get()
	if err != nil {
		return dashboard.Spend{}, err
	}
	rows, err := audit.UsageSeries(ctx, u.budgets.o.AuditPath, audit.Filter{Since: q.Since(now)}, q.Bucket, q.By, prices.Cost)
	if err != nil {
		return dashboard.Spend{}, err
	}
	s := dashboard.NewSpend(q, now, rows, nil)
	if q.By == "profile" && q.Bucket != "hour" {
		for _, t := range s.Series {
			if t.Other > 0 {
				continue
			}
			// A profile removed since has no budget to draw.
			pb, err := u.budgets.profileBudget(context.Background(), t.Name)
			if err != nil {
				continue
			}
			s.Budgets = append(s.Budgets, budgetLines(t.Name, q.Bucket, *pb.Of(q.Bucket))...)
		}
	}
	return s, nil
}

// budgetLines are the caps of l (a budget of period) a plot can draw:
// cost, input and output tokens.
func budgetLines(profile, period string, l budget.Limits) []dashboard.BudgetLine {
	var out []dashboard.BudgetLine
	add := func(metric string, v float64) {
		if v > 0 {
			out = append(out, dashboard.BudgetLine{Name: profile, Period: period, Metric: metric, Cap: v})
		}
	}
	add("usd", l.USD)
	add("input", float64(l.InputTokens))
	add("output", float64(l.OutputTokens))
	return out
}
