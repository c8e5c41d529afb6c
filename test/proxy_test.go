package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

const messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`

// TestProxyInjectsKey drives the proxy the way an agent does, with the
// session token from `profiles env`, and checks that only the real key
// reaches the provider and that it reaches nothing else: no answer, no CLI
// output, no log line, no file of the audit log.
func TestProxyInjectsKey(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "p1", "fake", "--command", "true")
	oaKey := w.newProfile("generic", "oa", "fakeoa", "--command", "true")
	s := w.startSession("p1")
	oa := w.startSession("oa")
	if env := s.Env(); env["ANTHROPIC_BASE_URL"] != s.BaseURL || env["ANTHROPIC_API_KEY"] != s.Token {
		t.Errorf("launch env: got %v, want ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY with the session's base URL and token", env)
	}

	t.Run("anthropic format", func(t *testing.T) {
		hdr := anthropicHeaders(s.Token)
		hdr.Set("Authorization", "Bearer client-sent-authorization")
		hdr.Set("Anthropic-Beta", "prompt-caching-2024-07-31,output-128k-2025-02-19")
		hdr.Set("X-Forwarded-For", "203.0.113.9")
		hdr.Set("X-Forwarded-Host", "forwarded.example")
		hdr.Set("X-Forwarded-Proto", "https")
		hdr.Set("Forwarded", "for=203.0.113.9;host=forwarded.example")
		hdr.Set("X-Real-Ip", "203.0.113.9")
		hdr.Set("Cookie", "session=client-cookie")
		hdr.Set("Proxy-Authorization", "Basic Y2xpZW50OnNlY3JldA==")
		// A header the client names as hop-by-hop is removed before the
		// key is set, so naming X-Api-Key cannot strip the injected key.
		hdr.Set("Connection", "keep-alive, X-Api-Key")
		status, _, body := w.send(t, "POST", "/v1/messages?beta=true", hdr, messagesBody)
		if status != http.StatusOK {
			t.Fatalf("POST /proxy/v1/messages: got %d, want 200; body %s", status, body)
		}
		if !strings.Contains(string(body), fakeprovider.AnswerText(fakeprovider.DefaultTextEvents)) {
			t.Errorf("answer: got %s, want the fake's text", body)
		}
		r := w.lastRequest(t)
		if r.Path != "/v1/messages" || r.RawQuery != "beta=true" {
			t.Errorf("upstream target: got %s?%s, want /v1/messages?beta=true", r.Path, r.RawQuery)
		}
		if got := r.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != key {
			t.Errorf("upstream x-api-key: got %d values (the real key: %v), want exactly the real key", len(got), len(got) == 1 && got[0] == key)
		}
		if string(r.Body) != messagesBody {
			t.Errorf("upstream body: got %s, want %s", r.Body, messagesBody)
		}
		for name, want := range map[string]string{
			"Anthropic-Version": proxyAnthropicVersion,
			"Anthropic-Beta":    "prompt-caching-2024-07-31,output-128k-2025-02-19",
			"Content-Type":      "application/json",
		} {
			if got := r.Header.Get(name); got != want {
				t.Errorf("upstream %s: got %q, want %q", name, got, want)
			}
		}
		for _, name := range []string{"Authorization", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip", "Cookie", "Proxy-Authorization"} {
			if v, ok := r.Header[name]; ok {
				t.Errorf("upstream %s: got %q, want no such header", name, v)
			}
		}
	})

	t.Run("openai format", func(t *testing.T) {
		hdr := openaiHeaders(oa.Token)
		hdr.Set("Api-Key", "client-sent-azure-style-key")
		hdr.Set("X-Forwarded-For", "203.0.113.9")
		status, _, body := w.send(t, "POST", "/chat/completions", hdr, `{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}`)
		if status != http.StatusOK {
			t.Fatalf("POST /proxy/chat/completions: got %d, want 200; body %s", status, body)
		}
		r := w.lastRequest(t)
		if r.Path != "/v1/chat/completions" {
			t.Errorf("upstream path: got %s, want /v1/chat/completions (the base URL's /v1 and the agent's path)", r.Path)
		}
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+oaKey {
			t.Errorf("upstream Authorization: got %d values, want exactly Bearer <the real key>", len(got))
		}
		for _, name := range []string{"X-Api-Key", "Api-Key", "X-Forwarded-For"} {
			if v, ok := r.Header[name]; ok {
				t.Errorf("upstream %s: got %q, want no such header", name, v)
			}
		}
	})

	// Credentials of other providers and schemes, and names nobody uses,
	// that an agent or its SDK sends next to the session token, never
	// reach the provider: only the allowlist of the format passes.
	t.Run("foreign credential headers", func(t *testing.T) {
		hostile := map[string]string{
			"Anthropic-Api-Key": "hostile-1", "X-Goog-Api-Key": "hostile-2", "Openai-Api-Key": "hostile-3", "Api-Key": "hostile-4",
			"Ocp-Apim-Subscription-Key": "hostile-5", "X-Amz-Security-Token": "hostile-6", "X-Amz-Date": "hostile-7",
			"Cookie": "a=hostile-8", "Proxy-Authorization": "Basic hostile-9", "Forwarded": "for=hostile-10",
			"X-Forwarded-For": "hostile-11", "X-Forwarded-Host": "hostile-12", "X-Real-Ip": "hostile-13", "X-Ringlet-Made-Up": "hostile-14",
		}
		for _, tc := range []struct {
			format, path, body string
			hdr                http.Header
		}{
			{"anthropic", "/v1/messages", messagesBody, anthropicHeaders(s.Token)},
			{"openai", "/chat/completions", `{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}`, openaiHeaders(oa.Token)},
		} {
			hdr := tc.hdr
			for name, v := range hostile {
				hdr.Set(name, v)
			}
			if tc.format == "anthropic" {
				hdr.Set("Authorization", "Bearer hostile-15")
			} else {
				// The OpenAI format's token is in Authorization; an
				// Anthropic header is foreign to it.
				hdr.Set("Anthropic-Version", "hostile-16")
			}
			status, _, body := w.send(t, "POST", tc.path, hdr, tc.body)
			if status != http.StatusOK {
				t.Fatalf("%s with foreign headers: got %d, want 200; body %s", tc.format, status, body)
			}
			r := w.lastRequest(t)
			var b strings.Builder
			r.Header.Write(&b)
			if strings.Contains(b.String(), "hostile") {
				t.Errorf("%s: the provider got a foreign header: %q", tc.format, b.String())
			}
			assertForwardedHeaders(t, []fakeprovider.Request{r}, tc.format, "Content-Type")
		}
	})

	t.Run("echoed key is redacted", func(t *testing.T) {
		w.fake.EchoKey.Store(true)
		defer w.fake.EchoKey.Store(false)
		status, h, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody)
		if status != http.StatusForbidden {
			t.Errorf("echo: got %d, want the fake's 403", status)
		}
		if r := w.lastRequest(t); r.Key != key {
			t.Fatal("the fake did not receive the real key, so it had nothing to echo")
		}
		if got := h.Get("X-Fake-Echo-Key"); got != "[redacted]" {
			t.Errorf("echoed header: got %q, want [redacted]", strings.ReplaceAll(got, key, "<KEY>"))
		}
		if !strings.Contains(string(body), "the key [redacted] is not allowed") {
			t.Errorf("echoed body: got %s, want the key replaced by [redacted]", strings.ReplaceAll(string(body), key, "<KEY>"))
		}
		// In a stream the key straddles two writes of the fake.
		status, h, body = w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), `{"model":"claude-sonnet-4-5","stream":true,"messages":[]}`)
		if status != http.StatusOK || h.Get("X-Fake-Echo-Key") != "[redacted]" || !strings.Contains(string(body), "(your key is [redacted])") ||
			!strings.Contains(string(body), "event: message_stop") {
			t.Errorf("echo in a stream: got %d, header %q, body %s; want 200, the key redacted in both and a complete stream",
				status, strings.ReplaceAll(h.Get("X-Fake-Echo-Key"), key, "<KEY>"), strings.ReplaceAll(string(body), key, "<KEY>"))
		}
		status, h, body = w.send(t, "POST", "/chat/completions", openaiHeaders(oa.Token), `{"model":"gpt-4.1","stream":true,"messages":[]}`)
		if status != http.StatusOK || h.Get("X-Fake-Echo-Key") != "[redacted]" || !strings.Contains(string(body), "(your key is [redacted])") ||
			!strings.HasSuffix(string(body), "data: [DONE]\n\n") {
			t.Errorf("echo in an OpenAI stream: got %d, body %s; want the key redacted and a complete stream", status, strings.ReplaceAll(string(body), oaKey, "<KEY>"))
		}
	})

	// An upstream that echoes the key escaped or encoded (the fake's
	// EchoEncoded: \u-escaped, inside a JSON string, percent-encoded, hex,
	// base64 at two alignments) in a header, a JSON body and a stream that
	// splits it gets none of it to the client; the leak check at the end
	// looks for every form in every answer, the log and the audit files.
	t.Run("echoed key in every encoding is redacted", func(t *testing.T) {
		w.fake.EchoKey.Store(true)
		w.fake.EchoEncoded.Store(true)
		defer w.fake.EchoKey.Store(false)
		defer w.fake.EchoEncoded.Store(false)
		for _, tc := range []struct {
			path, body string
			hdr        http.Header
			k          string
		}{
			{"/v1/messages", messagesBody, anthropicHeaders(s.Token), key},
			{"/v1/messages", `{"model":"claude-sonnet-4-5","stream":true,"messages":[]}`, anthropicHeaders(s.Token), key},
			{"/responses", `{"model":"gpt-4.1","stream":true,"input":"hi"}`, openaiHeaders(oa.Token), oaKey},
		} {
			status, h, body := w.send(t, "POST", tc.path, tc.hdr, tc.body)
			if status != http.StatusOK && status != http.StatusForbidden {
				t.Fatalf("POST %s: got %d, want the fake's answer", tc.path, status)
			}
			var all strings.Builder
			h.Write(&all)
			all.Write(body)
			assertNoKey(t, "an answer echoing the key encoded", []byte(all.String()), tc.k)
			if n := strings.Count(string(body), "[redacted]"); n < 6 {
				t.Errorf("POST %s: got %d redactions in the body, want one per echoed form (6)", tc.path, n)
			}
			if n := strings.Count(h.Get("X-Fake-Echo-Key"), "[redacted]"); n < 6 {
				t.Errorf("POST %s: got %d redactions in the echo header, want 6", tc.path, n)
			}
		}
	})

	t.Run("compressed answers, early hints and trailers", func(t *testing.T) {
		// Every SDK accepts gzip and real providers honour it; Ringlet asks
		// the provider for identity so that the redactor and the meter read
		// the answer.
		w.fake.Gzip.Store(true)
		defer w.fake.Gzip.Store(false)
		hdr := anthropicHeaders(s.Token)
		hdr.Set("Accept-Encoding", "gzip")
		status, h, body := w.send(t, "POST", "/v1/messages", hdr, messagesBody)
		if status != http.StatusOK || h.Get("Content-Encoding") != "" || !strings.Contains(string(body), fakeprovider.AnswerText(fakeprovider.DefaultTextEvents)) {
			t.Errorf("gzip-accepting client: got %d, Content-Encoding %q, body %.200q; want 200 and the plain answer", status, h.Get("Content-Encoding"), body)
		}
		if got := w.lastRequest(t).Header.Get("Accept-Encoding"); got != "identity" {
			t.Errorf("upstream Accept-Encoding: got %q, want identity", got)
		}
		if recs := w.providerRecords(t, s.ID); len(recs) == 0 || recs[len(recs)-1].TokensIn != fakeprovider.DefaultUsage.Input {
			t.Errorf("usage of the gzip-accepting request: got %+v, want tokens_in %d", recs[len(recs)-1:], fakeprovider.DefaultUsage.Input)
		}
		w.fake.EchoKey.Store(true)
		status, _, body = w.send(t, "POST", "/v1/messages", hdr, messagesBody)
		w.fake.EchoKey.Store(false)
		if status != http.StatusForbidden || !strings.Contains(string(body), "the key [redacted] is not allowed") {
			t.Errorf("echo to a gzip-accepting client: got %d, body %.200q; want the fake's 403 with the key redacted", status, strings.ReplaceAll(string(body), key, "<KEY>"))
		}

		// A provider that compresses unasked is refused, not passed on.
		w.fake.ForceGzip.Store(true)
		w.fake.EchoKey.Store(true)
		status, h, body = w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody)
		w.fake.ForceGzip.Store(false)
		w.fake.EchoKey.Store(false)
		if status != http.StatusBadGateway || !strings.Contains(string(body), "answer_refused") || !strings.Contains(string(body), `Content-Encoding \"gzip\"`) || h.Get("Content-Encoding") != "" {
			t.Errorf("unasked gzip: got %d, Content-Encoding %q, body %.300q; want 502 answer_refused naming the encoding", status, h.Get("Content-Encoding"), body)
		}
		if recs := w.providerRecords(t, s.ID); len(recs) == 0 || recs[len(recs)-1].Decision != "error" {
			t.Errorf("unasked gzip: got records %+v, want the last one an error", recs[max(0, len(recs)-1):])
		}

		// 103 Early Hints and trailers carry the provider's headers outside
		// the answer's header; the fake puts the key in both. Sent straight
		// to the fake, they arrive (so the checks below can fail).
		w.fake.EarlyHints.Store(true)
		w.fake.KeyTrailer.Store(true)
		defer w.fake.EarlyHints.Store(false)
		defer w.fake.KeyTrailer.Store(false)
		type seen struct {
			hints   []string
			trailer http.Header
			status  int
		}
		do := func(t *testing.T, url string, hdr http.Header, body string) seen {
			t.Helper()
			var got seen
			ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				got.hints = append(got.hints, fmt.Sprint(code, " ", h))
				return nil
			}})
			req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = hdr
			resp, err := proxyClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", url, err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("POST %s: read: %v", url, err)
			}
			got.status, got.trailer = resp.StatusCode, resp.Trailer
			if strings.HasPrefix(url, w.d.URL) {
				// What came through the proxy joins the leak check.
				w.keep("POST "+url+" (hints "+strings.Join(got.hints, "; ")+", trailer "+fmt.Sprint(resp.Trailer)+")", resp.StatusCode, resp.Header, data)
			}
			return got
		}
		stream := `{"model":"claude-sonnet-4-5","stream":true,"messages":[]}`
		direct := anthropicHeaders(key)
		if got := do(t, w.fakeURL+"/v1/messages", direct, stream); len(got.hints) != 1 || !strings.Contains(got.hints[0], key) || got.trailer.Get("X-Fake-Trailer") != key {
			t.Fatalf("straight to the fake: got %d hints and trailer %v; want a 103 and a trailer with the key", len(got.hints), got.trailer != nil)
		}
		for _, b := range []string{stream, messagesBody} {
			got := do(t, w.d.URL+"/proxy/v1/messages", anthropicHeaders(s.Token), b)
			if got.status != http.StatusOK || len(got.hints) != 0 || len(got.trailer) != 0 {
				t.Errorf("through the proxy: got %d, informational answers %q, trailer %v; want 200, none and none",
					got.status, strings.ReplaceAll(strings.Join(got.hints, "; "), key, "<KEY>"), strings.ReplaceAll(fmt.Sprint(got.trailer), key, "<KEY>"))
			}
		}
	})

	// Everything that prints profiles, sessions and records, so the leak
	// check sees their output.
	for _, args := range [][]string{
		{"profiles", "list", "--json"},
		{"profiles", "inspect", "p1", "--json"},
		{"profiles", "inspect", "oa", "--json"},
		{"sessions", "list", "--json"},
		{"audit", "query", "--json", "--limit", "10000"},
		{"usage", "--json"},
		{"usage", "--by", "model", "--json"},
		{"providers", "list", "--json"},
	} {
		mustRun(t, w.e, args...)
	}
	w.assertTokenNeverUpstream(t, s.Token, oa.Token)
	w.assertNoKeyLeak(t, key, oaKey)
}

