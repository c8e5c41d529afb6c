//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lastRead is a listener whose connections note when a byte last
// arrived on any of them.
type lastRead struct {
	net.Listener
	at atomic.Int64 // unix ns
}

func (l *lastRead) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readConn{Conn: c, at: &l.at}, nil
}

type readConn struct {
	net.Conn
	at *atomic.Int64
}

func (c *readConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.at.Store(time.Now().UnixNano())
	}
	return n, err
}

// BenchmarkKillSwitch: a sandboxed agent (bash) sends provider requests
// in a loop through its forwarder, with a child process beside it; then
// 'ringlet sessions kill ID --yes' runs. It reports, from the start of
// that command: when the last byte of the agent's reached the provider,
// when the command returned, and when no process of the sandbox's PID
// namespace was left; beside them, in the same run, the time of a CLI
// round trip that does nothing ('sessions list --json'), the floor any
// command has, and the kill's own time in the daemon (from the request to
// the tree gone, as its answer says). Target: the last byte and the whole
// tree gone under 100 ms after the daemon has the request.
func BenchmarkKillSwitch(b *testing.B) {
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
	run := func(stdin string, args ...string) string {
		cmd := exec.Command(ringlet, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("ringlet %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	var requests atomic.Int64
	fake := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"type":"message","content":[],"usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	lr := &lastRead{Listener: fake.Listener}
	fake.Listener = lr
	fake.Start()
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

	const agent = `(sh -c 'sleep 600; :' kill-bench &)
exec /bin/bash -c '
body="{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}"
while :; do
exec 3<>/dev/tcp/127.0.0.1/8765 || continue
printf "POST /proxy/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nx-api-key: %s\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" "$ANTHROPIC_API_KEY" "${#body}" "$body" >&3
cat <&3 >/dev/null
done' kill-bench`
	var lastByte, afterDaemon, returned, gone, floor, inDaemon []time.Duration
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		launcher := exec.CommandContext(ctx, ringlet, "profiles", "run", "bench", "--", "-c", agent)
		launcher.Env = env
		if err := launcher.Start(); err != nil {
			b.Fatal(err)
		}
		start := requests.Load()
		var ns uint64
		deadline := time.Now().Add(30 * time.Second)
		for requests.Load() < start+20 || ns == 0 {
			if time.Now().After(deadline) {
				b.Fatal("the agent's requests did not reach the provider")
			}
			ns = markedNamespace("kill-bench")
			time.Sleep(5 * time.Millisecond)
		}
		var sessions []struct{ ID string }
		t0 := time.Now()
		if err := json.Unmarshal([]byte(run("", "sessions", "list", "--json")), &sessions); err != nil || len(sessions) != 1 {
			b.Fatalf("sessions list: %v %v", sessions, err)
		}
		floor = append(floor, time.Since(t0))
		t0 = time.Now()
		out := run("", "sessions", "kill", sessions[0].ID, "--yes", "--json")
		returned = append(returned, time.Since(t0))
		var killed struct {
			Sessions []struct{ Took, Sandbox string }
		}
		if err := json.Unmarshal([]byte(out), &killed); err != nil || len(killed.Sessions) != 1 || killed.Sessions[0].Sandbox != "killed" {
			b.Fatalf("sessions kill --json: %s (%v)", out, err)
		}
		took, err := time.ParseDuration(killed.Sessions[0].Took)
		if err != nil {
			b.Fatal(err)
		}
		inDaemon = append(inDaemon, took)
		// When the daemon started the kill, at the latest: the answer
		// left it took after that.
		began := t0.Add(returned[len(returned)-1] - took)
		for len(inNamespace(ns)) > 0 {
			time.Sleep(time.Millisecond)
		}
		gone = append(gone, time.Since(t0))
		lastByte = append(lastByte, max(0, time.Unix(0, lr.at.Load()).Sub(t0)))
		afterDaemon = append(afterDaemon, max(0, time.Unix(0, lr.at.Load()).Sub(began)))
		launcher.Wait()
		cancel()
	}
	b.ReportMetric(ms(median(floor)), "cli-floor-p50-ms")
	b.ReportMetric(ms(median(returned)), "kill-returned-p50-ms")
	b.ReportMetric(ms(median(inDaemon)), "kill-in-daemon-p50-ms")
	b.ReportMetric(ms(slicesMax(inDaemon)), "kill-in-daemon-max-ms")
	b.ReportMetric(ms(median(lastByte)), "last-byte-p50-ms")
	b.ReportMetric(ms(slicesMax(lastByte)), "last-byte-max-ms")
	b.ReportMetric(ms(slicesMax(afterDaemon)), "last-byte-after-daemon-kill-max-ms")
	b.ReportMetric(ms(median(gone)), "tree-gone-p50-ms")
	b.ReportMetric(ms(slicesMax(gone)), "tree-gone-max-ms")
	b.ReportMetric(0, "ns/op")
}

func slicesMax(v []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range v {
		m = max(m, d)
	}
	return m
}

// markedNamespace is the PID namespace of a live process whose command
// line holds marker and whose namespace is not this one's; 0 if none.
func markedNamespace(marker string) uint64 {
	own := nsOf(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, de := range entries {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + de.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), marker) {
			continue
		}
		if ns := nsOf(pid); ns != 0 && ns != own {
			return ns
		}
	}
	return 0
}

func nsOf(pid int) uint64 {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return 0
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// inNamespace are the processes of PID namespace ns that are not zombies.
func inNamespace(ns uint64) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, de := range entries {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || nsOf(pid) != ns {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + de.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}
