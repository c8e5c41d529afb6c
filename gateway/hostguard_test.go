package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHostGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		host   string
		header http.Header
		code   string // the error code, or "" when the request passes
		reason string // the guard denial reason counted
	}{
		{name: "127.0.0.1", host: "127.0.0.1:8765"},
		{name: "localhost", host: "localhost:8765"},
		{name: "upper-case localhost", host: "LOCALHOST:8765"},
		{name: "ipv6 loopback", host: "[::1]:8765"},
		{name: "foreign name", host: "evil.example:8765", code: "forbidden_host", reason: "host"},
		{name: "foreign name without port", host: "evil.example", code: "forbidden_host", reason: "host"},
		{name: "wrong port", host: "127.0.0.1:9999", code: "forbidden_host", reason: "host"},
		{name: "no port", host: "127.0.0.1", code: "forbidden_host", reason: "host"},
		{name: "localhost subdomain", host: "localhost.evil.example:8765", code: "forbidden_host", reason: "host"},
		{name: "other loopback address", host: "127.0.0.2:8765", code: "forbidden_host", reason: "host"},
		{name: "unbracketed ipv6", host: "::1:8765", code: "forbidden_host", reason: "host"},
		{name: "empty host", host: "", code: "forbidden_host", reason: "host"},
		{name: "foreign origin", host: testHost, header: http.Header{"Origin": {"http://evil.example"}}, code: "forbidden_origin", reason: "origin"},
		{name: "own origin", host: testHost, header: http.Header{"Origin": {"http://127.0.0.1:8765"}}},
		{name: "own origin localhost", host: testHost, header: http.Header{"Origin": {"http://localhost:8765"}}},
		{name: "own origin upper case", host: testHost, header: http.Header{"Origin": {"HTTP://LOCALHOST:8765"}}},
		{name: "null origin", host: testHost, header: http.Header{"Origin": {"null"}}, code: "forbidden_origin", reason: "origin"},
		// The dashboard's own form posts under no-referrer: null, beside
		// same-origin, and nothing else.
		{name: "null origin, same-origin", host: testHost, header: http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}}},
		{name: "null origin, same-site", host: testHost, header: http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"same-site"}}, code: "forbidden_origin", reason: "origin"},
		{name: "null origin, cross-site", host: testHost, header: http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"cross-site"}}, code: "forbidden_origin", reason: "origin"},
		{name: "two null origins, same-origin", host: testHost, header: http.Header{"Origin": {"null", "null"}, "Sec-Fetch-Site": {"same-origin"}}, code: "forbidden_origin", reason: "origin"},
		{name: "empty origin", host: testHost, header: http.Header{"Origin": {""}}, code: "forbidden_origin", reason: "origin"},
		{name: "https origin", host: testHost, header: http.Header{"Origin": {"https://127.0.0.1:8765"}}, code: "forbidden_origin", reason: "origin"},
		{name: "origin on another port", host: testHost, header: http.Header{"Origin": {"http://127.0.0.1:3000"}}, code: "forbidden_origin", reason: "origin"},
		{name: "two origins", host: testHost, header: http.Header{"Origin": {"http://127.0.0.1:8765", "http://evil.example"}}, code: "forbidden_origin", reason: "origin"},
		{name: "sec-fetch-site cross-site", host: testHost, header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, code: "forbidden_origin", reason: "origin"},
		{name: "sec-fetch-site same-site", host: testHost, header: http.Header{"Sec-Fetch-Site": {"same-site"}}, code: "forbidden_origin", reason: "origin"},
		{name: "sec-fetch-site unknown", host: testHost, header: http.Header{"Sec-Fetch-Site": {"bogus"}}, code: "forbidden_origin", reason: "origin"},
		{name: "sec-fetch-site same-origin", host: testHost, header: http.Header{"Sec-Fetch-Site": {"same-origin"}}},
		{name: "sec-fetch-site none", host: testHost, header: http.Header{"Sec-Fetch-Site": {"none"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, h := newTestHandler(t)
			// A valid token throughout: the guard must refuse on its own.
			r := newRequest(http.MethodGet, "/api/version", nil)
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header[k] = v
			}
			resp := serve(t, h, r)
			if tt.code == "" {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status: got %d, want 200 (body %s)", resp.StatusCode, readBody(t, resp))
				}
				for _, reason := range []string{"host", "origin"} {
					if got := testutil.ToFloat64(s.metrics.guardDenials.WithLabelValues(reason)); got != 0 {
						t.Errorf("ringlet_http_forbidden_total{reason=%q}: got %v, want 0", reason, got)
					}
				}
				return
			}
			assertError(t, resp, http.StatusForbidden, tt.code)
			if got := testutil.ToFloat64(s.metrics.guardDenials.WithLabelValues(tt.reason)); got != 1 {
				t.Errorf("ringlet_http_forbidden_total{reason=%q}: got %v, want 1", tt.reason, got)
			}
		})
	}
}

