package test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestEventsAndRotation opens the event stream the way a browser would
// (the token as a subprotocol), rotates the token with the CLI, and checks
// that the stream is closed, the old token is refused at once and the new
// one from the file works.
func TestEventsAndRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	oldTok := e.Token()
	wsURL := "ws" + strings.TrimPrefix(d.URL, "http") + "/api/events"

	t.Run("handshake without token", func(t *testing.T) {
		c, resp, err := websocket.Dial(wsContext(t), wsURL, nil)
		if err == nil {
			c.CloseNow()
			t.Fatal("dial without token: got a connection, want an error")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial without token: got response %v, want status 401", statusOf(resp))
		}
	})
	t.Run("handshake with wrong token", func(t *testing.T) {
		c, resp, err := websocket.Dial(wsContext(t), wsURL, &websocket.DialOptions{Subprotocols: []string{"bearer", strings.Repeat("0", 64)}})
		if err == nil {
			c.CloseNow()
			t.Fatal("dial with wrong token: got a connection, want an error")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial with wrong token: got response %v, want status 401", statusOf(resp))
		}
	})

	c, _, err := websocket.Dial(wsContext(t), wsURL, &websocket.DialOptions{Subprotocols: []string{"bearer", oldTok}})
	if err != nil {
		t.Fatalf("dial with token: %v", err)
	}
	defer c.CloseNow()
	if got := c.Subprotocol(); got != "bearer" {
		t.Errorf("negotiated subprotocol: got %q, want bearer (never the token)", got)
	}
	// The stream is registered before we rotate, so the test covers
	// closing an established stream.
	if !waitFor(readyTimeout, func() bool { return eventStreams(t, d, oldTok) == 1 }) {
		t.Fatalf("event_streams in /api/status: never got 1")
	}

	fiBefore, err := os.Stat(e.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := e.Run("daemon", "rotate-token")
	if code != 0 {
		t.Fatalf("rotate-token: exit %d, want 0; stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "rotated the token") {
		t.Errorf("rotate-token: got %q, want it to say the token was rotated", stdout)
	}

	// The stream may carry events (token.rotate) before the close frame.
	readCtx := wsContext(t)
	var readErr error
	for readErr == nil {
		_, _, readErr = c.Read(readCtx)
	}
	if got := websocket.CloseStatus(readErr); got != websocket.StatusPolicyViolation {
		t.Errorf("close status after rotation: got %v (read error %v), want %v", got, readErr, websocket.StatusPolicyViolation)
	}
	var ce websocket.CloseError
	if errors.As(readErr, &ce) && ce.Reason != "token rotated" {
		t.Errorf("close reason after rotation: got %q, want %q", ce.Reason, "token rotated")
	}

	if status, _, body := d.MustGet(t, "/api/status", oldTok, nil); status != http.StatusUnauthorized {
		t.Errorf("old token after rotation: got %d, want 401; body %s", status, body)
	}
	newTok := e.Token()
	if newTok == oldTok {
		t.Fatal("token file after rotation: got the old token, want a new one")
	}
	if status, _, body := d.MustGet(t, "/api/status", newTok, nil); status != http.StatusOK {
		t.Errorf("new token after rotation: got %d, want 200; body %s", status, body)
	}
	fi, err := os.Lstat(e.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file after rotation: got mode %v, want a regular 0600 file", fi.Mode())
	}
	if os.SameFile(fi, fiBefore) {
		t.Error("token file after rotation: got the same inode, want an atomic replacement")
	}

	// A stream opened with the old token is refused; the new one works.
	if c2, resp, err := websocket.Dial(wsContext(t), wsURL, &websocket.DialOptions{Subprotocols: []string{"bearer", oldTok}}); err == nil {
		c2.CloseNow()
		t.Error("dial with the old token: got a connection, want 401")
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dial with the old token: got %v, want status 401", statusOf(resp))
	}
	c3, _, err := websocket.Dial(wsContext(t), wsURL, &websocket.DialOptions{Subprotocols: []string{"bearer", newTok}})
	if err != nil {
		t.Fatalf("dial with the new token: %v", err)
	}
	c3.Close(websocket.StatusNormalClosure, "")

	// The CLI reads the new token from the file.
	if _, stderr, code := e.Run("daemon", "status"); code != 0 {
		t.Errorf("daemon status after rotation: exit %d, want 0; stderr %q", code, stderr)
	}

	e.AssertNoSecret(oldTok, newTok)
}

// wsContext bounds one WebSocket step, so a broken daemon fails the step
// instead of the whole test timing out.
func wsContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return "no response"
	}
	return resp.Status
}

func eventStreams(t *testing.T, d *daemon, tok string) int {
	t.Helper()
	var st struct {
		EventStreams int `json:"event_streams"`
	}
	status, _, body := d.MustGet(t, "/api/status", tok, nil)
	if status != http.StatusOK {
		t.Fatalf("/api/status: got %d, want 200; body %s", status, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st.EventStreams
}
