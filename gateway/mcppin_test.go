package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
)

// TestMCPApproveREST: the approve endpoint shows the diff (dry_run),
// approves only the observation it was shown (409 otherwise), refuses
// names it cannot approve, and is the admin's alone.
func TestMCPApproveREST(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	w.addUp(t, bin)
	const path = "/api/mcp/servers/work/up/approve"
	status, text := w.rest(t, testToken, "POST", path, `{"dry_run":true}`)
	var shown api.MCPApproved
	if status != http.StatusOK || json.Unmarshal([]byte(text), &shown) != nil || !shown.DryRun || !shown.Diff.Empty() ||
		!strings.HasPrefix(shown.Diff.Observed, "sha256:") || shown.Tools == 0 {
		t.Fatalf("dry run of a server just pinned: %d %s; want an empty diff and its observation", status, text)
	}
	_, sessTok := w.session(t, "work")
	for _, tc := range []struct {
		tok, body string
		status    int
		want      string
	}{
		{testToken, `{"observed":"sha256:` + strings.Repeat("0", 64) + `"}`, http.StatusConflict, "changed again since its diff was shown"},
		{testToken, `{"tools":["echo"]}`, http.StatusBadRequest, "echo has no change to approve"},
		{testToken, `{"tools":["bad name"]}`, http.StatusBadRequest, "invalid tool or prompt name"},
		{testToken, `{"tool":["echo"]}`, http.StatusBadRequest, "unknown field"},
		{testToken, `{"prompts":["greet"]}`, http.StatusBadRequest, "prompt:greet has no change to approve"},
		{testToken, `{"resources":["test://doc/1"]}`, http.StatusBadRequest, "resource:test://doc/1 has no change to approve"},
		{testToken, `{"prompts":["bad name"]}`, http.StatusBadRequest, "invalid tool or prompt name"},
		{testToken, `{"resources":["a\u0000b"]}`, http.StatusBadRequest, "invalid resource URI"},
		{sessTok, `{"dry_run":true}`, http.StatusUnauthorized, ""},
		{testToken, `{"observed":"` + shown.Diff.Observed + `"}`, http.StatusOK, `"approved":[]`},
		{testToken, ``, http.StatusOK, `"approved":[]`},
	} {
		if status, text := w.rest(t, tc.tok, "POST", path, tc.body); status != tc.status || !strings.Contains(text, tc.want) {
			t.Errorf("POST %s %s: got %d %s, want %d and %q", path, tc.body, status, text, tc.status, tc.want)
		}
	}
}
