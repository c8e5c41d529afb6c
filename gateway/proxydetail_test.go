package gateway

import (
	"bytes"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// TestProviderDetailJSON: the record's detail is byte for byte what
// encoding/json writes, whether or not a string needs escaping.
func TestProviderDetailJSON(t *testing.T) {
	t.Parallel()
	for _, d := range []providerDetail{
		{Complete: true, Method: "POST", Model: "claude-sonnet-4-5", Provider: "anthropic", TTFBNs: 1234},
		{Method: "GET", Provider: "p", Stream: true, Error: "the provider sent nothing for 5m0s (proxy.idle_timeout); the answer was cut"},
		{Method: "POST", Model: `m"<&>\é` + "\x00\xff", Provider: "p", Error: "a\nb", TTFBNs: -1},
		{},
	} {
		if got, want := d.json(), audit.DetailJSON(&d); !bytes.Equal(got, want) {
			t.Errorf("detail of %+v: got %s, want %s", d, got, want)
		}
	}
}

func FuzzProviderDetailJSON(f *testing.F) {
	f.Add("POST", "claude", "anthropic", "", true, int64(5))
	f.Add("GET", `x"<y`, "p", "err\n", false, int64(-3))
	f.Fuzz(func(t *testing.T, method, model, prov, errText string, complete bool, ttfb int64) {
		d := providerDetail{Complete: complete, Method: method, Model: model, Provider: prov, Error: errText, Stream: !complete, TTFBNs: ttfb}
		if got, want := d.json(), audit.DetailJSON(&d); !bytes.Equal(got, want) {
			t.Fatalf("detail of %+v: got %s, want %s", d, got, want)
		}
	})
}

func TestStatusLabel(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{0: "0", 200: "200", 599: "599", 600: "600", -1: "-1", 1000: "1000"} {
		if got := statusLabel(code); got != want {
			t.Errorf("statusLabel(%d): got %q, want %q", code, got, want)
		}
	}
}
