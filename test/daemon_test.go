package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTokenFileIsPrivate: even under umask 000 the daemon creates the
// token 0600 in a 0700 directory, as 64 hex characters and a newline.
func TestTokenFileIsPrivate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Umask = "000"
	d := e.StartDaemon()
	if got, ok := procUmask(d.Pid); ok && got != "0000" {
		t.Fatalf("daemon umask: got %s, want 0000 (the test would prove nothing)", got)
	}

	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{e.TokenFile(), 0o600},
		{e.ConfigDir(), 0o700},
		{e.StateFile(), 0o600},
		{e.StateDir(), 0o700},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("mode of %s: got %04o, want %04o", c.path, got, c.want)
		}
		if c.want == 0o600 && !fi.Mode().IsRegular() {
			t.Errorf("%s: got type %v, want a regular file", c.path, fi.Mode().Type())
		}
	}
	data, err := os.ReadFile(e.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\A[0-9a-f]{64}\n\z`).Match(data) {
		t.Errorf("token file content: got %d bytes %q, want 64 lower-case hex characters and a newline", len(data), redact(data))
	}
}

// procUmask reads a process's umask from /proc where the system has it.
func procUmask(pid int) (string, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// redact shows the shape of a would-be token without printing it.
func redact(b []byte) string {
	return regexp.MustCompile(`[0-9a-f]`).ReplaceAllString(string(b), "x")
}

type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeError parses an error body strictly: exactly the documented shape.
func decodeError(t *testing.T, body []byte) apiErrorBody {
	t.Helper()
	var e apiErrorBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v; want {\"error\":{\"code\":...,\"message\":...}}", body, err)
	}
	return e
}

// TestUnauthorized: every request without the current token gets 401 and
// the JSON error body, and never a hint of the token.
func TestUnauthorized(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	tok := e.Token()

	// Same length, one character different.
	last := tok[len(tok)-1]
	flipped := byte('0')
	if last == '0' {
		flipped = '1'
	}
	sameLen := tok[:len(tok)-1] + string(flipped)

	for _, c := range []struct {
		name, path, token string
	}{
		{"no token", "/api/status", ""},
		{"wrong token same length", "/api/status", sameLen},
		{"wrong token shorter", "/api/status", tok[:10]},
		{"wrong token longer", "/api/status", tok + "00"},
		{"valid token in query string", "/api/status?token=" + tok, ""},
		{"unknown path without token", "/no/such/path", ""},
		{"metrics without token", "/metrics", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := d.MustGet(t, c.path, c.token, nil)
			if status != http.StatusUnauthorized {
				t.Fatalf("status: got %d, want %d; body %s", status, http.StatusUnauthorized, body)
			}
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", got)
			}
			if got := h.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
			}
			eb := decodeError(t, body)
			if eb.Error.Code != "unauthorized" {
				t.Errorf("error code: got %q, want unauthorized", eb.Error.Code)
			}
			if eb.Error.Message == "" {
				t.Error("error message: got empty, want an explanation")
			}
			if strings.Contains(string(body), tok) {
				t.Error("the 401 body contains the token")
			}
		})
	}

	// The control: the same daemon answers the current token.
	if status, _, body := d.MustGet(t, "/api/status", tok, nil); status != http.StatusOK {
		t.Fatalf("with the valid token: got %d, want 200; body %s", status, body)
	}
}

// TestForeignHostAndOrigin: a request a web page could make is refused
// with 403 before the token is looked at, even when the token is valid,
// and the daemon sends no CORS headers.
func TestForeignHostAndOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	tok := e.Token()
	port := d.URL[strings.LastIndex(d.URL, ":")+1:]

	for _, c := range []struct {
		name     string
		hdr      http.Header
		wantCode string
	}{
		{"Host evil.example", http.Header{"Host": {"evil.example"}}, "forbidden_host"},
		{"Host evil.example with port", http.Header{"Host": {"evil.example:" + port}}, "forbidden_host"},
		{"Origin http://evil.example", http.Header{"Origin": {"http://evil.example"}}, "forbidden_origin"},
		{"Origin null", http.Header{"Origin": {"null"}}, "forbidden_origin"},
		{"Sec-Fetch-Site cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, "forbidden_origin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := d.MustGet(t, "/api/status", tok, c.hdr)
			if status != http.StatusForbidden {
				t.Fatalf("status: got %d, want %d; body %s", status, http.StatusForbidden, body)
			}
			if eb := decodeError(t, body); eb.Error.Code != c.wantCode {
				t.Errorf("error code: got %q, want %q", eb.Error.Code, c.wantCode)
			}
			for k := range h {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("got header %s: %q, want no CORS headers", k, h.Get(k))
				}
			}
		})
	}

	// The control: the daemon's own names are accepted.
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port} {
		hdr := http.Header{"Host": {host}, "Origin": {"http://" + host}}
		status, h, body := d.MustGet(t, "/api/status", tok, hdr)
		if status != http.StatusOK {
			t.Errorf("Host and Origin %s: got %d, want 200; body %s", host, status, body)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin: got %q, want none", got)
		}
	}
}

// TestStatusAndStop drives status, status --json and stop through the CLI,
// which finds the daemon through daemon.json.
func TestStatusAndStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	tok := e.Token()

	stdout, stderr, code := e.Run("daemon", "status")
	if code != 0 {
		t.Fatalf("daemon status: exit %d, want 0; stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "running") || !regexp.MustCompile(`(?m)^pid\s+`+strconv.Itoa(d.Pid)+`$`).MatchString(stdout) {
		t.Errorf("daemon status: got %q, want it to say running with pid %d", stdout, d.Pid)
	}

	stdout, stderr, code = e.Run("daemon", "status", "--json")
	if code != 0 {
		t.Fatalf("daemon status --json: exit %d, want 0; stderr %q", code, stderr)
	}
	var st struct {
		Running bool   `json:"running"`
		PID     int    `json:"pid"`
		Listen  string `json:"listen"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("daemon status --json: %v; got %q", err, stdout)
	}
	if !st.Running || st.PID != d.Pid || st.Listen != d.Addr {
		t.Errorf("daemon status --json: got running=%v pid=%d listen=%q, want true %d %q", st.Running, st.PID, st.Listen, d.Pid, d.Addr)
	}

	stdout, stderr, code = e.Run("daemon", "stop")
	if code != 0 {
		t.Fatalf("daemon stop: exit %d, want 0; stderr %q", code, stderr)
	}
	if want := fmt.Sprintf("stopped ringlet daemon (pid %d)", d.Pid); !strings.Contains(stdout, want) {
		t.Errorf("daemon stop: got %q, want %q", stdout, want)
	}
	// stop waits for the process to exit, so it has exited or is exiting.
	if got := d.Wait(); got != 0 {
		t.Errorf("daemon exit code after stop: got %d, want 0; stderr:\n%s", got, d.Stderr())
	}
	if _, err := os.Stat(e.StateFile()); !os.IsNotExist(err) {
		t.Errorf("daemon.json after stop: got err %v, want it removed", err)
	}

	stdout, stderr, code = e.Run("daemon", "status")
	if code != 1 {
		t.Errorf("daemon status after stop: exit %d, want 1", code)
	}
	if !strings.Contains(stdout+stderr, "not running") {
		t.Errorf("daemon status after stop: got stdout %q stderr %q, want it to say not running", stdout, stderr)
	}
	stdout, _, code = e.Run("daemon", "status", "--json")
	var stopped map[string]any
	if err := json.Unmarshal([]byte(stdout), &stopped); err != nil || code != 1 || stopped["running"] != false {
		t.Errorf("daemon status --json after stop: got exit %d %q, want exit 1 and {\"running\": false}", code, stdout)
	}

	e.AssertNoSecret(tok)
}

