package test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oauthDemo is the official MCP TypeScript SDK's example streamable HTTP
// server in its --oauth mode: an MCP server on one port and the SDK's
// authorization server (demoInMemoryOAuthProvider: discovery, dynamic
// client registration, PKCE, no refresh tokens) on another.
type oauthDemo struct {
	*portServer
	mcpPort, authPort int
}

// startOAuthDemo starts the SDK's example on two free ports.
func startOAuthDemo(t *testing.T) *oauthDemo {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol", "sdk", "dist", "esm", "examples", "server", "simpleStreamableHttp.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the MCP SDK's example server is not installed in test/mcpnode: %v", err)
	}
	d := &oauthDemo{}
	onFreePorts(t, 2, func(ports []int) error {
		d.mcpPort, d.authPort = ports[0], ports[1]
		cmd := exec.Command("node", script, "--oauth")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "MCP_PORT=" + strconv.Itoa(d.mcpPort), "MCP_AUTH_PORT=" + strconv.Itoa(d.authPort)}
		d.portServer = startPortServer(t, cmd)
		return d.ready(30*time.Second, "EADDRINUSE", func(out string) bool {
			return strings.Contains(out, "listening on port "+strconv.Itoa(d.mcpPort)) && strings.Contains(out, "listening on port "+strconv.Itoa(d.authPort))
		})
	})
	return d
}

// errPortTaken says a port was taken between onFreePorts's check and the
// bind of the server it was given to.
var errPortTaken = errors.New("a port was taken before the server bound it")

// onFreePorts runs start with n distinct loopback ports that were free a
// moment ago. The servers started so (the SDK's example, the collector)
// bind their ports themselves and cannot be handed a listener that holds
// them, so a parallel test can take a port in between: start then stops
// what it started and returns errPortTaken, and runs again with fresh
// ports, up to five times.
func onFreePorts(t *testing.T, n int, start func(ports []int) error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := start(freePorts(t, n))
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("%v; again with fresh ports", err)
	}
}

// freePorts returns n distinct loopback ports that were free a moment
// ago (see onFreePorts and portPicker).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		out[i] = freePort(t)
	}
	return out
}

// TestOnFreePortsTakenPort: a port taken between the check and the
// server's own bind (here by the test itself, before the first start)
// stops that server and starts the next on fresh ports, which serves.
func TestOnFreePortsTakenPort(t *testing.T) {
	t.Parallel()
	requireNode(t)
	var tried [][]int
	var s *portServer
	onFreePorts(t, 1, func(ports []int) error {
		tried = append(tried, ports)
		if len(tried) == 1 {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[0]))
			if err != nil {
				t.Fatalf("take the port: %v", err)
			}
			t.Cleanup(func() { ln.Close() })
		}
		s = startPortServer(t, exec.Command("node", "-e", `require('http').createServer((q, r) => r.end('up')).listen(`+strconv.Itoa(ports[0])+`, '127.0.0.1', () => console.log('serving'))`))
		return s.ready(30*time.Second, "EADDRINUSE", func(out string) bool { return strings.Contains(out, "serving") })
	})
	// At least two: another test may take a fresh port too.
	last := tried[len(tried)-1][0]
	if len(tried) < 2 || tried[0][0] == last {
		t.Fatalf("ports tried: %v, want a start on another port after the first", tried)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(last))
	if err != nil {
		t.Fatalf("the server started on the fresh port: %v", err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); string(body) != "up" {
		t.Errorf("the server on the fresh port: got %q, want up", body)
	}
}

// portServer is a server program a test runs on ports it was given, its
// output kept; exited is closed once it has exited.
type portServer struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
}

