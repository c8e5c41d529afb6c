package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// metricValue reads one unlabelled metric from the daemon's /metrics.
func metricValue(t *testing.T, d *daemon, tok, name string) float64 {
	t.Helper()
	status, _, body := d.MustGet(t, "/metrics", tok, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: got %d", status)
	}
	for _, l := range lines(string(body)) {
		if s, ok := strings.CutPrefix(l, name+" "); ok {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("/metrics %s: %v", l, err)
			}
			return v
		}
	}
	t.Fatalf("/metrics: no %s", name)
	return 0
}

// smallDisk mounts a 1 MiB tmpfs in the env (root only; CI runs as root)
// and unmounts it after the daemons stopped.
func smallDisk(t *testing.T, e *env) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipUnlessCI(t, "needs root to mount a small tmpfs for the audit log")
	}
	dir := filepath.Join(e.Root, "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		skipUnlessCI(t, fmt.Sprintf("mount -t tmpfs: %v: %s", err, bytes.TrimSpace(out)))
	}
	// Registered before the daemon, so it runs after the daemon stopped.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillUp writes a file in dir until the file system is full, and returns
// it.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: got %v, want ENOSPC", dir, err)
	}
	return filler
}

// TestAuditUnwritableProxyAndRevoke: with the audit log's disk full, the
// daemon notices without any action failing first, and a provider request
// is refused with 503 before it reaches the provider (issue #11 item 6); a
// session revoke is refused and the session stays live (item 5). Once
// there is room, the next provider request goes through with no other
// action in between, and the outage is in the log as audit.resume.
func TestAuditUnwritableProxyAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := smallDisk(t, e)
	d := e.StartDaemon("--audit-log", filepath.Join(dir, "audit.db"))
	tok := e.Token()
	fake := fakeprovider.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	mustRun(t, e, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	key := proxyCanary("full")
	fake.AddKey(key)
	if stdout, stderr, code := e.RunInput(key, "profiles", "create", "generic", "work", "--provider", "fake", "--command", "true"); code != 0 {
		t.Fatalf("profiles create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var sess proxySession
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &sess); err != nil {
		t.Fatal(err)
	}
	ask := func() (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("POST", d.URL+"/proxy/v1/messages", strings.NewReader(`{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = anthropicHeaders(sess.Token)
		resp, err := proxyClient.Do(req)
		if err != nil {
			t.Fatalf("POST /proxy/v1/messages: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("POST /proxy/v1/messages: read: %v", err)
		}
		return resp.StatusCode, body
	}
	if status, body := ask(); status != http.StatusOK {
		t.Fatalf("provider request before the disk fills: got %d %s, want 200", status, body)
	}
	seen := len(fake.Requests())

	filler := fillUp(t, dir)
	if !waitFor(10*time.Second, func() bool { return metricValue(t, d, tok, "ringlet_audit_writable") == 0 }) {
		t.Fatal("ringlet_audit_writable with the disk full: still 1 after 10s, want 0 without any action failing first")
	}
	status, body := ask()
	if eb := decodeError(t, body); status != http.StatusServiceUnavailable || eb.Error.Code != "audit_unavailable" || !strings.Contains(eb.Error.Message, "disk") {
		t.Errorf("provider request with the disk full: got %d %s, want 503 audit_unavailable about the disk", status, body)
	}
	if n := len(fake.Requests()); n != seen {
		t.Errorf("requests the provider saw with the disk full: got %d new, want none", n-seen)
	}
	if got := metricValue(t, d, tok, "ringlet_audit_write_failures_total"); got != 0 {
		t.Errorf("ringlet_audit_write_failures_total: got %v, want 0 (refused before anything tried to write)", got)
	}

	status, _, body = d.MustDo(t, "DELETE", "/api/sessions/"+sess.ID, tok, "")
	if eb := decodeError(t, body); status != http.StatusServiceUnavailable || eb.Error.Code != "audit_unavailable" {
		t.Errorf("session revoke with the disk full: got %d %s, want 503 audit_unavailable", status, body)
	}
	if status, _, body := d.MustGet(t, "/api/sessions/"+sess.ID, tok, nil); status != http.StatusOK {
		t.Errorf("session after the refused revoke: got %d %s, want it live", status, body)
	}
	if _, stderr, code := e.Run("sessions", "revoke", sess.ID); code == 0 || !strings.Contains(stderr, "audit log") {
		t.Errorf("sessions revoke with the disk full: exit %d, stderr %q; want a refusal naming the audit log", code, stderr)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if status, body := ask(); status != http.StatusOK {
		t.Fatalf("provider request right after room was made: got %d %s, want 200 with no other action in between", status, body)
	}
	if n := len(fake.Requests()); n != seen+1 {
		t.Errorf("requests the provider saw: got %d new, want 1", n-seen)
	}
	if got := metricValue(t, d, tok, "ringlet_audit_writable"); got != 1 {
		t.Errorf("ringlet_audit_writable with room again: got %v, want 1", got)
	}
	if status, _, body := d.MustDo(t, "DELETE", "/api/sessions/"+sess.ID, tok, ""); status != http.StatusOK {
		t.Errorf("session revoke with room again: got %d %s, want 200", status, body)
	}
	recs, _ := queryRecords(t, e, "--kind", "audit.resume")
	if len(recs) != 1 || !strings.Contains(string(recs[0].Detail), "disk") || recs[0].detail(t)["refused_requests"].(float64) < 1 {
		t.Errorf("audit.resume records: got %+v, want one naming the full disk and the refused requests", recs)
	}
	auditVerify(t, e, 0)
	e.AssertNoSecret(key)
}

// TestAuditFilesChangedUnderDaemon: an audit database replaced, truncated
// or deleted while the daemon runs is noticed (issue #11 item 7): actions
// are refused with what happened, the log says it, and the next start
// refuses the database too.
func TestAuditFilesChangedUnderDaemon(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(t *testing.T, db, old string)
		want   string
	}{
		{"replaced by an older copy", func(t *testing.T, db, old string) {
			copyFileT(t, old, db+".new")
			if err := os.Rename(db+".new", db); err != nil {
				t.Fatal(err)
			}
		}, "replaced"},
		{"truncated", func(t *testing.T, db, old string) {
			if err := os.Truncate(db, 0); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"deleted", func(t *testing.T, db, old string) {
			for _, s := range []string{"", "-wal", "-shm"} {
				os.Remove(db + s)
			}
		}, "deleted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			db := filepath.Join(e.StateDir(), "audit.db")
			d := e.StartDaemon()
			tok := e.Token()
			refusals(t, d, 2)
			stopDaemon(t, d)
			old := filepath.Join(e.Root, "old.db")
			copyFileT(t, db, old)
			d = e.StartDaemon()
			refusals(t, d, 30)
			// Records in the database file itself, not only in its
			// write-ahead log: what truncation would lose.
			if status, _, body := d.MustDo(t, "PUT", "/api/keychain/x/before", tok, mustJSON(map[string]string{"key": "sk-test-before"})); status != http.StatusOK {
				t.Fatalf("PUT before the change: got %d %s", status, body)
			}

			tc.change(t, db, old)
			status, _, body := d.MustDo(t, "PUT", "/api/keychain/x/after", tok, mustJSON(map[string]string{"key": "sk-test-after"}))
			if eb := decodeError(t, body); status != http.StatusServiceUnavailable || eb.Error.Code != "audit_unavailable" || !strings.Contains(eb.Error.Message, tc.want) {
				t.Errorf("PUT after the audit database was %s: got %d %s, want 503 audit_unavailable saying %q", tc.name, status, body, tc.want)
			}
			if _, ok := findEntry(listJSON(t, e), "x", "after"); ok {
				t.Error("keychain list: got x/after, want the refused key not stored")
			}
			if got := metricValue(t, d, tok, "ringlet_audit_writable"); got != 0 {
				t.Errorf("ringlet_audit_writable: got %v, want 0", got)
			}
			if !strings.Contains(d.Stderr(), "the audit log cannot be written") || !strings.Contains(d.Stderr(), tc.want) {
				t.Errorf("daemon log: got %q, want an error saying the audit database was %s", d.Stderr(), tc.want)
			}
			stopDaemon(t, d)
			// What the files hold now depends on what SQLite could put
			// back when the daemon closed them (a write-ahead log kept
			// whole can heal a truncated database). Either way the next
			// start agrees with verify: it starts only on a log that is
			// intact, and never re-anchors one that is not.
			_, _, vcode := e.Run("audit", "verify")
			d = e.SpawnDaemon()
			if vcode == 0 {
				d.waitReady()
				auditVerify(t, e, 0)
				return
			}
			if code := d.Wait(); code == 0 || !strings.Contains(d.Stderr(), "audit new-epoch") {
				t.Errorf("restart on a database verify refuses: exit %d, stderr %q; want a refusal naming 'ringlet audit new-epoch'", code, d.Stderr())
			}
			auditVerify(t, e, 1)
		})
	}
}

// TestBadTokenFlood: bad tokens sent as fast as a local process can are
// recorded up to a burst per source and counted after it (issue #11 item
// 8), the log lines likewise, while every refusal is counted in the
// metrics and a refusal from another source (a session's socket) is still
// recorded.
func TestBadTokenFlood(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "work", "fake", "--command", "true")
	tok := w.e.Token()
	const flood = 1000
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	for i := range flood {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/flood-%d", w.d.URL, i), nil)
		req.Header.Set("Authorization", "Bearer wrong-"+strconv.Itoa(i))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token %d: got %d, want 401", i, resp.StatusCode)
		}
	}
	elapsed := time.Since(start)
	recs := queryAll(t, w.e, 10000, "--kind", "auth.failure")
	// 200 at once, then 20 a second.
	most := 200 + int(elapsed.Seconds()*20) + 2
	if len(recs) < 200 || len(recs) > most {
		t.Fatalf("auth.failure records of %d bad tokens in %s: got %d, want the burst of 200 and at most %d", flood, elapsed.Round(time.Millisecond), len(recs), most)
	}
	status, _, metrics := w.d.MustGet(t, "/metrics", tok, nil)
	if status != http.StatusOK || !strings.Contains(string(metrics), `ringlet_auth_failures_total{reason="invalid"} 1000`) {
		t.Errorf("/metrics: want every bad token counted, ringlet_auth_failures_total{reason=\"invalid\"} 1000")
	}
	if n := strings.Count(w.d.Stderr(), "authentication failed"); n > len(recs) {
		t.Errorf("log lines about bad tokens: got %d, want at most one per record (%d)", n, len(recs))
	}

	// A session's socket is a source of its own.
	var started struct {
		Socket string `json:"socket"`
	}
	status, _, body := w.d.MustDo(t, "POST", "/api/sessions", tok, `{"profile":"work","socket":true}`)
	if status != http.StatusCreated || json.Unmarshal(body, &started) != nil || started.Socket == "" {
		t.Fatalf("POST /api/sessions with a socket: got %d %s", status, body)
	}
	uc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", started.Socket)
	}}}
	req, _ := http.NewRequest("POST", "http://127.0.0.1:8765/proxy/v1/messages" /* the forwarder's Host, which the socket expects */, strings.NewReader(`{}`))
	req.Header.Set("X-Api-Key", "rlt_not-the-session-token")
	resp, err := uc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token on the session socket: got %d, want 401", resp.StatusCode)
	}
	after := queryAll(t, w.e, 10000, "--kind", "auth.failure")
	if len(after) != len(recs)+1 || after[0].Target != "POST /proxy/v1/messages" {
		t.Errorf("after a bad token on the session socket: got %d records (newest %q), want %d, the newest that one", len(after), after[0].Target, len(recs)+1)
	}
}
