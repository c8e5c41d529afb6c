package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/token"
)

func TestAuthMiddleware(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
		header http.Header // replaces the default Authorization header
		status int
		reason string // auth failure reason counted, when status is 401
	}{
		{name: "no header", target: "/api/version", header: http.Header{}, status: 401, reason: "missing"},
		{name: "wrong token same length", target: "/api/version", header: http.Header{"Authorization": {"Bearer " + otherToken}}, status: 401, reason: "invalid"},
		{name: "wrong token shorter", target: "/api/version", header: http.Header{"Authorization": {"Bearer " + testToken[:63]}}, status: 401, reason: "invalid"},
		{name: "wrong token longer", target: "/api/version", header: http.Header{"Authorization": {"Bearer " + testToken + "0"}}, status: 401, reason: "invalid"},
		{name: "basic scheme", target: "/api/version", header: http.Header{"Authorization": {"Basic xxx"}}, status: 401, reason: "malformed"},
		{name: "basic scheme with the token", target: "/api/version", header: http.Header{"Authorization": {"Basic " + testToken}}, status: 401, reason: "malformed"},
		{name: "bearer empty", target: "/api/version", header: http.Header{"Authorization": {"Bearer "}}, status: 401, reason: "malformed"},
		{name: "bearer only", target: "/api/version", header: http.Header{"Authorization": {"Bearer"}}, status: 401, reason: "malformed"},
		{name: "token without scheme", target: "/api/version", header: http.Header{"Authorization": {testToken}}, status: 401, reason: "malformed"},
		{name: "two authorization headers", target: "/api/version", header: http.Header{"Authorization": {"Bearer " + testToken, "Bearer " + testToken}}, status: 401, reason: "malformed"},
		{name: "token in query", target: "/api/version?token=" + testToken, header: http.Header{}, status: 401, reason: "query_token"},
		{name: "token in access_token query", target: "/api/version?access_token=" + testToken, header: http.Header{}, status: 401, reason: "query_token"},
		{name: "token in cookie", target: "/api/version", header: http.Header{"Cookie": {"token=" + testToken}}, status: 401, reason: "missing"},
		{name: "subprotocol without bearer", target: "/api/version", header: http.Header{"Sec-Websocket-Protocol": {testToken}}, status: 401, reason: "malformed"},
		{name: "subprotocol bearer empty", target: "/api/version", header: http.Header{"Sec-Websocket-Protocol": {"bearer, "}}, status: 401, reason: "malformed"},
		{name: "subprotocol wrong token", target: "/api/version", header: http.Header{"Sec-Websocket-Protocol": {"bearer, " + otherToken}}, status: 401, reason: "invalid"},
		{name: "correct token", target: "/api/version", status: 200},
		{name: "lower-case scheme", target: "/api/version", header: http.Header{"Authorization": {"bearer " + testToken}}, status: 200},
		{name: "correct header wins over query", target: "/api/version?token=junk", status: 200},
		{name: "subprotocol form", target: "/api/version", header: http.Header{"Sec-Websocket-Protocol": {"bearer, " + testToken}}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, h := newTestHandler(t)
			r := newRequest(http.MethodGet, tt.target, nil)
			if tt.header != nil {
				r.Header = tt.header.Clone()
			}
			resp := serve(t, h, r)
			if tt.status == http.StatusOK {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status: got %d, want 200 (body %s)", resp.StatusCode, readBody(t, resp))
				}
				for _, reason := range authFailureReasons {
					if got := testutil.ToFloat64(s.metrics.authFailures.WithLabelValues(reason)); got != 0 {
						t.Errorf("ringlet_auth_failures_total{reason=%q}: got %v, want 0", reason, got)
					}
				}
				return
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), `Bearer realm="ringlet"`; got != want {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, want)
			}
			e := assertError(t, resp, tt.status, "unauthorized")
			if strings.Contains(e.Error.Message, testToken) || strings.Contains(e.Error.Message, otherToken) {
				t.Errorf("error message %q contains a token, want no token", e.Error.Message)
			}
			if got := testutil.ToFloat64(s.metrics.authFailures.WithLabelValues(tt.reason)); got != 1 {
				t.Errorf("ringlet_auth_failures_total{reason=%q}: got %v, want 1", tt.reason, got)
			}
		})
	}
}

