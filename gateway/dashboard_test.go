package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/dashboard"
)

// TestDashboardLogin: a code is exchanged once for a host-only, HttpOnly,
// SameSite=Strict cookie; changes need a same-origin request; logout and
// rotate-token end the login.
func TestDashboardLogin(t *testing.T) {
	s := newTestServer(t, testPort)
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
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"same-origin"}}
	code, _ := s.logins.NewCode()
	login := func(code string, hdr http.Header) *httptest.ResponseRecorder {
		return do(http.MethodPost, "/ui/login", hdr, url.Values{"code": {code}}.Encode())
	}
	if rec := login(code, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}); rec.Code != http.StatusForbidden {
		t.Errorf("login without Sec-Fetch-Site or Origin: got %d, want 403", rec.Code)
	}
	rec := login(code, form)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("login: got %d %s, want 204", rec.Code, rec.Body)
	}
	set := rec.Header().Get("Set-Cookie")
	for _, want := range []string{dashboard.CookieName + "=rlu_", "Path=/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q: want %q", set, want)
		}
	}
	if strings.Contains(strings.ToLower(set), "domain=") {
		t.Errorf("Set-Cookie %q: want host-only (no Domain)", set)
	}
	if rec := login(code, form); rec.Code != http.StatusUnauthorized {
		t.Errorf("the code again: got %d, want 401", rec.Code)
	}
	cookie := strings.TrimPrefix(strings.SplitN(set, ";", 2)[0], dashboard.CookieName+"=")
	withCookie := func(h http.Header) http.Header {
		h = h.Clone()
		h.Set("Cookie", dashboard.CookieName+"="+cookie)
		return h
	}
	if rec := do(http.MethodGet, "/ui/", withCookie(http.Header{}), ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Live sessions") {
		t.Errorf("the Now page: got %d, want 200 with the page", rec.Code)
	}
	if rec := do(http.MethodGet, "/api/status", withCookie(http.Header{}), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("the cookie on the API: got %d, want 401", rec.Code)
	}
	for _, hdr := range []http.Header{{}, {"Sec-Fetch-Site": {"none"}}} {
		if rec := do(http.MethodPost, "/ui/logout", withCookie(hdr), ""); rec.Code != http.StatusForbidden {
			t.Errorf("logout with %v: got %d, want 403", hdr, rec.Code)
		}
	}
	if rec := do(http.MethodPost, "/ui/logout", withCookie(http.Header{"Sec-Fetch-Site": {"same-origin"}}), ""); rec.Code != http.StatusSeeOther {
		t.Errorf("logout: got %d, want 303", rec.Code)
	}
	if rec := do(http.MethodGet, "/ui/", withCookie(http.Header{}), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("after logout: got %d, want 401", rec.Code)
	}

	code, _ = s.logins.NewCode()
	rec = login(code, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"http://" + testHost}})
	cookie = strings.TrimPrefix(strings.SplitN(rec.Header().Get("Set-Cookie"), ";", 2)[0], dashboard.CookieName+"=")
	if rec := do(http.MethodPost, "/api/daemon/rotate-token", http.Header{"Authorization": {"Bearer " + testToken}}, ""); rec.Code != http.StatusOK {
		t.Fatalf("rotate: got %d %s", rec.Code, rec.Body)
	}
	if rec := do(http.MethodGet, "/ui/now/sessions", withCookie(http.Header{}), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("after rotate-token: got %d, want 401", rec.Code)
	}
}
