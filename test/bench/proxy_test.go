package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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
	client                *benchnet.Client
	// barePID and ringletPID are the proxies' processes, whose memory
	// BenchmarkProxyMemory reads.
	barePID, ringletPID int
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
	bare := exec.Command(benchproxy, "bare", bareAddr, "http://"+upAddr)
	start(bare)

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
		client:  &benchnet.Client{HTTP: &http.Client{Transport: tr}, Upstream: "http://" + upAddr, Token: sess.Token},
		barePID: bare.Process.Pid, ringletPID: daemon.Process.Pid}
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

// BenchmarkProxyProcessLatency: one client, non-streaming ~1 KB POSTs
// straight to the upstream, through the bare proxy and through the ringlet
// daemon, interleaved. Target: ringlet's added p50 at most 1.3 times the
// bare proxy's.
func BenchmarkProxyProcessLatency(b *testing.B) {
	w := newProxyWorld(b)
	b.ResetTimer()
	p50, err := w.client.LatencyP50(200, b.N, []string{w.direct, w.bare, w.ringlet})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	benchnet.ReportLatency(b, p50)
}

// BenchmarkProxyProcessThroughput: 32 concurrent clients against each
// target in turn. Target: ringlet keeps at least 30% of direct throughput.
func BenchmarkProxyProcessThroughput(b *testing.B) {
	w := newProxyWorld(b)
	const workers = 32
	rate := func(base string) float64 {
		r, err := w.client.Rate(base, workers, max(b.N/workers, 1))
		if err != nil {
			b.Fatal(err)
		}
		return r
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
	benchnet.ReportRates(b, slices.Max(d), slices.Max(bare), slices.Max(r))
}
