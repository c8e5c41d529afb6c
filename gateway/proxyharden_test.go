package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// headerRecorder is an upstream that answers 200 and keeps the headers of
// every request it gets.
type headerRecorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func (h *headerRecorder) last(t *testing.T) http.Header {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		t.Fatal("the upstream received no request")
	}
	return h.seen[len(h.seen)-1]
}

// hostileHeaders are headers a client may send that must never reach a
// provider: the credentials of every provider and scheme we know of,
// cookies, proxy and forwarding headers, and a name made up here. Each
// value carries the word "hostile" so that a leak shows wherever it lands.
var hostileHeaders = map[string]string{
	"Anthropic-Api-Key":         "hostile-anthropic-api-key",
	"X-Goog-Api-Key":            "hostile-x-goog-api-key",
	"Openai-Api-Key":            "hostile-openai-api-key",
	"Api-Key":                   "hostile-azure-api-key",
	"Ocp-Apim-Subscription-Key": "hostile-azure-apim",
	"X-Amz-Security-Token":      "hostile-amz-token",
	"X-Amz-Date":                "hostile-amz-date",
	"X-Amz-Content-Sha256":      "hostile-amz-sha",
	"X-Hf-Token":                "hostile-hf-token",
	"X-Auth-Token":              "hostile-auth-token",
	"Cookie":                    "session=hostile-cookie",
	"Proxy-Authorization":       "Basic hostile-proxy-auth",
	"Forwarded":                 "for=203.0.113.9;host=hostile.example",
	"X-Forwarded-For":           "203.0.113.9, hostile",
	"X-Forwarded-Host":          "hostile.example",
	"X-Forwarded-Proto":         "hostile",
	"X-Forwarded-Port":          "hostile",
	"X-Real-Ip":                 "hostile",
	"X-Original-Url":            "/hostile",
	"X-Ringlet-Made-Up-Secret":  "hostile-made-up",
	"Te":                        "trailers, hostile",
	"Accept-Language":           "hostile",
}

// TestProxyForwardsOnlyAllowedHeaders sends, in each wire format and with
// the session token in either header, every hostile header next to the
// headers the real clients send, and checks that the provider gets the
// real key once, the clients' headers, and nothing else.
func TestProxyForwardsOnlyAllowedHeaders(t *testing.T) {
	t.Parallel()
	clientHeaders := map[string]map[string]string{
		"anthropic": {
			"Anthropic-Version": "2023-06-01", "Anthropic-Beta": "prompt-caching-2024-07-31",
			"Anthropic-Dangerous-Direct-Browser-Access": "true", "X-App": "cli", "X-Claude-Code-Session-Id": "3c206577",
		},
		"openai": {
			"Openai-Organization": "org-1", "Openai-Project": "proj_1", "Openai-Beta": "responses=experimental",
			"Originator": "codex_exec", "Session-Id": "01a2", "Thread-Id": "01a2", "X-Client-Request-Id": "01a2",
			"X-Codex-Turn-Metadata": `{"turn":1}`, "X-Codex-Window-Id": "01a2:0", "X-Codex-Beta-Features": "x",
		},
	}
	common := map[string]string{
		"Accept": "application/json", "Content-Type": "application/json", "User-Agent": "OpenAI/JS 6.30.1",
		"X-Stainless-Lang": "js", "X-Stainless-Os": "Linux", "X-Stainless-Retry-Count": "0", "Idempotency-Key": "stainless-1",
	}
	for _, tt := range []struct {
		format, auth string
		tokenIn      string // where the client puts its session token
		injected     string // where the real key goes
	}{
		{"anthropic", profile.AuthXAPIKey, "X-Api-Key", "X-Api-Key"},
		{"anthropic", profile.AuthXAPIKey, "Authorization", "X-Api-Key"},
		{"openai", profile.AuthBearer, "Authorization", "Authorization"},
		{"openai", profile.AuthBearer, "X-Api-Key", "Authorization"},
	} {
		t.Run(tt.format+"/token in "+tt.tokenIn, func(t *testing.T) {
			t.Parallel()
			up := &headerRecorder{}
			bs := newProxySetup(t, up, tt.format, tt.auth)
			req, _ := http.NewRequest("POST", bs.ringlet+"/v1/messages", strings.NewReader(`{"model":"m"}`))
			for name, v := range hostileHeaders {
				req.Header.Set(name, v)
			}
			// With the token in X-Api-Key (which the proxy reads first),
			// Authorization is one more hostile header.
			if tt.tokenIn == "X-Api-Key" {
				req.Header.Set("X-Api-Key", bs.token)
				req.Header.Set("Authorization", "Bearer hostile-authorization")
			} else {
				req.Header.Set("Authorization", "Bearer "+bs.token)
			}
			// A header the client names as hop-by-hop is dropped before
			// the key is set, so this cannot strip the injected key.
			req.Header.Set("Connection", "keep-alive, "+tt.injected)
			want := map[string]string{}
			for name, v := range common {
				req.Header.Set(name, v)
				want[name] = v
			}
			for f, hs := range clientHeaders {
				for name, v := range hs {
					req.Header.Set(name, v)
					if f == tt.format {
						want[name] = v
					}
				}
			}
			resp, err := bs.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST through the proxy: got %d, want 200", resp.StatusCode)
			}
			got := up.last(t)
			wantKey := benchnet.Key
			if tt.injected == "Authorization" {
				wantKey = "Bearer " + benchnet.Key
			}
			if v := got.Values(tt.injected); len(v) != 1 || v[0] != wantKey {
				t.Errorf("upstream %s: got %d values %q, want exactly the real key", tt.injected, len(v), v)
			}
			var extra []string
			for name, vals := range got {
				for _, v := range vals {
					if strings.Contains(v, "hostile") || strings.Contains(v, bs.token) {
						t.Errorf("upstream %s: got %q, want no client credential or hostile value", name, v)
					}
				}
				if _, ok := want[name]; !ok && !slices.Contains([]string{tt.injected, "Content-Length", "Accept-Encoding"}, name) {
					extra = append(extra, name)
				}
			}
			sort.Strings(extra)
			if len(extra) > 0 {
				t.Errorf("upstream headers %v: want only the format's allowlist, the key, Content-Length and Accept-Encoding", extra)
			}
			for name, v := range want {
				if got.Get(name) != v {
					t.Errorf("upstream %s: got %q, want %q (a header the clients send, passed on)", name, got.Get(name), v)
				}
			}
		})
	}
}

