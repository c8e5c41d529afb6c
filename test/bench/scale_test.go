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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/secretservice"
)

// BenchmarkAdminScale times the admin API with small and large numbers of
// profiles, each with its key, in each credential backend: GET
// /api/profiles, GET /api/keychain, GET /api/profiles/{alias} (profiles
// inspect) and POST /api/profiles (profiles create), each the median of
// several requests to the real daemon. The ratio of the large to the small
// run says whether a request's cost grows with the number of profiles.
//
// gnome-keyring itself slows with its size: storing one item takes ~1 s
// near 1,000 items on a 2-core machine, so filling it takes minutes. The
// keyring run therefore uses 300 profiles unless
// RINGLET_BENCH_KEYRING_PROFILES says otherwise.
func BenchmarkAdminScale(b *testing.B) {
	small := 10
	for _, backend := range []string{"file", "keyring"} {
		b.Run(backend, func(b *testing.B) {
			var bus string
			large := 1000
			if backend == "keyring" {
				bus = secretservice.Start(b)
				large = 300
				if v, err := strconv.Atoi(os.Getenv("RINGLET_BENCH_KEYRING_PROFILES")); err == nil && v > small {
					large = v
				}
			}
			s := timeAdmin(b, backend, bus, small)
			l := timeAdmin(b, backend, bus, large)
			for _, op := range adminOps {
				b.ReportMetric(ms(l[op]), fmt.Sprintf("%s-%d-ms", op, large))
				b.ReportMetric(float64(l[op])/float64(s[op]), fmt.Sprintf("%s-ratio-%d/%d", op, large, small))
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

var adminOps = []string{"list", "keychain", "inspect", "create"}

// timeAdmin starts a daemon with n profiles and keys in backend and
// returns the median time of each admin operation.
func timeAdmin(b *testing.B, backend, bus string, n int) map[string]time.Duration {
	ringlet, _ := build(b)
	home := b.TempDir()
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	if bus != "" {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+bus)
	}
	cfg := exec.Command(ringlet, "config", "set", "credentials.backend", backend)
	cfg.Env = env
	if out, err := cfg.CombinedOutput(); err != nil {
		b.Fatalf("config set: %v: %s", err, out)
	}
	addr := listenAddr(b)
	daemon := exec.Command(ringlet, "daemon", "--stay-alive", "--listen", addr)
	daemon.Env = env
	var logs bytes.Buffer
	daemon.Stdout, daemon.Stderr = &logs, &logs
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		if b.Failed() {
			b.Logf("daemon log:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	tokenFile := filepath.Join(home, ".config", "ringlet", "http_token")
	waitReady(b, base+"/api/version", tokenFile)
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		b.Fatal(err)
	}
	do := func(method, path string, body any) {
		var rd io.Reader
		if body != nil {
			data, _ := json.Marshal(body)
			rd = bytes.NewReader(data)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatalf("%s %s: %v", method, path, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	workspace := b.TempDir()
	profile := func(alias string) map[string]any {
		return map[string]any{"alias": alias, "agent": "generic", "provider": "anthropic", "workspace": workspace, "command": []string{"true"}}
	}
	for i := range n {
		alias := fmt.Sprintf("p%04d", i)
		do("PUT", "/api/keychain/anthropic/"+alias, map[string]string{"key": fmt.Sprintf("sk-ant-bench-%04d", i)})
		do("POST", "/api/profiles/", profile(alias))
	}
	const rounds = 15
	times := map[string][]time.Duration{}
	timed := func(op, method, path string, body any) {
		start := time.Now()
		do(method, path, body)
		times[op] = append(times[op], time.Since(start))
	}
	for i := range rounds {
		timed("list", "GET", "/api/profiles/", nil)
		timed("keychain", "GET", "/api/keychain/", nil)
		timed("inspect", "GET", fmt.Sprintf("/api/profiles/p%04d", n/2), nil)
		alias := fmt.Sprintf("extra%02d", i)
		do("PUT", "/api/keychain/anthropic/"+alias, map[string]string{"key": "sk-ant-extra-" + alias})
		timed("create", "POST", "/api/profiles/", profile(alias))
	}
	out := map[string]time.Duration{}
	for op, v := range times {
		out[op] = median(v)
	}
	return out
}