// TestProxyResponseHeaderTimeout: a provider that accepts a request and
// never answers holds it no longer than proxy.response_header_timeout;
// the agent's client gets a 504 in Ringlet's error shape, the provider's
// request is cancelled, and the provider.request record says why.
func TestProxyResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	w := newProxyWorldConfig(t, "proxy.response_header_timeout", "1s")
	key := w.newProfile("generic", "p1", "fake", "--command", "true")
	s := w.startSession("p1")
	w.fake.HoldHeaders.Store(true)
	status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody)
	var e struct {
		Error struct{ Code, Message string }
	}
	if status != http.StatusGatewayTimeout || json.Unmarshal(body, &e) != nil || e.Error.Code != "upstream_timeout" ||
		!strings.Contains(e.Error.Message, "no response headers within 1s") {
		t.Errorf("a provider that never answers: got %d %s, want 504 upstream_timeout saying no response headers within 1s", status, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if _, ok := w.fake.WaitFor(ctx, func(reqs []fakeprovider.Request) bool { return len(reqs) == 1 && !reqs[0].Cancelled.IsZero() }); !ok {
		t.Error("the provider's request was not cancelled within 15s of the 504")
	}
	recs := w.waitRecords(t, s.ID, 1)
	if r := recs[0]; r.Status != http.StatusGatewayTimeout || r.Decision != "error" || r.Detail["error"] != "no response headers within 1s" {
		t.Errorf("provider.request: got status %d, decision %q, detail %v; want 504, error, \"no response headers within 1s\"", r.Status, r.Decision, r.Detail)
	}
	w.fake.HoldHeaders.Store(false)
	if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody); status != http.StatusOK {
		t.Errorf("once the provider answers again: got %d %s, want 200", status, body)
	}
	w.assertNoKeyLeak(t, key)
}