// TestProxyResponseHeaderTimeout: a provider that accepts the request and
// never begins its answer is given up on after the response header
// timeout with a 504 in Ringlet's error shape, the upstream request is
// cancelled, and the provider.request record says why. An answer whose
// headers came in time is not cut by the timeout, however long its body
// takes.
func TestProxyResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{}, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/slow-body" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			// Past the header timeout, the body goes on.
			time.Sleep(1500 * time.Millisecond)
			io.WriteString(w, "data: {\"type\":\"message_stop\"}\n\n")
			return
		}
		// Read first, as a real server does: net/http notices a closed
		// connection only once the body is in.
		io.ReadAll(r.Body)
		<-r.Context().Done()
		cancelled <- struct{}{}
	})
	bs := newBenchSetupWith(t, up)
	bs.srv.proxy.o.HeaderTimeout = 500 * time.Millisecond

	// Without the timeout the request would wait for ever; the client
	// gives up long after it.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", bs.ringlet+"/v1/messages", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("X-Api-Key", bs.token)
	resp, err := bs.client.Do(req)
	if err != nil {
		t.Fatalf("a provider that never answers: %v; want a 504 from Ringlet", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e api.ErrorAnswer
	if resp.StatusCode != http.StatusGatewayTimeout || json.Unmarshal(body, &e) != nil || e.Error.Code != "upstream_timeout" ||
		!strings.Contains(e.Error.Message, "no response headers within 500ms") || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("a provider that never answers: got %d %q, want 504 JSON upstream_timeout saying no response headers within 500ms", resp.StatusCode, body)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Error("the upstream request was not cancelled within 10s of the 504")
	}
	recs, _, err := audit.Query(t.Context(), bs.srv.opts.AuditPath, audit.Filter{Kinds: []string{audit.KindProviderRequest}, Limit: 10})
	if err != nil || len(recs) != 1 {
		t.Fatalf("provider.request records: got %d (%v), want 1", len(recs), err)
	}
	var detail providerDetail
	json.Unmarshal(recs[0].Detail, &detail)
	if r := recs[0]; r.Decision != audit.Error || r.Status != http.StatusGatewayTimeout || detail.Error != "no response headers within 500ms" || detail.Complete {
		t.Errorf("record: got decision %q, status %d, detail %s; want error, 504, \"no response headers within 500ms\"", r.Decision, r.Status, r.Detail)
	}

	req, _ = http.NewRequest("POST", bs.ringlet+"/v1/slow-body", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("X-Api-Key", bs.token)
	resp, err = bs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || !bytes.Contains(body, []byte("message_stop")) {
		t.Errorf("an answer begun in time, ended after the timeout: got %d, %v, %q; want 200 and the whole body", resp.StatusCode, err, body)
	}
}

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
