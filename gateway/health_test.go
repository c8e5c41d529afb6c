package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/neullabs/ringlet/api"
)

// brokenKeys is a key store whose configured backend cannot be used.
type brokenKeys struct{ KeyStore }

func (brokenKeys) Backend() (string, string, error) {
	return "", "", errors.New("credentials.backend is keyring but the OS keyring is not available")
}

// TestHealth: /api/health tells the key store's backend and why, and
// whether the audit log can be written now, with the reason when not.
func TestHealth(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, o Options) api.Health {
		t.Helper()
		s, err := New(withParts(t, o))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.life.stop)
		t.Cleanup(s.mcp.srv.Close)
		s.port.Store(testPort)
		resp := serve(t, s.Handler(), newRequest(http.MethodGet, "/api/health", nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/health: %d", resp.StatusCode)
		}
		var h api.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	t.Run("healthy", func(t *testing.T) {
		t.Parallel()
		h := get(t, Options{AuditPath: "/x/audit.db", AuditWritable: func() error { return nil }, AuditState: func() error { return nil }})
		if h.Keys.Backend != "file" || h.Keys.Why == "" || h.Keys.Error != "" {
			t.Errorf("keys: %+v, want the file backend and why", h.Keys)
		}
		if !h.Audit.Writable || h.Audit.Path != "/x/audit.db" || h.Audit.Off {
			t.Errorf("audit: %+v, want writable at its path", h.Audit)
		}
	})
	t.Run("broken", func(t *testing.T) {
		t.Parallel()
		// The report reads the log's state; Writable (which counts a
		// refusal) is for actions.
		o := withParts(t, Options{AuditPath: "/x/audit.db",
			AuditWritable: func() error { t.Error("/api/health called AuditWritable"); return nil },
			AuditState:    func() error { return errors.New("the file system is full") }})
		o.Keys = brokenKeys{o.Keys}
		h := get(t, o)
		if h.Keys.Backend != "" || h.Keys.Error == "" {
			t.Errorf("keys: %+v, want the reason the backend cannot be used", h.Keys)
		}
		if h.Audit.Writable || h.Audit.Error != "the file system is full" {
			t.Errorf("audit: %+v, want not writable and why", h.Audit)
		}
	})
	t.Run("audit off", func(t *testing.T) {
		t.Parallel()
		if h := get(t, Options{}); !h.Audit.Off || h.Audit.Writable {
			t.Errorf("audit: %+v, want off", h.Audit)
		}
	})
}
