//go:build linux

package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// nowScale is how many sessions TestDashboardNowScale starts.
const nowScale = 1000

// startSession starts a session of alias by the API, as 'profiles env'
// does, and returns its ID, token and base URL.
func startSession(t *testing.T, base, admin, alias string, sandboxed bool) (id, tok, baseURL string) {
	t.Helper()
	body := fmt.Sprintf(`{"profile":%q,"sandbox":%v}`, alias, sandboxed)
	req, err := http.NewRequest(http.MethodPost, base+"/api/sessions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		ID      string `json:"id"`
		Token   string `json:"token"`
		BaseURL string `json:"base_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("start a session of %s: got %d (%v)", alias, resp.StatusCode, err)
	}
	return st.ID, st.Token, st.BaseURL
}

// TestDashboardNowScale: with 1,000 live sessions the Now page holds one
// page of rows (the daemon pages, filters and sums), its pager walks the
// pages, a filter keeps what it says, a burst of sessions started
// meanwhile appears live on the first page from the event stream (the
// page fetched far fewer times than events came, a filter typed but not
// submitted left out, the focus kept on the summary's profile), a killed
// one disappears, and what an agent chose (a model name) or a filter
// typed stays text. No CSP violation, no complaint from chromium.
func TestDashboardNowScale(t *testing.T) {
	requireSandbox(t)
	requireChromium(t)
	w := newSBWorld(t, nil)
	base := "http://" + w.d.Addr
	admin := w.e.Token()

	// 1,000 sessions by the API, four at a time: profile p, and one in
	// four of profile q; one in three sandboxed.
	var mu sync.Mutex
	qCount := 0
	work := make(chan int)
	var wg sync.WaitGroup
	started := time.Now()
	for range 4 {
		wg.Go(func() {
			for i := range work {
				alias := "p"
				if i%4 == 0 {
					alias = "q"
				}
				startSession(t, base, admin, alias, i%3 == 0)
				if alias == "q" {
					mu.Lock()
					qCount++
					mu.Unlock()
				}
			}
		})
	}
	for i := range nowScale {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("started %d sessions by the API in %s", nowScale, time.Since(started).Round(time.Millisecond))
	// The newest: an agent that asks for a model whose name is markup.
	evilID, evilTok, evilBase := startSession(t, base, admin, "p", false)
	req, err := http.NewRequest(http.MethodPost, evilBase+"/v1/messages",
		strings.NewReader(fmt.Sprintf(`{"model":%q,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, evilModel)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", evilTok)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	live := nowScale + 1

	b := newBrowser(t, base)
	b.watchComplaints(t)
	ctx := b.ctx
	b.run(ctx, "open the link", chromedp.Navigate(uiLink(t, w)))
	b.waitText(ctx, "the summary of every session", fmt.Sprintf("%d live sessions", live))
	b.waitText(ctx, "the first page", fmt.Sprintf("1–50 of %d", live))
	type pageView struct {
		Rows   int
		First  string
		Range  string
		Markup int
		Pwned  any
		Evil   string
	}
	view := func(what string) pageView {
		return eval[pageView](b, ctx, what, `(() => {
			const rows = document.querySelectorAll('#sessions tr[data-session]');
			const evil = document.querySelector('#sessions tr[data-session="`+evilID+`"]');
			return {Rows: rows.length, First: rows.length ? rows[0].getAttribute('data-session') : '',
				Range: document.getElementById('now-range') ? document.getElementById('now-range').textContent : '',
				Markup: document.querySelectorAll('#page img, #page script').length,
				Pwned: window.pwned === undefined ? null : window.pwned, Evil: evil ? evil.innerText : ''};
		})()`)
	}
	first := view("the first page")
	if first.Rows != 50 || first.First != evilID {
		t.Fatalf("first page: got %d rows, the first %s; want 50, the newest (%s) first", first.Rows, first.First, evilID)
	}
	b.waitText(ctx, "the agent's model on its row", "model=")
	first = view("the first page, its last action")
	if !strings.Contains(first.Evil, "<script>window.pwned=1</script>") || first.Markup != 0 || first.Pwned != nil {
		t.Errorf("the agent's model name: row %q, %d img/script elements, window.pwned %v; want it as text", first.Evil, first.Markup, first.Pwned)
	}
	b.shot(ctx, "now-1000")

	// The pager: older, then newer again.
	b.click(ctx, "older", "#now-older")
	b.waitText(ctx, "the second page", fmt.Sprintf("51–100 of %d", live))
	if p := view("the second page"); p.Rows != 50 || p.First == evilID {
		t.Errorf("second page: got %d rows, first %s; want 50 others", p.Rows, p.First)
	}
	b.click(ctx, "newer", "#now-newer")
	b.waitText(ctx, "the first page again", fmt.Sprintf("1–50 of %d", live))

	// A filter: profile q.
	b.run(ctx, "filter by profile q", chromedp.SendKeys(`#now-filters input[name=profile]`, "q"))
	b.click(ctx, "filter", `#now-filters button[type=submit]`)
	b.waitText(ctx, "the filtered page", fmt.Sprintf("1–50 of %d matching", qCount))
	if others := eval[int](b, ctx, "rows of other profiles", `[...document.querySelectorAll('#sessions tr[data-session]')].filter(r => r.cells[0].firstChild.textContent !== 'q').length`); others != 0 {
		t.Errorf("filter profile q: %d rows of another profile", others)
	}
	// Markup typed in the text filter stays text (it matches nothing).
	b.run(ctx, "markup in the text filter", chromedp.SendKeys(`#now-filters input[name=q]`, `"><img src=x onerror="window.pwned=3">`))
	b.click(ctx, "filter", `#now-filters button[type=submit]`)
	b.waitText(ctx, "no match", "No live session matches the filter")
	if p := view("the empty page"); p.Rows != 0 || p.Markup != 0 || p.Pwned != nil {
		t.Errorf("markup in the filter: %d rows, %d img/script, pwned %v", p.Rows, p.Markup, p.Pwned)
	}
	b.click(ctx, "clear", `#now-filters button[type=reset]`)
	b.waitText(ctx, "the first page, no filter", fmt.Sprintf("1–50 of %d", live))

	// A burst of sessions starts: the first page shows them all without
	// a reload, fetched far fewer times than there were events (one
	// fetch for many). Meanwhile text typed in the filter but not
	// submitted stays out of the refreshes, and the keyboard's focus on
	// a profile of the summary stays on it as the summary is replaced.
	eval[bool](b, ctx, "count the page's loads", `(() => {
		window.sameLoad = true;
		window.nowLoads = 0;
		const f = window.fetch;
		window.fetch = function (u) {
			if (String(u).includes('/ui/now/sessions')) window.nowLoads++;
			return f.apply(this, arguments);
		};
		return true;
	})()`)
	b.run(ctx, "type a filter, not submitted", chromedp.SendKeys(`#now-filters input[name=q]`, "no-such-session"))
	b.poll(ctx, "the focus on profile q of the summary", `(() => { const p = document.querySelector('#now-summary button[data-profile="q"]'); p.focus(); return document.activeElement === p; })()`)
	const burst = 50
	var burstIDs sync.Map
	work = make(chan int)
	for range 4 {
		wg.Go(func() {
			for range work {
				id, _, _ := startSession(t, base, admin, "q", true)
				burstIDs.Store(id, true)
			}
		})
	}
	for i := range burst {
		work <- i
	}
	close(work)
	wg.Wait()
	var newest []string
	burstIDs.Range(func(k, _ any) bool { newest = append(newest, k.(string)); return true })
	live += burst
	b.waitText(ctx, "the summary counts them", fmt.Sprintf("%d live sessions", live))
	b.waitText(ctx, "the first page, unfiltered", fmt.Sprintf("1–50 of %d", live))
	type burstView struct {
		Loads   int
		Same    bool
		Rows    []string
		Focus   string
		Summary bool
	}
	v := eval[burstView](b, ctx, "the page after the burst", `({Loads: window.nowLoads, Same: window.sameLoad === true,
		Rows: [...document.querySelectorAll('#sessions tr[data-session]')].map(r => r.getAttribute('data-session')),
		Focus: document.activeElement ? document.activeElement.outerHTML.slice(0, 80) : '',
		Summary: !!document.activeElement && document.activeElement.matches('#now-summary button[data-profile="q"]')})`)
	if !v.Same {
		t.Error("the new sessions appeared by reloading the page; want them from the event stream")
	}
	if v.Loads < 1 || v.Loads > burst/2 {
		t.Errorf("the page loaded its rows %d times for %d sessions' events; want at least one and fewer than %d (events folded into one fetch)", v.Loads, burst, burst/2)
	}
	onPage := map[string]bool{}
	for _, id := range v.Rows {
		onPage[id] = true
	}
	for _, id := range newest {
		if !onPage[id] {
			t.Errorf("session %s of the burst is not on the first page (%d rows)", id, len(v.Rows))
		}
	}
	if !v.Summary {
		t.Errorf("after the summary's refresh the focus is on %q; want the summary's button of profile q", v.Focus)
	}
	t.Logf("%d sessions started: %d loads of the page", burst, v.Loads)
	b.click(ctx, "clear the typed filter", `#now-filters button[type=reset]`)
	b.waitText(ctx, "the first page after the clear", fmt.Sprintf("1–50 of %d", live))

	// Kill one of the burst from its row: it disappears, the count goes
	// down.
	b.click(ctx, "kill", `#sessions tr[data-session="`+newest[0]+`"] button.kill`)
	b.poll(ctx, "the killed row is gone", `!document.querySelector('#sessions tr[data-session="`+newest[0]+`"]')`)
	live--
	b.waitText(ctx, "the summary after the kill", fmt.Sprintf("%d live sessions", live))
	if p := view("after the kill"); p.Rows != 50 {
		t.Errorf("first page after the kill: got %d rows, want 50", p.Rows)
	}
	b.shot(ctx, "now-after-kill")
	b.checkComplaints(t, "Now")
}