// TestNonLoopbackWarning: an explicit non-loopback --listen works but says
// on stderr that it is not a loopback address.
func TestNonLoopbackWarning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addr := fmt.Sprintf("0.0.0.0:%d", freePort(t))
	d := e.StartDaemon("--listen", addr)

	var warnings []string
	for _, l := range lines(d.Stderr()) {
		if strings.Contains(l, "not a loopback address") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "ringlet: warning: ") {
		t.Errorf("stderr: got warning lines %q, want one line starting with \"ringlet: warning: \" saying not a loopback address; all stderr:\n%s", warnings, d.Stderr())
	}

	d.Signal(syscall.SIGTERM)
	if got := d.Wait(); got != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", got)
	}
}

// TestLoopbackHasNoWarning is the control for TestNonLoopbackWarning.
func TestLoopbackHasNoWarning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	if strings.Contains(d.Stderr(), "warning") {
		t.Errorf("stderr of a loopback daemon: got %q, want no warning", d.Stderr())
	}
}

// TestSIGTERM: a foreground daemon shuts down gracefully on SIGTERM, exits
// 0 and removes daemon.json.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	if _, err := os.Stat(e.StateFile()); err != nil {
		t.Fatalf("daemon.json while running: %v", err)
	}

	d.Signal(syscall.SIGTERM)
	if got := d.Wait(); got != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0; stderr:\n%s", got, d.Stderr())
	}
	if _, err := os.Stat(e.StateFile()); !os.IsNotExist(err) {
		t.Errorf("daemon.json after SIGTERM: got err %v, want it removed", err)
	}
	if !strings.Contains(d.Stderr(), "reason=signal") {
		t.Errorf("stderr: got %q, want a log line with reason=signal", d.Stderr())
	}
	// The lock is released: the next daemon of the same user starts.
	e.StartDaemon()
}

