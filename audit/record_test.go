package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestHMACSum(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	k := NewHMAC(key)
	other := NewHMAC([]byte("another key"))
	tests := []string{
		"sk-ant-api03-secret-value",
		"hunter2",
		"",
		"a much longer value with spaces, unicode ✓ and a newline\n",
		strings.Repeat("x", 4096),
	}
	seen := map[string]string{}
	for _, v := range tests {
		t.Run(v[:min(len(v), 20)], func(t *testing.T) {
			got := k.Sum(v)
			if again := k.Sum(v); got != again {
				t.Errorf("Sum twice: got %s then %s, want the same", got, again)
			}
			if got2 := NewHMAC(key).Sum(v); got != got2 {
				t.Errorf("Sum with an equal key: got %s and %s, want the same", got, got2)
			}
			if o := other.Sum(v); o == got {
				t.Errorf("Sum under two keys: both %s, want different", got)
			}
			hexPart, ok := strings.CutPrefix(got, "hmac:")
			if !ok {
				t.Fatalf("Sum: got %q, want prefix hmac:", got)
			}
			if b, err := hex.DecodeString(hexPart); err != nil || len(b) != 16 {
				t.Errorf("Sum: got %q, want hmac: and 16 bytes of hex", got)
			}
			if v != "" && strings.Contains(got, v) {
				t.Errorf("Sum(%q) = %q contains its input", v, got)
			}
			if prev, dup := seen[got]; dup {
				t.Errorf("Sum(%q) = Sum(%q) = %s", v, prev, got)
			}
			seen[got] = v
		})
	}
}

// TestHMACCopiesKey: the caller may wipe or reuse its key buffer.
func TestHMACCopiesKey(t *testing.T) {
	t.Parallel()
	key := []byte("key material")
	k := NewHMAC(key)
	before := k.Sum("value")
	for i := range key {
		key[i] = 0
	}
	if after := k.Sum("value"); after != before {
		t.Errorf("Sum after the caller changed its key buffer: got %s, want %s", after, before)
	}
}

// TestChainHashGolden pins the hash of one record: the canonical encoding
// is part of the on-disk format, and changing it would make every existing
// log fail verification. The value was cross-checked with a separate
// implementation of the format documented on Canonical.
func TestChainHashGolden(t *testing.T) {
	t.Parallel()
	r := Record{
		Seq: 7, Time: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC),
		Kind: KindProviderRequest, Profile: "work", Session: "s-1", Actor: ActorAdmin,
		Target: "POST /v1/messages", Decision: Allow, Status: 200, Duration: 1500 * time.Millisecond,
		BytesIn: 1, BytesOut: 2, TokensIn: 3, TokensOut: 4, TokensCacheRead: 5, TokensCacheWrite: 6,
		Detail: json.RawMessage(`{"model":"m"}`),
	}
	const want = "6ac3595c91a5b8efe603c19e1560b80944661d2aa4e768b920762f5f3c85c216"
	if got := hex.EncodeToString(ChainHash(Genesis(), &r)); got != want {
		t.Errorf("chainHash of the reference record: got %s, want %s", got, want)
	}
	// The same with trace fields (the value the encoding gave before it
	// was written without closures).
	r.TraceID, r.SpanID, r.ParentSpanID, r.Link = "6a3b5c00aabbccddeeff001122334455", "0011223344556677", "8899aabbccddeeff", LinkCarried
	const wantTrace = "7bdfcb856c5639e93cff0fb31842fe63589c565c42b802f38cba5768d7550259"
	if got := hex.EncodeToString(ChainHash(Genesis(), &r)); got != wantTrace {
		t.Errorf("chainHash of the reference record with trace fields: got %s, want %s", got, wantTrace)
	}
}

// TestTraceFieldsCanonical: a record with trace fields hashes them, and
// moving a value from one trace field to the next changes the encoding.
func TestTraceFieldsCanonical(t *testing.T) {
	t.Parallel()
	a := Record{Time: time.Unix(0, 1).UTC(), Kind: KindToolCall, TraceID: "ab", SpanID: "c"}
	b := Record{Time: time.Unix(0, 1).UTC(), Kind: KindToolCall, TraceID: "a", SpanID: "bc"}
	if bytes.Equal(a.Canonical(), b.Canonical()) {
		t.Error("trace ids split differently encode the same")
	}
	c := Record{Time: time.Unix(0, 1).UTC(), Kind: KindToolCall, Detail: json.RawMessage(`{"x":1}`)}
	d := c
	d.Link = LinkInferred
	if bytes.Equal(c.Canonical(), d.Canonical()) {
		t.Error("a record with a link encodes as one without")
	}
}

