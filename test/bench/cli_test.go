package bench

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCLIRoundTrip times a CLI command against a running daemon
// ('ringlet sessions list --json') beside the least a Go command does for
// the same answer (benchcli: read the admin token, GET /api/sessions,
// print it), and 'ringlet version' beside a Go program that prints one
// line, which is the start-up every command pays before it does anything
// (the CLI and the daemon are one binary: every package the daemon links
// is initialised for every command). Each pair runs interleaved; it
// reports the p50 wall time and the p50 CPU time of each (user + system,
// which load inflates far less) and Ringlet's ratios to the baseline.
func BenchmarkCLIRoundTrip(b *testing.B) {
	ringlet, _ := build(b)
	benchcli := filepath.Join(filepath.Dir(ringlet), "benchcli")
	home := b.TempDir()
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	addr := listenAddr(b)
	daemon := exec.Command(ringlet, "daemon", "--stay-alive", "--listen", addr)
	daemon.Env = env
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM) // Wait says if it had exited
		_ = daemon.Wait()
	}()
	tokenFile := filepath.Join(home, ".config", "ringlet", "http_token")
	waitReady(b, "http://"+addr+"/api/version", tokenFile)

	// timed runs one command and returns its wall and CPU time.
	timed := func(want string, name string, args ...string) [2]time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.Output()
		wall := time.Since(start)
		if err != nil || !strings.Contains(string(out), want) {
			b.Fatalf("%s %s: %v, output %q (want %q in it)", name, strings.Join(args, " "), err, out, want)
		}
		return [2]time.Duration{wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	}
	type series struct{ wall, cpu []time.Duration }
	var rList, bList, rVersion, bVersion series
	add := func(s *series, t [2]time.Duration) { s.wall, s.cpu = append(s.wall, t[0]), append(s.cpu, t[1]) }
	b.ResetTimer()
	for range b.N {
		add(&rList, timed("[]", ringlet, "sessions", "list", "--json"))
		add(&bList, timed("[]", benchcli, "http://"+addr+"/api/sessions", tokenFile))
		add(&rVersion, timed("ringlet", ringlet, "version"))
		add(&bVersion, timed("benchcli", benchcli, "version"))
	}
	b.StopTimer()
	report := func(what string, r, base series) {
		rw, bw, rc, bc := median(r.wall), median(base.wall), median(r.cpu), median(base.cpu)
		b.ReportMetric(ms(rw), what+"-ringlet-ms")
		b.ReportMetric(ms(bw), what+"-bare-ms")
		b.ReportMetric(float64(rw)/float64(bw), what+"-ratio")
		b.ReportMetric(ms(rc), what+"-ringlet-cpu-ms")
		b.ReportMetric(ms(bc), what+"-bare-cpu-ms")
		b.ReportMetric(float64(rc)/float64(max(bc, time.Millisecond)), what+"-cpu-ratio")
	}
	report("list", rList, bList)
	report("version", rVersion, bVersion)
	b.ReportMetric(0, "ns/op")
}
