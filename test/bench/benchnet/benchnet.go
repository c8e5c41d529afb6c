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
	"slices"
	"strings"
	"sync"
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

// Client posts Body to a target and reads the whole answer, sending the
// key to the upstream itself and token to the proxies. It may run on any
// goroutine: a failure is returned, not reported.
type Client struct {
	HTTP     *http.Client
	Upstream string // the upstream's base URL: it is sent the key
	Token    string // what the proxies are sent
}

// Post sends the ~1 KB chat request to base and checks the answer.
func (c *Client) Post(base string) error {
	req, _ := http.NewRequest("POST", base+"/v1/messages", bytes.NewReader(Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if base == c.Upstream {
		req.Header.Set("X-Api-Key", Key)
	} else {
		req.Header.Set("X-Api-Key", c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(data) != Answer {
		return fmt.Errorf("%s: got %d %q (%v), want 200 and the upstream's answer", base, resp.StatusCode, data, err)
	}
	return nil
}

// LatencyP50 posts to each of targets in turn, rounds times after warm
// rounds, and returns each target's p50.
func (c *Client) LatencyP50(warm, rounds int, targets []string) ([]time.Duration, error) {
	lat := make([][]time.Duration, len(targets))
	for r := range warm + rounds {
		for i, t := range targets {
			start := time.Now()
			if err := c.Post(t); err != nil {
				return nil, err
			}
			if r >= warm {
				lat[i] = append(lat[i], time.Since(start))
			}
		}
	}
	out := make([]time.Duration, len(targets))
	for i, l := range lat {
		slices.Sort(l)
		out[i] = l[len(l)/2]
	}
	return out, nil
}

// Rate is the requests per second to base of workers clients posting per
// times each, one after another.
func (c *Client) Rate(base string, workers, per int) (float64, error) {
	start := time.Now()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				if err := c.Post(base); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(workers*per) / time.Since(start).Seconds(), nil
}

// Reporter is the part of testing.B the reports need.
type Reporter interface{ ReportMetric(float64, string) }

// ReportLatency reports the p50s of direct, bare, floor and ringlet (in
// that order) as the added latencies and ringlet's ratio to each proxy's.
// The target is ringlet-to-floor at most 1.3.
func ReportLatency(b Reporter, p50 []time.Duration) {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	d, bare, floor, r := p50[0], p50[1], p50[2], p50[3]
	b.ReportMetric(us(d), "direct-p50-µs")
	b.ReportMetric(us(bare-d), "bare-added-µs")
	b.ReportMetric(us(floor-d), "floor-added-µs")
	b.ReportMetric(us(r-d), "ringlet-added-µs")
	b.ReportMetric(float64(r-d)/float64(bare-d), "ratio-to-bare")
	b.ReportMetric(float64(r-d)/float64(floor-d), "ratio-to-floor")
	b.ReportMetric(0, "ns/op")
}

// ReportRates reports the rates of direct, bare, floor and ringlet (in
// that order) and the proxies' shares of direct. The target is ringlet's
// share at least the bare proxy's.
func ReportRates(b Reporter, d, bare, floor, r float64) {
	b.ReportMetric(d, "direct-req/s")
	b.ReportMetric(bare, "bare-req/s")
	b.ReportMetric(floor, "floor-req/s")
	b.ReportMetric(r, "ringlet-req/s")
	b.ReportMetric(bare/d, "bare-share")
	b.ReportMetric(floor/d, "floor-share")
	b.ReportMetric(r/d, "ringlet-share")
	b.ReportMetric(r/bare, "share-to-bare")
	b.ReportMetric(0, "ns/op")
}

// ReportCPU reports the CPU each proxy spent per request, in µs, bare,
// floor and ringlet (in that order), and ringlet's ratio to the bare
// proxy's. The target is at most 1.5.
func ReportCPU(b Reporter, bare, floor, r float64) {
	b.ReportMetric(bare, "bare-cpu-µs/req")
	b.ReportMetric(floor, "floor-cpu-µs/req")
	b.ReportMetric(r, "ringlet-cpu-µs/req")
	b.ReportMetric(r/bare, "cpu-to-bare")
}