func TestCredential(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		target     string
		header     http.Header
		wantTok    string
		wantReason string
		wantOK     bool
	}{
		{name: "bearer header", header: http.Header{"Authorization": {"Bearer abc"}}, wantTok: "abc", wantOK: true},
		{name: "bearer header extra spaces", header: http.Header{"Authorization": {"Bearer   abc  "}}, wantTok: "abc", wantOK: true},
		{name: "subprotocol pair", header: http.Header{"Sec-Websocket-Protocol": {"bearer, abc"}}, wantTok: "abc", wantOK: true},
		{name: "subprotocol pair in two lines", header: http.Header{"Sec-Websocket-Protocol": {"bearer", "abc"}}, wantTok: "abc", wantOK: true},
		{name: "subprotocol token first", header: http.Header{"Sec-Websocket-Protocol": {"abc, bearer"}}, wantReason: "malformed"},
		{name: "subprotocol three values", header: http.Header{"Sec-Websocket-Protocol": {"bearer, abc, def"}}, wantReason: "malformed"},
		{name: "subprotocol bearer alone", header: http.Header{"Sec-Websocket-Protocol": {"bearer"}}, wantReason: "malformed"},
		{name: "authorization wins over subprotocol", header: http.Header{"Authorization": {"Bearer abc"}, "Sec-Websocket-Protocol": {"bearer, def"}}, wantTok: "abc", wantOK: true},
		{name: "query token", target: "/?token=abc", wantReason: "query_token"},
		{name: "query access_token", target: "/?access_token=abc", wantReason: "query_token"},
		{name: "empty query token", target: "/?token=", wantReason: "query_token"},
		{name: "cookie", header: http.Header{"Cookie": {"access_token=abc"}}, wantReason: "missing"},
		{name: "nothing", wantReason: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := tt.target
			if target == "" {
				target = "/"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.Header = tt.header
			if r.Header == nil {
				r.Header = http.Header{}
			}
			tok, reason, ok := credential(r, byAdmin.carriers())
			if tok != tt.wantTok || reason != tt.wantReason || ok != tt.wantOK {
				t.Errorf("credential: got (%q, %q, %v), want (%q, %q, %v)", tok, reason, ok, tt.wantTok, tt.wantReason, tt.wantOK)
			}
		})
	}
}

func TestAuthFailureLogOmitsQuery(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), Logger: slog.New(slog.NewJSONHandler(&buf, nil))}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.port.Store(testPort)
	r := newRequest(http.MethodGet, "/api/version?token="+otherToken, nil)
	r.Header.Del("Authorization")
	resp := serve(t, s.Handler(), r)
	assertError(t, resp, http.StatusUnauthorized, "unauthorized")
	if !strings.Contains(buf.String(), "query_token") {
		t.Errorf("log: got %q, want a line with reason query_token", buf.String())
	}
	if strings.Contains(buf.String(), otherToken) {
		t.Errorf("log: got %q, want no token from the query string", buf.String())
	}
}

func TestWebSocketSubprotocolAuth(t *testing.T) {
	t.Parallel()
	_, ts := newLiveServer(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	c, resp, err := websocket.Dial(ctx, ts.URL+"/api/events", &websocket.DialOptions{Subprotocols: []string{"bearer", testToken}})
	if err != nil {
		t.Fatalf("dial with the token as subprotocol: %v", err)
	}
	defer c.CloseNow()
	assertNoCORS(t, resp)
	if got := c.Subprotocol(); got != "bearer" {
		t.Errorf("negotiated subprotocol: got %q, want %q", got, "bearer")
	}
	if got := resp.Header.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != "bearer" {
		t.Errorf("Sec-WebSocket-Protocol in the answer: got %q, want [bearer] (never the token)", got)
	}
	c.Close(websocket.StatusNormalClosure, "")

	_, resp, err = websocket.Dial(ctx, ts.URL+"/api/events", &websocket.DialOptions{Subprotocols: []string{"bearer", otherToken}})
	if err == nil {
		t.Fatalf("dial with a wrong token: got no error, want a refused handshake")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with a wrong token: got response %v, want status 401", resp)
	}
	assertNoCORS(t, resp)
}

func TestRotationCancelsOldRequests(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testPort)
	a := s.auth
	ctxs := make(chan context.Context, 1)
	release := make(chan struct{})
	h := s.gate(route{who: byAdmin, deny: refuseAdmin}, onTCP, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context()
		<-release
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	defer func() {
		close(release)
		<-done
	}()

	var ctx context.Context
	select {
	case ctx = <-ctxs:
	case <-time.After(10 * time.Second):
		t.Fatal("handler was not reached with the valid token")
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("context before rotation: got %v, want nil", err)
	}
	a.set(token.FromString(otherToken))
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("request context still live 10s after rotation, want cancelled")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errTokenRotated) {
		t.Errorf("cause: got %v, want %v", cause, errTokenRotated)
	}

	for _, tc := range []struct {
		tok  string
		want bool
	}{{testToken, false}, {otherToken, true}} {
		if _, ok := a.check(tc.tok); ok != tc.want {
			t.Errorf("check(%.8s...) after rotation: got %v, want %v", tc.tok, ok, tc.want)
		}
	}
}

