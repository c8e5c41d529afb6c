package gateway

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sessionstore"
	"github.com/neullabs/ringlet/token"
)

// testToken is a well-formed admin token; otherToken is another one of the
// same length.
const (
	testToken  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	otherToken = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	testPort   = 8765
	testHost   = "127.0.0.1:8765"
)

// withParts fills in what o lacks of the parts every daemon has, empty,
// in temporary directories: stores with no profiles, keys, hooks or MCP
// servers, a sandbox builder that knows no own paths, a keyer, a token
// file and a ringlet binary path.
func withParts(t testing.TB, o Options) Options {
	t.Helper()
	dir := t.TempDir()
	if o.Token.IsZero() {
		o.Token = token.FromString(testToken)
	}
	if o.TokenFile == "" {
		o.TokenFile = filepath.Join(dir, "http_token")
	}
	if o.CatalogDir == "" {
		o.CatalogDir = dir
	}
	if o.PricesFile == "" {
		o.PricesFile = filepath.Join(dir, "data", "prices.json")
	}
	if o.Profiles == nil {
		o.Profiles = profile.NewStore(dir, filepath.Join(dir, "data"))
	}
	if o.Keys == nil {
		keys, err := keystore.Open(keystore.Options{Dir: dir, Backend: credentials.BackendFile})
		if err != nil {
			t.Fatal(err)
		}
		o.Keys = keys
	}
	if o.HMAC == nil {
		o.HMAC = audit.NewHMAC([]byte("test-key"))
	}
	if o.Hooks == nil {
		o.Hooks = hook.NewStore(dir)
	}
	if o.MCPStore == nil {
		o.MCPStore = mcp.NewStore(dir)
	}
	if o.Launch == nil {
		o.Launch = launch.New(launch.Options{})
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(dir, "state")
	}
	if o.Executable == "" {
		o.Executable = "/usr/local/bin/ringlet"
	}
	if o.SessionStore == nil {
		o.SessionStore = sessionstore.NewDir(filepath.Join(dir, "state", "sessions"), sessionstore.Options{})
	}
	return o
}

// newTestServer returns a server whose Host guard expects port.
func newTestServer(t *testing.T, port int) *Server {
	t.Helper()
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), TokenFile: filepath.Join(t.TempDir(), "http_token")}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.port.Store(int64(port))
	t.Cleanup(s.life.stop)
	t.Cleanup(s.mcp.srv.Close)
	return s
}

// newTestHandler returns a server and its full handler for port 8765.
func newTestHandler(t *testing.T) (*Server, http.Handler) {
	t.Helper()
	s := newTestServer(t, testPort)
	return s, s.Handler()
}

// newLiveServer starts an httptest server in front of a Server whose Host
// guard knows the listener's port.
func newLiveServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Token.IsZero() {
		opts.Token = token.FromString(testToken)
	}
	if opts.TokenFile == "" {
		opts.TokenFile = filepath.Join(t.TempDir(), "http_token")
	}
	s, err := New(withParts(t, opts))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewUnstartedServer(nil)
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatalf("listener address: %v", err)
	}
	n, _ := strconv.Atoi(port)
	s.port.Store(int64(n))
	ts.Config.Handler = s.Handler()
	ts.Start()
	t.Cleanup(func() {
		s.life.stop()
		ts.Close()
		s.mcp.srv.Close()
	})
	return s, ts
}

// newRequest builds a request from loopback with the test token.
func newRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Host = testHost
	r.Header.Set("Authorization", "Bearer "+testToken)
	return r
}

// serve runs r through h and returns the response.
func serve(t *testing.T, h http.Handler, r *http.Request) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	resp := rec.Result()
	t.Cleanup(func() { resp.Body.Close() })
	assertNoCORS(t, resp)
	return resp
}

// assertNoCORS fails when a response carries any Access-Control-* header:
// the daemon must never opt a web page into reading its answers.
func assertNoCORS(t *testing.T, resp *http.Response) {
	t.Helper()
	for k := range resp.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Access-Control-") {
			t.Errorf("response has header %s: %q, want no Access-Control-* header", k, resp.Header.Values(k))
		}
	}
}

// readBody returns the response body as a string.
func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// assertError checks status, the JSON content type and the error code of
// an error response, and returns the decoded body.
func assertError(t *testing.T, resp *http.Response, status int, code string) api.ErrorAnswer {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status: got %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want %q", ct, "application/json")
	}
	body := readBody(t, resp)
	var e api.ErrorAnswer
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("decode error body %q: %v", body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error code: got %q, want %q (body %s)", e.Error.Code, code, body)
	}
	if e.Error.Message == "" {
		t.Errorf("error message: got empty, want a sentence (body %s)", body)
	}
	return e
}

func TestNewRequiresToken(t *testing.T) {
	t.Parallel()
	s, err := New(Options{})
	if err == nil {
		t.Fatalf("New without token: got %v, nil error; want an error", s)
	}
}

// TestNewRequiresParts: a daemon has every part; one without, which
// would answer for it some other way, is not built.
func TestNewRequiresParts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		remove func(*Options)
	}{
		{"Profiles", func(o *Options) { o.Profiles = nil }},
		{"Keys", func(o *Options) { o.Keys = nil }},
		{"HMAC", func(o *Options) { o.HMAC = nil }},
		{"Hooks", func(o *Options) { o.Hooks = nil }},
		{"MCPStore", func(o *Options) { o.MCPStore = nil }},
		{"Launch", func(o *Options) { o.Launch = nil }},
		{"StateDir", func(o *Options) { o.StateDir = "" }},
		{"Executable", func(o *Options) { o.Executable = "" }},
	} {
		o := withParts(t, Options{})
		tc.remove(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), "Options."+tc.name+" is required") {
			t.Errorf("New without %s: got %v, want it named as required", tc.name, err)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	s, err := New(withParts(t, Options{Token: token.FromString(testToken)}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := s.opts.MaxBodyBytes, int64(1<<20); got != want {
		t.Errorf("MaxBodyBytes: got %d, want %d", got, want)
	}
	if s.opts.ShutdownTimeout <= 0 {
		t.Errorf("ShutdownTimeout: got %v, want a positive default", s.opts.ShutdownTimeout)
	}
	if s.log == nil {
		t.Errorf("logger: got nil, want a discard logger")
	}
}

func TestVersionWithToken(t *testing.T) {
	t.Parallel()
	_, h := newTestHandler(t)
	resp := serve(t, h, newRequest(http.MethodGet, "/api/version", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want %d", resp.StatusCode, http.StatusOK)
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if v.Version == "" {
		t.Errorf("version: got empty, want a version string")
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	_, h := newTestHandler(t)
	resp := serve(t, h, newRequest(http.MethodGet, "/api/status", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want %d", resp.StatusCode, http.StatusOK)
	}
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if st.RequestsActive != 0 {
		t.Errorf("requests_in_flight: got %d, want 0 (the status request itself is not counted)", st.RequestsActive)
	}
	if st.IdleTimeout != "never" {
		t.Errorf("idle_timeout: got %q, want %q", st.IdleTimeout, "never")
	}
}
