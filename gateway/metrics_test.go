package gateway

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	_, h := newTestHandler(t)

	for _, target := range []string{"/api/version", "/api/nonexistent-xyz", "/nonexistent-abc/123", "/api/profiles/secret-name-qrs"} {
		serve(t, h, newRequest(http.MethodGet, target, nil))
	}
	bad := newRequest(http.MethodGet, "/api/unauthenticated-path-uvw", nil)
	bad.Header.Del("Authorization")
	serve(t, h, bad)

	unauth := newRequest(http.MethodGet, "/metrics", nil)
	unauth.Header.Del("Authorization")
	assertError(t, serve(t, h, unauth), http.StatusUnauthorized, "unauthorized")

	resp := serve(t, h, newRequest(http.MethodGet, "/metrics", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	body := readBody(t, resp)
	for _, want := range []string{
		`ringlet_http_requests_total{code="200",method="GET",route="/api/version"} 1`,
		`ringlet_http_requests_total{code="404",method="GET",route="/api/profiles/{alias}"} 1`,
		`ringlet_auth_failures_total{reason="missing"} 2`,
		`ringlet_build_info{`,
		`ringlet_http_requests_in_flight 1`,
		// Every label value a path can give, there from the start.
		`ringlet_sessions_killed_total{by="dashboard"} 0`,
		`ringlet_auth_failures_total{reason="login_code"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics: want a line with %q, got:\n%s", want, grepLines(body, "ringlet_"))
		}
	}
	for _, leak := range []string{"nonexistent-xyz", "nonexistent-abc", "secret-name-qrs", "unauthenticated-path-uvw"} {
		if strings.Contains(body, leak) {
			t.Errorf("metrics: got a label with the raw path %q, want only route patterns", leak)
		}
	}

	// Every route label is a pattern of the router or "none".
	routes := regexp.MustCompile(`ringlet_http_requests_total\{[^}]*route="([^"]*)"`).FindAllStringSubmatch(body, -1)
	if len(routes) == 0 {
		t.Fatalf("metrics: got no ringlet_http_requests_total series, want some")
	}
	allowed := map[string]bool{"none": true, "/api/version": true, "/api/*": true, "/*": true, "/api/profiles/{alias}": true, "/metrics": true}
	for _, m := range routes {
		if !allowed[m[1]] {
			t.Errorf("route label: got %q, want a chi pattern such as /api/version", m[1])
		}
	}
}

func TestMetricsUnknownMethod(t *testing.T) {
	t.Parallel()
	_, h := newTestHandler(t)
	serve(t, h, newRequest("BREW", "/api/version", nil))
	resp := serve(t, h, newRequest(http.MethodGet, "/metrics", nil))
	body := readBody(t, resp)
	if strings.Contains(body, `method="BREW"`) {
		t.Errorf("metrics: got method label BREW, want unknown methods folded into \"other\"")
	}
	if !strings.Contains(body, `method="other"`) {
		t.Errorf("metrics: want a series with method=\"other\", got:\n%s", grepLines(body, "ringlet_http_requests_total"))
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
