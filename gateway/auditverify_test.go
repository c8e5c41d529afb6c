package gateway

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
	"github.com/neullabs/ringlet/token"
)

// GET /api/audit/verify walks the whole chain, leaves its mark, and with
// since_last=true walks from that mark; other parameters are refused.
func TestAuditVerifySinceLast(t *testing.T) {
	t.Parallel()
	log, err := auditlog.Open(auditlog.Options{Path: filepath.Join(t.TempDir(), "audit.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	for range 3 {
		if _, err := log.Append(t.Context(), audit.Record{Kind: audit.KindToolCall, Decision: audit.Allow}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), TokenFile: filepath.Join(t.TempDir(), "http_token"), Audit: log, AuditPath: log.Path()}))
	if err != nil {
		t.Fatal(err)
	}
	s.port.Store(testPort)
	t.Cleanup(s.life.stop)
	t.Cleanup(s.mcp.srv.Close)
	h := s.Handler()
	verify := func(query string) (int, audit.VerifyResult) {
		t.Helper()
		resp := serve(t, h, newRequest("GET", "/api/audit/verify"+query, nil))
		var res audit.VerifyResult
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, res
	}
	code, full := verify("")
	if code != http.StatusOK || !full.OK || full.SinceSeq != 0 || full.LastSeq == 0 {
		t.Fatalf("full: got %d %+v, want 200, ok, from the first record", code, full)
	}
	code, res := verify("?since_last=true")
	if code != http.StatusOK || !res.OK || res.SinceSeq != full.LastSeq || res.Records != 0 {
		t.Errorf("since_last: got %d %+v, want 200, ok, since_seq %d, no records", code, res, full.LastSeq)
	}
	for _, q := range []string{"?since_last=yes", "?full=true", "?since_last=true&since_last=false"} {
		if code, _ := verify(q); code != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", q, code)
		}
	}
}
