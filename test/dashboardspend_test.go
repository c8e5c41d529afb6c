//go:build linux

package test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// csvModel is a model name an agent chose to run in a spreadsheet that
// opens the Spend page's CSV.
const csvModel = `=HYPERLINK("http://evil.example/","click")`

// TestDashboardSpend drives the Spend page in a real browser against a
// real daemon and the fake provider: sessions of two profiles spend
// tokens with three models (one a formula, one markup); the plots show
// every series and the daily budget as a line; each table's totals are
// what 'ringlet usage --json' says; a new request moves the page through
// the event stream; the CSV download is the table cell for cell with the
// formula neutralised; no CSP violation is reported; a page on another
// port and the cookie without the page key get nothing.
func TestDashboardSpend(t *testing.T) {
	requireChromium(t)
	w := newProxyWorld(t)
	base := w.d.URL
	const sonnet = "claude-sonnet-4-5-20250929"
	mustRun(t, w.e, "prices", "import", "../provider/testdata/prices/litellm.json")
	w.newProfile("generic", "alpha", "fake", "--command", "true", "--model", sonnet)
	w.newProfile("generic", "beta", "fake", "--command", "true")
	mustRun(t, w.e, "budgets", "set", "alpha", "--day", "usd=5,output=100k")
	w.fake.Usage.Store(&fakeprovider.Usage{Input: 1000, Output: 200, CacheRead: 30, CacheWrite: 4})
	sa, sb := w.startSession("alpha"), w.startSession("beta")
	ask := func(s proxySession, model string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"model": model, "max_tokens": 64, "messages": []any{map[string]string{"role": "user", "content": "hi"}}})
		if status, _, b := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), string(body)); status != 200 {
			t.Fatalf("request for %q: got %d %s, want 200", model, status, b)
		}
	}
	ask(sa, sonnet)
	ask(sa, sonnet)
	ask(sb, csvModel)
	ask(sb, evilModel)
	w.waitRecords(t, sa.ID, 2)
	w.waitRecords(t, sb.ID, 2)

	b := newBrowser(t, base)
	ctx := b.ctx
	b.watchComplaints(t)
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatalf("downloads: %v", err)
	}

	b.run(ctx, "open the link", chromedp.Navigate(strings.TrimSpace(mustRun(t, w.e, "ui", "--no-browser"))))
	b.waitText(ctx, "the Now page after login", "Live sessions")
	b.click(ctx, "the Spend link", `nav a[href="/ui/spend"]`)
	b.waitText(ctx, "the Spend page", "By model")
	b.poll(ctx, "the plots and tables", `document.body.getAttribute('data-spend-loaded') >= 1`)
	b.waitText(ctx, "the live stream", "live")

	// Both plots: every series in the legend (set as text), the budget as
	// a line on alpha's series, nothing from the markup model ran.
	type plotView struct {
		Profile, Model []string
		Canvases       int
		Markup         int
		Pwned          any
	}
	labels := func(by string) string {
		return `[...document.querySelectorAll('#plot-` + by + ` .u-legend .u-series:not(:first-child) th')].map(e => e.textContent).filter(s => s !== '')`
	}
	pv := eval[plotView](b, ctx, "read the plots", `({Profile: `+labels("profile")+`, Model: `+labels("model")+`,
		Canvases: document.querySelectorAll('.plot canvas').length,
		Markup: document.querySelectorAll('#page img, #page script').length, Pwned: window.pwned === undefined ? null : window.pwned})`)
	wantProfile := []string{"alpha", "beta", "budget alpha (day)"}
	if fmt.Sprint(pv.Profile) != fmt.Sprint(wantProfile) {
		t.Errorf("legend of the plot by profile: got %q, want %q (the day's USD budget as a line)", pv.Profile, wantProfile)
	}
	for _, m := range []string{sonnet, csvModel, evilModel} {
		if !strings.Contains(strings.Join(pv.Model, "\n"), m) {
			t.Errorf("legend of the plot by model: got %q, want %q in it as text", pv.Model, m)
		}
	}
	if pv.Canvases != 2 || pv.Markup != 0 || pv.Pwned != nil {
		t.Errorf("plots: %d canvases (want 2), %d img/script elements from names (want 0), window.pwned %v", pv.Canvases, pv.Markup, pv.Pwned)
	}
	// Output tokens: the budget's output cap is the line there.
	eval[bool](b, ctx, "plot output tokens", `(() => { const s = document.getElementById('spend-metric'); s.value = 'output';
		s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`)
	b.poll(ctx, "the output budget line", `[...document.querySelectorAll('#plot-profile .u-legend .u-series')].some(e => e.textContent.includes('budget alpha (day)') && e.textContent.includes('100000'))`)
	b.shot(ctx, "spend")

	// The tables' totals are what 'ringlet usage --json' says.
	checkTotals := func(by string) {
		t.Helper()
		var rep struct {
			Rows []struct {
				Key        string
				Requests   int64
				Input      int64    `json:"input_tokens"`
				Output     int64    `json:"output_tokens"`
				CacheRead  int64    `json:"cache_read_tokens"`
				CacheWrite int64    `json:"cache_write_tokens"`
				CostUSD    *float64 `json:"cost_usd"`
			}
		}
		if err := json.Unmarshal([]byte(mustRun(t, w.e, "usage", "--by", by, "--json")), &rep); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{}
		for _, r := range rep.Rows {
			cost := "unpriced"
			if r.CostUSD != nil {
				cost = strconv.FormatFloat(*r.CostUSD, 'f', 6, 64)
			}
			i := func(v int64) string { return strconv.FormatInt(v, 10) }
			want[r.Key] = []string{"total", r.Key, i(r.Requests), i(r.Input), i(r.Output), i(r.CacheRead), i(r.CacheWrite), cost}
		}
		got := map[string][]string{}
		for _, row := range eval[[][]string](b, ctx, "the totals by "+by,
			`[...document.querySelectorAll('#table-`+by+` tr.total')].map(r => [...r.cells].map(c => c.textContent))`) {
			got[row[1]] = row
		}
		if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("totals by %s:\ngot  %q\nwant %q (ringlet usage --by %s --json)", by, got, want, by)
		}
	}
	checkTotals("profile")
	checkTotals("model")

	// A new request shows without a reload, from the event stream.
	eval[bool](b, ctx, "mark the page", `window.sameLoad = true`)
	ask(sb, csvModel)
	b.poll(ctx, "the new request in the table", `[...document.querySelectorAll('#table-profile tr.total')].some(r => r.cells[1].textContent === 'beta' && r.cells[2].textContent === '3')`)
	if !eval[bool](b, ctx, "same page", `window.sameLoad === true`) {
		t.Error("the table moved by reloading the page; want it from the event stream")
	}
	checkTotals("profile")
	checkTotals("model")

	// The CSV download is the table, the formula neutralised.
	table := eval[[][]string](b, ctx, "the table by model", `[...document.querySelectorAll('#table-model tr')].map(r => [...r.cells].map(c => c.textContent))`)
	b.click(ctx, "download the CSV", `button[data-csv="model"]`)
	file := filepath.Join(downloads, "ringlet-spend-by-model-per-day-7d.csv")
	if !waitFor(browserTimeout, func() bool { _, err := os.Stat(file); return err == nil }) {
		entries, _ := os.ReadDir(downloads)
		t.Fatalf("no CSV downloaded to %s; the folder has %v", file, entries)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		t.Fatalf("the CSV: %v\n%s", err, data)
	}
	if len(got) != len(table) || len(got) < 2 {
		t.Fatalf("the CSV has %d rows, the table %d:\n%s", len(got), len(table), data)
	}
	neutralised := 0
	for i := range table {
		for j, cell := range table[i] {
			want := cell
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@") {
				want = "'" + cell
				neutralised++
			}
			if got[i][j] != want {
				t.Errorf("CSV row %d cell %d: got %q, want %q (the table's, neutralised)", i, j, got[i][j], want)
			}
		}
	}
	if neutralised != 2 || !strings.Contains(string(data), `"'=HYPERLINK(""http://evil.example/""`) {
		t.Errorf("the CSV: %d cells neutralised, want the formula model's 2 (its bucket row and total):\n%s", neutralised, data)
	}

	// No CSP violation, no console error, on the page the whole time.
	b.checkComplaints(t, "Spend")

	// The cookie replayed without the page key: the shell, and nothing of
	// the plots, tables or CSV. A page on another port of localhost
	// reads nothing, even with a page key guessed.
	checkOutsiders(t, b, ctx, base, outsiders{page: "/ui/spend", name: "the Spend page",
		data: []dashRoute{
			{http.MethodGet, "/ui/spend/plot?by=model"}, {http.MethodGet, "/ui/spend/table?by=model"},
			{http.MethodGet, "/ui/spend/csv?by=model"}, {http.MethodGet, "/ui/spend/csv?by=profile"},
		},
		hidden: []string{"HYPERLINK", "alpha"},
		fetches: []crossFetch{
			{method: http.MethodGet, path: "/ui/spend/plot?by=model", guessKey: true},
			{method: http.MethodGet, path: "/ui/spend/csv?by=model", guessKey: true},
			{method: http.MethodGet, path: "/ui/spend/table?by=profile", guessKey: true},
		}})

	// Every answer of the daemon had the dashboard's headers.
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := 0
	for url, h := range b.responses {
		if !strings.Contains(url, "/ui/spend") && !strings.Contains(url, "/vendor/") {
			continue
		}
		seen++
		if csp := fmt.Sprint(h["Content-Security-Policy"]) + fmt.Sprint(h["content-security-policy"]); !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q, want the dashboard's", url, csp)
		}
	}
	if seen < 5 {
		t.Errorf("answers of the Spend page seen: %d, want its shell, uPlot's files, plots and tables", seen)
	}
}