// TestDaemonStartTwice: 'daemon start' with the flags the running daemon
// already has says so and exits 0 (the README's example may be repeated);
// flags it does not have are an error, not silently ignored.
func TestDaemonStartTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if stdout, stderr, code := e.Run("daemon", "start", "--stay-alive", "--listen", addr); code != 0 || !strings.Contains(stdout, "started ringlet daemon") {
		t.Fatalf("daemon start: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	defer e.Run("daemon", "stop") // before t.Context ends
	for _, args := range [][]string{{"daemon", "start", "--stay-alive"}, {"daemon", "start", "--stay-alive", "--listen", addr}, {"daemon", "start"}} {
		if stdout, stderr, code := e.Run(args...); code != 0 || !strings.Contains(stdout, "already running") {
			t.Errorf("ringlet %s again: exit %d, stdout %q, stderr %q; want exit 0 and already running", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	other := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, stderr, code := e.Run("daemon", "start", "--listen", other)
	checkOneLineError(t, stdout, stderr, code, []int{1}, "would not apply")
}

// TestDaemonStartSweepsStaleTemps: a writer killed between writing a
// temporary file and renaming it (a daemon killed while it created its
// token) leaves a .NAME.tmp-XXXXXXXXXXXXXXXX file; the next daemon start
// removes those older than a minute in the config and state dirs, and
// leaves a fresh one (a CLI writing config.toml right now) alone.
func TestDaemonStartSweepsStaleTemps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := time.Now().Add(-time.Hour)
	plant := func(dir, name string, mtime time.Time) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half written"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := []string{
		plant(e.ConfigDir(), ".http_token.tmp-0123456789abcdef", old),
		plant(filepath.Join(e.ConfigDir(), "profiles"), ".work.toml.tmp-0123456789abcdef", old),
		plant(e.StateDir(), ".daemon.json.tmp-fedcba9876543210", old),
	}
	fresh := plant(e.ConfigDir(), ".config.toml.tmp-00112233445566ff", time.Now())
	e.StartDaemon()
	for _, p := range stale {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s: still there after the daemon started, want it removed", p)
		}
	}
	if _, err := os.Lstat(fresh); err != nil {
		t.Errorf("%s: %v; want a fresh temporary file left alone", fresh, err)
	}
}
