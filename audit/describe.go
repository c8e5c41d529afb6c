package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Describe is the span in words, as `ringlet audit trace` prints it and
// the dashboard shows it (without the record's number).
func (n *TraceNode) Describe() string {
	var b strings.Builder
	if u := n.ToolUse; u != nil {
		fmt.Fprintf(&b, "tool_use %s (%s)", u.Name, u.ID)
		if u.InputDigest != "" {
			b.WriteString(" input " + u.InputDigest)
		}
		return b.String()
	}
	r := n.Record
	b.WriteString(r.Kind)
	if r.Target != "" {
		b.WriteString(" " + r.Target)
	}
	var d map[string]any
	_ = json.Unmarshal(r.Detail, &d) // a detail that is not an object adds nothing
	str := func(k string) string { s, _ := d[k].(string); return s }
	switch r.Kind {
	case KindProviderRequest:
		if m := str("model"); m != "" {
			b.WriteString(" model " + m)
		}
		fmt.Fprintf(&b, " tokens %d in / %d out", r.TokensIn+r.TokensCacheRead+r.TokensCacheWrite, r.TokensOut)
		if n.CostUSD != nil {
			fmt.Fprintf(&b, " $%.4f", *n.CostUSD)
		}
	case KindToolCall:
		if v := str("via"); v != "" {
			b.WriteString(" via " + v)
		}
		fmt.Fprintf(&b, " in %d B", r.BytesIn)
	case KindToolResult:
		if st := str("status"); st != "" {
			b.WriteString(" " + st)
		}
		if c, ok := d["code"].(float64); ok {
			fmt.Fprintf(&b, " code %d", int64(c))
		}
		fmt.Fprintf(&b, " out %d B in %s", r.BytesOut, r.Duration.Round(time.Microsecond))
	case KindHookDecision:
		if h := str("hook"); h != "" {
			b.WriteString(" hook " + h)
		}
		if rs := str("reason"); rs != "" {
			b.WriteString(": " + rs)
		}
	case KindHookBypass:
		if rs := str("reason"); rs != "" {
			b.WriteString(": " + rs)
		}
	}
	if r.Decision != "" {
		b.WriteString(" " + r.Decision)
	}
	if r.Status != 0 {
		b.WriteString(" " + strconv.FormatInt(r.Status, 10))
	}
	if n.Link == LinkInferred {
		b.WriteString(" (inferred)")
	}
	return b.String()
}
