package audit

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	// queryNow is "now" for relative times.
	queryNow = time.Date(2026, 5, 10, 15, 30, 0, 0, time.UTC)
	// queryLoc is a zone away from UTC, so that midnight is visibly local.
	queryLoc = time.FixedZone("UTC+2", 2*60*60)
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2026-05-01", want: time.Date(2026, 5, 1, 0, 0, 0, 0, queryLoc)},
		{in: " 2026-05-01 ", want: time.Date(2026, 5, 1, 0, 0, 0, 0, queryLoc)},
		{in: "2026-05-01T12:00:00Z", want: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)},
		{in: "2026-05-01T12:00:00.5+02:00", want: time.Date(2026, 5, 1, 10, 0, 0, 5e8, time.UTC)},
		{in: "30m", want: queryNow.Add(-30 * time.Minute)},
		{in: "24h", want: queryNow.Add(-24 * time.Hour)},
		{in: "1h30m", want: queryNow.Add(-90 * time.Minute)},
		{in: "7d", want: queryNow.AddDate(0, 0, -7)},
		{in: "0d", want: queryNow},
		{in: "garbage", wantErr: true},
		{in: "", wantErr: true},
		{in: "7", wantErr: true},
		{in: "-30m", wantErr: true},
		{in: "-1d", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "2026-02-30", wantErr: true},
		{in: "2026-05-01 12:00", wantErr: true},
		{in: "100001d", wantErr: true},
		// Beyond what int64 nanoseconds hold: refused, not wrapped around
		// into a bound that selects everything.
		{in: "2262-04-10", want: time.Date(2262, 4, 10, 0, 0, 0, 0, queryLoc)},
		{in: "3000-01-01", wantErr: true},
		{in: "9999-12-31", wantErr: true},
		{in: "1600-01-01", wantErr: true},
		{in: "0001-01-01T00:00:00Z", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTime(tt.in, queryNow, queryLoc)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "want YYYY-MM-DD, RFC 3339") && !strings.Contains(err.Error(), "out of range: the audit log holds times from 1677") {
					t.Errorf("ParseTime(%q): got (%v, %v), want an error naming the accepted forms or range", tt.in, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q): got (%v, %v), want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		query   string
		want    Filter
		wantErr string
	}{
		{name: "empty", query: "", want: Filter{Limit: DefaultLimit}},
		{name: "kinds repeated and comma-separated", query: "kind=tool.call&kind=auth.failure,+hook.decision,",
			want: Filter{Limit: DefaultLimit, Kinds: []string{KindToolCall, KindAuthFailure, KindHookDecision}}},
		{name: "every field", query: "profile=work&session=s1&decision=deny&limit=5&cursor=42&since=2026-05-01&until=24h",
			want: Filter{Limit: 5, Before: 42, Profile: "work", Session: "s1", Decision: Deny,
				Since: time.Date(2026, 5, 1, 0, 0, 0, 0, queryLoc), Until: queryNow.Add(-24 * time.Hour)}},
		{name: "since relative", query: "since=7d", want: Filter{Limit: DefaultLimit, Since: queryNow.AddDate(0, 0, -7)}},
		{name: "last value wins", query: "profile=a&profile=b", want: Filter{Limit: DefaultLimit, Profile: "b"}},
		{name: "limit 1", query: "limit=1", want: Filter{Limit: 1}},
		{name: "limit max", query: "limit=10000", want: Filter{Limit: MaxLimit}},
		{name: "unknown parameter", query: "order=asc", wantErr: `unknown filter "order"; filters: since, until, kind, profile, session, decision, trace, limit, cursor`},
		{name: "unknown kind", query: "kind=tool.call,tool.cal", wantErr: `unknown kind "tool.cal"; kinds: daemon.start,`},
		{name: "bad decision", query: "decision=maybe", wantErr: `invalid decision "maybe"; accepted values: allow, deny, error`},
		{name: "decision case", query: "decision=Allow", wantErr: `invalid decision "Allow"`},
		{name: "limit 0", query: "limit=0", wantErr: "invalid limit: limit must be from 1 to 10000"},
		{name: "limit 10001", query: "limit=10001", wantErr: "invalid limit: limit must be from 1 to 10000"},
		{name: "limit negative", query: "limit=-1", wantErr: "invalid limit: limit must be from 1 to 10000"},
		{name: "limit abc", query: "limit=abc", wantErr: "invalid limit: limit must be a number"},
		{name: "limit empty", query: "limit=", wantErr: "invalid limit: limit must be a number"},
		{name: "cursor 0", query: "cursor=0", wantErr: "invalid cursor: cursor must be a positive record number"},
		{name: "cursor negative", query: "cursor=-5", wantErr: "invalid cursor: cursor must be a positive record number"},
		{name: "cursor abc", query: "cursor=abc", wantErr: "invalid cursor: cursor must be a number"},
		{name: "since garbage", query: "since=yesterday", wantErr: `invalid since: invalid time "yesterday"`},
		{name: "until garbage", query: "until=soon", wantErr: `invalid until: invalid time "soon"`},
		{name: "until equals since", query: "since=2026-05-01&until=2026-05-01", wantErr: "until must be after since"},
		{name: "until before since", query: "since=1h&until=2h", wantErr: "until must be after since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseFilter(q, queryNow, queryLoc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseFilter(%q): got (%+v, %v), want an error containing %q", tt.query, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.query, err)
			}
			if !filterEqual(got, tt.want) {
				t.Errorf("ParseFilter(%q):\ngot  %+v\nwant %+v", tt.query, got, tt.want)
			}
		})
	}
}

func filterEqual(a, b Filter) bool {
	return a.Since.Equal(b.Since) && a.Until.Equal(b.Until) && slices.Equal(a.Kinds, b.Kinds) &&
		a.Profile == b.Profile && a.Session == b.Session && a.Decision == b.Decision &&
		a.Limit == b.Limit && a.Before == b.Before
}
