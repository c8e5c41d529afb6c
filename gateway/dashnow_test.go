package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/dashboard"
)

// nowWorld is a daemon (slWorld: profiles work and other, a fake clock)
// with a dashboard login, and the sessions it started, in start order.
type nowWorld struct {
	*slWorld
	cookie, key string
	started     []api.SessionStarted
}

func newNowWorld(t *testing.T) *nowWorld {
	t.Helper()
	w := &nowWorld{slWorld: newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})}
	code, _ := w.s.logins.NewCode()
	cookie, key, _, err := w.s.logins.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	w.cookie, w.key = cookie, key
	return w
}

// start starts n sessions, alternating the two profiles, one in three
// sandboxed; the clock moves a second after every second session, so
// pairs start at the same instant (their order is by ID). The first of
// each profile starts by the API; the others are made as it is and put
// in the table with their session.start record (starting 1,000 by the
// API writes the agents' HOMEs and the store 1,000 times: minutes under
// -race).
func (w *nowWorld) start(t *testing.T, n int) {
	t.Helper()
	for range n {
		i := len(w.started)
		alias := "work"
		if i%2 == 1 {
			alias = "other"
		}
		sandboxed := i%3 == 0
		var st api.SessionStarted
		if i < 2 {
			extra := ""
			if sandboxed {
				extra = `,"sandbox":true`
			}
			st = w.envSession(t, alias, extra)
		} else {
			st = w.add(t, alias, sandboxed)
		}
		w.started = append(w.started, st)
		// What the audit log does after each commit (the test's
		// auditor does not): the Now page sees the record.
		w.s.PublishRecords([]audit.Record{{Time: time.Now().UTC(), Kind: audit.KindSessionStart, Profile: alias, Session: st.ID, Actor: audit.ActorAdmin,
			Decision: audit.Allow}})
		if i%2 == 1 {
			w.clock.Advance(time.Second)
		}
	}
}

// add puts a session of alias like its first one in the table.
func (w *nowWorld) add(t *testing.T, alias string, sandboxed bool) api.SessionStarted {
	t.Helper()
	proto := w.s.sessions.get(w.started[0].ID)
	if alias == "other" {
		proto = w.s.sessions.get(w.started[1].ID)
	}
	id, err := randomString(8, hex.EncodeToString)
	if err != nil {
		t.Fatal(err)
	}
	now := w.clock.Now().UTC()
	sess := &session{ID: "s_" + id, Profile: proto.Profile, Provider: proto.Provider, Agent: proto.Agent, base: proto.base, key: proto.key,
		hash: sha256.Sum256([]byte(id)), Created: now, Deadline: now.Add(24 * time.Hour), clock: w.clock, Sandboxed: sandboxed, Home: proto.Home}
	sess.lastUsed.Store(now.UnixNano())
	sess.ctx, sess.cancel = context.WithCancelCause(context.Background())
	w.s.sessions.add(sess)
	return api.SessionStarted{SessionInfo: sess.info()}
}

// order is the IDs of the live sessions the Now page should show, in
// its order: newest start first, ties by ID descending.
func (w *nowWorld) order(keep func(api.SessionStarted) bool, ended map[string]bool) []string {
	var ss []api.SessionStarted
	for _, s := range w.started {
		if !ended[s.ID] && (keep == nil || keep(s)) {
			ss = append(ss, s)
		}
	}
	slices.SortFunc(ss, func(a, b api.SessionStarted) int {
		return cmpNow(nowKey{a.Created.UnixNano(), a.ID}, nowKey{b.Created.UnixNano(), b.ID})
	})
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

// nowAnswer is what a page of the Now page says.
type nowAnswer struct {
	status                  int
	body                    string
	ids                     []string
	older, newer, rangeText string
	hasNewer                bool
}

var (
	reSession = regexp.MustCompile(`<tr data-session="([^"]+)"`)
	reOlder   = regexp.MustCompile(`data-after="([^"]*)"`)
	reNewer   = regexp.MustCompile(`data-before="([^"]*)"`)
	reRange   = regexp.MustCompile(`id="now-range">([^<]*)<`)
)

func (w *nowWorld) page(t *testing.T, q url.Values) nowAnswer {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://"+testHost+"/ui/now/sessions?"+q.Encode(), nil)
	r.Header.Set("Cookie", dashboard.CookieName(testPort)+"="+w.cookie)
	r.Header.Set(dashboard.KeyHeader, w.key)
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, r)
	a := nowAnswer{status: rec.Code, body: rec.Body.String()}
	for _, m := range reSession.FindAllStringSubmatch(a.body, -1) {
		a.ids = append(a.ids, m[1])
	}
	if m := reOlder.FindStringSubmatch(a.body); m != nil {
		a.older = m[1]
	}
	if m := reNewer.FindStringSubmatch(a.body); m != nil {
		a.newer, a.hasNewer = m[1], true
	}
	if m := reRange.FindStringSubmatch(a.body); m != nil {
		a.rangeText = m[1]
	}
	return a
}

