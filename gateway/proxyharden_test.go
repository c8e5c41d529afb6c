package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// keyEchoes are the ways an upstream might echo key: name -> text.
func keyEchoes(key string) map[string]string {
	var uesc, pct strings.Builder
	for i := range len(key) {
		fmt.Fprintf(&uesc, `\u%04X`, key[i])
		fmt.Fprintf(&pct, "%%%02x", key[i])
	}
	return map[string]string{
		"raw":              key,
		"json-escaped":     uesc.String(),
		"percent-encoded":  pct.String(),
		"query-escaped":    url.QueryEscape("k=" + key),
		"hex":              hex.EncodeToString([]byte(key)),
		"HEX":              strings.ToUpper(hex.EncodeToString([]byte(key))),
		"base64-offset-0":  base64.StdEncoding.EncodeToString([]byte(key)),
		"base64-offset-1":  base64.StdEncoding.EncodeToString([]byte("Bearer " + key)),
		"base64url-offset": base64.RawURLEncoding.EncodeToString([]byte("x-api-key: " + key)),
	}
}

// keyTraces are what must not be left of an echo: the echo itself, or
// for base64 the characters that carry the key's bits alone.
func keyTraces(key string) map[string]string {
	traces := keyEchoes(key)
	for name, prefix := range map[string]string{"base64-offset-0": "", "base64-offset-1": "Bearer ", "base64url-offset": "x-api-key: "} {
		k := len(prefix) % 3
		full := traces[name]
		first := (8*len(prefix)/6 + 1) // past any character that mixes in the prefix
		if k == 0 {
			first = 8 * len(prefix) / 6
		}
		last := (8*len(prefix) + 8*len(key)) / 6 // exclusive: characters wholly inside the key
		traces[name] = full[first:last]
	}
	return traces
}

// TestProxyRedactsEncodedKey: an upstream that echoes the key raw,
// JSON-escaped, percent-encoded, in hex or inside base64, in its headers,
// in a plain answer, in a stream that writes it a byte at a time and in
// an answer of unknown length, gets none of it to the client.
func TestProxyRedactsEncodedKey(t *testing.T) {
	t.Parallel()
	echoes := keyEchoes(benchnet.Key)
	var names []string
	for name := range echoes {
		names = append(names, name)
	}
	sort.Strings(names)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range names {
			w.Header().Set("X-Echo-"+name, "was "+echoes[name])
		}
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/v1/json":
			var b strings.Builder
			for _, name := range names {
				fmt.Fprintf(&b, `{"%s":"%s"}`, name, echoes[name])
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(b.Len()))
			io.WriteString(w, b.String())
		case "/v1/stream", "/v1/chunked":
			ct := "text/event-stream"
			if r.URL.Path == "/v1/chunked" {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(http.StatusOK)
			for _, name := range names {
				ev := "data: {\"text\":\"" + echoes[name] + "\"}\n\n"
				for i := range len(ev) {
					io.WriteString(w, ev[i:i+1])
					rc.Flush()
				}
			}
		}
	})
	bs := newBenchSetupWith(t, up)
	traces := keyTraces(benchnet.Key)
	for _, path := range []string{"/v1/json", "/v1/stream", "/v1/chunked"} {
		t.Run(path, func(t *testing.T) {
			req, _ := http.NewRequest("POST", bs.ringlet+path, strings.NewReader(`{"model":"m"}`))
			req.Header.Set("X-Api-Key", bs.token)
			resp, err := bs.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("got %d, %v; want 200", resp.StatusCode, err)
			}
			var all bytes.Buffer
			resp.Header.Write(&all)
			all.Write(body)
			for name, trace := range traces {
				if bytes.Contains(all.Bytes(), []byte(trace)) {
					t.Errorf("the answer holds the key %s (%q)", name, trace)
				}
			}
			if n := bytes.Count(body, []byte("[redacted]")); n != len(echoes) {
				t.Errorf("body %q: got %d redactions, want %d", body, n, len(echoes))
			}
			for _, name := range names {
				if got := resp.Header.Get("X-Echo-" + name); !strings.HasPrefix(got, "was ") || !strings.Contains(got, "[redacted]") {
					t.Errorf("header X-Echo-%s: got %q, want the echo redacted", name, got)
				}
			}
		})
	}
}