// TestProxyPathTricks sends requests whose path, target or headers try to
// make the daemon send the key somewhere other than under the provider's
// base URL. None may reach the sinkhole; the path tricks may not reach the
// provider at all.
func TestProxyPathTricks(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "p1", "fake", "--command", "true")
	s := w.startSession("p1")
	host := strings.TrimPrefix(w.d.URL, "http://")
	sink := w.sink.Addr
	auth := "X-Api-Key: " + s.Token + "\r\nAnthropic-Version: " + proxyAnthropicVersion + "\r\n"

	refused := []struct{ name, request string }{
		{"dot segments to the admin API", "GET /proxy/../api/status HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"encoded slashes", "GET /proxy/v1/..%2f..%2fx HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"encoded dots", "GET /proxy/v1/%2e%2e/x HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"encoded dots first", "GET /proxy/%2e%2e/%2e%2e/api/status HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"dot segment inside", "GET /proxy/v1/messages/../../../x HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"single dot", "GET /proxy/./v1/messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"scheme-relative path", "POST /proxy//" + sink + "/v1/messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"userinfo", "POST /proxy/@" + sink + "/v1/messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"encoded at", "POST /proxy/%40" + sink + "/v1/messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"encoded backslash", "POST /proxy/v1%5cmessages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"backslashes", "POST /proxy/\\\\" + sink + "\\v1\\messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"encoded NUL", "POST /proxy/v1/messages%00 HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"double encoding", "POST /proxy/v1/%252e%252e/x HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"absolute-form to the sinkhole", "POST http://" + sink + "/v1/messages HTTP/1.1\r\nHost: " + sink + "\r\n"},
		{"absolute-form to the sinkhole, daemon Host", "POST http://" + sink + "/proxy/v1/messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"absolute-form to the daemon", "POST http://" + host + "/proxy/v1/messages HTTP/1.1\r\nHost: " + host + "\r\n"},
		{"CONNECT to the sinkhole", "CONNECT " + sink + " HTTP/1.1\r\nHost: " + sink + "\r\n"},
		{"Host: sinkhole", "POST /proxy/v1/messages HTTP/1.1\r\nHost: " + sink + "\r\n"},
	}
	tail := auth + "Content-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(messagesBody)) + "\r\nConnection: close\r\n\r\n" + messagesBody
	// The same request with a plain path goes through, so the refusals
	// below are for the trick, not for the token or the framing.
	if status, body := w.raw(t, "POST /proxy/v1/messages HTTP/1.1\r\nHost: "+host+"\r\n"+tail); status != http.StatusOK || len(w.fake.Requests()) != 1 {
		t.Fatalf("plain raw request: got %d and %d requests at the provider, want 200 and 1; body %s", status, len(w.fake.Requests()), body)
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.fake.Requests())
			status, body := w.raw(t, tc.request+tail)
			if status < 400 || status >= 500 {
				t.Errorf("got %d, want a 4xx refusal; body %s", status, body)
			}
			if n := len(w.fake.Requests()) - before; n != 0 {
				t.Errorf("the provider received %d requests, want 0", n)
			}
			if n := w.sink.Conns(); n != 0 {
				t.Errorf("the sinkhole received %d connections, want 0", n)
			}
		})
	}

	// These may reach the provider, and only the provider.
	forwarded := []struct {
		name string
		hdr  http.Header
		body string
	}{
		{"X-Forwarded-Host: sinkhole", http.Header{"X-Forwarded-Host": {sink}, "X-Forwarded-Proto": {"http"}}, messagesBody},
		{"Forwarded: host=sinkhole", http.Header{"Forwarded": {"host=" + sink + ";proto=http"}}, messagesBody},
		{"X-Original-URL and X-Rewrite-URL", http.Header{"X-Original-Url": {"http://" + sink + "/v1/messages"}, "X-Rewrite-Url": {"//" + sink + "/"}}, messagesBody},
		{"base_url in the body", nil, `{"model":"claude-sonnet-4-5","base_url":"http://` + sink + `","max_tokens":8,"messages":[]}`},
	}
	for _, tc := range forwarded {
		t.Run(tc.name, func(t *testing.T) {
			hdr := anthropicHeaders(s.Token)
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			before := len(w.fake.Requests())
			status, _, body := w.send(t, "POST", "/v1/messages", hdr, tc.body)
			if status != http.StatusOK {
				t.Errorf("got %d, want 200 from the provider; body %s", status, body)
			}
			reqs := w.fake.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("the provider received %d requests, want 1", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			for _, name := range []string{"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For", "Forwarded"} {
				if v, ok := r.Header[name]; ok {
					t.Errorf("upstream %s: got %q, want no such header", name, v)
				}
			}
			if r.Key != key {
				t.Error("upstream key: got another value, want the real key")
			}
			if n := w.sink.Conns(); n != 0 {
				t.Errorf("the sinkhole received %d connections, want 0", n)
			}
		})
	}
	w.assertTokenNeverUpstream(t, s.Token)
	w.assertNoKeyLeak(t, key)
}

