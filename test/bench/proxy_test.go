package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// proxyWorld is the process-level proxy benchmark's set-up, each server a
// process of its own as users run them: the upstream (benchproxy
// upstream), the bar (benchproxy bare, a ReverseProxy that only adds the
// key), and the real ringlet daemon with a profile on that upstream, its
// key in the file credential store, audit, metrics and usage on.
type proxyWorld struct {
	direct, bare, ringlet string // base URLs
	token                 string // session token
	client                *http.Client
}

func newProxyWorld(b *testing.B) *proxyWorld {
	ringlet, _ := build(b)
	benchproxy := filepath.Join(filepath.Dir(ringlet), "benchproxy")
	logs := b.TempDir()
	start := func(cmd *exec.Cmd) {
		// Their logs go to a file; shown when the benchmark fails.
		f, err := os.Create(filepath.Join(logs, filepath.Base(cmd.Path)+"-"+cmd.Args[1]+".log"))
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			f.Close()
			if b.Failed() {
				data, _ := os.ReadFile(f.Name())
				b.Logf("%s:\n%s", filepath.Base(f.Name()), data)
			}
		})
	}
	upAddr, bareAddr, daemonAddr := listenAddr(b), listenAddr(b), listenAddr(b)
	start(exec.Command(benchproxy, "upstream", upAddr))
	start(exec.Command(benchproxy, "bare", bareAddr, "http://"+upAddr))

	home := b.TempDir()
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	run := func(stdin string, args ...string) string {
		cmd := exec.Command(ringlet, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("ringlet %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	run("", "config", "set", "credentials.backend", "file")
	daemon := exec.Command(ringlet, "daemon", "--stay-alive", "--listen", daemonAddr)
	daemon.Env = env
	start(daemon)
	waitReady(b, "http://"+daemonAddr+"/api/version", filepath.Join(home, ".config", "ringlet", "http_token"))
	run("", "providers", "add", "fake", "--base-url", "http://"+upAddr, "--format", "anthropic", "--auth", "x-api-key")
	run(benchnet.Key, "profiles", "create", "generic", "bench", "--provider", "fake", "--command", "true")
	var sess struct{ Token string }
	if err := json.Unmarshal([]byte(run("", "profiles", "env", "bench", "--json")), &sess); err != nil || sess.Token == "" {
		b.Fatalf("profiles env --json: %v", err)
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128}
	b.Cleanup(tr.CloseIdleConnections)
	w := &proxyWorld{direct: "http://" + upAddr, bare: "http://" + bareAddr, ringlet: "http://" + daemonAddr + "/proxy",
		token: sess.Token, client: &http.Client{Transport: tr}}
	for _, base := range []string{w.direct, w.bare} {
		waitUp(b, base)
	}
	return w
}

func listenAddr(b *testing.B) string { return fmt.Sprintf("127.0.0.1:%d", freePort(b)) }

// waitUp waits until something answers HTTP at base.
func waitUp(b *testing.B, base string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer within 10s: %v", base, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// post sends the ~1 KB chat request and reads the whole answer; the
// upstream itself is sent the key, the proxies the session token. It may
// run on any goroutine, so a failure is an Error and a false.
func (w *proxyWorld) post(b *testing.B, base string) bool {
	req, _ := http.NewRequest("POST", base+"/v1/messages", bytes.NewReader(benchnet.Body))
	req.Header.Set("Content-Type", "application/json")
	if base == w.direct {
		req.Header.Set("X-Api-Key", benchnet.Key)
	} else {
		req.Header.Set("X-Api-Key", w.token)
	}
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := w.client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(data) != benchnet.Answer {
		b.Errorf("%s: got %d %q (%v), want 200 and the upstream's answer", base, resp.StatusCode, data, err)
		return false
	}
	return true
}

// BenchmarkProxyProcessLatency: one client, non-streaming ~1 KB POSTs
// straight to the upstream, through the bare proxy and through the ringlet
// daemon, interleaved. Target: ringlet's added p50 at most 1.3 times the
// bare proxy's.
func BenchmarkProxyProcessLatency(b *testing.B) {
	w := newProxyWorld(b)
	targets := []string{w.direct, w.bare, w.ringlet}
	for range 200 { // warm connections, JIT-free but caches and pools
		for _, t := range targets {
			if !w.post(b, t) {
				b.FailNow()
			}
		}
	}
	lat := make([][]time.Duration, len(targets))
	b.ResetTimer()
	for range b.N {
		for i, t := range targets {
			start := time.Now()
			if !w.post(b, t) {
				b.FailNow()
			}
			lat[i] = append(lat[i], time.Since(start))
		}
	}
	b.StopTimer()
	d, bare, r := median(lat[0]), median(lat[1]), median(lat[2])
	b.ReportMetric(us(d), "direct-p50-µs")
	b.ReportMetric(us(bare-d), "bare-added-µs")
	b.ReportMetric(us(r-d), "ringlet-added-µs")
	b.ReportMetric(float64(r-d)/float64(bare-d), "added-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkProxyProcessThroughput: 32 concurrent clients against each
// target in turn. Target: ringlet keeps at least 30% of direct throughput.
func BenchmarkProxyProcessThroughput(b *testing.B) {
	w := newProxyWorld(b)
	const workers = 32
	rate := func(base string) float64 {
		per := max(b.N/workers, 1)
		start := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range per {
					if !w.post(b, base) {
						return
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return float64(per*workers) / time.Since(start).Seconds()
	}
	for _, t := range []string{w.direct, w.bare, w.ringlet} {
		rate(t) // warm: 32 connections each
	}
	b.ResetTimer()
	// Each target twice, alternating, so drift on a shared machine hits
	// all of them alike; the better of the two runs counts.
	var d, bare, r []float64
	for range 2 {
		d, bare, r = append(d, rate(w.direct)), append(bare, rate(w.bare)), append(r, rate(w.ringlet))
	}
	b.StopTimer()
	dm, bm, rm := slices.Max(d), slices.Max(bare), slices.Max(r)
	b.ReportMetric(dm, "direct-req/s")
	b.ReportMetric(bm, "bare-req/s")
	b.ReportMetric(rm, "ringlet-req/s")
	b.ReportMetric(bm/dm, "bare-share")
	b.ReportMetric(rm/dm, "ringlet-share")
	b.ReportMetric(0, "ns/op")
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
