package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/credentials"
)

// TestProxyBodyTimeout: a client that declares a body and sends only part
// of it gets a 400 once the body deadline passes, instead of holding the
// daemon's buffer for as long as it likes; the next request on a new
// connection is served.
func TestProxyBodyTimeout(t *testing.T) {
	t.Parallel()
	bs := newBenchSetup(t, 0)
	bs.srv.proxy.bodyTimeout = 300 * time.Millisecond
	host := strings.TrimSuffix(strings.TrimPrefix(bs.ringlet, "http://"), "/proxy")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /proxy/v1/messages HTTP/1.1\r\nHost: %s\r\nX-Api-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"model\":", host, bs.token)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) || !bytes.Contains(answer, []byte("did not arrive within 300ms")) {
		t.Errorf("a body that stops coming: got %.300q, want 400 saying the body did not arrive in time", answer)
	}
	resp := bs.post(t, bs.ringlet, []byte(`{"model":"m","messages":[]}`))
	resp.Body.Close()
}

// TestProxyBodyBudget: once the bodies held by the proxy reach the budget
// a further request is refused with 503 and Retry-After, and served again
// once there is room.
func TestProxyBodyBudget(t *testing.T) {
	t.Parallel()
	bs := newBenchSetup(t, 0)
	body := []byte(`{"model":"m","messages":[]}`)
	bs.srv.bodies.held.Store(proxyBodyBudget - 10)
	req, _ := http.NewRequest("POST", bs.ringlet+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("X-Api-Key", bs.token)
	resp, err := bs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !bytes.Contains(data, []byte(`"busy"`)) {
		t.Errorf("over the budget: got %d, Retry-After %q, body %s; want 503 busy with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	if got := bs.srv.bodies.held.Load(); got != proxyBodyBudget-10 {
		t.Errorf("budget after a refusal: got %d held, want %d (nothing kept)", got, proxyBodyBudget-10)
	}
	bs.srv.bodies.held.Store(0)
	bs.post(t, bs.ringlet, body).Body.Close()
	if got := bs.srv.bodies.held.Load(); got != 0 {
		t.Errorf("budget after a served request: got %d held, want 0 (all given back)", got)
	}
}

// TestSessionExpiryCutsStream: a session whose TTL runs out during an
// answer has that answer cut and is ended (with its session.end record),
// without waiting for its token to be presented again.
func TestSessionExpiryCutsStream(t *testing.T) {
	t.Parallel()
	bs := newBenchSetup(t, 10*time.Millisecond) // 200 events: a 2 s stream
	sess, tok, err := bs.srv.sessions.start(t.Context(), "bench", 500*time.Millisecond, "admin")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", bs.ringlet+"/v1/messages", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	req.Header.Set("X-Api-Key", tok)
	resp, err := bs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || readErr == nil || bytes.Contains(data, []byte("message_stop")) {
		t.Errorf("stream across the session's expiry: got %d, read error %v, %d bytes (end of stream: %v); want 200 cut short",
			resp.StatusCode, readErr, len(data), bytes.Contains(data, []byte("message_stop")))
	}
	bs.srv.sessions.mu.RLock()
	_, live := bs.srv.sessions.byID[sess.ID]
	bs.srv.sessions.mu.RUnlock()
	if live {
		t.Errorf("session %s still listed after its expiry", sess.ID)
	}
}

// TestModelLabelsBounded: the model label of the provider metrics takes
// the first maxModelLabels distinct models, then "other"; models that are
// not label-safe are "other" from the start.
func TestModelLabelsBounded(t *testing.T) {
	var m modelLabels
	for i := range maxModelLabels {
		if got := m.label(fmt.Sprintf("m-%d", i)); got != fmt.Sprintf("m-%d", i) {
			t.Fatalf("model %d: got label %q, want the model", i, got)
		}
	}
	if got := m.label("m-one-too-many"); got != "other" {
		t.Errorf("past the bound: got %q, want other", got)
	}
	if got := m.label("m-7"); got != "m-7" {
		t.Errorf("a model already seen: got %q, want itself", got)
	}
	if got := m.label("bad label\n"); got != "other" {
		t.Errorf("a model with a newline: got %q, want other", got)
	}
}

// racingKeys replaces the key inside the window between start
// reading it and adding the session, as a keychain PUT would.
type racingKeys struct {
	KeyStore
	srv  *Server
	once sync.Once
}

func (k *racingKeys) Get(ref credentials.Ref) (credentials.Secret, error) {
	sec, err := k.KeyStore.Get(ref)
	k.once.Do(func() { k.srv.sessions.endUsing(context.Background(), ref, "key replaced") })
	return sec, err
}

// TestSessionStartRacingKeyChange: a session whose key is replaced while
// it starts is not left live with the old key.
func TestSessionStartRacingKeyChange(t *testing.T) {
	t.Parallel()
	bs := newBenchSetup(t, 0)
	bs.srv.sessions.o.Keys = &racingKeys{KeyStore: bs.srv.sessions.o.Keys, srv: bs.srv}
	sess, _, err := bs.srv.sessions.start(t.Context(), "bench", time.Hour, "admin")
	if err == nil || !strings.Contains(err.Error(), "changed while the session started") {
		t.Errorf("start racing a key change: got session %v, err %v; want an error", sess != nil, err)
	}
	// The change ended the setup's session too; none may be left.
	if live := bs.srv.sessions.list(); len(live) != 0 {
		t.Errorf("after the racing start: %d sessions live (%s), want none with the replaced key", len(live), live[0].ID)
	}
	// Without a change, sessions start.
	if _, _, err := bs.srv.sessions.start(t.Context(), "bench", time.Hour, "admin"); err != nil {
		t.Errorf("a plain start after: %v", err)
	}
}

// TestProxyBodyBudgetChunked: a body of unknown length (chunked) counts as
// the most it may be while it arrives, so the budget bounds such bodies
// too; once read it holds only its own size, and all is given back.
func TestProxyBodyBudgetChunked(t *testing.T) {
	t.Parallel()
	bs := newBenchSetup(t, 0)
	bs.srv.bodies.held.Store(proxyBodyBudget - MaxProxyBody + 1)
	chunked := func() *http.Response {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(`{"model":"m","messages":[]}`))
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", bs.ringlet+"/v1/messages", pr)
		req.Header.Set("X-Api-Key", bs.token)
		resp, err := bs.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := chunked(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a chunked body with less than MaxProxyBody left: got %d, want 503", resp.StatusCode)
	}
	bs.srv.bodies.held.Store(0)
	if resp := chunked(); resp.StatusCode != http.StatusOK {
		t.Errorf("a chunked body with room: got %d, want 200", resp.StatusCode)
	}
	if got := bs.srv.bodies.held.Load(); got != 0 {
		t.Errorf("budget after a chunked request: got %d held, want 0", got)
	}
}

// TestProxyRefusesUpgrades: a provider that switches protocols (a
// WebSocket) is refused with one clear error, not tunnelled past the
// meter, the redactor and the audit record.
func TestProxyRefusesUpgrades(t *testing.T) {
	t.Parallel()
	bs := newBenchSetupWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes after the upgrade")
		brw.Flush()
	}))
	req, _ := http.NewRequest("GET", bs.ringlet+"/v1/realtime", nil)
	req.Header.Set("X-Api-Key", bs.token)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := bs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte("does not proxy upgrades")) || bytes.Contains(body, []byte("raw bytes")) {
		t.Errorf("an upgrade: got %d %s, want 502 saying upgrades are not proxied", resp.StatusCode, body)
	}
}

// TestHookCheckSharesBodyBudget: hook checks, which may carry a tool
// result of many MiB, count against the same budget as proxied bodies.
func TestHookCheckSharesBodyBudget(t *testing.T) {
	t.Parallel()
	bs := newBenchSetup(t, 0)
	check := func() int {
		req, _ := http.NewRequest("POST", strings.TrimSuffix(bs.ringlet, "/proxy")+"/session/hooks/check",
			strings.NewReader(`{"event":"pre-tool-use","tool_name":"Bash","tool_input":{}}`))
		req.Header.Set("Authorization", "Bearer "+bs.token)
		resp, err := bs.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	bs.srv.bodies.held.Store(proxyBodyBudget - 10)
	if got := check(); got != http.StatusServiceUnavailable {
		t.Errorf("a hook check over the budget: got %d, want 503", got)
	}
	bs.srv.bodies.held.Store(0)
	if got := check(); got != http.StatusOK {
		t.Errorf("a hook check with room: got %d, want 200", got)
	}
	if got := bs.srv.bodies.held.Load(); got != 0 {
		t.Errorf("budget after a hook check: got %d held, want 0", got)
	}
}