// TestProxyTokenScopes checks that a session token is a key to its own
// profile's provider key and nothing else.
func TestProxyTokenScopes(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	keyA := w.newProfile("generic", "a", "fake", "--command", "true")
	keyB := w.newProfile("generic", "b", "fake", "--command", "true")
	sa, sb := w.startSession("a"), w.startSession("b")

	t.Run("each token carries only its own key", func(t *testing.T) {
		for i := range 3 {
			for _, c := range []struct {
				s    proxySession
				want string
			}{{sa, keyA}, {sb, keyB}} {
				// Both credentials in one request: the one in x-api-key
				// decides, and the other never travels.
				hdr := anthropicHeaders(c.s.Token)
				other := sb.Token
				if c.s.ID == sb.ID {
					other = sa.Token
				}
				if i == 1 {
					hdr.Set("Authorization", "Bearer "+other)
				}
				status, _, body := w.send(t, "POST", "/v1/messages", hdr, messagesBody)
				if status != http.StatusOK {
					t.Fatalf("profile %s: got %d, want 200; body %s", c.s.Profile, status, body)
				}
				if r := w.lastRequest(t); r.Key != c.want {
					t.Errorf("profile %s, request %d: the provider got another profile's key or none, want its own", c.s.Profile, i)
				}
			}
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		s := w.startSession("a")
		if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody); status != http.StatusOK {
			t.Fatalf("before revoke: got %d, want 200; body %s", status, body)
		}
		out := mustRun(t, w.e, "sessions", "revoke", s.ID)
		if !strings.Contains(out, s.ID) {
			t.Errorf("sessions revoke: got %q, want it to name %s", out, s.ID)
		}
		before := len(w.fake.Requests())
		status, h, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody)
		if status != http.StatusUnauthorized || h.Get("Www-Authenticate") == "" {
			t.Errorf("after revoke: got %d (WWW-Authenticate %q), want 401 with a challenge; body %s", status, h.Get("Www-Authenticate"), body)
		}
		if n := len(w.fake.Requests()) - before; n != 0 {
			t.Errorf("after revoke the provider received %d requests, want 0", n)
		}
		// The other session of the same profile is not affected.
		if status, _, _ := w.send(t, "POST", "/v1/messages", anthropicHeaders(sa.Token), messagesBody); status != http.StatusOK {
			t.Errorf("another session of the profile: got %d, want 200", status)
		}
	})

	t.Run("admin token on the proxy", func(t *testing.T) {
		admin := w.e.Token()
		before := len(w.fake.Requests())
		for _, hdr := range []http.Header{
			{"Authorization": {"Bearer " + admin}, "Anthropic-Version": {proxyAnthropicVersion}},
			{"X-Api-Key": {admin}, "Anthropic-Version": {proxyAnthropicVersion}},
		} {
			if status, _, body := w.send(t, "POST", "/v1/messages", hdr, messagesBody); status != http.StatusUnauthorized {
				t.Errorf("admin token on /proxy: got %d, want 401; body %s", status, body)
			}
		}
		if n := len(w.fake.Requests()) - before; n != 0 {
			t.Errorf("the provider received %d requests, want 0", n)
		}
	})

	t.Run("session token on the admin API", func(t *testing.T) {
		for _, path := range []string{"/api/status", "/api/sessions", "/api/keychain", "/metrics"} {
			if status, _, body := w.d.MustGet(t, path, sa.Token, nil); status != http.StatusUnauthorized {
				t.Errorf("session token on %s: got %d, want 401; body %s", path, status, body)
			}
		}
	})

	t.Run("tokens that are not a session", func(t *testing.T) {
		before := len(w.fake.Requests())
		for _, tok := range []string{"", "rlt_", "rlt_" + strings.Repeat("A", 43), sa.Token + "x", strings.TrimPrefix(sa.Token, "rlt_"), keyA} {
			if status, _, _ := w.send(t, "POST", "/v1/messages", anthropicHeaders(tok), messagesBody); status != http.StatusUnauthorized {
				t.Errorf("token %.8q...: got %d, want 401", tok, status)
			}
		}
		if n := len(w.fake.Requests()) - before; n != 0 {
			t.Errorf("the provider received %d requests, want 0", n)
		}
	})
	w.assertTokenNeverUpstream(t, sa.Token, sb.Token)
	w.assertNoKeyLeak(t, keyA, keyB)
}

