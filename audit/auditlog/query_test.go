package auditlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// queryBase is the time of the first record of queryLog; record i is i
// hours later.
var queryBase = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// queryLog stores 30 records that vary in every filtered field.
func queryLog(t *testing.T) (string, []audit.Record) {
	t.Helper()
	kinds := []string{audit.KindToolCall, audit.KindAuthFailure, audit.KindHookDecision, audit.KindProviderRequest, audit.KindSessionStart}
	profiles := []string{"work", "home", "ci"}
	decisions := []string{audit.Allow, audit.Deny, audit.Error}
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	var recs []audit.Record
	for i := range 30 {
		r, err := l.Append(t.Context(), audit.Record{
			Time:     queryBase.Add(time.Duration(i) * time.Hour),
			Kind:     kinds[i%len(kinds)],
			Profile:  profiles[i%len(profiles)],
			Session:  fmt.Sprintf("s%d", i%4),
			Decision: decisions[(i/2)%len(decisions)],
		})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	l.Close()
	return path, recs
}

func seqsOf(recs []audit.Record) []int64 {
	out := []int64{}
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	t.Parallel()
	path, recs := queryLog(t)
	hour := func(i int) time.Time { return queryBase.Add(time.Duration(i) * time.Hour) }
	tests := []struct {
		name   string
		filter audit.Filter
		want   func(r audit.Record) bool
	}{
		{"everything", audit.Filter{}, func(audit.Record) bool { return true }},
		{"one kind", audit.Filter{Kinds: []string{audit.KindAuthFailure}}, func(r audit.Record) bool { return r.Kind == audit.KindAuthFailure }},
		{"two kinds", audit.Filter{Kinds: []string{audit.KindToolCall, audit.KindSessionStart}}, func(r audit.Record) bool {
			return r.Kind == audit.KindToolCall || r.Kind == audit.KindSessionStart
		}},
		{"profile", audit.Filter{Profile: "home"}, func(r audit.Record) bool { return r.Profile == "home" }},
		{"session", audit.Filter{Session: "s3"}, func(r audit.Record) bool { return r.Session == "s3" }},
		{"decision", audit.Filter{Decision: audit.Deny}, func(r audit.Record) bool { return r.Decision == audit.Deny }},
		{"since is inclusive", audit.Filter{Since: hour(10)}, func(r audit.Record) bool { return !r.Time.Before(hour(10)) }},
		{"until is exclusive", audit.Filter{Until: hour(5)}, func(r audit.Record) bool { return r.Time.Before(hour(5)) }},
		{"window", audit.Filter{Since: hour(3), Until: hour(20)}, func(r audit.Record) bool {
			return !r.Time.Before(hour(3)) && r.Time.Before(hour(20))
		}},
		{"cursor", audit.Filter{Before: 10}, func(r audit.Record) bool { return r.Seq < 10 }},
		{"combined", audit.Filter{Kinds: []string{audit.KindToolCall, audit.KindHookDecision}, Profile: "work", Decision: audit.Allow}, func(r audit.Record) bool {
			return (r.Kind == audit.KindToolCall || r.Kind == audit.KindHookDecision) && r.Profile == "work" && r.Decision == audit.Allow
		}},
		{"no match", audit.Filter{Profile: "nobody"}, func(audit.Record) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, next, err := audit.Query(t.Context(), path, tt.filter)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			var want []audit.Record
			for _, r := range slices.Backward(recs) {
				if tt.want(r) {
					want = append(want, r)
				}
			}
			if !slices.Equal(seqsOf(got), seqsOf(want)) {
				t.Errorf("Query %+v: got seqs %v, want %v", tt.filter, seqsOf(got), seqsOf(want))
			}
			if next != 0 {
				t.Errorf("Query %+v: got cursor %d, want 0 (one page)", tt.filter, next)
			}
		})
	}
}

// TestQueryPages follows the cursor and checks that the pages hold every
// matching record once, newest first, and that the last page says so.
func TestQueryPages(t *testing.T) {
	t.Parallel()
	path, recs := queryLog(t)
	tests := []struct {
		name      string
		filter    audit.Filter
		wantPages int
	}{
		{"limit 7 of 30", audit.Filter{Limit: 7}, 5},
		{"limit 10 of 30", audit.Filter{Limit: 10}, 3},
		{"limit 1 of 30", audit.Filter{Limit: 1}, 30},
		{"limit 30 of 30", audit.Filter{Limit: 30}, 1},
		{"limit 100 of 30", audit.Filter{Limit: 100}, 1},
		{"limit 2 of 6 tool calls", audit.Filter{Limit: 2, Kinds: []string{audit.KindToolCall}}, 3},
		{"limit 4 of 6 tool calls", audit.Filter{Limit: 4, Kinds: []string{audit.KindToolCall}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var want []int64
			for _, r := range slices.Backward(recs) {
				if len(tt.filter.Kinds) == 0 || slices.Contains(tt.filter.Kinds, r.Kind) {
					want = append(want, r.Seq)
				}
			}
			var got []int64
			f := tt.filter
			pages := 0
			for {
				page, next, err := audit.Query(t.Context(), path, f)
				if err != nil {
					t.Fatalf("Query page %d: %v", pages+1, err)
				}
				pages++
				if len(page) > f.Limit || len(page) == 0 {
					t.Fatalf("page %d: got %d records, want 1 to %d", pages, len(page), f.Limit)
				}
				got = append(got, seqsOf(page)...)
				if next == 0 {
					break
				}
				if next != page[len(page)-1].Seq {
					t.Fatalf("page %d: got cursor %d, want the last seq on the page %d", pages, next, page[len(page)-1].Seq)
				}
				if pages > len(recs) {
					t.Fatalf("more than %d pages: the cursor does not advance", len(recs))
				}
				f.Before = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("seqs over all pages: got %v, want %v", got, want)
			}
			if pages != tt.wantPages {
				t.Errorf("pages: got %d, want %d", pages, tt.wantPages)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	_, _, err := audit.Query(t.Context(), dbPath(t), audit.Filter{})
	if err == nil || !strings.Contains(err.Error(), "no audit log at") {
		t.Errorf("Query of a missing log: got %v, want an error saying there is no audit log", err)
	}

	path, _ := queryLog(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := audit.Query(ctx, path, audit.Filter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Query with a cancelled context: got %v, want %v", err, context.Canceled)
	}
}

// TestQueryWhileWriting reads a log that another connection is writing.
func TestQueryWhileWriting(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	for i := range 5 {
		appendN(t, l, 1)
		if got := len(allRecords(t, path)); got != i+1 {
			t.Fatalf("Query after %d appends: got %d records, want %d", i+1, got, i+1)
		}
	}
	mustVerifyOK(t, path, 5)
}
