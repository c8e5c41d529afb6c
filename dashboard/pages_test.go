package dashboard

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRowsAreText: what agents choose (a model name in the last action,
// a profile's agent) is rendered as text, never as markup.
func TestRowsAreText(t *testing.T) {
	t.Parallel()
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	rec := httptest.NewRecorder()
	RenderSessionRows(rec, NowPage{Now: time.Now(), Sessions: []SessionRow{{ID: "s_1", Profile: "p", Agent: evil, LastAction: "provider.request " + evil}},
		Summary: NowSummary{Live: 1, Profiles: []ProfileSum{{Profile: evil, Sessions: 1}}}, Older: evil})
	body := rec.Body.String()
	for _, bad := range []string{"<script>", "<img"} {
		if strings.Contains(body, bad) {
			t.Errorf("rows: got %q in\n%s\nwant it escaped", bad, body)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img") {
		t.Errorf("rows: want the markup as escaped text, got\n%s", body)
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Headers(rec.Header())
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q: want %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q admits unsafe sources", csp)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: got %v", rec.Header())
	}
}