// TestProxyStreaming checks that SSE answers pass event by event, that a
// client going away cancels the upstream request, and that an upstream
// that dies mid-answer is not passed off as a complete answer.
func TestProxyStreaming(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "p1", "fake", "--command", "true")
	const streamBody = `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`

	t.Run("events arrive one by one", func(t *testing.T) {
		s := w.startSession("p1")
		w.fake.TextEvents.Store(5)
		// The fake writes each event only after the client has read the
		// one before: a proxy that held an event back until more came
		// would stall the stream until the deadline.
		gate := make(chan struct{}, 1)
		w.fake.EventGate.Store(&gate)
		defer w.fake.EventGate.Store(nil)
		ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
		defer cancel()
		resp := w.open(t, ctx, "POST", "/v1/messages", anthropicHeaders(s.Token), streamBody)
		defer resp.Body.Close()
		got, err := readSSE(resp.Body, func(sseEvent) bool {
			select {
			case gate <- struct{}{}: // the fake takes one before each event
			default:
			}
			return true
		})
		if err != nil {
			t.Fatalf("read the stream: %v after %d events: the fake waits for the client to see each event before it sends the next, so the proxy held event %d back", err, len(got), len(got))
		}
		r := w.lastRequest(t)
		if len(got) != len(r.Events) || len(got) != 11 {
			t.Fatalf("got %d events, the fake sent %d; want 11", len(got), len(r.Events))
		}
		for i, ev := range got {
			if ev.Name != r.Events[i].Name || ev.Data != r.Events[i].Data {
				t.Errorf("event %d: got %s %s, want %s %s", i, ev.Name, ev.Data, r.Events[i].Name, r.Events[i].Data)
			}
		}
		recs := w.waitRecords(t, s.ID, 1)
		if d := recs[0].Detail; d["complete"] != true || d["stream"] != true {
			t.Errorf("provider.request detail: got %v, want complete and stream true", d)
		}
	})

	t.Run("client going away cancels upstream", func(t *testing.T) {
		s := w.startSession("p1")
		w.fake.TextEvents.Store(200)
		w.fake.EventDelay.Store(50 * time.Millisecond)
		defer w.fake.EventDelay.Store(0)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp := w.open(t, ctx, "POST", "/v1/messages", anthropicHeaders(s.Token), streamBody)
		got, _ := readSSE(resp.Body, func(ev sseEvent) bool { return ev.Name != "content_block_delta" })
		if len(got) == 0 || got[len(got)-1].Name != "content_block_delta" {
			t.Fatalf("got events %v, want the stream up to the first text delta", got)
		}
		cancel()
		resp.Body.Close()
		waitCtx, stop := context.WithTimeout(t.Context(), 10*time.Second)
		defer stop()
		reqs, ok := w.fake.WaitFor(waitCtx, func(reqs []fakeprovider.Request) bool {
			return !reqs[len(reqs)-1].Cancelled.IsZero()
		})
		r := reqs[len(reqs)-1]
		if !ok {
			t.Fatalf("the fake's request was not cancelled within 10s of the client leaving (it sent %d events)", len(r.Events))
		}
		if len(r.Events) >= 200 {
			t.Errorf("the fake sent %d events, want it stopped long before the end", len(r.Events))
		}
		recs := w.waitRecords(t, s.ID, 1)
		if d := recs[0].Detail; d["complete"] != false || recs[0].Decision != "error" {
			t.Errorf("provider.request: got decision %s, detail %v; want error and complete false", recs[0].Decision, d)
		}
	})

	t.Run("upstream dies mid-stream", func(t *testing.T) {
		s := w.startSession("p1")
		w.fake.TextEvents.Store(5)
		w.fake.DieAfter.Store(4)
		defer w.fake.DieAfter.Store(0)
		resp := w.open(t, t.Context(), "POST", "/v1/messages", anthropicHeaders(s.Token), streamBody)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d, want 200 (the fake answers before it dies)", resp.StatusCode)
		}
		got, err := readSSE(resp.Body, nil)
		if err == nil {
			t.Errorf("read: got a clean end after %d events, want a read error", len(got))
		}
		for _, ev := range got {
			if ev.Name == "message_stop" {
				t.Error("got message_stop, want the stream cut before it")
			}
		}
		if len(got) != 4 {
			t.Errorf("got %d events, want the 4 the fake sent", len(got))
		}
		if r := w.lastRequest(t); !r.Aborted {
			t.Error("the fake did not abort its answer")
		}
		recs := w.waitRecords(t, s.ID, 1)
		if d := recs[0].Detail; d["complete"] != false || recs[0].Status != http.StatusOK {
			t.Errorf("provider.request: got status %d, detail %v; want 200 and complete false", recs[0].Status, d)
		}
	})

	t.Run("upstream cuts a JSON answer short", func(t *testing.T) {
		s := w.startSession("p1")
		w.fake.CutJSON.Store(true)
		defer w.fake.CutJSON.Store(false)
		status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)
		if status != http.StatusBadGateway || !strings.Contains(string(body), "upstream_unreachable") {
			t.Errorf("got %d %s, want 502 upstream_unreachable (never half an answer as if it were whole)", status, body)
		}
		if r := w.lastRequest(t); !r.Aborted {
			t.Error("the fake did not cut its answer")
		}
		recs := w.waitRecords(t, s.ID, 1)
		if d := recs[0].Detail; d["complete"] != false || recs[0].Decision != "error" || recs[0].Status != http.StatusBadGateway {
			t.Errorf("provider.request: got decision %s, status %d, detail %v; want error, 502, complete false", recs[0].Decision, recs[0].Status, d)
		}
	})
	w.assertNoKeyLeak(t, key)
}

