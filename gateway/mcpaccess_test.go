package gateway

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/mcp"
)

// TestMCPAccessRecordedOrRefused: a session's resources/read passes the
// profile's hooks (told its kind) and is recorded once, with its server,
// decision and size, when the server has answered; what cannot be
// recorded is refused before the server is asked, or withheld after.
func TestMCPAccessRecordedOrRefused(t *testing.T) {
	t.Parallel()
	w := newAuditFailWorld(t)
	sess, _, err := w.s.sessions.start(t.Context(), "work", 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	access := w.s.mcp.access(sess)
	a := mcp.Access{Kind: mcp.AccessResource, Server: "fs", Name: "fs+file:///a.md", Input: json.RawMessage(`{"uri":"file:///a.md"}`)}
	before := w.aud.count()
	v := access(t.Context(), a)
	if !v.Allow || v.Done == nil {
		t.Fatalf("access: got %+v, want allowed with Done", v)
	}
	if got := w.aud.count() - before; got != 1 {
		t.Errorf("records before the answer: got %d, want the hook's decision only", got)
	}
	if d := v.Done(t.Context(), json.RawMessage(`{"contents":[]}`), nil); !d.Allow {
		t.Errorf("done: got %+v, want allowed", d)
	}
	w.aud.mu.Lock()
	recs := append([]audit.Record(nil), w.aud.recs[before:]...)
	w.aud.mu.Unlock()
	if len(recs) != 2 || recs[0].Kind != audit.KindHookDecision || !strings.Contains(string(recs[0].Detail), `"kind":"resource"`) {
		t.Fatalf("records: got %+v, want the hook's decision (kind resource) and the read", recs)
	}
	r := recs[1]
	if r.Kind != audit.KindMCPResourceRead || r.Target != a.Name || r.Decision != audit.Allow || r.BytesOut != int64(len(`{"contents":[]}`)) ||
		r.BytesIn != int64(len(a.Input)) || !strings.Contains(string(r.Detail), `"server":"fs"`) || r.Session != sess.ID {
		t.Errorf("read record: got %+v %s", r, r.Detail)
	}

	// The server's error is recorded as such.
	v = access(t.Context(), mcp.Access{Kind: mcp.AccessPrompt, Server: "git", Name: "git__review", Input: json.RawMessage(`{"name":"review"}`)})
	if d := v.Done(t.Context(), nil, errors.New("git__review: no such prompt")); !d.Allow {
		t.Errorf("done with an error: got %+v, want it passed on", d)
	}
	w.aud.mu.Lock()
	last := w.aud.recs[len(w.aud.recs)-1]
	w.aud.mu.Unlock()
	if last.Kind != audit.KindMCPPromptGet || last.Decision != audit.Error || !strings.Contains(string(last.Detail), "no such prompt") {
		t.Errorf("prompt record: got %+v %s, want an error record", last, last.Detail)
	}

	// The log fails after the server answered: the answer is withheld.
	v = access(t.Context(), a)
	w.aud.setDown(true)
	if d := v.Done(t.Context(), json.RawMessage(`{"contents":[]}`), nil); d.Allow || !strings.Contains(d.Reason, "audit log") {
		t.Errorf("done with the log down: got %+v, want withheld naming the audit log", d)
	}
	// The log is down: the read is refused before the server is asked.
	if v := access(t.Context(), a); v.Allow || !strings.Contains(v.Reason, "audit log") {
		t.Errorf("access with the log down: got %+v, want refused naming the audit log", v)
	}
}

// TestMCPRefusedAccessRecorded: a read or get refused before any hook
// ran (its server's resources or prompts are off, or it changed since
// approved) is recorded as a refused read or get, with the reason.
func TestMCPRefusedAccessRecorded(t *testing.T) {
	t.Parallel()
	w := newAuditFailWorld(t)
	sess, _, err := w.s.sessions.start(t.Context(), "work", 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	refused := w.s.mcp.refusedAccess(sess)
	for _, a := range []mcp.Access{
		{Kind: mcp.AccessResource, Server: "fs", Name: "fs+file:///a.md"},
		{Kind: mcp.AccessPrompt, Server: "git", Name: "git__review"},
		{Kind: mcp.AccessPrompt, Server: "git", Name: "git__review", Method: "completion/complete"},
	} {
		before := w.aud.count()
		refused(t.Context(), a, "turned off")
		w.aud.mu.Lock()
		recs := append([]audit.Record(nil), w.aud.recs[before:]...)
		w.aud.mu.Unlock()
		want := audit.KindMCPResourceRead
		if a.Kind == mcp.AccessPrompt {
			want = audit.KindMCPPromptGet
		}
		if len(recs) != 1 || recs[0].Kind != want || recs[0].Decision != audit.Deny || recs[0].Target != a.Name || recs[0].Session != sess.ID ||
			!strings.Contains(string(recs[0].Detail), `"reason":"turned off"`) || !strings.Contains(string(recs[0].Detail), `"server":"`+a.Server+`"`) ||
			strings.Contains(string(recs[0].Detail), `"method"`) != (a.Method != "") {
			t.Errorf("%s: got %+v, want one %s deny record with the reason", a.Name, recs, want)
		}
	}
}
