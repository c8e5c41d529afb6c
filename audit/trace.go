package audit

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// Trace and span ids have the sizes of W3C trace context (and so of
// OpenTelemetry): 16 and 8 random bytes, lower-case hex.
const (
	TraceIDLen = 32
	SpanIDLen  = 16
)

// NewTraceID returns a trace id: the Unix second it starts in (8 hex
// digits, as AWS X-Ray's ids begin) and 24 random hex digits. The time
// lets a reader find a trace's records through the log's time index
// (TraceWindow) instead of an index of its own, which would cost every
// record's commit.
func NewTraceID() string {
	// fmt.Sprintf("%08x", second) + randomHex(12), in one allocation.
	var b [TraceIDLen]byte
	var raw [16]byte
	binary.BigEndian.PutUint32(raw[:4], uint32(time.Now().Unix()))
	randomBytes(raw[4:16])
	hex.Encode(b[:], raw[:])
	return string(b[:])
}

// TraceLifetime bounds how long after its start a trace's records are
// looked for.
const TraceLifetime = 7 * 24 * time.Hour

// TraceWindow is the time a trace id's records lie in: from shortly
// before the second it names to TraceLifetime after.
func TraceWindow(id string) (since, until time.Time) {
	if len(id) != TraceIDLen {
		return time.Time{}, time.Time{}
	}
	sec, err := strconv.ParseUint(id[:8], 16, 32)
	if err != nil {
		return time.Time{}, time.Time{}
	}
	start := time.Unix(int64(sec), 0)
	return start.Add(-time.Hour), start.Add(TraceLifetime)
}

// NewSpanID returns a random span id.
func NewSpanID() string { return randomHex(SpanIDLen / 2) }

// randomHex is n random bytes in hex. The ids are names, not secrets:
// the runtime's per-thread generator (randomly seeded, no system call)
// makes them unique at a fraction of crypto/rand's cost on the proxy's
// path.
func randomHex(n int) string {
	var b [16]byte
	randomBytes(b[:n])
	if n == SpanIDLen/2 && b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] == 0 {
		b[7] = 1 // all zero is W3C's invalid id
	}
	var h [32]byte
	hex.Encode(h[:], b[:n])
	return string(h[:2*n])
}

// randomBytes fills b from the runtime's generator, 8 bytes at a time
// (the last word in part).
func randomBytes(b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rand.Uint64()) //nolint:gosec // G404: ids name spans, they guard nothing
		copy(b[i:], w[:])
	}
}

// ValidTraceID reports whether s is a trace id: 32 lower-case hex digits,
// not all zero (W3C's invalid id).
func ValidTraceID(s string) bool { return validHexID(s, TraceIDLen) }

// ValidSpanID reports whether s is a span id: 16 lower-case hex digits,
// not all zero.
func ValidSpanID(s string) bool { return validHexID(s, SpanIDLen) }

func validHexID(s string, n int) bool {
	if len(s) != n {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
		zero = zero && c == '0'
	}
	return !zero
}

// TraceToolUse is a tool_use (Anthropic) or function call (OpenAI) a
// provider answered with, as its provider.request record's detail holds
// it under "tool_uses": the id on the wire, the tool's name, a digest of
// its input (never the input) and the span the gateway gave it.
type TraceToolUse struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	InputDigest string `json:"input_digest,omitempty"`
	SpanID      string `json:"span_id"`
}

// TraceNode is one span of a trace: a record, or a tool_use that its
// provider request's record names.
type TraceNode struct {
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	// Kind is the record's kind, or "tool_use".
	Kind    string        `json:"kind"`
	Link    string        `json:"link,omitempty"`
	Record  *Record       `json:"record,omitempty"`
	ToolUse *TraceToolUse `json:"tool_use,omitempty"`
	// CostUSD prices a provider request's tokens (absent when its model
	// has no price).
	CostUSD  *float64     `json:"cost_usd,omitempty"`
	Children []*TraceNode `json:"children,omitempty"`
}