// wireCase is one kind of request whose usage the daemon reads from the
// wire.
type wireCase struct {
	name, profile, path, body string
	model                     string
	usage                     fakeprovider.Usage
	stream                    bool
	// want is what the audit record must hold.
	wantIn, wantOut, wantRead, wantWrite int64
}

// TestProxyUsage sends streaming and non-streaming requests in each wire
// format and checks the audit records and `usage` against what the fake
// reported.
func TestProxyUsage(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "an", "fake", "--command", "true")
	oaKey := w.newProfile("generic", "oa", "fakeoa", "--command", "true")
	an, oa := w.startSession("an"), w.startSession("oa")

	// The records hold uncached input tokens in every format: Anthropic's
	// input_tokens exclude the cached tokens already, OpenAI's
	// prompt_tokens and input_tokens include them and the meter subtracts.
	cases := []wireCase{
		{name: "anthropic JSON", profile: "an", path: "/v1/messages", model: "claude-sonnet-4-20250514",
			body:   `{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`,
			usage:  fakeprovider.Usage{Input: 1000, Output: 200, CacheRead: 3000, CacheWrite: 400},
			wantIn: 1000, wantOut: 200, wantRead: 3000, wantWrite: 400},
		{name: "anthropic SSE", profile: "an", path: "/v1/messages", model: "claude-sonnet-4-20250514", stream: true,
			body:   `{"model":"claude-sonnet-4-20250514","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`,
			usage:  fakeprovider.Usage{Input: 1100, Output: 210, CacheRead: 3100, CacheWrite: 410},
			wantIn: 1100, wantOut: 210, wantRead: 3100, wantWrite: 410},
		{name: "openai chat JSON", profile: "oa", path: "/chat/completions", model: "gpt-4.1",
			body:   `{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}`,
			usage:  fakeprovider.Usage{Input: 500, Output: 50, CacheRead: 100, Reasoning: 7},
			wantIn: 400, wantOut: 50, wantRead: 100},
		{name: "openai chat SSE with include_usage", profile: "oa", path: "/chat/completions", model: "gpt-4.1", stream: true,
			body:   `{"model":"gpt-4.1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			usage:  fakeprovider.Usage{Input: 600, Output: 60, CacheRead: 200},
			wantIn: 400, wantOut: 60, wantRead: 200},
		{name: "openai responses JSON", profile: "oa", path: "/responses", model: "gpt-4o-mini",
			body:   `{"model":"gpt-4o-mini","input":"hi"}`,
			usage:  fakeprovider.Usage{Input: 700, Output: 70, CacheRead: 300, Reasoning: 9},
			wantIn: 400, wantOut: 70, wantRead: 300},
		{name: "openai responses SSE", profile: "oa", path: "/responses", model: "gpt-4o-mini", stream: true,
			body:   `{"model":"gpt-4o-mini","stream":true,"input":"hi"}`,
			usage:  fakeprovider.Usage{Input: 800, Output: 80, CacheRead: 350, Reasoning: 11},
			wantIn: 450, wantOut: 80, wantRead: 350},
	}
	sessions := map[string]proxySession{"an": an, "oa": oa}
	headers := map[string]func(string) http.Header{"an": anthropicHeaders, "oa": openaiHeaders}
	for _, c := range cases {
		u := c.usage
		w.fake.Usage.Store(&u)
		s := sessions[c.profile]
		status, h, body := w.send(t, "POST", c.path, headers[c.profile](s.Token), c.body)
		if status != http.StatusOK {
			t.Fatalf("%s: got %d, want 200; body %s", c.name, status, body)
		}
		if got := strings.HasPrefix(h.Get("Content-Type"), "text/event-stream"); got != c.stream {
			t.Errorf("%s: got Content-Type %q, want streaming %v", c.name, h.Get("Content-Type"), c.stream)
		}
		if r := w.lastRequest(t); r.Usage == nil || *r.Usage != c.usage {
			t.Fatalf("%s: the fake reported %+v, want %+v", c.name, r.Usage, c.usage)
		}
	}

	recs := append(w.waitRecords(t, an.ID, 2), w.waitRecords(t, oa.ID, 4)...)
	if len(recs) != len(cases) {
		t.Fatalf("got %d provider.request records, want %d", len(recs), len(cases))
	}
	for i, c := range cases {
		r := recs[i]
		t.Run(c.name, func(t *testing.T) {
			got := fmt.Sprintf("in %d out %d cache_read %d cache_write %d", r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite)
			want := fmt.Sprintf("in %d out %d cache_read %d cache_write %d", c.wantIn, c.wantOut, c.wantRead, c.wantWrite)
			if got != want {
				t.Errorf("tokens: got %s, want %s", got, want)
			}
			if r.Status != http.StatusOK || r.Decision != "allow" || r.Profile != c.profile {
				t.Errorf("record: got status %d, decision %s, profile %s; want 200, allow, %s", r.Status, r.Decision, r.Profile, c.profile)
			}
			wantTarget := c.path
			if c.profile == "oa" {
				wantTarget = "/v1" + c.path
			}
			if r.Target != wantTarget {
				t.Errorf("target: got %s, want %s", r.Target, wantTarget)
			}
			d := r.Detail
			if d["model"] != c.model || d["stream"] != c.stream || d["complete"] != true {
				t.Errorf("detail: got model %v, stream %v, complete %v; want %s, %v, true", d["model"], d["stream"], d["complete"], c.model, c.stream)
			}
			if ttfb, _ := d["ttfb_ns"].(float64); ttfb <= 0 {
				t.Errorf("detail ttfb_ns: got %v, want > 0", d["ttfb_ns"])
			}
		})
	}

	t.Run("usage by model", func(t *testing.T) {
		out := mustRun(t, w.e, "usage", "--by", "model", "--json")
		var rep struct {
			By   string `json:"by"`
			Rows []struct {
				Key        string   `json:"key"`
				Requests   int64    `json:"requests"`
				Input      int64    `json:"input_tokens"`
				Output     int64    `json:"output_tokens"`
				CacheRead  int64    `json:"cache_read_tokens"`
				CacheWrite int64    `json:"cache_write_tokens"`
				CostUSD    *float64 `json:"cost_usd"`
			} `json:"rows"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("usage --json: %v; got %q", err, out)
		}
		// USD per million tokens from the built-in table (models.dev):
		// input, output, cache read, cache write. The fake providers are
		// the user's own, so a model is priced as every provider listing
		// it agrees (OpenAI and Azure alike for the GPT models).
		prices := map[string][4]float64{
			"claude-sonnet-4-20250514": {3.0, 15.0, 0.3, 3.75},
			"gpt-4.1":                  {2.0, 8.0, 0.5, 0},
			"gpt-4o-mini":              {0.15, 0.6, 0.08, 0},
		}
		type sum struct{ req, in, out, read, write int64 }
		want := map[string]*sum{}
		for _, c := range cases {
			s := want[c.model]
			if s == nil {
				s = &sum{}
				want[c.model] = s
			}
			s.req++
			s.in += c.wantIn
			s.out += c.wantOut
			s.read += c.wantRead
			s.write += c.wantWrite
		}
		if len(rep.Rows) != len(want) {
			t.Errorf("rows: got %d, want %d (one per model)", len(rep.Rows), len(want))
		}
		for _, row := range rep.Rows {
			s, ok := want[row.Key]
			if !ok {
				t.Errorf("row %q: want no such model", row.Key)
				continue
			}
			got := sum{row.Requests, row.Input, row.Output, row.CacheRead, row.CacheWrite}
			if got != *s {
				t.Errorf("row %s: got %+v, want %+v", row.Key, got, *s)
			}
			if row.CostUSD == nil {
				t.Errorf("row %s: got no cost, want the model priced", row.Key)
				continue
			}
			p := prices[row.Key]
			// Input is uncached in every format, so each token type is
			// priced once.
			want := (float64(s.in)*p[0] + float64(s.out)*p[1] + float64(s.read)*p[2] + float64(s.write)*p[3]) / 1e6
			if math.Abs(*row.CostUSD-want) > 1e-9 {
				t.Errorf("row %s: got cost %.9f, want %.9f", row.Key, *row.CostUSD, want)
			}
		}
	})
	w.assertNoKeyLeak(t, key, oaKey)
}

