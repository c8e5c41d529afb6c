package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"
)

// FuzzParseFilter feeds query strings to ParseFilter: it must not panic,
// and what it accepts must be a filter Query can run as asked.
func FuzzParseFilter(f *testing.F) {
	now := time.Date(2026, 5, 10, 15, 30, 0, 0, time.UTC)
	known := []string{"since", "until", "kind", "profile", "session", "decision", "limit", "cursor"}
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query) // a partial parse is still input
		got, err := ParseFilter(q, now, time.UTC)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("ParseFilter(%q): got an empty error message", query)
			}
			return
		}
		if got.Limit < 1 || got.Limit > MaxLimit {
			t.Errorf("ParseFilter(%q): got limit %d, want 1 to %d", query, got.Limit, MaxLimit)
		}
		if got.Before < 0 {
			t.Errorf("ParseFilter(%q): got cursor %d, want 0 or more", query, got.Before)
		}
		for _, k := range got.Kinds {
			if !slices.Contains(Kinds, k) {
				t.Errorf("ParseFilter(%q): got kind %q, want one of Kinds", query, k)
			}
		}
		if got.Decision != "" && got.Decision != Allow && got.Decision != Deny && got.Decision != Error {
			t.Errorf("ParseFilter(%q): got decision %q, want allow, deny or error", query, got.Decision)
		}
		if !got.Since.IsZero() && !got.Until.IsZero() && !got.Until.After(got.Since) {
			t.Errorf("ParseFilter(%q): got until %v not after since %v", query, got.Until, got.Since)
		}
		for key := range q {
			if !slices.Contains(known, key) {
				t.Errorf("ParseFilter(%q): accepted unknown parameter %q", query, key)
			}
		}
	})
}

// fuzzRecord decodes a record from fuzz input: each text field is a length
// byte and that many bytes, each number 8 bytes; missing input is zero.
func fuzzRecord(data []byte) Record {
	str := func() string {
		if len(data) == 0 {
			return ""
		}
		n := min(int(data[0]), len(data)-1)
		s := string(data[1 : 1+n])
		data = data[1+n:]
		return s
	}
	num := func() int64 {
		var b [8]byte
		n := copy(b[:], data)
		data = data[n:]
		return int64(binary.BigEndian.Uint64(b[:]))
	}
	r := Record{Seq: num(), Time: time.Unix(0, num()).UTC()}
	r.Kind, r.Profile, r.Session, r.Actor, r.Target, r.Decision = str(), str(), str(), str(), str(), str()
	r.Status, r.Duration, r.BytesIn, r.BytesOut = num(), time.Duration(num()), num(), num()
	r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite = num(), num(), num(), num()
	if d := str(); d != "" {
		r.Detail = []byte(d)
	}
	return r
}

// sameRecord compares what Canonical is meant to cover.
func sameRecord(a, b Record) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Kind == b.Kind && a.Profile == b.Profile &&
		a.Session == b.Session && a.Actor == b.Actor && a.Target == b.Target && a.Decision == b.Decision &&
		a.Status == b.Status && a.Duration == b.Duration && a.BytesIn == b.BytesIn && a.BytesOut == b.BytesOut &&
		a.TokensIn == b.TokensIn && a.TokensOut == b.TokensOut && a.TokensCacheRead == b.TokensCacheRead &&
		a.TokensCacheWrite == b.TokensCacheWrite && bytes.Equal(a.Detail, b.Detail)
}

// FuzzCanonical checks that the encoding the chain hashes is deterministic
// and that no two different records share it (or their chain hash), so an
// edit cannot be disguised as a different record with the same hash.
func FuzzCanonical(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ra, rb := fuzzRecord(a), fuzzRecord(b)
		ca, cb := ra.Canonical(), rb.Canonical()
		if again := ra.Canonical(); !bytes.Equal(ca, again) {
			t.Fatalf("Canonical twice: got %x then %x", ca, again)
		}
		if sameRecord(ra, rb) != bytes.Equal(ca, cb) {
			t.Fatalf("records equal: %v, encodings equal: %v, want both the same\na: %+v\nb: %+v", sameRecord(ra, rb), bytes.Equal(ca, cb), ra, rb)
		}
		ha, hb := ChainHash(Genesis(), &ra), ChainHash(Genesis(), &rb)
		if sameRecord(ra, rb) != bytes.Equal(ha, hb) {
			t.Fatalf("records equal: %v, chain hashes equal: %v, want both the same", sameRecord(ra, rb), bytes.Equal(ha, hb))
		}
		// The link is covered too: the same record after another
		// predecessor has another hash.
		if bytes.Equal(ChainHash(ha, &ra), ChainHash(hb, &ra)) != bytes.Equal(ha, hb) {
			t.Fatalf("chain hash does not depend on the previous hash")
		}
	})
}

// FuzzUsageKey holds UsageKey (and DetailModel), which walk a detail
// without decoding it where they can, to what json.Unmarshal of it into
// the two fields gives.
func FuzzUsageKey(f *testing.F) {
	for _, s := range []string{
		`{"complete":true,"method":"POST","model":"claude-x","provider":"anthropic","stream":false,"ttfb_ns":12}`,
		`{"model":"a","model":"b","Provider":"p"}`,
		`{"MODEL":"m","PROVIDER":null,"x":[1,{"model":"no"}],"y":"\"}"}`,
		`{"model":1,"provider":true}`,
		`{"model":"caf\u00e9","provider":"p\\q"}`,
		`{"mod\u0065l":"m"}`,
		"{\"model\":\"\xff\"}",
		` { "model" : "m" , "provider" : "p" } `,
		`[{"model":"m"}]`,
		`{"model":"m"`,
		`null`,
		`{}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, detail []byte) {
		var want struct {
			Provider string `json:"provider"`
			Model    string `json:"model"`
		}
		_ = json.Unmarshal(detail, &want)
		p, m := UsageKey(detail)
		if p != want.Provider || m != want.Model {
			t.Fatalf("UsageKey(%q): got (%q, %q), want (%q, %q)", detail, p, m, want.Provider, want.Model)
		}
		if m := DetailModel(detail); m != want.Model {
			t.Fatalf("DetailModel(%q): got %q, want %q", detail, m, want.Model)
		}
	})
}