// TestNowPagePaging: with 1,000 live sessions the Now page's rows are one
// page of 50 in a stable order (newest first, ties by ID), with counts
// and sums of all; Older and Newer walk the pages; a session that ends
// between two pages neither repeats nor hides another; the filters count
// and page what they keep; a filter or cursor that does not parse is a
// 400 that says why.
func TestNowPagePaging(t *testing.T) {
	w := newNowWorld(t)
	w.start(t, 1000)
	all := w.order(nil, nil)

	first := w.page(t, url.Values{})
	if first.status != http.StatusOK {
		t.Fatalf("first page: got %d %s", first.status, first.body)
	}
	if !slices.Equal(first.ids, all[:50]) {
		t.Fatalf("first page: got %d rows %v, want the 50 newest %v", len(first.ids), first.ids, all[:50])
	}
	for _, want := range []string{"<strong>1000</strong> live sessions, 334 sandboxed", `666 not</strong>`, `data-profile="work"`, `data-profile="other"`} {
		if !strings.Contains(first.body, want) {
			t.Errorf("first page's summary: want %q in\n%.2000s", want, first.body)
		}
	}
	if first.rangeText != "1–50 of 1000" || first.hasNewer || first.older == "" {
		t.Errorf("first page's pager: got range %q, newer %v, older %q; want 1–50 of 1000, no newer, an older cursor", first.rangeText, first.hasNewer, first.older)
	}

	// Walk every page; between two of them, a session of the next page
	// and one already seen end.
	ended := map[string]bool{}
	var seen []string
	var pages []nowAnswer
	for p, cursor := first, ""; ; {
		seen = append(seen, p.ids...)
		pages = append(pages, p)
		if len(pages) == 3 {
			for _, id := range []string{all[155], all[10]} {
				decode(t, w.do(t, testToken, http.MethodDelete, "/api/sessions/"+id, ""), http.StatusOK, &struct{}{})
				ended[id] = true
			}
		}
		if p.older == "" {
			break
		}
		if p.older == cursor || len(pages) > 30 {
			t.Fatalf("paging does not move on: cursor %q", cursor)
		}
		cursor = p.older
		p = w.page(t, url.Values{"after": {cursor}})
		if p.status != http.StatusOK || len(p.ids) == 0 {
			t.Fatalf("page %d: got %d with %d rows", len(pages)+1, p.status, len(p.ids))
		}
	}
	want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == all[155] })
	if !slices.Equal(seen, want) {
		t.Errorf("the pages walked: got %d sessions, want the %d live when each was read, each once, in order", len(seen), len(want))
	}
	if len(pages) != 20 {
		t.Errorf("pages: got %d, want 20", len(pages))
	}
	live := w.order(nil, ended)
	// Its rows' places are counted among the sessions live now: one
	// ended before them.
	if last := pages[len(pages)-1]; last.rangeText != "950–998 of 998" || len(last.ids) != 49 {
		t.Errorf("last page: got %d rows, range %q, want 49, 950–998 of 998", len(last.ids), last.rangeText)
	}

	// The third page is the same sessions as before (its cursor holds
	// it in place); Newer from it is the 50 sessions before it, a page
	// that is now the first (a session of the first page ended).
	third := w.page(t, url.Values{"after": {pages[1].older}})
	if !slices.Equal(third.ids, all[100:150]) || third.newer == "" || third.rangeText != "100–149 of 998" {
		t.Fatalf("third page: got %d rows, range %q, newer %q; want the same 50 as before, 100–149 of 998", len(third.ids), third.rangeText, third.newer)
	}
	second := w.page(t, url.Values{"before": {third.newer}})
	if !slices.Equal(second.ids, all[50:100]) || !second.hasNewer || second.newer != "" {
		t.Errorf("newer than the third page: got %v (newer %q %v), want the 50 before it and a newer page that is the first", second.ids, second.newer, second.hasNewer)
	}
	// A cursor past every session (all of its page ended): the last page.
	if p := w.page(t, url.Values{"after": {fmt.Sprintf("%d.s_0", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())}}); !slices.Equal(p.ids, live[len(live)-50:]) {
		t.Errorf("after the last session: got %d rows, want the last page", len(p.ids))
	}

	// Filters.
	for _, tc := range []struct {
		name string
		q    url.Values
		keep func(api.SessionStarted) bool
	}{
		{"profile", url.Values{"profile": {"other"}}, func(s api.SessionStarted) bool { return s.Profile == "other" }},
		{"sandboxed", url.Values{"state": {"sandboxed"}}, func(s api.SessionStarted) bool { return s.Sandboxed }},
		{"not sandboxed, work", url.Values{"state": {"unsandboxed"}, "profile": {"work"}}, func(s api.SessionStarted) bool { return !s.Sandboxed && s.Profile == "work" }},
		{"text, one id", url.Values{"q": {strings.ToUpper(all[500][2:])}}, func(s api.SessionStarted) bool { return s.ID == all[500] }},
		{"text, agent", url.Values{"q": {"CLAUDE"}}, nil},
		{"active", url.Values{"state": {"active"}}, nil},
		{"idle", url.Values{"state": {"idle"}}, func(api.SessionStarted) bool { return false }},
		{"nothing", url.Values{"profile": {"nope"}}, func(api.SessionStarted) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := w.page(t, tc.q)
			want := w.order(tc.keep, ended)
			rng := "0 matching"
			if len(want) > 0 {
				rng = fmt.Sprintf("1–%d of %d matching", min(len(want), 50), len(want))
			}
			if len(want) > 50 {
				want = want[:50]
			}
			if p.status != http.StatusOK || !slices.Equal(p.ids, want) || p.rangeText != rng {
				t.Errorf("got %d, %d rows, range %q; want 200, %d rows %v..., range %q", p.status, len(p.ids), p.rangeText, len(want), want[:min(len(want), 3)], rng)
			}
			if !strings.Contains(p.body, "<strong>998</strong> live sessions") {
				t.Error("the summary is not of every live session")
			}
			if len(want) == 0 && !strings.Contains(p.body, "No live session matches the filter") {
				t.Errorf("no match: got\n%s\nwant it said", p.body)
			}
		})
	}
	for _, q := range []url.Values{{"state": {"dead"}}, {"after": {"x"}}, {"limit": {"0"}}, {"limit": {"201"}}, {"after": {first.older}, "before": {first.older}}} {
		if p := w.page(t, q); p.status != http.StatusBadRequest || !strings.Contains(p.body, `role="alert"`) || len(p.ids) != 0 {
			t.Errorf("%v: got %d %s, want 400 saying why", q, p.status, p.body)
		}
	}
}

// TestNowPageBoundedWork: a page costs the same whatever the number of
// live sessions: the allocations of one request for a page of 10 rows
// with 1,000 sessions live are those with 10 live, give or take a few
// (the sessions are filtered and summed in place; only the page's rows
// are built and rendered). Counted, not timed.
func TestNowPageBoundedWork(t *testing.T) {
	w := newNowWorld(t)
	allocs := func() float64 {
		q := url.Values{"limit": {"10"}}
		if p := w.page(t, q); len(p.ids) != 10 {
			t.Errorf("got %d rows, want 10", len(p.ids))
		}
		return testing.AllocsPerRun(20, func() { w.page(t, q) })
	}
	w.start(t, 10)
	few := allocs()
	w.start(t, 990)
	many := allocs()
	t.Logf("allocations per page: %.0f with 10 sessions, %.0f with 1,000", few, many)
	if many > few*1.1+20 {
		t.Errorf("allocations per page: %.0f with 1,000 sessions, want about those with 10 (%.0f)", many, few)
	}
	// The sessions were all counted all the same.
	if p := w.page(t, url.Values{"limit": {"10"}}); !strings.Contains(p.body, "<strong>1000</strong> live sessions") {
		t.Errorf("summary: got\n%.1500s", p.body)
	}
}
