package oauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

func start(t *testing.T, f *fakeAS, keys Keys, timeout time.Duration) (*Flow, error) {
	t.Helper()
	if timeout == 0 {
		timeout = time.Minute
	}
	fl, err := Start(t.Context(), FlowOptions{Profile: "p", Server: "s", URL: f.URL(), Timeout: timeout, Transport: http.DefaultTransport, Keys: keys})
	if fl != nil {
		t.Cleanup(func() {
			fl.Cancel()
			fl.Wait()
		})
	}
	return fl, err
}

// TestStartRefusesHostileServers: each way an MCP server or its
// authorization server could send Ringlet's code, tokens or the user's
// browser somewhere else ends the flow before the browser is sent
// anywhere, with a line that says why.
func TestStartRefusesHostileServers(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", maxBody+1)
	cases := []struct {
		name  string
		spoil func(f *fakeAS)
		want  string
	}{
		{"wrong issuer", func(f *fakeAS) { f.meta = func(m map[string]any) { m["issuer"] = "http://127.0.0.1:1" } }, "declares issuer"},
		{"resource of another server", func(f *fakeAS) {
			f.prm = func(m map[string]any) { m["resource"] = "http://127.0.0.1:1/mcp" }
		}, "does not match base URL"},
		{"plain http authorization endpoint", func(f *fakeAS) {
			f.meta = func(m map[string]any) { m["authorization_endpoint"] = "http://login.example.com/authorize" }
		}, "authorization endpoint \"http://login.example.com/authorize\" is plain http to a host that is not loopback"},
		{"plain http token endpoint", func(f *fakeAS) {
			f.meta = func(m map[string]any) { m["token_endpoint"] = "http://10.1.2.3/token" }
		}, "token endpoint \"http://10.1.2.3/token\" is plain http"},
		{"no S256", func(f *fakeAS) {
			f.meta = func(m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} }
		}, "does not list PKCE with S256"},
		{"no PKCE at all", func(f *fakeAS) { f.meta = func(m map[string]any) { delete(m, "code_challenge_methods_supported") } }, "does not list PKCE with S256"},
		{"redirected metadata", func(f *fakeAS) {
			// The redirect's target is a valid document: only not following
			// it refuses the flow.
			f.raw["/.well-known/oauth-protected-resource/mcp"] = func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			}
			f.raw["/elsewhere"] = func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, map[string]any{"resource": f.ts.URL + "/mcp", "authorization_servers": []string{f.ts.URL}})
			}
		}, "status 302"},
		{"oversized metadata", func(f *fakeAS) {
			f.prm = func(m map[string]any) { m["resource_name"] = big }
		}, "larger than 256 KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAS(t)
			f.set(tc.spoil)
			keys := newMemKeys()
			fl, err := start(t, f, keys, 0)
			if err == nil {
				t.Fatalf("got a flow (browser sent to %s), want it refused", fl.AuthURL)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") || len(err.Error()) > 600 {
				t.Errorf("got a %d-byte error over lines, want one short line: %q", len(err.Error()), err)
			}
			if len(keys.m) != 0 || len(f.grantsOf("authorization_code")) != 0 {
				t.Errorf("stored %d records, sent %d codes: want none", len(keys.m), len(f.grantsOf("authorization_code")))
			}
		})
	}
	// The same server unspoiled starts a flow: the cases above fail for
	// their spoiling only.
	f := newFakeAS(t)
	fl, err := start(t, f, newMemKeys(), 0)
	if err != nil {
		t.Fatalf("a sound server: %v", err)
	}
	u, _ := url.Parse(fl.AuthURL)
	if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("resource") != f.URL() || q.Get("client_id") != "ringlet-client" {
		t.Errorf("authorization URL %s: want S256, the resource and the registered client", fl.AuthURL)
	}
}

func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	for s, ok := range map[string]bool{
		"https://as.example.com/token": true, "http://127.0.0.1:8080/token": true, "http://localhost/x": true, "http://[::1]:9/x": true,
		"http://as.example.com/token": false, "http://127.0.0.1.nip.io/token": false, "https://u:p@as.example.com/": false,
		"ftp://as.example.com/": false, "/token": false, "javascript:alert(1)": false,
	} {
		if err := CheckEndpoint("token endpoint", s); (err == nil) != ok {
			t.Errorf("CheckEndpoint(%q): got %v, want ok=%v", s, err, ok)
		}
	}
}

