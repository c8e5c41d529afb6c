package gateway

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/sandbox"
)

// authFailures is every refusal counted, whatever its reason.
func authFailures(s *Server) float64 {
	var n float64
	for reason := range authMessages {
		n += testutil.ToFloat64(s.metrics.authFailures.WithLabelValues(reason))
	}
	return n
}

// TestProxyPreflight: an agent's HEAD of its base URL without any
// credential (Claude Code's HEAD <base>/api/hello at start) is answered
// 200 with nothing in it, the same on the TCP listener and a session's
// socket, by a daemon with sessions and one without, and is no
// authentication failure. Every other request without a valid token is
// refused and counted as before.
func TestProxyPreflight(t *testing.T) {
	worlds := newRouteWorlds(t)
	type surface struct {
		name string
		s    *Server
		h    http.Handler
		host string
	}
	var surfaces []surface
	for _, w := range worlds {
		surfaces = append(surfaces, surface{w.name + " TCP", w.s, w.s.Handler(), w.host})
		if w.sock != nil {
			surfaces = append(surfaces, surface{w.name + " socket", w.s, w.s.socketHandler(w.sock), "127.0.0.1:" + strconv.Itoa(sandbox.ForwarderPort)})
		}
	}
	var first http.Header
	for _, sf := range surfaces {
		for _, target := range []string{"/proxy", "/proxy/", "/proxy/api/hello"} {
			t.Run(sf.name+" HEAD "+target, func(t *testing.T) {
				before := authFailures(sf.s)
				req := httptest.NewRequest(http.MethodHead, target, nil)
				req.Host = sf.host
				rec := httptest.NewRecorder()
				sf.h.ServeHTTP(rec, req)
				body, _ := io.ReadAll(rec.Result().Body)
				if rec.Code != http.StatusOK || len(body) != 0 {
					t.Errorf("got %d %q, want 200 and nothing", rec.Code, body)
				}
				h := rec.Result().Header.Clone()
				h.Del("Date")
				if first == nil {
					first = h
				} else if !maps.EqualFunc(h, first, func(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
					t.Errorf("headers: got %v, want the same answer everywhere: %v", h, first)
				}
				if after := authFailures(sf.s); after != before {
					t.Errorf("authentication failures: got %v more, want the preflight not counted", after-before)
				}
			})
		}
	}

	full := worlds[0]
	for _, tc := range []struct {
		name, method, target string
		set                  func(*http.Request)
	}{
		{"GET of the preflight path", http.MethodGet, "/proxy/api/hello", nil},
		{"HEAD of another proxy path", http.MethodHead, "/proxy/v1/messages", nil},
		{"HEAD of another path", http.MethodHead, "/api/profiles", nil},
		{"HEAD with a wrong bearer token", http.MethodHead, "/proxy/api/hello", bearer(full.garbage)},
		{"HEAD with a wrong x-api-key", http.MethodHead, "/proxy", apiKey(full.garbage)},
		{"HEAD with a revoked session token", http.MethodHead, "/proxy/", bearer(full.revoked)},
		{"HEAD with the admin token", http.MethodHead, "/proxy/api/hello", bearer(testToken)},
		{"HEAD with a token as subprotocol", http.MethodHead, "/proxy/api/hello", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "bearer, "+testToken) }},
		{"HEAD with a token in the query", http.MethodHead, "/proxy/api/hello?token=" + testToken, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := authFailures(full.s)
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Host = full.host
			if tc.set != nil {
				tc.set(req)
			}
			rec := httptest.NewRecorder()
			full.s.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("got %d, want 401", rec.Code)
			}
			if after := authFailures(full.s); after != before+1 {
				t.Errorf("authentication failures: got %v more, want 1", after-before)
			}
		})
	}

	// A session's own requests to that path still reach the proxy.
	req := httptest.NewRequest(http.MethodGet, "/proxy/api/hello", nil)
	req.Host = full.host
	bearer(full.socket)(req)
	rec := httptest.NewRecorder()
	full.s.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusMethodNotAllowed || rec.Code == http.StatusOK {
		t.Errorf("GET /proxy/api/hello with a session token: got %d, want the proxy's answer (the provider is unreachable)", rec.Code)
	}
}
