// Package benchnet holds the upstream and the bare proxy that the proxy
// benchmarks measure Ringlet against, so the in-process and the
// process-level benchmarks use the same baseline.
package benchnet

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Key is the provider key the benchmarks inject.
const Key = "sk-bench"

// Body is a ~1 KB Anthropic Messages request.
var Body = []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 80) + `"}]}`)

// StreamBody is Body asking for a stream.
var StreamBody = bytes.Replace(Body, []byte(`"max_tokens":1024`), []byte(`"max_tokens":1024,"stream":true`), 1)

// Answer is the non-streaming Anthropic Messages answer.
const Answer = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":250,"output_tokens":2}}`

// StreamEvents is the number of data lines in a streamed answer.
const StreamEvents = 203

// Upstream answers Anthropic Messages: JSON, or, with "stream":true, 200
// text deltas sseGap apart between message_start and message_stop. It
// refuses a request without Key, so a proxy that fails to inject it shows.
func Upstream(sseGap time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Api-Key") != Key {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
			return
		}
		if !bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, Answer)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":250,\"output_tokens\":1}}}\n\n")
		f.Flush()
		for i := range 200 {
			time.Sleep(sseGap)
			fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"t%d\"}}\n\n", i)
			f.Flush()
		}
		io.WriteString(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":200}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	})
}

// Bare is the bar: an httputil.ReverseProxy that only sets the key header.
func Bare(upstream *url.URL) http.Handler {
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(upstream)
		pr.Out.Header.Set("X-Api-Key", Key)
	}}
}