// TestProxyLoad sends many back-to-back SSE streams through the proxy
// and checks every one arrives whole.
func TestProxyLoad(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "p1", "fake", "--command", "true")
	s := w.startSession("p1")
	const streams, events, workers = 400, 200, 6
	t.Logf("%d streams of %d text events each, %d at a time", streams, events, workers)
	w.fake.TextEvents.Store(int64(events))
	const body = `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`

	var next, truncated, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(streams) {
				req, err := http.NewRequestWithContext(t.Context(), "POST", s.BaseURL+"/v1/messages", strings.NewReader(body))
				if err != nil {
					fail(err)
					return
				}
				req.Header = anthropicHeaders(s.Token)
				resp, err := proxyClient.Do(req)
				if err != nil {
					fail(err)
					continue
				}
				got, err := readSSE(resp.Body, nil)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					fail(fmt.Errorf("status %d, read error %v", resp.StatusCode, err))
					continue
				}
				if !wholeAnthropicStream(got, events) {
					truncated.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d streams in %v (%.0f streams/s, %.0f events/s)", streams, elapsed.Round(time.Millisecond),
		float64(streams)/elapsed.Seconds(), float64(streams*events)/elapsed.Seconds())
	if failed.Load() > 0 || truncated.Load() > 0 {
		t.Errorf("got %d failed and %d truncated streams of %d, want 0; first failure: %v", failed.Load(), truncated.Load(), streams, firstErr)
	}
	if n := len(w.fake.Requests()); n != streams {
		t.Errorf("the fake received %d requests, want %d", n, streams)
	}
	recs := w.waitRecords(t, s.ID, streams)
	incomplete := 0
	for _, r := range recs {
		if r.Detail["complete"] != true {
			incomplete++
		}
	}
	if incomplete > 0 {
		t.Errorf("%d of %d provider.request records say incomplete, want 0", incomplete, len(recs))
	}
	w.assertNoKeyLeak(t, key)
}

