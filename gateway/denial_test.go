package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/token"
)

// recordingAuditor keeps every record it is given.
type recordingAuditor struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (a *recordingAuditor) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return r, nil
}

func (a *recordingAuditor) records() []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Record(nil), a.recs...)
}

// TestDenialsClippedAndCounted floods the daemon with cross-site requests
// whose path is 10 KB, as any web page can: the records and log lines keep
// a clipped path, past the burst they are counted instead of written, and
// the count reaches the next record. Refusals for a missing or wrong
// token are all recorded, clipped.
func TestDenialsClippedAndCounted(t *testing.T) {
	t.Parallel()
	rec := &recordingAuditor{}
	s, err := New(Options{Token: token.FromString(testToken), TokenFile: filepath.Join(t.TempDir(), "http_token"), Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	s.port.Store(testPort)
	t.Cleanup(s.closeStream)
	h := s.Handler()
	long := "/api/" + strings.Repeat("A", 10<<10)
	const flood = denialBurst + 60
	crossSite := func(target string) *http.Request {
		r := newRequest(http.MethodGet, target, nil)
		r.Header.Del("Authorization")
		r.Header.Set("Origin", "http://evil.example/"+strings.Repeat("o", 1000))
		return r
	}
	start := time.Now()
	for range flood {
		serve(t, h, crossSite(long))
	}
	refilled := int(time.Since(start).Seconds()*denialRate) + 1
	if got := testutil.ToFloat64(s.metrics.guardDenials.WithLabelValues("origin")); got != flood {
		t.Errorf("cross-site refusals counted: got %v, want every one of %d", got, flood)
	}
	recs := rec.records()
	// Tokens come back while the flood runs, at denialRate a second.
	if len(recs) < denialBurst || len(recs) > denialBurst+refilled {
		t.Fatalf("records written during the flood: got %d, want the burst of %d and at most %d refilled", len(recs), denialBurst, refilled)
	}
	for _, r := range recs {
		if len(r.Target) > maxDeniedField+40 || !strings.Contains(r.Target, "more bytes)") || len(r.Detail) > 2*maxDeniedField+200 {
			t.Fatalf("record of a refused 10 KB path: got a %d-byte target (%.80q...) and a %d-byte detail, want both clipped to about %d with the cut said",
				len(r.Target), r.Target, len(r.Detail), maxDeniedField)
		}
	}
	// Once the bucket refills, the next refused request is recorded with
	// the number that were not.
	time.Sleep(200 * time.Millisecond)
	serve(t, h, crossSite("/api/after"))
	recs = rec.records()
	// Every refusal is either recorded or counted in a later record.
	counted := 0
	for _, r := range recs {
		var d map[string]any
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			t.Fatal(err)
		}
		n, _ := d["unrecorded_before"].(float64)
		counted += int(n)
	}
	if last := recs[len(recs)-1]; last.Target != "GET /api/after" || counted == 0 || len(recs)+counted != flood+1 {
		t.Errorf("after the flood: last record %q, %d records and %d counted in unrecorded_before; want GET /api/after and %d in all",
			last.Target, len(recs), counted, flood+1)
	}

	// Refusals for a missing token are each recorded, path clipped.
	before := len(recs)
	for range flood {
		r := newRequest(http.MethodGet, long, nil)
		r.Header.Del("Authorization")
		serve(t, h, r)
	}
	recs = rec.records()[before:]
	if len(recs) != flood {
		t.Fatalf("refusals for a missing token: got %d records, want %d", len(recs), flood)
	}
	if r := recs[0]; len(r.Target) > maxDeniedField+40 || r.Kind != audit.KindAuthFailure {
		t.Errorf("refusal for a missing token: got kind %s and a %d-byte target, want auth.failure and the path clipped", r.Kind, len(r.Target))
	}
}

func TestDenialLimiter(t *testing.T) {
	var l denialLimiter
	t0 := time.Unix(1_000_000, 0)
	for i := range denialBurst {
		if ok, skipped := l.allow(t0); !ok || skipped != 0 {
			t.Fatalf("request %d of the burst: got %v, %d skipped; want recorded", i, ok, skipped)
		}
	}
	for range 5 {
		if ok, _ := l.allow(t0); ok {
			t.Fatal("past the burst at the same instant: recorded, want counted")
		}
	}
	ok, skipped := l.allow(t0.Add(time.Second / denialRate))
	if !ok || skipped != 5 {
		t.Errorf("after one token's time: got %v with %d skipped, want recorded with 5", ok, skipped)
	}
	if ok, skipped := l.allow(t0.Add(time.Hour)); !ok || skipped != 0 {
		t.Errorf("an hour later: got %v with %d skipped, want recorded with 0", ok, skipped)
	}
}

func TestClip(t *testing.T) {
	if got := clip("GET /short"); got != "GET /short" {
		t.Errorf("clip of a short value: got %q", got)
	}
	v := strings.Repeat("é", maxDeniedField) // 2 bytes each
	got := clip(v)
	if !strings.HasSuffix(got, "...(256 more bytes)") || !strings.HasPrefix(got, strings.Repeat("é", maxDeniedField/2)) {
		t.Errorf("clip of %d bytes: got %q, want the first %d bytes on a rune boundary and the cut said", len(v), got, maxDeniedField)
	}
}
