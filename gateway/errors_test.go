package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/token"
)

const maxBody = 1 << 20

// jsonOfSize returns a JSON object {"name":"aaa..."} exactly n bytes long.
func jsonOfSize(n int) []byte {
	const head, tail = `{"name":"`, `"}`
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail)
}

// echoName is a test-only handler behind limitBody that decodes
// {"name": ...} with decodeJSON.
func echoName(max int64) http.Handler {
	return limitBody(max, time.Second)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Name string `json:"name"`
		}
		if !decodeJSON(w, r, &v) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"len": len(v.Name)})
	}))
}

// hideLength makes a request look chunked: no declared Content-Length.
type hideLength struct{ io.Reader }

func TestLimitBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		status  int
	}{
		{name: "declared one over the limit", body: jsonOfSize(maxBody + 1), status: http.StatusRequestEntityTooLarge},
		{name: "declared exactly at the limit", body: jsonOfSize(maxBody), status: http.StatusOK},
		{name: "declared one under the limit", body: jsonOfSize(maxBody - 1), status: http.StatusOK},
		{name: "chunked one over the limit", body: jsonOfSize(maxBody + 1), chunked: true, status: http.StatusRequestEntityTooLarge},
		{name: "chunked far over the limit", body: jsonOfSize(3 * maxBody), chunked: true, status: http.StatusRequestEntityTooLarge},
		{name: "chunked exactly at the limit", body: jsonOfSize(maxBody), chunked: true, status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = hideLength{body}
			}
			r := newRequest(http.MethodPost, "/", body)
			if tt.chunked {
				r.ContentLength = -1
			}
			resp := serve(t, echoName(maxBody), r)
			if tt.status != http.StatusOK {
				assertError(t, resp, tt.status, "body_too_large")
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d, want 200 (body %s)", resp.StatusCode, readBody(t, resp))
			}
			var got struct{ Len int }
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if want := len(tt.body) - len(`{"name":""}`); got.Len != want {
				t.Errorf("decoded name length: got %d, want %d", got.Len, want)
			}
		})
	}
}

// TestLimitBodyRefusesBeforeHandler checks that a declared oversized body
// never reaches the handler.
func TestLimitBodyRefusesBeforeHandler(t *testing.T) {
	t.Parallel()
	called := false
	h := limitBody(10, time.Second)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	resp := serve(t, h, newRequest(http.MethodPost, "/", strings.NewReader("12345678901")))
	assertError(t, resp, http.StatusRequestEntityTooLarge, "body_too_large")
	if called {
		t.Errorf("handler called: got true, want false")
	}
}

func TestLimitBodyOnAPIRoutes(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"/api/profiles", "/api/daemon/rotate-token", "/api/daemon/stop"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			s, h := newTestHandler(t)
			resp := serve(t, h, newRequest(http.MethodPost, target, bytes.NewReader(jsonOfSize(maxBody+1))))
			assertError(t, resp, http.StatusRequestEntityTooLarge, "body_too_large")
			select {
			case reason := <-s.stopCh:
				t.Errorf("stop requested (%q) by a refused request, want no stop", reason)
			default:
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		status int
		want   string // a substring of the error message
	}{
		{name: "valid", body: `{"name":"x"}`, status: http.StatusOK},
		{name: "valid with trailing newline", body: "{\"name\":\"x\"}\n", status: http.StatusOK},
		{name: "unknown field", body: `{"name":"x","admin":true}`, status: http.StatusBadRequest, want: "admin"},
		{name: "trailing object", body: `{"name":"x"}{"name":"y"}`, status: http.StatusBadRequest, want: "after the JSON value"},
		{name: "trailing garbage", body: `{"name":"x"} x`, status: http.StatusBadRequest},
		{name: "empty", body: "", status: http.StatusBadRequest, want: "empty"},
		{name: "whitespace only", body: " \n", status: http.StatusBadRequest, want: "empty"},
		{name: "truncated", body: `{"name":`, status: http.StatusBadRequest},
		{name: "wrong type", body: `{"name":1}`, status: http.StatusBadRequest},
		{name: "array", body: `[]`, status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := serve(t, echoName(maxBody), newRequest(http.MethodPost, "/", strings.NewReader(tt.body)))
			if tt.status == http.StatusOK {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status: got %d, want 200 (body %s)", resp.StatusCode, readBody(t, resp))
				}
				return
			}
			e := assertError(t, resp, tt.status, "bad_request")
			if !strings.Contains(e.Error.Message, tt.want) {
				t.Errorf("message: got %q, want it to contain %q", e.Error.Message, tt.want)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, target string
		status         int
		code           string
	}{
		{http.MethodGet, "/nonexistent", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/api/nonexistent", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/api/daemon/nonexistent", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/api/version", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodGet, "/api/daemon/stop", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodGet, "/api/daemon/rotate-token", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodPost, "/api/profiles/x", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodGet, "/api/profiles/x", http.StatusNotFound, "not_found"},
		{http.MethodDelete, "/api/keychain/a/b", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/api/mcp", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/mcp/x", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/proxy", http.StatusNotFound, "not_found"},
		// The proxy takes session tokens only, never the admin token.
		{http.MethodPost, "/proxy/anything", http.StatusUnauthorized, "unauthorized"},
		{http.MethodGet, "/proxy/openai/v1/models", http.StatusUnauthorized, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			t.Parallel()
			_, h := newTestHandler(t)
			assertError(t, serve(t, h, newRequest(tt.method, tt.target, nil)), tt.status, tt.code)

			// Without the token every route, unknown ones included, is 401.
			r := newRequest(tt.method, tt.target, nil)
			r.Header.Del("Authorization")
			assertError(t, serve(t, h, r), http.StatusUnauthorized, "unauthorized")
		})
	}
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	const secret = "secret-panic-detail-42"
	var logBuf bytes.Buffer
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), Logger: slog.New(slog.NewJSONHandler(&logBuf, nil))}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.port.Store(testPort)
	h := s.Handler()
	h.(chi.Router).Get("/panic", func(w http.ResponseWriter, r *http.Request) { panic(secret) })

	resp := serve(t, h, newRequest(http.MethodGet, "/panic", nil))
	e := assertError(t, resp, http.StatusInternalServerError, "internal")
	for _, leak := range []string{secret, "goroutine", ".go:"} {
		if strings.Contains(e.Error.Message, leak) {
			t.Errorf("500 message %q contains %q, want neither panic text nor stack", e.Error.Message, leak)
		}
	}
	if !strings.Contains(logBuf.String(), secret) {
		t.Errorf("log: got %q, want the panic text for the operator", logBuf.String())
	}
	// The request is counted with the status the client saw.
	if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues("/panic", http.MethodGet, "500")); got != 1 {
		t.Errorf(`ringlet_http_requests_total{route="/panic",code="500"}: got %v, want 1`, got)
	}
	if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues("/panic", http.MethodGet, "200")); got != 0 {
		t.Errorf(`ringlet_http_requests_total{route="/panic",code="200"}: got %v, want 0`, got)
	}
}

func TestRecovererDirect(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testPort)
	h := s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom-detail") }))
	resp := serve(t, h, httptest.NewRequest(http.MethodGet, "/", nil))
	e := assertError(t, resp, http.StatusInternalServerError, "internal")
	if strings.Contains(e.Error.Message, "boom-detail") {
		t.Errorf("message: got %q, want no panic text", e.Error.Message)
	}
}

func TestRecovererRepanicsAbort(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testPort)
	h := s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered: got %v, want http.ErrAbortHandler passed on to net/http", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}