// Trace is the tree of one trace's records.
type Trace struct {
	TraceID string       `json:"trace_id"`
	Records int          `json:"records"`
	CostUSD float64      `json:"cost_usd"`
	Roots   []*TraceNode `json:"roots"`
}

// KindToolUse is the kind of a TraceNode that is a tool_use.
const KindToolUse = "tool_use"

// ErrNoTrace means no record has the trace id or sequence number asked for.
var ErrNoTrace = errors.New("no such trace")

// ReadTrace returns the tree of the trace named by ref: a trace id, or
// the sequence number of one of its records. cost prices provider
// requests; nil leaves them unpriced. The trace's records are at most
// MaxLimit.
func ReadTrace(ctx context.Context, path, ref string, cost CostFunc) (Trace, error) {
	return ReadSessionTrace(ctx, path, ref, "", cost)
}

// ReadSessionTrace is ReadTrace of only session's records (every
// record's for ""): what a session may see of a trace.
func ReadSessionTrace(ctx context.Context, path, ref, session string, cost CostFunc) (Trace, error) {
	id := ref
	if !ValidTraceID(ref) {
		seq, err := strconv.ParseInt(ref, 10, 64)
		if err != nil || seq < 1 {
			return Trace{}, fmt.Errorf("invalid trace %q: give a trace id (32 hex digits) or a record's number", ref)
		}
		recs, _, err := Query(ctx, path, Filter{Before: seq + 1, Limit: 1})
		if err != nil {
			return Trace{}, err
		}
		if len(recs) == 0 || recs[0].Seq != seq || session != "" && recs[0].Session != session {
			return Trace{}, fmt.Errorf("%w: no record %d", ErrNoTrace, seq)
		}
		if recs[0].TraceID == "" {
			return Trace{}, fmt.Errorf("%w: record %d belongs to no trace (written before traces, or outside any session)", ErrNoTrace, seq)
		}
		id = recs[0].TraceID
	}
	recs, _, err := Query(ctx, path, Filter{Trace: id, Session: session, Limit: MaxLimit})
	if err != nil {
		return Trace{}, err
	}
	if len(recs) == 0 {
		return Trace{}, fmt.Errorf("%w: no record has trace id %s", ErrNoTrace, id)
	}
	return BuildTrace(id, recs, cost), nil
}

// BuildTrace makes the tree of a trace's records (in any order): each
// record under the span its parent names, the tool_uses a provider
// request's record names under it. A record whose parent is not in the
// trace is a root.
func BuildTrace(id string, recs []Record, cost CostFunc) Trace {
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
	t := Trace{TraceID: id, Records: len(recs)}
	nodes := map[string]*TraceNode{}
	var order []*TraceNode
	for i := range recs {
		r := &recs[i]
		n := &TraceNode{SpanID: r.SpanID, ParentSpanID: r.ParentSpanID, Kind: r.Kind, Link: r.Link, Record: r}
		if r.Kind == KindProviderRequest {
			var d struct {
				Provider string         `json:"provider"`
				Model    string         `json:"model"`
				ToolUses []TraceToolUse `json:"tool_uses"`
			}
			_ = json.Unmarshal(r.Detail, &d) // a detail that is not the gateway's names no tool_uses
			if cost != nil {
				if usd, ok := cost(d.Provider, d.Model, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite); ok {
					n.CostUSD = &usd
					t.CostUSD += usd
				}
			}
			for j := range d.ToolUses {
				u := d.ToolUses[j]
				if u.SpanID == "" {
					continue
				}
				un := &TraceNode{SpanID: u.SpanID, ParentSpanID: r.SpanID, Kind: KindToolUse, Link: LinkCarried, ToolUse: &u}
				order = append(order, un)
				nodes[u.SpanID] = un
			}
		}
		order = append(order, n)
		if r.SpanID != "" {
			nodes[r.SpanID] = n
		}
	}
	for _, n := range order {
		if p := nodes[n.ParentSpanID]; n.ParentSpanID != "" && p != nil && p != n {
			p.Children = append(p.Children, n)
		} else {
			t.Roots = append(t.Roots, n)
		}
	}
	if t.Roots == nil {
		t.Roots = []*TraceNode{}
	}
	return t
}