// TestHostGuardBeforeAuth checks that a foreign page learns nothing about
// the token: a bad Host is refused with 403 whatever the credentials, and
// no authentication failure is counted.
func TestHostGuardBeforeAuth(t *testing.T) {
	t.Parallel()
	for _, auth := range []string{"", "Bearer " + otherToken} {
		t.Run("authorization="+auth, func(t *testing.T) {
			t.Parallel()
			s, h := newTestHandler(t)
			r := newRequest(http.MethodGet, "/api/version", nil)
			r.Host = "evil.example:8765"
			r.Header.Del("Authorization")
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			assertError(t, serve(t, h, r), http.StatusForbidden, "forbidden_host")
			for _, reason := range authFailureReasons {
				if got := testutil.ToFloat64(s.metrics.authFailures.WithLabelValues(reason)); got != 0 {
					t.Errorf("ringlet_auth_failures_total{reason=%q}: got %v, want 0", reason, got)
				}
			}
		})
	}
}

func TestNewHostGuardHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		port   int
		extra  string
		host   string
		origin string
		pass   bool
	}{
		{name: "extra ip", port: 8765, extra: "192.0.2.10", host: "192.0.2.10:8765", pass: true},
		{name: "extra ip origin", port: 8765, extra: "192.0.2.10", host: "192.0.2.10:8765", origin: "http://192.0.2.10:8765", pass: true},
		{name: "extra ip wrong port", port: 8765, extra: "192.0.2.10", host: "192.0.2.10:80"},
		{name: "extra ip still allows loopback", port: 8765, extra: "192.0.2.10", host: "127.0.0.1:8765", pass: true},
		{name: "no extra", port: 8765, host: "192.0.2.10:8765"},
		{name: "extra ipv6", port: 8765, extra: "2001:db8::1", host: "[2001:db8::1]:8765", pass: true},
		{name: "extra name is ignored", port: 8765, extra: "evil.example", host: "evil.example:8765"},
		{name: "unspecified v4 is ignored", port: 8765, extra: "0.0.0.0", host: "0.0.0.0:8765"},
		{name: "unspecified v6 is ignored", port: 8765, extra: "::", host: "[::]:8765"},
		{name: "port 80 without port", port: 80, host: "localhost", pass: true},
		{name: "port 80 ipv6 without port", port: 80, host: "[::1]", pass: true},
		{name: "port 80 origin without port", port: 80, host: "localhost", origin: "http://localhost", pass: true},
		{name: "port 80 with port", port: 80, host: "127.0.0.1:80", pass: true},
		{name: "other port needs the port", port: 8765, host: "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var denied []string
			g := newHostGuard(tt.port, tt.extra, func(reason string, _ *http.Request) { denied = append(denied, reason) })
			h := g.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			resp := serve(t, h, r)
			if tt.pass {
				if resp.StatusCode != http.StatusNoContent || len(denied) != 0 {
					t.Errorf("got status %d and denials %q, want 204 and none", resp.StatusCode, denied)
				}
				return
			}
			assertError(t, resp, http.StatusForbidden, "forbidden_host")
			if len(denied) != 1 || denied[0] != "host" {
				t.Errorf("denials: got %q, want [host]", denied)
			}
		})
	}
}

// TestHostGuardLoginNavigation: a cross-site or same-site page may open
// the dashboard's login page as a top-level page (the file:// page of
// 'ringlet ui' does) and nothing else: no other path, no fetch, no frame,
// no POST, nothing with an Origin.
func TestHostGuardLoginNavigation(t *testing.T) {
	t.Parallel()
	nav := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}
	with := func(k, v string) http.Header {
		h := nav.Clone()
		h.Set(k, v)
		return h
	}
	tests := []struct {
		name, method, path string
		header             http.Header
		ok                 bool
	}{
		{"login page, cross-site", http.MethodGet, "/ui/login", nav, true},
		{"login page, same-site", http.MethodGet, "/ui/login", with("Sec-Fetch-Site", "same-site"), true},
		{"login page with an Origin", http.MethodGet, "/ui/login", with("Origin", "null"), false},
		{"login page fetched", http.MethodGet, "/ui/login", with("Sec-Fetch-Mode", "cors"), false},
		{"login page in a frame", http.MethodGet, "/ui/login", with("Sec-Fetch-Dest", "iframe"), false},
		{"login posted", http.MethodPost, "/ui/login", nav, false},
		{"the Now page", http.MethodGet, "/ui/", nav, false},
		{"the API", http.MethodGet, "/api/version", nav, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, h := newTestHandler(t)
			r := newRequest(tt.method, tt.path, nil)
			r.Host = testHost
			r.Header.Del("Authorization") // a browser's navigation carries none
			for k, v := range tt.header {
				r.Header[k] = v
			}
			resp := serve(t, h, r)
			if tt.ok && resp.StatusCode != http.StatusOK {
				t.Errorf("status: got %d, want 200 (body %s)", resp.StatusCode, readBody(t, resp))
			}
			if !tt.ok {
				assertError(t, resp, http.StatusForbidden, "forbidden_origin")
			}
		})
	}
}
