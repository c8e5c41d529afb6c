package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// bigBody is a 1 MiB Anthropic Messages request: a prompt with a large
// pasted file.
var bigBody = []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"` +
	strings.Repeat("x", 1<<20-100) + `"}]}`)

// postBig sends bigBody to base's messages endpoint and reads the answer.
func postBig(hc *http.Client, base, key string) error {
	req, _ := http.NewRequest("POST", base+"/v1/messages", bytes.NewReader(bigBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("X-Api-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(data) != benchnet.Answer {
		return fmt.Errorf("%s: got %d %q (%v), want 200 and the upstream's answer", base, resp.StatusCode, data, err)
	}
	return nil
}

// burst sends workers concurrent streams of per 1 MiB requests to base.
func burst(b *testing.B, hc *http.Client, base, key string, workers, per int) {
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				if err := postBig(hc, base, key); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProxyMemory measures the daemon's resident memory around a
// burst of 1 MiB request bodies, beside the bare proxy's in the same run
// (each its own process, as in BenchmarkProxyProcess*): idle after one
// small request, right after a burst of 32 concurrent clients each
// sending two 1 MiB bodies, and after up to a minute of idling. It also
// reports how long the daemon took to fall under 40 MiB again (60 if it
// did not). Targets: idle at most 20 MiB, under 40 MiB within a minute.
// Run it with -benchtime 1x: each round idles for a minute.
func BenchmarkProxyMemory(b *testing.B) {
	const (
		workers = 32
		per     = 2
		settle  = 60 * time.Second
		bound   = 40 << 10 // KiB
	)
	w := newProxyWorld(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer hc.CloseIdleConnections()
	var idle, after, end [2]int // bare, ringlet; KiB
	var under time.Duration
	for range b.N {
		for _, base := range []string{w.bare, w.ringlet} {
			if err := w.client.Post(base); err != nil {
				b.Fatal(err)
			}
		}
		// The same settling as BenchmarkDaemonStartup's idle reading.
		time.Sleep(300 * time.Millisecond)
		pids := [2]int{w.pids["bare"], w.pids["ringlet"]}
		for i, pid := range pids {
			idle[i] = rss(b, pid)
		}
		b.ResetTimer()
		burst(b, hc, w.bare, "unused", workers, per)
		burst(b, hc, w.ringlet, w.client.Token, workers, per)
		b.StopTimer()
		hc.CloseIdleConnections()
		done := time.Now()
		for i, pid := range pids {
			after[i] = rss(b, pid)
		}
		under = settle
		var trail []string // the daemon's RSS every 5 s, for the log
		for time.Since(done) < settle {
			m := rss(b, w.pids["ringlet"])
			if under == settle && m < bound {
				under = time.Since(done)
			}
			if s := time.Since(done); len(trail) <= int(s/(5*time.Second)) {
				trail = append(trail, fmt.Sprintf("%.0fs %.1f", s.Seconds(), float64(m)/1024))
			}
			time.Sleep(500 * time.Millisecond)
		}
		b.Logf("ringlet RSS after the burst (MiB): %s", strings.Join(trail, ", "))
		for i, pid := range pids {
			end[i] = rss(b, pid)
		}
	}
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	b.ReportMetric(mib(idle[1]), "ringlet-idle-MiB")
	b.ReportMetric(mib(idle[0]), "bare-idle-MiB")
	b.ReportMetric(float64(idle[1])/float64(idle[0]), "idle-ratio")
	b.ReportMetric(mib(after[1]), "ringlet-burst-MiB")
	b.ReportMetric(mib(after[0]), "bare-burst-MiB")
	b.ReportMetric(float64(after[1])/float64(after[0]), "burst-ratio")
	b.ReportMetric(mib(end[1]), "ringlet-60s-MiB")
	b.ReportMetric(mib(end[0]), "bare-60s-MiB")
	b.ReportMetric(float64(end[1])/float64(end[0]), "60s-ratio")
	b.ReportMetric(under.Seconds(), "ringlet-s-to-40MiB")
	b.ReportMetric(0, "ns/op")
}
