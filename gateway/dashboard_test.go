package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/dashboard"
)

// TestDashboardLogin: a code is exchanged once for a host-only, HttpOnly,
// SameSite=Strict cookie named after the daemon's port and a page key in
// the answer's body; the cookie alone opens the page's shell and nothing
// else (no rows, no stream, no kill, no logout), whatever Sec-Fetch-Site
// it claims; with the key it opens all; changes need a same-origin
// request too; logout and rotate-token end the login.
func TestDashboardLogin(t *testing.T) {
	s := newTestServer(t, testPort)
	s.port.Store(testPort)
	h := s.Handler()
	do := func(method, path string, hdr http.Header, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = testHost
		for k, v := range hdr {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if csp := rec.Header().Get("Content-Security-Policy"); csp != dashboard.CSP && strings.HasPrefix(path, "/ui") {
			t.Errorf("%s %s: CSP %q, want the dashboard's", method, path, csp)
		}
		return rec
	}
	name := dashboard.CookieName(testPort)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"same-origin"}}
	code, _ := s.logins.NewCode()
	login := func(code string, hdr http.Header) *httptest.ResponseRecorder {
		return do(http.MethodPost, "/ui/login", hdr, url.Values{"code": {code}}.Encode())
	}
	if rec := login(code, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}); rec.Code != http.StatusForbidden {
		t.Errorf("login without Sec-Fetch-Site or Origin: got %d, want 403", rec.Code)
	}
	rec := login(code, form)
	if rec.Code != http.StatusOK {
		t.Fatalf("login: got %d %s, want 200", rec.Code, rec.Body)
	}
	var got api.UILogin
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || !strings.HasPrefix(got.Key, dashboard.KeyPrefix) {
		t.Fatalf("login answer %s: want a page key (%v)", rec.Body, err)
	}
	set := rec.Header().Get("Set-Cookie")
	for _, want := range []string{name + "=rlu_", "Path=/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q: want %q", set, want)
		}
	}
	if strings.Contains(strings.ToLower(set), "domain=") || strings.Contains(set, got.Key) {
		t.Errorf("Set-Cookie %q: want host-only (no Domain) and no page key", set)
	}
	if rec := login(code, form); rec.Code != http.StatusUnauthorized {
		t.Errorf("the code again: got %d, want 401", rec.Code)
	}
	cookie := strings.TrimPrefix(strings.SplitN(set, ";", 2)[0], name+"=")
	withCookie := func(h http.Header) http.Header {
		h = h.Clone()
		h.Set("Cookie", name+"="+cookie)
		return h
	}
	keyed := func(h http.Header) http.Header {
		h = withCookie(h)
		h.Set(dashboard.KeyHeader, got.Key)
		return h
	}
	if rec := do(http.MethodGet, "/ui/", withCookie(http.Header{}), ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Live sessions") ||
		strings.Contains(rec.Body.String(), "data-session") {
		t.Errorf("the Now page's shell: got %d, want 200 with the page and no rows", rec.Code)
	}
	if rec := do(http.MethodGet, "/api/status", keyed(http.Header{}), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("the cookie and key on the API: got %d, want 401", rec.Code)
	}
	// The cookie replayed without the key (as a server on another port
	// of 127.0.0.1 that received it could), whatever it claims.
	forged := http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://" + testHost}}
	bad := forged.Clone()
	bad.Set(dashboard.KeyHeader, dashboard.KeyPrefix+"made-up")
	for _, hdr := range []http.Header{forged, bad} {
		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/ui/now/sessions"}, {http.MethodGet, "/ui/events"},
			{http.MethodPost, "/ui/sessions/nope/kill"}, {http.MethodPost, "/ui/logout"},
			{http.MethodGet, "/ui/spend/plot"}, {http.MethodGet, "/ui/spend/table"}, {http.MethodGet, "/ui/spend/csv"},
		} {
			if rec := do(r.method, r.path, withCookie(hdr), ""); rec.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with the cookie and key %q: got %d, want 401", r.method, r.path, hdr.Get(dashboard.KeyHeader), rec.Code)
			}
		}
	}
	if rec := do(http.MethodGet, "/ui/now/sessions", keyed(http.Header{}), ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No live sessions") {
		t.Errorf("the rows with the key: got %d %s, want 200", rec.Code, rec.Body)
	}
	if rec := do(http.MethodGet, "/ui/spend", withCookie(http.Header{}), ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "By model") {
		t.Errorf("the Spend page's shell: got %d, want 200 with the page", rec.Code)
	}
	if rec := do(http.MethodGet, "/ui/spend/plot?bucket=hour&range=365d", keyed(http.Header{}), ""); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "30 days") {
		t.Errorf("a plot of a year by the hour: got %d %s, want 400 saying why", rec.Code, rec.Body)
	}
	for _, hdr := range []http.Header{{}, {"Sec-Fetch-Site": {"none"}}} {
		if rec := do(http.MethodPost, "/ui/logout", keyed(hdr), ""); rec.Code != http.StatusForbidden {
			t.Errorf("logout with %v: got %d, want 403", hdr, rec.Code)
		}
	}
	if rec := do(http.MethodPost, "/ui/logout", keyed(http.Header{"Sec-Fetch-Site": {"same-origin"}}), ""); rec.Code != http.StatusNoContent {
		t.Errorf("logout: got %d, want 204", rec.Code)
	}
	if rec := do(http.MethodGet, "/ui/", withCookie(http.Header{}), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("after logout: got %d, want 401", rec.Code)
	}

	code, _ = s.logins.NewCode()
	rec = login(code, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"http://" + testHost}})
	cookie = strings.TrimPrefix(strings.SplitN(rec.Header().Get("Set-Cookie"), ";", 2)[0], name+"=")
	_ = json.Unmarshal(rec.Body.Bytes(), &got) // checked above
	if rec := do(http.MethodPost, "/api/daemon/rotate-token", http.Header{"Authorization": {"Bearer " + testToken}}, ""); rec.Code != http.StatusOK {
		t.Fatalf("rotate: got %d %s", rec.Code, rec.Body)
	}
	if rec := do(http.MethodGet, "/ui/now/sessions", keyed(http.Header{}), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("after rotate-token: got %d, want 401", rec.Code)
	}
}
