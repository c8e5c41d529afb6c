package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
)

// TestBypassFindingsWait: the hook.bypass findings of a session's end
// are not lost when the log cannot take them: recorded later (a forced
// end) or after a failed write, they wait and are written before the
// next record that goes through.
func TestBypassFindingsWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(c *recorder, a *faultyAuditor, end audit.Record)
		want string
	}{
		{"forced end", func(c *recorder, a *faultyAuditor, end audit.Record) {
			a.down = true
			c.recordLater(end)
			a.down = false
		}, "hook.bypass,session.end,tool.call"},
		{"failed write", func(c *recorder, a *faultyAuditor, end audit.Record) {
			a.failKind = audit.KindHookBypass
			if err := c.record(context.Background(), end); err != nil {
				t.Fatal(err)
			}
			a.failKind = ""
		}, "session.end,hook.bypass,tool.call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := &faultyAuditor{}
			tr := newTraces(nil)
			tr.hooked = func(string, string) bool { return true }
			c := &recorder{audit: a, bus: newEventBus(), log: slog.New(slog.DiscardHandler), traces: tr}
			sess := &session{ID: "s1", Profile: profile.Profile{Alias: "work"}, Agent: profile.Agent{ID: "claude"}}
			rt, _ := tr.request(nil, sess, []byte(`{}`))
			rt.add(provider.ToolUse{ID: "toolu_1", Name: "Bash"})
			tc.end(c, a, audit.Record{Kind: audit.KindSessionEnd, Session: "s1", Profile: "work"})
			if err := c.record(context.Background(), audit.Record{Kind: audit.KindToolCall, Profile: "work"}); err != nil {
				t.Fatal(err)
			}
			if got := a.kinds(); got != tc.want {
				t.Errorf("records written: %s, want %s", got, tc.want)
			}
		})
	}
}

// TestCutAnswerToolUsesForgotten: the tool calls of an answer that did
// not end (the provider closed it before message_stop) are forgotten,
// and so never flagged as hook bypasses; a whole answer's are kept.
func TestCutAnswerToolUsesForgotten(t *testing.T) {
	t.Parallel()
	const start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{}}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	for _, tc := range []struct {
		name, events string
		kept         bool
	}{
		{"cut", start, false},
		{"whole", start + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			upstream := func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(rw, tc.events) // the test reads what arrived
			}
			w := newAuditFailWorld(t, func(o *worldOptions) { o.upstream, o.idleTimeout = upstream, time.Hour })
			req, err := http.NewRequest("POST", w.ts.URL+"/proxy/v1/messages", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Api-Key", w.sessTok)
			resp, err := w.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body) // the answer's end is what counts
			resp.Body.Close()
			deadline := time.Now().Add(10 * time.Second)
			for !w.hasRecord(audit.KindProviderRequest) {
				if time.Now().After(deadline) {
					t.Fatal("no provider.request record")
				}
				time.Sleep(5 * time.Millisecond)
			}
			tr := w.s.rec.traces
			tr.mu.Lock()
			_, kept := tr.state(w.sessID).uses["toolu_1"]
			tr.mu.Unlock()
			if kept != tc.kept {
				t.Errorf("toolu_1 still awaited: %v, want %v", kept, tc.kept)
			}
		})
	}
}

func (w *auditFailWorld) hasRecord(kind string) bool {
	w.aud.mu.Lock()
	defer w.aud.mu.Unlock()
	for _, r := range w.aud.recs {
		if r.Kind == kind {
			return true
		}
	}
	return false
}
