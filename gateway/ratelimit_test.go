package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/provider"
)

// rlWorld is a daemon whose rate limits run by a fake clock.
func rlWorld(t *testing.T) *slWorld {
	t.Helper()
	w := newSlWorld(t, newSlDirs(t), &hkAuditor{}, time.Time{})
	w.s.paces.clock = w.clock
	return w
}

// proxied sends one provider request with tok and returns the answer.
func (w *slWorld) proxied(t *testing.T, tok string) *http.Response {
	t.Helper()
	r := httptest.NewRequest("POST", "/proxy/v1/messages", strings.NewReader(`{"model":"m","max_tokens":1,"messages":[]}`))
	r.Host = testHost
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("x-api-key", tok)
	return serve(t, w.h, r)
}

func (w *slWorld) setLimits(t *testing.T, alias, body string) {
	t.Helper()
	var got api.RateLimits
	decode(t, w.do(t, testToken, "PATCH", "/api/profiles/"+alias+"/ratelimits", body), http.StatusOK, &got)
}

// limited reports whether the answer is a rate-limit refusal, with its
// Retry-After.
func limited(t *testing.T, resp *http.Response) (bool, string) {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests {
		return false, ""
	}
	var e struct {
		Type  string
		Error struct {
			Type, Message string
			Ringlet       struct{ Code string }
		}
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Type != "error" || e.Error.Type != "rate_limit_error" || e.Error.Ringlet.Code != RateLimitErrorCode ||
		resp.Header.Get("X-Ringlet-Error") != RateLimitErrorCode {
		t.Errorf("429 body: got %s, want Anthropic's rate_limit_error with Ringlet's code", body)
	}
	return true, resp.Header.Get("Retry-After")
}

// TestRateLimitRequests: a session may send its requests a minute; the
// next is refused with 429, Retry-After (the time until the bucket has
// room) and Anthropic's error body, audited once, counted; the clock
// moving on admits it again.
func TestRateLimitRequests(t *testing.T) {
	w := rlWorld(t)
	w.setLimits(t, "work", `{"session_requests":2}`)
	st := w.envSession(t, "work", "")
	for i := range 2 {
		if refused, _ := limited(t, w.proxied(t, st.Token)); refused {
			t.Fatalf("request %d of 2: refused", i+1)
		}
	}
	for range 2 {
		refused, retry := limited(t, w.proxied(t, st.Token))
		if !refused || retry != "30" {
			t.Fatalf("request 3: refused %v, Retry-After %q; want refused, 30 (2 a minute)", refused, retry)
		}
	}
	recs := w.audit.kind(audit.KindRateLimited)
	if len(recs) != 1 || recs[0].Session != st.ID || recs[0].Decision != audit.Deny || !strings.Contains(string(recs[0].Detail), `"scope":"session"`) {
		t.Errorf("rate.limited records: got %+v, want one (the second refusal in the same second is counted, not recorded)", recs)
	}
	if n := testutil.ToFloat64(w.s.metrics.rateLimited.WithLabelValues("work", "session", "requests")); n != 2 {
		t.Errorf("ringlet_rate_limited_total: got %v, want 2", n)
	}
	w.clock.Advance(29 * time.Second)
	if refused, _ := limited(t, w.proxied(t, st.Token)); !refused {
		t.Error("29s later: admitted; want refused until 30s")
	}
	w.clock.Advance(time.Second)
	if refused, _ := limited(t, w.proxied(t, st.Token)); refused {
		t.Error("30s later: refused; want admitted")
	}
	// Another session has its own bucket.
	other := w.envSession(t, "work", "")
	if refused, _ := limited(t, w.proxied(t, other.Token)); refused {
		t.Error("another session of the profile: refused; want its own bucket")
	}
}

// TestRateLimitProfile: the profile's limit counts all its sessions
// together; clearing the limits lifts it at once, live sessions included.
func TestRateLimitProfile(t *testing.T) {
	w := rlWorld(t)
	w.setLimits(t, "work", `{"profile_requests":3}`)
	a, b := w.envSession(t, "work", ""), w.envSession(t, "work", "")
	for _, tok := range []string{a.Token, a.Token, b.Token} {
		if refused, _ := limited(t, w.proxied(t, tok)); refused {
			t.Fatal("refused within the profile's 3 a minute")
		}
	}
	if refused, retry := limited(t, w.proxied(t, b.Token)); !refused || retry != "20" {
		t.Fatalf("4th request of the profile: refused %v, Retry-After %q; want refused, 20", refused, retry)
	}
	if recs := w.audit.kind(audit.KindRateLimited); len(recs) != 1 || !strings.Contains(string(recs[0].Detail), `"scope":"profile"`) {
		t.Errorf("rate.limited: got %+v, want the profile's", recs)
	}
	// Another profile is not paced by this one.
	o := w.envSession(t, "other", "")
	if refused, _ := limited(t, w.proxied(t, o.Token)); refused {
		t.Error("profile other: refused by work's limit")
	}
	var got api.RateLimits
	decode(t, w.do(t, testToken, "DELETE", "/api/profiles/work/ratelimits", ""), http.StatusOK, &got)
	if refused, _ := limited(t, w.proxied(t, b.Token)); refused {
		t.Error("after clear: refused; want the limits gone for the live sessions")
	}
}

// TestRateLimitTokens: the tokens an answer reports are spent when it
// ends; a session in debt is refused until the bucket refills.
func TestRateLimitTokens(t *testing.T) {
	w := rlWorld(t)
	w.setLimits(t, "work", `{"session_tokens":600}`)
	st := w.envSession(t, "work", "")
	sess := w.s.sessions.get(st.ID)
	if refused, _ := limited(t, w.proxied(t, st.Token)); refused {
		t.Fatal("first request refused")
	}
	w.s.paces.spend(sess, 900) // more than a minute's worth: counts as 600
	refused, retry := limited(t, w.proxied(t, st.Token))
	if !refused || retry != "1" {
		t.Fatalf("after 900 tokens: refused %v, Retry-After %q; want refused, 1 (10 tokens a second)", refused, retry)
	}
	w.clock.Advance(time.Second)
	if refused, _ := limited(t, w.proxied(t, st.Token)); refused {
		t.Error("a second later: refused; want admitted")
	}
}

// TestRateLimitsValidate: a negative or absurd limit, or nothing, is
// refused.
func TestRateLimitsValidate(t *testing.T) {
	w := rlWorld(t)
	for _, body := range []string{`{"session_requests":-1}`, `{"profile_tokens":1000000001}`, `{}`, `{"requests":5}`} {
		if resp := w.do(t, testToken, "PATCH", "/api/profiles/work/ratelimits", body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PATCH %s: got %d, want 400 (%s)", body, resp.StatusCode, readBody(t, resp))
		}
	}
	if resp := w.do(t, testToken, "PATCH", "/api/profiles/nope/ratelimits", `{"session_requests":1}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH of a missing profile: got %d, want 404", resp.StatusCode)
	}
}

// TestWriteRateLimitedOpenAI: an OpenAI-format provider's agents get
// OpenAI's 429 body.
func TestWriteRateLimitedOpenAI(t *testing.T) {
	rec := httptest.NewRecorder()
	writeRateLimited(rec, provider.FormatOpenAI, &paceRefusal{kind: paceRequests, scope: "session", limit: 60, retry: 1500 * time.Millisecond})
	var e struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 429 || rec.Header().Get("Retry-After") != "2" || e.Error.Code != "rate_limit_exceeded" ||
		!strings.Contains(e.Error.Message, "60 requests a minute") {
		t.Errorf("got %d, Retry-After %q, body %s; want 429, 2, OpenAI's rate_limit_exceeded", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

// TestWireRefusalsShareOneShape: a budget's refusal and a rate limit's,
// in either wire format, carry Ringlet's code at error.ringlet.code and
// in X-Ringlet-Error, within the provider's own error body.
func TestWireRefusalsShareOneShape(t *testing.T) {
	ref := &budget.Refusal{Scope: budget.Scope{Period: budget.PeriodSession, Session: "s_1"}, Cap: "requests", Limit: 1, Spent: 1, Want: 1}
	pace := &paceRefusal{kind: paceRequests, scope: "session", limit: 60, retry: time.Second}
	for _, tc := range []struct {
		name, format, code, errType string
		status                      int
		write                       func(http.ResponseWriter, string)
	}{
		{"budget/anthropic", provider.FormatAnthropic, BudgetErrorCode, "invalid_request_error", 400, func(w http.ResponseWriter, f string) { writeBudgetError(w, f, ref) }},
		{"budget/openai", provider.FormatOpenAI, BudgetErrorCode, "invalid_request_error", 400, func(w http.ResponseWriter, f string) { writeBudgetError(w, f, ref) }},
		{"ratelimit/anthropic", provider.FormatAnthropic, RateLimitErrorCode, "rate_limit_error", 429, func(w http.ResponseWriter, f string) { writeRateLimited(w, f, pace) }},
		{"ratelimit/openai", provider.FormatOpenAI, RateLimitErrorCode, "requests", 429, func(w http.ResponseWriter, f string) { writeRateLimited(w, f, pace) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.write(rec, tc.format)
			var e struct {
				Type  string
				Error struct {
					Type, Message string
					Ringlet       struct{ Code string }
				}
			}
			wantTop := "error"
			if tc.format == provider.FormatOpenAI {
				wantTop = ""
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tc.status || e.Type != wantTop || e.Error.Type != tc.errType ||
				e.Error.Message == "" || e.Error.Ringlet.Code != tc.code || rec.Header().Get("X-Ringlet-Error") != tc.code {
				t.Errorf("got %d, X-Ringlet-Error %q, %s; want %d, %s with error.type %s and error.ringlet.code %s",
					rec.Code, rec.Header().Get("X-Ringlet-Error"), rec.Body, tc.status, tc.format, tc.errType, tc.code)
			}
			if tc.code == BudgetErrorCode && rec.Header().Get("X-Should-Retry") != "false" {
				t.Errorf("budget refusal: X-Should-Retry %q, want false (the SDKs retry otherwise)", rec.Header().Get("X-Should-Retry"))
			}
		})
	}
}