func TestRotationSwitchesAcceptedToken(t *testing.T) {
	t.Parallel()
	s, h := newTestHandler(t)
	s.auth.set(token.FromString(otherToken))
	tests := []struct {
		name   string
		tok    string
		status int
	}{
		{"old token", testToken, http.StatusUnauthorized},
		{"new token", otherToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(http.MethodGet, "/api/version", nil)
			r.Header.Set("Authorization", "Bearer "+tt.tok)
			resp := serve(t, h, r)
			if resp.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

// TestCredentialCarriers is the one token rule on the routes that read
// more than Authorization and the subprotocol: session-only routes read
// X-Api-Key too, and /mcp (admin and sessions) reads Authorization alone.
func TestCredentialCarriers(t *testing.T) {
	t.Parallel()
	session, both := bySession.carriers(), (byAdmin | bySession).carriers()
	tests := []struct {
		name       string
		from       carrier
		target     string
		header     http.Header
		wantTok    string
		wantReason string
		wantOK     bool
	}{
		{name: "x-api-key", from: session, header: http.Header{"X-Api-Key": {"abc"}}, wantTok: "abc", wantOK: true},
		{name: "bearer on a session route", from: session, header: http.Header{"Authorization": {"Bearer abc"}}, wantTok: "abc", wantOK: true},
		{name: "x-api-key decides over authorization", from: session, header: http.Header{"X-Api-Key": {"abc"}, "Authorization": {"Bearer def"}}, wantTok: "abc", wantOK: true},
		{name: "x-api-key decides over a malformed authorization", from: session, header: http.Header{"X-Api-Key": {"abc"}, "Authorization": {"Basic def"}}, wantTok: "abc", wantOK: true},
		{name: "empty x-api-key is no credential", from: session, header: http.Header{"X-Api-Key": {""}, "Authorization": {"Bearer def"}}, wantTok: "def", wantOK: true},
		{name: "two x-api-key headers", from: session, header: http.Header{"X-Api-Key": {"abc", "abc"}}, wantReason: "malformed"},
		{name: "two authorization headers", from: session, header: http.Header{"Authorization": {"Bearer abc", "Bearer abc"}}, wantReason: "malformed"},
		{name: "two authorization headers beside x-api-key", from: session, header: http.Header{"X-Api-Key": {"abc"}, "Authorization": {"Bearer abc", "Bearer def"}}, wantReason: "malformed"},
		{name: "no subprotocol on a session route", from: session, header: http.Header{"Sec-Websocket-Protocol": {"bearer, abc"}}, wantReason: "missing"},
		{name: "query on a session route", from: session, target: "/?token=abc", wantReason: "query_token"},
		{name: "bearer on /mcp", from: both, header: http.Header{"Authorization": {"Bearer abc"}}, wantTok: "abc", wantOK: true},
		{name: "no x-api-key on /mcp", from: both, header: http.Header{"X-Api-Key": {"abc"}}, wantReason: "missing"},
		{name: "no subprotocol on /mcp", from: both, header: http.Header{"Sec-Websocket-Protocol": {"bearer, abc"}}, wantReason: "missing"},
		{name: "no x-api-key on an admin route", from: byAdmin.carriers(), header: http.Header{"X-Api-Key": {"abc"}}, wantReason: "missing"},
		{name: "two x-api-key headers unread on an admin route", from: byAdmin.carriers(), header: http.Header{"X-Api-Key": {"a", "b"}, "Authorization": {"Bearer abc"}}, wantTok: "abc", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := tt.target
			if target == "" {
				target = "/"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.Header = tt.header
			if r.Header == nil {
				r.Header = http.Header{}
			}
			tok, reason, ok := credential(r, tt.from)
			if tok != tt.wantTok || reason != tt.wantReason || ok != tt.wantOK {
				t.Errorf("credential: got (%q, %q, %v), want (%q, %q, %v)", tok, reason, ok, tt.wantTok, tt.wantReason, tt.wantOK)
			}
		})
	}
}