func TestCanonicalFieldsAreCovered(t *testing.T) {
	t.Parallel()
	base := Record{Time: time.Unix(0, 1).UTC(), Kind: KindToolCall}
	edits := map[string]func(*Record){
		"Seq":              func(r *Record) { r.Seq++ },
		"Time":             func(r *Record) { r.Time = r.Time.Add(time.Nanosecond) },
		"Kind":             func(r *Record) { r.Kind += "x" },
		"Profile":          func(r *Record) { r.Profile += "x" },
		"Session":          func(r *Record) { r.Session += "x" },
		"Actor":            func(r *Record) { r.Actor += "x" },
		"Target":           func(r *Record) { r.Target += "x" },
		"Decision":         func(r *Record) { r.Decision += "x" },
		"Status":           func(r *Record) { r.Status++ },
		"Duration":         func(r *Record) { r.Duration++ },
		"BytesIn":          func(r *Record) { r.BytesIn++ },
		"BytesOut":         func(r *Record) { r.BytesOut++ },
		"TokensIn":         func(r *Record) { r.TokensIn++ },
		"TokensOut":        func(r *Record) { r.TokensOut++ },
		"TokensCacheRead":  func(r *Record) { r.TokensCacheRead++ },
		"TokensCacheWrite": func(r *Record) { r.TokensCacheWrite++ },
		"Detail":           func(r *Record) { r.Detail = json.RawMessage(`{}`) },
		"TraceID":          func(r *Record) { r.TraceID += "x" },
		"SpanID":           func(r *Record) { r.SpanID += "x" },
		"ParentSpanID":     func(r *Record) { r.ParentSpanID += "x" },
		"Link":             func(r *Record) { r.Link += "x" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := base
			edit(&r)
			if bytes.Equal(r.Canonical(), base.Canonical()) {
				t.Errorf("changing %s: got the same canonical encoding, want a different one", name)
			}
		})
	}
	// The hashes are what the chain stores, not what it covers.
	r := base
	r.PrevHash, r.Hash = "aa", "bb"
	if !bytes.Equal(r.Canonical(), base.Canonical()) {
		t.Errorf("changing PrevHash and Hash: got a different canonical encoding, want the same")
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         Record
		wantTarget string
		wantDetail string
	}{
		{"valid text kept", Record{Target: "a\x00b\n\x1b[31m\u202e"}, "a\x00b\n\x1b[31m\u202e", ""},
		{"invalid UTF-8 replaced", Record{Target: "a\xff\xfeb"}, "a\uFFFDb", ""},
		{"valid detail kept", Record{Detail: json.RawMessage(`{"a": [1, "x"]}`)}, "", `{"a": [1, "x"]}`},
		{"invalid JSON detail wrapped", Record{Detail: json.RawMessage(`{not json`)}, "", `{"invalid_detail":"{not json"}`},
		{"invalid UTF-8 in a JSON string replaced", Record{Detail: json.RawMessage("{\"a\":\"x\xffy\"}")}, "", "{\"a\":\"x\uFFFDy\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.in
			r.Sanitize()
			if r.Target != tt.wantTarget {
				t.Errorf("Target: got %q, want %q", r.Target, tt.wantTarget)
			}
			if string(r.Detail) != tt.wantDetail {
				t.Errorf("Detail: got %q, want %q", r.Detail, tt.wantDetail)
			}
			if !utf8.Valid(r.Detail) || (len(r.Detail) > 0 && !json.Valid(r.Detail)) {
				t.Errorf("Detail %q: want valid UTF-8 JSON", r.Detail)
			}
		})
	}
}

func TestDetailJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"nil", nil, ""},
		{"empty", map[string]any{}, ""},
		{"values", map[string]any{"b": 2, "a": "x"}, `{"a":"x","b":2}`},
		{"unencodable", map[string]any{"c": make(chan int)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(DetailJSON(tt.in)); got != tt.want {
				t.Errorf("DetailJSON: got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestChainHashAllocations: the chain hash runs in every commit; its
// encoding stays on the stack, so a record costs one allocation (the
// hash it returns). The ceiling leaves room for a runtime that boxes
// differently; the closures it replaced made it four.
func TestChainHashAllocations(t *testing.T) {
	r := Record{Seq: 1, Time: time.Unix(1, 0), Kind: KindProviderRequest, Profile: "work", Session: "s-1",
		Target: "/v1/messages", Decision: Allow, Detail: json.RawMessage(`{"complete":true,"method":"POST","model":"m","provider":"p","stream":false,"ttfb_ns":1}`),
		TraceID: "6a3b5c00aabbccddeeff001122334455", SpanID: "0011223344556677"}
	prev := Genesis()
	if n := testing.AllocsPerRun(100, func() { ChainHash(prev, &r) }); n > 2 {
		t.Errorf("ChainHash: got %v allocations, want at most 2", n)
	}
}

// TestUsageKeyAllocations: the usage key of a plain detail costs its two
// strings; json.Unmarshal made six.
func TestUsageKeyAllocations(t *testing.T) {
	d := json.RawMessage(`{"complete":true,"method":"POST","model":"claude-x","provider":"anthropic","stream":false,"ttfb_ns":12}`)
	if n := testing.AllocsPerRun(100, func() { UsageKey(d) }); n > 3 {
		t.Errorf("UsageKey: got %v allocations, want at most 3", n)
	}
	if p, m := UsageKey(d); p != "anthropic" || m != "claude-x" {
		t.Errorf("UsageKey: got (%q, %q), want (anthropic, claude-x)", p, m)
	}
}
