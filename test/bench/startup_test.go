// Package bench measures the real ringlet binary against a bare net/http
// server built in the same run: time from exec to the first answered
// request, and resident memory once idle after one request.
package bench

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func build(b *testing.B) (ringlet, bare string) {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ringlet-bench-")
		if buildErr != nil {
			return
		}
		for _, t := range [][2]string{{"ringlet", "../../cmd/ringlet"}, {"bareserver", "./bareserver"}, {"benchproxy", "./benchproxy"}, {"benchcli", "./benchcli"}} {
			// As make build builds ringlet: a static binary, which neither
			// loads nor maps libc.
			cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(binDir, t[0]), t[1])
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", t[0], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return filepath.Join(binDir, "ringlet"), filepath.Join(binDir, "bareserver")
}

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// sample starts one server, times exec to the first 200 on /api/version,
// then reads its resident memory and stops it.
func sample(b *testing.B, cmd *exec.Cmd, url string, header func() string) (ready time.Duration, rssKiB int) {
	hc := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := start.Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		if h := header(); h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ready = time.Since(start)
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer within 10s (last error %v)", cmd.Path, err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	// Let the runtime settle after the first request before reading RSS.
	time.Sleep(300 * time.Millisecond)
	return ready, rss(b, cmd.Process.Pid)
}

func rss(b *testing.B, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkDaemonStartup reports p50 start-up-to-first-answer and idle RSS
// of ringlet and of the bare server, and their ratios. Targets: ringlet
// ready in at most 100 ms and at most 30 MiB idle.
func BenchmarkDaemonStartup(b *testing.B) {
	ringlet, bare := build(b)
	var rReady, bReady []time.Duration
	var rRSS, bRSS []int
	for range b.N {
		home := b.TempDir()
		port := freePort(b)
		cmd := exec.Command(ringlet, "daemon", "--stay-alive", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		tokenFile := filepath.Join(home, ".config", "ringlet", "http_token")
		auth := func() string {
			t, err := os.ReadFile(tokenFile)
			if err != nil {
				return ""
			}
			return "Bearer " + strings.TrimSpace(string(t))
		}
		d, r := sample(b, cmd, fmt.Sprintf("http://127.0.0.1:%d/api/version", port), auth)
		rReady, rRSS = append(rReady, d), append(rRSS, r)

		port = freePort(b)
		d, r = sample(b, exec.Command(bare, fmt.Sprintf("127.0.0.1:%d", port)), fmt.Sprintf("http://127.0.0.1:%d/api/version", port), func() string { return "" })
		bReady, bRSS = append(bReady, d), append(bRSS, r)
	}
	rd, bd := median(rReady), median(bReady)
	rm, bm := float64(median(rRSS))/1024, float64(median(bRSS))/1024
	b.ReportMetric(float64(rd.Microseconds())/1000, "ringlet-ready-ms")
	b.ReportMetric(float64(bd.Microseconds())/1000, "bare-ready-ms")
	b.ReportMetric(float64(rd)/float64(bd), "ready-ratio")
	b.ReportMetric(rm, "ringlet-rss-MiB")
	b.ReportMetric(bm, "bare-rss-MiB")
	b.ReportMetric(rm/bm, "rss-ratio")
	b.ReportMetric(0, "ns/op")
}

func median[T time.Duration | int](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