// startPortServer starts cmd, stopped when the test ends.
func startPortServer(t *testing.T, cmd *exec.Cmd) *portServer {
	t.Helper()
	s := &portServer{cmd: cmd, out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait() // how it exited is in its output
		close(s.exited)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the server, if it still runs, and waits for it.
func (s *portServer) stop() {
	_ = s.cmd.Process.Kill() // a test server; already gone is fine
	<-s.exited
}

func (s *portServer) hasExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// ready waits until the server's output says it serves (ready). Output
// that holds taken (its error for an address in use) stops it and returns
// errPortTaken; so does its exit with that error.
func (s *portServer) ready(d time.Duration, taken string, ready func(out string) bool) error {
	var up bool
	waitFor(d, func() bool {
		up = ready(s.out.String())
		return up || strings.Contains(s.out.String(), taken) || s.hasExited()
	})
	switch out := s.out.String(); {
	case up:
		return nil
	case strings.Contains(out, taken):
		s.stop()
		return fmt.Errorf("%w (%s):\n%s", errPortTaken, strings.Join(s.cmd.Args, " "), out)
	case s.hasExited():
		return fmt.Errorf("%s exited before it served:\n%s", strings.Join(s.cmd.Args, " "), out)
	default:
		s.stop()
		return fmt.Errorf("%s did not serve within %s:\n%s", strings.Join(s.cmd.Args, " "), d, out)
	}
}

// TestMCPOAuth authorizes Ringlet with the SDK's real authorization
// server: a server that asks for OAuth is needs-auth in mcp list, with the
// fix; 'mcp auth' discovers the authorization server, registers Ringlet,
// and a "browser" ($BROWSER: curl following the redirects, as a browser
// would) comes back to the loopback redirect; the SDK's own client then
// calls the server's tool through Ringlet. The token is in the credential
// store only. 'mcp auth' again replaces it; --revoke deletes the tokens.
func TestMCPOAuth(t *testing.T) {
	t.Parallel()
	requireNode(t)
	demo := startOAuthDemo(t)
	ports := []int{demo.mcpPort, demo.authPort}
	e, d := newMCPEnv(t)
	server := fmt.Sprintf("http://localhost:%d/mcp", ports[0])
	mustRun(t, e, "mcp", "add", "work", "demo", "--url", server, "--timeout", "20s")

	tok := mcpSessionToken(t, e, "work")
	c := &mcpHTTP{t: t, url: d.URL + "/mcp", tok: tok}
	c.post(stdioInit)
	c.post(stdioInitialized)
	c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if !waitFor(20*time.Second, func() bool {
		out := mustRun(t, e, "mcp", "list", "work")
		return strings.Contains(out, "needs-auth") && strings.Contains(out, "ringlet mcp auth work demo")
	}) {
		t.Fatalf("mcp list before auth: got %q, want needs-auth with the fix", mustRun(t, e, "mcp", "list", "work"))
	}

	// Bad input: one line, non-zero.
	for _, bad := range [][]string{{"--status", "--revoke"}, {"--json"}, {"--timeout", "1h"}, {"--client-secret", "a/b"}} {
		args := append([]string{"mcp", "auth", "work", "demo"}, bad...)
		if _, stderr, code := e.Run(args...); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("mcp auth %v: exit %d, stderr %q; want refused in one line", bad, code, stderr)
		}
	}

	// The CLI's browser: curl follows the authorization server's redirect
	// back to the loopback redirect, as a browser would.
	e.ExtraEnv = append(e.ExtraEnv, "BROWSER=curl -fsSL -o /dev/null")
	auth := func() string {
		t.Helper()
		stdout, stderr, code := e.Run("mcp", "auth", "work", "demo", "--timeout", "60s")
		if code != 0 || !strings.Contains(stdout, "authorized") || !strings.Contains(stdout, "/authorize?") {
			t.Fatalf("mcp auth: exit %d, stdout %q, stderr %q; want the URL printed and authorized", code, stdout, stderr)
		}
		return stdout
	}
	out := auth()
	for _, want := range []string{"code_challenge_method=S256", "resource=", "redirect_uri=http%3A%2F%2F127.0.0.1%3A"} {
		if !strings.Contains(out, want) {
			t.Errorf("authorization URL: got %q, want %s", out, want)
		}
	}

	var st struct {
		Authorized bool   `json:"authorized"`
		Registered bool   `json:"registered"`
		Issuer     string `json:"issuer"`
		State      string `json:"state"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "mcp", "auth", "work", "demo", "--status", "--json")), &st); err != nil || !st.Authorized || !st.Registered ||
		!strings.Contains(st.Issuer, strconv.Itoa(ports[1])) {
		t.Errorf("mcp auth --status --json: got %+v (%v), want authorized by the demo's authorization server, registered dynamically", st, err)
	}

	// The SDK's client calls the tool through Ringlet.
	call := func() nodeResult {
		return runSDK(t, e, tok, map[string]any{"url": d.URL + "/mcp", "steps": []map[string]any{{"list": true}, {"call": "demo__greet", "args": map[string]any{"name": "oauth"}}}})
	}
	var r nodeResult
	if !waitFor(20*time.Second, func() bool {
		r = call()
		return len(r.Steps) == 2 && r.Steps[1].Result != nil && !r.Steps[1].Result.IsError && len(r.Steps[1].Result.Content) > 0 &&
			strings.Contains(r.Steps[1].Result.Content[0].Text, "oauth")
	}) {
		t.Fatalf("demo__greet through Ringlet after mcp auth: got %+v", r)
	}

	// Not a key of the user's: keychain list leaves it out, and removing
	// or replacing it by hand is refused with the command to use.
	for _, args := range [][]string{{"keychain", "list"}, {"keychain", "list", "--json"}} {
		if out := mustRun(t, e, args...); strings.Contains(out, "mcp-oauth") {
			t.Errorf("%v: got %q, want the OAuth record left out", args, out)
		}
	}
	if _, stderr, code := e.Run("keychain", "remove", "mcp-oauth", "demo.work"); code == 0 || !strings.Contains(stderr, "'ringlet mcp auth work demo' (or --revoke to remove it)") ||
		strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("keychain remove mcp-oauth demo.work: exit %d, stderr %q; want refused in one line naming 'ringlet mcp auth work demo'", code, stderr)
	}

	// The tokens: in the credential store, nowhere else.
	access := storedAccessToken(t, e)
	logs, _ := os.ReadFile(e.LogFile())
	assertNoLeak(t, "the daemon's log", append(logs, d.Stderr()...), access)
	assertNoLeak(t, "the MCP client's answers", c.seen.Bytes(), access)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), access)
	_ = filepath.WalkDir(e.Root, func(p string, de fs.DirEntry, err error) error { // an unreadable entry is skipped: the daemon wrote none
		if err != nil || de.IsDir() || !de.Type().IsRegular() || de.Name() == "credentials.toml" {
			return nil
		}
		data, _ := os.ReadFile(p)
		assertNoLeak(t, p, data, access)
		return nil
	})
	e.AssertNoSecret(access, e.Token())
	recs := auditRecords(t, e, "mcp.auth")
	steps := map[string]bool{}
	for _, r := range recs {
		steps[fmt.Sprint(r.Detail["step"])] = r.Target == "demo"
	}
	if !steps["start"] || !steps["authorized"] {
		t.Errorf("mcp.auth records: got %+v, want start and authorized, by server", recs)
	}

	// The token expires and there is no refresh token (the demo issues
	// none): once the server is restarted ('mcp set'), it needs
	// authorization again. A call gets a JSON-RPC error naming the
	// command, not a silent failure or "tool not found", and mcp list
	// says so with the fix.
	expireStoredToken(t, e)
	mustRun(t, e, "mcp", "set", "work", "demo", "--header", "X-Ringlet-Test=1")
	if !waitFor(20*time.Second, func() bool {
		r = call()
		return len(r.Steps) == 2 && strings.Contains(r.Steps[1].Error, "run 'ringlet mcp auth work demo'")
	}) {
		t.Fatalf("demo__greet once the token is refused: got %+v (%s), want a JSON-RPC error naming 'ringlet mcp auth work demo'", r, resultText(r))
	}
	if out := mustRun(t, e, "mcp", "list", "work"); !strings.Contains(out, "needs-auth") || !strings.Contains(out, "ringlet mcp auth work demo") {
		t.Errorf("mcp list once the token is refused: got %q, want needs-auth with the fix", out)
	}

	auth()
	if !waitFor(20*time.Second, func() bool {
		r = call()
		return len(r.Steps) == 2 && r.Steps[1].Result != nil && !r.Steps[1].Result.IsError
	}) {
		t.Fatalf("demo__greet after authorizing again: got %+v %+v", r, r.Steps[1].Result)
	}

	out = mustRun(t, e, "mcp", "auth", "work", "demo", "--revoke")
	if !strings.Contains(out, "deleted the tokens of demo") {
		t.Errorf("mcp auth --revoke: got %q", out)
	}
	if out := mustRun(t, e, "mcp", "auth", "work", "demo", "--status"); !strings.Contains(out, "not authorized") {
		t.Errorf("mcp auth --status after --revoke: got %q, want not authorized", out)
	}
	if data, _ := os.ReadFile(filepath.Join(e.ConfigDir(), "credentials.toml")); strings.Contains(string(data), "mcp-oauth") {
		t.Errorf("credentials.toml after --revoke still holds the authorization")
	}
}

// storedAccessToken reads the access token 'mcp auth' stored in the file
// credential store.
func storedAccessToken(t *testing.T, e *env) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.ConfigDir(), "credentials.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`['"]?demo\.work['"]?\s*=\s*['"]([A-Za-z0-9_-]+)['"]`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("credentials.toml holds no mcp-oauth demo.work record:\n%s", data)
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Token struct {
			AccessToken string `json:"access_token"`
		} `json:"token"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil || len(rec.Token.AccessToken) < 16 {
		t.Fatalf("stored record: %v, access token %q", err, rec.Token.AccessToken)
	}
	return rec.Token.AccessToken
}

// resultText is the text of the results of r's steps, for a failure.
func resultText(r nodeResult) string {
	var b strings.Builder
	for _, s := range r.Steps {
		if s.Result != nil {
			for _, c := range s.Result.Content {
				b.WriteString(c.Text + " ")
			}
		}
	}
	return b.String()
}

// expireStoredToken makes the token 'mcp auth' stored in the file
// credential store an expired one without a refresh token.
func expireStoredToken(t *testing.T, e *env) {
	t.Helper()
	path := filepath.Join(e.ConfigDir(), "credentials.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(['"]?demo\.work['"]?\s*=\s*['"])([A-Za-z0-9_-]+)(['"])`)
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("credentials.toml holds no mcp-oauth demo.work record")
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	tok, _ := rec["token"].(map[string]any)
	if tok == nil {
		t.Fatalf("stored record has no token")
	}
	tok["expires_at"] = "2001-01-01T00:00:00Z"
	delete(tok, "refresh_token")
	raw, _ = json.Marshal(rec)
	enc := base64.RawURLEncoding.EncodeToString(raw)
	data = re.ReplaceAll(data, []byte("${1}"+enc+"${3}"))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