// wholeAnthropicStream reports whether events are a complete Anthropic
// answer with n text deltas, each with the text the fake sent.
func wholeAnthropicStream(evs []sseEvent, n int) bool {
	if len(evs) != n+6 || evs[0].Name != "message_start" || evs[len(evs)-1].Name != "message_stop" {
		return false
	}
	for i := range n {
		ev := evs[3+i]
		var d struct {
			Delta struct{ Text string } `json:"delta"`
		}
		if ev.Name != "content_block_delta" || json.Unmarshal([]byte(ev.Data), &d) != nil || d.Delta.Text != fakeprovider.Delta(i) {
			return false
		}
	}
	return true
}

// TestKeyChangeEndsSessions: replacing or removing a profile's key with
// `keychain set|remove` while the daemon runs ends the sessions that hold
// the old key at once; their token gets 401 and the old key reaches the
// provider no more.
func TestKeyChangeEndsSessions(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "p1", "fake", "--command", "true")
	w.newProfile("generic", "p2", "fake", "--command", "true")
	other := w.startSession("p2")
	for _, tc := range []struct {
		name, reason string
		change       func() (string, string, int)
	}{
		{"set", "key replaced", func() (string, string, int) {
			newKey := proxyCanary("p1-new")
			w.fake.AddKey(newKey)
			return w.e.RunInput(newKey, "keychain", "set", "fake", "p1")
		}},
		{"remove", "key removed", func() (string, string, int) { return w.e.Run("keychain", "remove", "fake", "p1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := w.startSession("p1")
			if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody); status != http.StatusOK {
				t.Fatalf("before the change: got %d, want 200; body %s", status, body)
			}
			stdout, stderr, code := tc.change()
			if code != 0 || !strings.Contains(stdout, "ended 1 live session") {
				t.Fatalf("keychain %s: exit %d, stdout %q, stderr %q; want exit 0 and one session ended", tc.name, code, stdout, stderr)
			}
			before := len(w.fake.Requests())
			if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messagesBody); status != http.StatusUnauthorized {
				t.Errorf("after keychain %s: got %d, want 401; body %s", tc.name, status, body)
			}
			if n := len(w.fake.Requests()) - before; n != 0 {
				t.Errorf("after keychain %s the provider received %d requests, want 0", tc.name, n)
			}
			var page struct {
				Records []struct {
					Session string         `json:"session"`
					Detail  map[string]any `json:"detail"`
				} `json:"records"`
			}
			if err := json.Unmarshal([]byte(mustRun(t, w.e, "audit", "query", "--kind", "session.end", "--session", s.ID, "--json")), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Records) != 1 || page.Records[0].Detail["reason"] != tc.reason {
				t.Errorf("session.end of %s: got %+v, want one with reason %q", s.ID, page.Records, tc.reason)
			}
		})
	}
	// The other profile's session is untouched.
	if status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(other.Token), messagesBody); status != http.StatusOK {
		t.Errorf("session of another profile: got %d, want 200; body %s", status, body)
	}
}
