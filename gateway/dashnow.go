package gateway

import (
	"cmp"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neullabs/ringlet/dashboard"
)

// The Now page's paging: the daemon filters, counts and sums every live
// session in memory (no audit query: a session's spend is kept as its
// records are written, activity) and hands the browser one page of rows.
// Only the page's rows cost more than a comparison each: their budgets
// are read (each account loaded once, then kept by the ledger) and they
// are rendered.

const (
	// nowPageRows is how many rows a page holds unless asked for
	// another size, up to nowMaxRows.
	nowPageRows = 50
	nowMaxRows  = 200
	// nowTopProfiles is how many profiles the summary names.
	nowTopProfiles = 12
	// nowActive: a session with a record in the last five minutes is
	// active, else idle.
	nowActive = 5 * time.Minute
)

// nowStates are the values of the state filter.
var nowStates = []string{"sandboxed", "unsandboxed", "active", "idle"}

// nowQuery is a request for a page of the Now page: its filter, and the
// cursor of the page (after: the rows older than it; before: the rows
// newer than it; neither: the first page).
type nowQuery struct {
	profile, state, text string
	after, before        *nowKey
	limit                int
}

// nowKey is a session's place in the Now page's order: newest start
// first, ties by ID (descending), so the order is total and stable while
// sessions come and go.
type nowKey struct {
	created int64 // unix ns
	id      string
}

// cmpNow orders a before b when a comes first on the page.
func cmpNow(a, b nowKey) int {
	return cmp.Or(cmp.Compare(b.created, a.created), cmp.Compare(b.id, a.id))
}

func (k nowKey) String() string {
	return strconv.FormatInt(k.created, 10) + "." + k.id
}

func parseNowKey(s string) (*nowKey, error) {
	nanos, id, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil || id == "" || len(s) > 200 {
		return nil, errors.New("the cursor is not one of this page's; go back to the first page")
	}
	return &nowKey{created: n, id: id}, nil
}

// parseNowQuery reads a page's query; what does not parse is an error
// that says what to do.
func parseNowQuery(v url.Values) (nowQuery, error) {
	q := nowQuery{profile: strings.TrimSpace(v.Get("profile")), state: v.Get("state"), text: strings.TrimSpace(v.Get("q")), limit: nowPageRows}
	if q.state != "" && !slices.Contains(nowStates, q.state) {
		return q, errors.New("the state filter is one of " + strings.Join(nowStates, ", ") + ", or empty for any")
	}
	if len(q.profile) > 200 || len(q.text) > 200 {
		return q, errors.New("a filter is at most 200 characters")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > nowMaxRows {
			return q, errors.New("limit is a number from 1 to " + strconv.Itoa(nowMaxRows))
		}
		q.limit = n
	}
	var err error
	if s := v.Get("after"); s != "" {
		if q.after, err = parseNowKey(s); err != nil {
			return q, err
		}
	}
	if s := v.Get("before"); s != "" {
		if q.after != nil {
			return q, errors.New("a page is after a cursor or before one, not both")
		}
		if q.before, err = parseNowKey(s); err != nil {
			return q, err
		}
	}
	return q, nil
}

func (q nowQuery) filtered() bool { return q.profile != "" || q.state != "" || q.text != "" }

// nowEntry is a live session in the page's order: small, as every
// session the filter keeps is sorted.
type nowEntry struct {
	key  nowKey
	sess *session
}

// matches reports whether the filter keeps s, whose last record was at
// last.
func (q nowQuery) matches(s *session, last, now time.Time) bool {
	if q.profile != "" && s.Profile.Alias != q.profile {
		return false
	}
	switch q.state {
	case "sandboxed":
		if !s.Sandboxed {
			return false
		}
	case "unsandboxed":
		if s.Sandboxed {
			return false
		}
	case "active", "idle":
		if active := now.Sub(last) < nowActive; active != (q.state == "active") {
			return false
		}
	}
	if q.text != "" && !containsFold(s.ID, q.text) && !containsFold(s.Profile.Alias, q.text) && !containsFold(s.Profile.Agent, q.text) {
		return false
	}
	return true
}

