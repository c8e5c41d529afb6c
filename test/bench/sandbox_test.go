//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/sandbox"
)

// needSandbox skips a benchmark where bubblewrap cannot run.
func needSandbox(b *testing.B) string {
	bwrap, err := sandbox.Find()
	if err == nil {
		err = sandbox.Check(bwrap)
	}
	if err != nil {
		b.Skipf("no sandbox here: %v", err)
	}
	return bwrap
}

// BenchmarkSandboxStartup runs /bin/true bare and through the sandbox
// Ringlet builds (the same bubblewrap command line, network none), side
// by side, and reports the p50 of each and what the sandbox adds. Target:
// at most 50 ms added at p50.
func BenchmarkSandboxStartup(b *testing.B) {
	bwrap := needSandbox(b)
	root := b.TempDir()
	pol := &sandbox.Policy{Workspace: filepath.Join(root, "ws"), Home: filepath.Join(root, "home"), HomePath: "/home/bench",
		Command: []string{"/bin/true"}, Env: []string{"PATH=/usr/bin:/bin", "HOME=/home/bench"}, Network: sandbox.NetNone}
	for _, d := range []string{pol.Workspace, pol.Home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	// The launch agents get: options and seccomp filter on descriptors.
	argv, files, err := pol.ArgsFD(bwrap)
	if err != nil {
		b.Fatal(err)
	}
	timeRun := func(files [][]byte, argv ...string) time.Duration {
		start := time.Now()
		cmd := exec.Command(argv[0], argv[1:]...)
		pipes, err := sandbox.NewPipes(files)
		if err != nil {
			b.Fatal(err)
		}
		cmd.ExtraFiles = pipes.Files()
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Start()
		pipes.Started(err == nil)
		if err == nil {
			err = cmd.Wait()
		}
		if err != nil {
			b.Fatalf("%s: %v\n%s", argv[0], err, out.String())
		}
		return time.Since(start)
	}
	var bare, boxed []time.Duration
	for range b.N {
		bare = append(bare, timeRun(nil, "/bin/true"))
		boxed = append(boxed, timeRun(files, argv...))
	}
	bm, sm := median(bare), median(boxed)
	b.ReportMetric(ms(bm), "bare-p50-ms")
	b.ReportMetric(ms(sm), "sandbox-p50-ms")
	b.ReportMetric(ms(sm-bm), "added-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkProfileRunFirstRequest times `ringlet profiles run` of a
// /bin/sh agent (network provider) that makes one request through the
// sandbox's forwarder, from exec to the fake provider receiving it: the
// daemon's session, the sandbox, the forwarder and the proxy together.
func BenchmarkProfileRunFirstRequest(b *testing.B) {
	needSandbox(b)
	ringlet, _ := build(b)
	root := b.TempDir()
	home, ws := filepath.Join(root, "home"), filepath.Join(root, "ws")
	for _, d := range []string{home, ws} {
		if err := os.Mkdir(d, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	run := func(stdin string, args ...string) {
		cmd := exec.Command(ringlet, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ringlet %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	received := make(chan time.Time, 1)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Api-Key") != "sk-bench" {
			http.Error(w, `{"type":"error"}`, http.StatusUnauthorized)
			return
		}
		select {
		case received <- now:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"type":"message","content":[],"usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	defer fake.Close()

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	daemon := exec.Command(ringlet, "daemon", "--stay-alive", "--listen", addr)
	daemon.Env = env
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
	}()
	waitReady(b, "http://"+addr+"/api/version", filepath.Join(home, ".config", "ringlet", "http_token"))
	run("", "providers", "add", "fake", "--base-url", fake.URL, "--format", "anthropic", "--auth", "x-api-key")
	run("sk-bench", "profiles", "create", "generic", "bench", "--provider", "fake", "--command", "/bin/sh", "--workspace", ws)

	const agent = `exec /bin/bash -c '
exec 3<>/dev/tcp/127.0.0.1/8765 || exit 3
body="{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}"
printf "POST /proxy/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nx-api-key: %s\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" "$ANTHROPIC_API_KEY" "${#body}" "$body" >&3
cat <&3 >/dev/null'`
	var firsts []time.Duration
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, ringlet, "profiles", "run", "bench", "--", "-c", agent)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			b.Fatalf("profiles run: %v\n%s", err, out)
		}
		select {
		case at := <-received:
			firsts = append(firsts, at.Sub(start))
		default:
			b.Fatalf("the agent's request did not reach the fake provider; output:\n%s", out)
		}
	}
	b.ReportMetric(ms(median(firsts)), "run-to-first-request-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// waitReady polls url with the token from tokenFile until it answers 200.
func waitReady(b *testing.B, url, tokenFile string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if tok, err := os.ReadFile(tokenFile); err == nil {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the daemon did not answer %s within 10s", url)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
