package audit

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBuildTrace(t *testing.T) {
	t.Parallel()
	req, use, call, hookSpan, next := NewSpanID(), NewSpanID(), NewSpanID(), NewSpanID(), NewSpanID()
	detail, _ := json.Marshal(map[string]any{"provider": "p", "model": "m", "tool_uses": []TraceToolUse{{ID: "toolu_1", Name: "read", InputDigest: "sha256:ab", SpanID: use}}})
	recs := []Record{
		{Seq: 5, Kind: KindProviderRequest, SpanID: next, ParentSpanID: use, Link: LinkCarried},
		{Seq: 4, Kind: KindToolCall, SpanID: call, ParentSpanID: use, Link: LinkInferred},
		{Seq: 3, Kind: KindHookDecision, SpanID: hookSpan, ParentSpanID: call},
		{Seq: 1, Kind: KindProviderRequest, SpanID: req, TokensIn: 10, TokensOut: 20, Detail: detail},
	}
	tr := BuildTrace("t", recs, func(provider, model string, in, out, _, _ int64) (float64, bool) {
		return float64(in+out) / 1000, provider == "p" && model == "m"
	})
	if len(tr.Roots) != 1 || tr.Roots[0].SpanID != req {
		t.Fatalf("roots: %+v, want the first request alone", tr.Roots)
	}
	root := tr.Roots[0]
	if root.CostUSD == nil || *root.CostUSD != 0.03 || tr.CostUSD != 0.03 {
		t.Errorf("cost: %v / %v, want 0.03", root.CostUSD, tr.CostUSD)
	}
	if len(root.Children) != 1 || root.Children[0].Kind != KindToolUse || root.Children[0].ToolUse.ID != "toolu_1" {
		t.Fatalf("request's children: %+v, want its tool_use", root.Children)
	}
	u := root.Children[0]
	if len(u.Children) != 2 || u.Children[0].Kind != KindToolCall || u.Children[1].Kind != KindProviderRequest {
		t.Fatalf("tool_use's children: %+v, want the call then the next request", u.Children)
	}
	if c := u.Children[0]; len(c.Children) != 1 || c.Children[0].Kind != KindHookDecision {
		t.Fatalf("call's children: %+v, want its hook decision", c.Children)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	if id := NewTraceID(); !ValidTraceID(id) || ValidSpanID(id) {
		t.Errorf("trace id %q", id)
	}
	if id := NewSpanID(); !ValidSpanID(id) {
		t.Errorf("span id %q", id)
	}
	since, until := TraceWindow(NewTraceID())
	if now := time.Now(); now.Before(since) || !now.Before(until) {
		t.Errorf("a new trace's window %s..%s does not hold now", since, until)
	}
	if s, _ := TraceWindow("short"); !s.IsZero() {
		t.Error("a short id has a window")
	}
	for _, bad := range []string{"", "00000000000000000000000000000000", "ABCDEF0123456789ABCDEF0123456789", "xyz"} {
		if ValidTraceID(bad) {
			t.Errorf("ValidTraceID(%q)", bad)
		}
	}
}
