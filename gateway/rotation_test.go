package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/token"
)

// do sends an HTTP request with tok to the live server ts.
func do(t *testing.T, ctx context.Context, method, url, tok string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	assertNoCORS(t, resp)
	return resp
}

func TestRotateTokenEndpoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	tokenFile := filepath.Join(t.TempDir(), "ringlet", "http_token")
	old, created, err := token.LoadOrCreate(tokenFile)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: got (created=%v, err=%v), want a new token", created, err)
	}
	s, ts := newLiveServer(t, Options{Token: old, TokenFile: tokenFile})

	ws, wsResp, err := websocket.Dial(ctx, ts.URL+"/api/events", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + old.Value()}},
	})
	if err != nil {
		t.Fatalf("dial /api/events with the old token: %v", err)
	}
	defer ws.CloseNow()
	assertNoCORS(t, wsResp)

	resp := do(t, ctx, http.MethodPost, ts.URL+"/api/daemon/rotate-token", old.Value())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate: got status %d, want 200 (body %s)", resp.StatusCode, readBody(t, resp))
	}
	var body struct {
		Rotated   bool   `json:"rotated"`
		TokenFile string `json:"token_file"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode rotate answer: %v", err)
	}
	if !body.Rotated || body.TokenFile != tokenFile {
		t.Errorf("rotate answer: got %+v, want rotated=true token_file=%s", body, tokenFile)
	}

	// The stream opened with the old token ends with a policy violation.
	// Events published before the close (token.rotate) may arrive first.
	var closeErr error
	for closeErr == nil {
		var data []byte
		_, data, closeErr = ws.Read(ctx)
		if closeErr == nil && strings.Contains(string(data), old.Value()) {
			t.Errorf("event %s carries the old token, want no token in events", data)
		}
	}
	if got := websocket.CloseStatus(closeErr); got != websocket.StatusPolicyViolation {
		t.Errorf("close status after rotation: got %v (%v), want %v", got, closeErr, websocket.StatusPolicyViolation)
	}

	info, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("stat token file: %v", err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("token file mode: got %04o, want 0600", got)
	}
	fresh, err := token.Load(tokenFile)
	if err != nil {
		t.Fatalf("load new token: %v", err)
	}
	if fresh.Value() == old.Value() {
		t.Fatalf("token file after rotation: got the old token, want a new one")
	}

	tests := []struct {
		name   string
		tok    string
		status int
	}{
		{"old token", old.Value(), http.StatusUnauthorized},
		{"new token", fresh.Value(), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, ctx, http.MethodGet, ts.URL+"/api/version", tt.tok)
			if resp.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	if got := testutil.ToFloat64(s.metrics.rotations); got != 1 {
		t.Errorf("ringlet_token_rotations_total: got %v, want 1", got)
	}
}

// TestRotateTokenRefusesUnsafeFile checks that a token file others can read
// is not silently replaced and the old token stays valid.
func TestRotateTokenRefusesUnsafeFile(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "http_token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), TokenFile: tokenFile}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.port.Store(testPort)
	h := s.Handler()
	assertError(t, serve(t, h, newRequest(http.MethodPost, "/api/daemon/rotate-token", nil)), http.StatusInternalServerError, "rotate_failed")
	if resp := serve(t, h, newRequest(http.MethodGet, "/api/version", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("old token after a failed rotation: got status %d, want 200", resp.StatusCode)
	}
	data, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != testToken {
		t.Errorf("token file after a failed rotation: got %q, want the old token", got)
	}
}

// TestEventStreamShutdown checks the close status a stream gets when the
// daemon shuts down.
func TestEventStreamShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, ts := newLiveServer(t, Options{})
	ws, _, err := websocket.Dial(ctx, ts.URL+"/api/events", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	s.life.stop()
	_, _, err = ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("close status: got %v (%v), want %v", got, err, websocket.StatusGoingAway)
	}
}

// TestEventStreamDelivers checks that published events reach a reader and
// that the kind filter applies.
func TestEventStreamDelivers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, ts := newLiveServer(t, Options{})
	ws, _, err := websocket.Dial(ctx, ts.URL+"/api/events?kind=wanted", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()

	// The handler subscribes after the handshake; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.bus.mu.Lock()
		n := len(s.bus.subs)
		s.bus.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers: got %d, want 1", n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising on time
	}
	s.bus.publish(api.Event{Kind: "unwanted"})
	s.bus.publish(api.Event{Kind: "wanted", Profile: "p1"})
	_, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var e api.Event
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("decode event %s: %v", data, err)
	}
	if e.Kind != "wanted" || e.Profile != "p1" {
		t.Errorf("event: got %+v, want kind=wanted profile=p1", e)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}