// containsFold is strings.Contains ignoring ASCII case, without
// lowering copies of either (it runs for every live session).
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// nowSelect filters, sums and pages the live sessions: the page's
// sessions, in order, and the page without its rows.
func (u *ui) nowSelect(q nowQuery, now time.Time) ([]*session, dashboard.NowPage) {
	clock := u.sessions.clock.Now()
	page := dashboard.NowPage{Now: now, Sessions: []dashboard.SessionRow{}, Filtered: q.filtered()}
	all := u.sessions.snapshot()
	matching := make([]nowEntry, 0, len(all))
	profiles := map[string]*dashboard.ProfileSum{}
	sum := &page.Summary
	for _, s := range all {
		if _, over := s.expired(clock); over {
			// Its timer ends it; until then it is not shown.
			continue
		}
		usd, priced, last := s.acts.spend()
		sum.Live++
		if s.Sandboxed {
			sum.Sandboxed++
		}
		p := profiles[s.Profile.Alias]
		if p == nil {
			p = &dashboard.ProfileSum{Profile: s.Profile.Alias}
			profiles[s.Profile.Alias] = p
		}
		p.Sessions++
		if priced {
			sum.USD += usd
			sum.Priced = true
			p.USD += usd
		}
		if q.matches(s, last, now) {
			matching = append(matching, nowEntry{key: nowKey{created: s.Created.UnixNano(), id: s.ID}, sess: s})
		}
	}
	for _, p := range profiles {
		sum.Profiles = append(sum.Profiles, *p)
	}
	slices.SortFunc(sum.Profiles, func(a, b dashboard.ProfileSum) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(a.Profile, b.Profile))
	})
	if len(sum.Profiles) > nowTopProfiles {
		sum.OtherProfiles = len(sum.Profiles) - nowTopProfiles
		sum.Profiles = sum.Profiles[:nowTopProfiles]
	}

	slices.SortFunc(matching, func(a, b nowEntry) int { return cmpNow(a.key, b.key) })
	page.Matching = len(matching)
	start := 0
	switch {
	case q.after != nil:
		// The first row after the cursor: sessions ended meanwhile are
		// not counted, so none after it is skipped or shown twice.
		start, _ = slices.BinarySearchFunc(matching, *q.after, func(e nowEntry, k nowKey) int {
			if cmpNow(e.key, k) <= 0 {
				return -1
			}
			return 1
		})
	case q.before != nil:
		end, _ := slices.BinarySearchFunc(matching, *q.before, func(e nowEntry, k nowKey) int { return cmpNow(e.key, k) })
		// A page before the first one is the first page, full.
		start = max(end-q.limit, 0)
	}
	if q.after != nil && start == len(matching) {
		// Every session of the page ended: the last page instead.
		start = max(len(matching)-q.limit, 0)
	}
	end := min(start+q.limit, len(matching))
	rows := matching[start:end]
	out := make([]*session, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].sess)
	}
	if len(rows) > 0 {
		page.From, page.To = start+1, end
	}
	if start > 0 {
		if start <= q.limit {
			page.NewerFirst = true
		} else {
			page.Newer = rows[0].key.String()
		}
	}
	if end < len(matching) {
		page.Older = rows[len(rows)-1].key.String()
	}
	return out, page
}

// snapshot is every session in the table, in no order: one short read
// lock, no sorting (the Now page sorts only what its filter keeps).
func (t *sessionTable) snapshot() []*session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*session, 0, len(t.byID))
	for _, s := range t.byID {
		out = append(out, s)
	}
	return out
}

// spend is what the summary needs of a session's activity.
func (a *activity) spend() (usd float64, priced bool, last time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.usd, a.priced, a.lastTime
}