// get sends the browser's request to the loopback redirect.
func get(t *testing.T, fl *Flow, query url.Values, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fl.Redirect+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

func flowState(t *testing.T, fl *Flow) string {
	t.Helper()
	u, err := url.Parse(fl.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("state")
}

func ended(fl *Flow) bool {
	select {
	case <-fl.Done():
		return true
	default:
		return false
	}
}

// TestCallback: the loopback redirect refuses a request with another
// state or through another Host (a rebound DNS name) and goes on
// waiting; the right one ends the flow with the tokens stored; a second
// use of it gets nothing.
func TestCallback(t *testing.T) {
	t.Parallel()
	f := newFakeAS(t)
	// The code exchange waits until the second use has been answered, so
	// that both reach the redirect while it listens.
	release := make(chan struct{})
	f.set(func(f *fakeAS) {
		f.token = func(w http.ResponseWriter, form url.Values) {
			if form.Get("grant_type") == "authorization_code" && form.Get("code") == "code-1" {
				<-release
			}
			f.issue(w, form)
		}
	})
	keys := newMemKeys()
	fl, err := start(t, f, keys, 0)
	if err != nil {
		t.Fatal(err)
	}
	state := flowState(t, fl)
	if code, body := get(t, fl, url.Values{"code": {"code-0"}, "state": {"not-" + state}}, ""); code != http.StatusBadRequest || !strings.Contains(body, "state does not match") {
		t.Errorf("a wrong state: got %d %q, want 400 saying so", code, body)
	}
	host := strings.Replace(strings.TrimPrefix(strings.TrimSuffix(fl.Redirect, "/callback"), "http://"), "127.0.0.1", "rebound.example.com", 1)
	if code, _ := get(t, fl, url.Values{"code": {"code-0"}, "state": {state}}, host); code != http.StatusNotFound {
		t.Errorf("another Host: got %d, want 404", code)
	}
	if ended(fl) || len(f.grantsOf("authorization_code")) != 0 {
		t.Fatal("a refused request ended the flow or sent its code")
	}
	first := make(chan int, 1)
	go func() {
		code, _ := get(t, fl, url.Values{"code": {"code-1"}, "state": {state}}, "")
		first <- code
	}()
	waitFor(t, "the code exchange", func() bool { return len(f.grantsOf("authorization_code")) == 1 })
	if code, body := get(t, fl, url.Values{"code": {"code-2"}, "state": {state}}, ""); code != http.StatusGone {
		t.Errorf("a second use: got %d %q, want 410", code, body)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the authorization: got %d, want 200", code)
	}
	<-fl.Done()
	rec, err := fl.Result()
	if err != nil {
		t.Fatal(err)
	}
	if g := f.grantsOf("authorization_code"); len(g) != 1 || g[0].Get("code_verifier") == "" || g[0].Get("resource") != f.URL() {
		t.Errorf("code grants: got %v, want one, with the verifier and the resource", g)
	}
	stored, err := Load(keys, "p", "s")
	if err != nil || stored.Token.AccessToken != rec.Token.AccessToken || stored.URL != f.URL() || stored.ClientID != "ringlet-client" {
		t.Errorf("stored: got %+v, %v", stored, err)
	}
	if code, _ := get(t, fl, url.Values{"code": {"code-3"}, "state": {state}}, ""); code == http.StatusOK {
		t.Error("a use after the flow ended: got 200")
	}
	if n := len(f.grantsOf("authorization_code")); n != 1 {
		t.Errorf("got %d code exchanges, want 1", n)
	}
}

// TestFlowTimeout: a browser that never comes back ends the flow with a
// line naming the command to run again.
func TestFlowTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeAS(t)
	fl, err := start(t, f, newMemKeys(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-fl.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the flow did not end")
	}
	if _, err := fl.Result(); err == nil || !strings.Contains(err.Error(), "run 'ringlet mcp auth p s' again") {
		t.Errorf("got %v, want it to name 'ringlet mcp auth p s'", err)
	}
	if code, _ := get(t, fl, url.Values{"code": {"c"}, "state": {flowState(t, fl)}}, ""); code == http.StatusOK {
		t.Error("the redirect answered after the flow timed out")
	}
}

// TestRefreshBeforeExpiry: a token within its last minute is refreshed
// before it is sent, and the new tokens (the rotated refresh token too)
// are what the credential store holds.
func TestRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := newFakeAS(t)
	keys := newMemKeys()
	rec := &Record{Profile: "p", Server: "s", URL: f.URL(), Issuer: f.ts.URL, ClientID: "ringlet-client", ResourceMetadata: f.ts.URL + "/.well-known/oauth-protected-resource/mcp",
		Token: transport.Token{AccessToken: "old-access", RefreshToken: "old-refresh", TokenType: "Bearer", ExpiresIn: 3600, ExpiresAt: time.Now().Add(30 * time.Second)}}
	if err := Save(keys, rec); err != nil {
		t.Fatal(err)
	}
	var seen []string
	store := NewTokenStore(keys, rec, func(v string) { seen = append(seen, v) })
	h := transport.NewOAuthHandler(Config(rec, store, HTTPClient(http.DefaultTransport)))
	h.SetBaseURL(f.URL())
	auth, err := h.GetAuthorizationHeader(context.Background())
	if err != nil || auth != "Bearer access-1" {
		t.Fatalf("got %q, %v; want the refreshed token", auth, err)
	}
	g := f.grantsOf("refresh_token")
	if len(g) != 1 || g[0].Get("refresh_token") != "old-refresh" || g[0].Get("resource") != f.URL() {
		t.Errorf("refresh grants: got %v", g)
	}
	stored, err := Load(keys, "p", "s")
	if err != nil || stored.Token.AccessToken != "access-1" || stored.Token.RefreshToken != "refresh-1" {
		t.Errorf("stored: got %+v, %v; want access-1 and the rotated refresh-1", stored.Token, err)
	}
	if !strings.Contains(strings.Join(seen, " "), "access-1") || !strings.Contains(strings.Join(seen, " "), "refresh-1") {
		t.Errorf("the redactor was told %v, want the new tokens", seen)
	}
	// A fresh token is sent as it is.
	if auth, err := h.GetAuthorizationHeader(context.Background()); err != nil || auth != "Bearer access-1" || len(f.grantsOf("refresh_token")) != 1 {
		t.Errorf("then: got %q, %v after %d refreshes", auth, err, len(f.grantsOf("refresh_token")))
	}
	// Invalidate: the next request refreshes first.
	store.Invalidate()
	if auth, err := h.GetAuthorizationHeader(context.Background()); err != nil || auth != "Bearer access-2" {
		t.Errorf("after Invalidate: got %q, %v; want access-2", auth, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
