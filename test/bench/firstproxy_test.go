package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// BenchmarkDaemonFirstProxied times a start of the daemon to the first
// proxied answer, beside a bare ReverseProxy process started the same way
// and the durable-record floor (the bare proxy that opens an SQLite
// database and commits one row per request before answering, as
// 'benchproxy floor'; its database is kept from one start to the next):
// exec, then the ~1 KB chat POST retried until the fake provider's answer
// comes back through the proxy. The daemon starts with a profile and a
// live session a previous daemon left (as after a restart or an idle
// exit), its key in the file credential store, audit on: the log is
// opened and verified, the session restored, before the first answer.
// It also reports the CPU time each process took to get there (which a
// loaded machine inflates far less than the wall time) and its resident
// memory once idle after that answer. Targets: at most 30 ms to the first
// answer, 20 MiB idle.
func BenchmarkDaemonFirstProxied(b *testing.B) {
	ringlet, _ := build(b)
	benchproxy := filepath.Join(filepath.Dir(ringlet), "benchproxy")
	upAddr := listenAddr(b)
	up := exec.Command(benchproxy, "upstream", upAddr)
	if err := up.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		up.Process.Kill()
		up.Wait()
	}()
	waitUp(b, "http://"+upAddr)

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
	daemonAddr := listenAddr(b)
	daemon := func() *exec.Cmd {
		cmd := exec.Command(ringlet, "daemon", "--stay-alive", "--listen", daemonAddr)
		cmd.Env = env
		return cmd
	}
	run("", "config", "set", "credentials.backend", "file")
	first := daemon()
	if err := first.Start(); err != nil {
		b.Fatal(err)
	}
	waitReady(b, "http://"+daemonAddr+"/api/version", filepath.Join(home, ".config", "ringlet", "http_token"))
	run("", "providers", "add", "fake", "--base-url", "http://"+upAddr, "--format", "anthropic", "--auth", "x-api-key")
	run(benchnet.Key, "profiles", "create", "generic", "bench", "--provider", "fake", "--command", "true")
	var sess struct{ Token string }
	if err := json.Unmarshal([]byte(run("", "profiles", "env", "bench", "--json")), &sess); err != nil || sess.Token == "" {
		b.Fatalf("profiles env --json: %v", err)
	}
	stop(first)

	// post is one try of the chat POST to base; true once it is answered.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(base string) bool {
		req, _ := http.NewRequest("POST", base+"/v1/messages", bytes.NewReader(benchnet.Body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		req.Header.Set("X-Api-Key", sess.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// firstAnswer starts cmd and times exec to the first answer through
	// it, reads the CPU time it took to get there and its idle resident
	// memory, and stops it.
	firstAnswer := func(cmd *exec.Cmd, base string) (time.Duration, time.Duration, int) {
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer stop(cmd)
		for !post(base) {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("%s gave no proxied answer within 10s", cmd.Path)
			}
			time.Sleep(200 * time.Microsecond)
		}
		d := time.Since(start)
		cpu := cpuTime(b, cmd.Process.Pid)
		time.Sleep(300 * time.Millisecond) // as BenchmarkDaemonStartup
		return d, cpu, rss(b, cmd.Process.Pid)
	}

	var rReady, bReady, fReady, rCPU, bCPU, fCPU []time.Duration
	var rRSS, bRSS, fRSS []int
	floorDB := filepath.Join(b.TempDir(), "floor.db")
	b.ResetTimer()
	for range b.N {
		d, c, m := firstAnswer(daemon(), "http://"+daemonAddr+"/proxy")
		rReady, rCPU, rRSS = append(rReady, d), append(rCPU, c), append(rRSS, m)
		bareAddr := listenAddr(b)
		d, c, m = firstAnswer(exec.Command(benchproxy, "bare", bareAddr, "http://"+upAddr), "http://"+bareAddr)
		bReady, bCPU, bRSS = append(bReady, d), append(bCPU, c), append(bRSS, m)
		floorAddr := listenAddr(b)
		d, c, m = firstAnswer(exec.Command(benchproxy, "floor", floorAddr, "http://"+upAddr, floorDB), "http://"+floorAddr)
		fReady, fCPU, fRSS = append(fReady, d), append(fCPU, c), append(fRSS, m)
	}
	b.StopTimer()
	rc, bc := median(rCPU), median(bCPU)
	b.ReportMetric(float64(rc.Microseconds())/1000, "ringlet-cpu-ms")
	b.ReportMetric(float64(bc.Microseconds())/1000, "bare-cpu-ms")
	b.ReportMetric(float64(rc)/float64(bc), "cpu-ratio")
	fc := median(fCPU)
	b.ReportMetric(float64(fc.Microseconds())/1000, "floor-cpu-ms")
	b.ReportMetric(float64(rc)/float64(fc), "cpu-floor-ratio")
	rd, bd := median(rReady), median(bReady)
	rm, bm := float64(median(rRSS))/1024, float64(median(bRSS))/1024
	b.ReportMetric(float64(rd.Microseconds())/1000, "ringlet-first-ms")
	b.ReportMetric(float64(bd.Microseconds())/1000, "bare-first-ms")
	b.ReportMetric(float64(rd)/float64(bd), "first-ratio")
	fd, fm := median(fReady), float64(median(fRSS))/1024
	b.ReportMetric(float64(fd.Microseconds())/1000, "floor-first-ms")
	b.ReportMetric(float64(rd)/float64(fd), "first-floor-ratio")
	b.ReportMetric(fm, "floor-rss-MiB")
	b.ReportMetric(rm/fm, "rss-floor-ratio")
	b.ReportMetric(rm, "ringlet-rss-MiB")
	b.ReportMetric(bm, "bare-rss-MiB")
	b.ReportMetric(rm/bm, "rss-ratio")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the CPU time pid's threads have run, from the scheduler's
// accounting (nanoseconds, unlike the 10 ms ticks of /proc/PID/stat). On
// a loaded machine it tells the work done apart from the wait for a CPU.
func cpuTime(b *testing.B, pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no schedstat for pid %d: %v", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that has just exited
		}
		var ns int64
		if _, err := fmt.Sscan(string(data), &ns); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

// stop ends a server process with SIGTERM, as a user's stop would, and
// waits for it.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited already: Wait says
	// The bare proxy dies of the signal; the daemon exits 0.
	_ = cmd.Wait()
}
