package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), TokenFile: filepath.Join(t.TempDir(), "http_token"), Audit: rec}))
	if err != nil {
		t.Fatal(err)
	}
	s.port.Store(testPort)
	t.Cleanup(s.life.stop)
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

	// Refusals for a missing token are recorded, path clipped, up to the
	// burst of their source.
	before := len(recs)
	start = time.Now()
	for range flood {
		r := newRequest(http.MethodGet, long, nil)
		r.Header.Del("Authorization")
		serve(t, h, r)
	}
	refilled = int(time.Since(start).Seconds()*denialRate) + 1
	recs = rec.records()[before:]
	if len(recs) < denialBurst || len(recs) > denialBurst+refilled {
		t.Fatalf("refusals for a missing token: got %d records, want the burst of %d and at most %d refilled", len(recs), denialBurst, refilled)
	}
	if r := recs[0]; len(r.Target) > maxDeniedField+40 || r.Kind != audit.KindAuthFailure {
		t.Errorf("refusal for a missing token: got kind %s and a %d-byte target, want auth.failure and the path clipped", r.Kind, len(r.Target))
	}
	if got := testutil.ToFloat64(s.metrics.authFailures.WithLabelValues("missing")); got != flood {
		t.Errorf("refusals for a missing token counted: got %v, want every one of %d", got, flood)
	}
}

// TestAuthFailuresPerSource: bad tokens are recorded up to a burst per
// source and counted past it (issue #11 item 8: one local process could
// fill the disk with them). Another source's refusals, a session socket's
// included, are still recorded; the count reaches the source's next
// record; log lines are bounded the same way.
func TestAuthFailuresPerSource(t *testing.T) {
	t.Parallel()
	rec := &recordingAuditor{}
	var logged lockedLines
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), TokenFile: filepath.Join(t.TempDir(), "http_token"), Audit: rec,
		Logger: slog.New(slog.NewTextHandler(&logged, nil))}))
	if err != nil {
		t.Fatal(err)
	}
	s.port.Store(testPort)
	t.Cleanup(s.life.stop)
	h := s.Handler()
	wrong := func(remote string, ctx context.Context) *http.Request {
		r := newRequest(http.MethodGet, "/api/status", nil).WithContext(ctx)
		r.RemoteAddr = remote
		r.Header.Set("Authorization", "Bearer wrong-token")
		return r
	}
	const flood = 3 * denialBurst
	start := time.Now()
	for i := range flood {
		serve(t, h, wrong(fmt.Sprintf("127.0.0.1:%d", 10000+i), t.Context()))
	}
	refilled := int(time.Since(start).Seconds()*denialRate) + 1
	n := len(rec.records())
	if n < denialBurst || n > denialBurst+refilled {
		t.Fatalf("records of %d bad tokens from 127.0.0.1 (new connections each): got %d, want the burst of %d and at most %d refilled", flood, n, denialBurst, refilled)
	}
	if got := testutil.ToFloat64(s.metrics.authFailures.WithLabelValues("invalid")); got != flood {
		t.Errorf("bad tokens counted: got %v, want every one of %d", got, flood)
	}
	if lines := logged.count("authentication failed"); lines != n {
		t.Errorf("log lines: got %d, want one per record (%d)", lines, n)
	}

	// Other sources have buckets of their own.
	for _, src := range []struct {
		remote string
		ctx    context.Context
	}{
		{"[::1]:4000", t.Context()},
		{"@", context.WithValue(t.Context(), sourceKey{}, "session socket s_1")},
	} {
		before := len(rec.records())
		serve(t, h, wrong(src.remote, src.ctx))
		if got := len(rec.records()); got != before+1 {
			t.Errorf("a bad token from %s after the flood from 127.0.0.1: got %d new records, want 1", src.remote, got-before)
		}
	}

	// Once the source's bucket refills, its next record says how many
	// were not recorded.
	time.Sleep(2 * time.Second / denialRate)
	serve(t, h, wrong("127.0.0.1:9", t.Context()))
	recs := rec.records()
	var d map[string]any
	if err := json.Unmarshal(recs[len(recs)-1].Detail, &d); err != nil {
		t.Fatal(err)
	}
	if got, _ := d["unrecorded_before"].(float64); got == 0 || n+int(got) > flood {
		t.Errorf("unrecorded_before of the next record from 127.0.0.1: got %v, want the refusals not recorded (at most %d)", d["unrecorded_before"], flood-n)
	}
}

// TestSourceLimiterBounded: a flood of distinct sources (an explicit
// non-loopback --listen) cannot grow the limiter without bound.
func TestSourceLimiterBounded(t *testing.T) {
	t.Parallel()
	var l sourceLimiter
	now := time.Unix(1_000_000, 0)
	for i := range maxDenialSources + 16 {
		for range denialBurst + 1 {
			l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		}
	}
	if n := len(l.buckets); n > maxDenialSources+1 {
		t.Errorf("buckets: got %d, want at most %d", n, maxDenialSources+1)
	}
	if ok, _ := l.allow("10.9.9.9", now); ok {
		t.Error("a new source past the bound while every bucket is busy: recorded, want it in the shared, exhausted bucket")
	}
	// Buckets that refilled are forgotten to make room; what they had not
	// reported goes to the shared bucket's next record.
	later := now.Add(time.Hour)
	if ok, _ := l.allow("10.9.9.10", later); !ok || l.buckets["10.9.9.10"] == nil {
		t.Error("a new source once the others have refilled: got no bucket of its own, want one")
	}
	ok, skipped := l.allow("10.200.0.1", later)
	if !ok || skipped != 0 {
		t.Errorf("another new source: got %v, %d skipped; want recorded with 0", ok, skipped)
	}
	o := l.buckets[denialOverflow]
	if o == nil {
		t.Fatal("no shared bucket")
	}
	// Every source in the flood had one refusal past its burst.
	if ok, skipped := o.allow(later); !ok || skipped < maxDenialSources {
		t.Errorf("the shared bucket's next record: got %v with %d skipped, want at least the %d the forgotten buckets had not reported", ok, skipped, maxDenialSources)
	}
}

// lockedLines is a log sink that counts lines.
type lockedLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
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
