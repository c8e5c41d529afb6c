package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestAgentSessionFromEnv(t *testing.T) {
	t.Parallel()
	const tok, other = "rlt_session", "rlt_other"
	for _, tc := range []struct {
		name      string
		env       []string
		ok        bool
		tok, url  string
		shown     []string
		wantCheck string // "" when check passes
	}{
		{"nothing", []string{"PATH=/bin", "ANTHROPIC_API_KEY=sk-ant-real"}, false, "", "", nil, ""},
		{"profiles env", []string{"RINGLET_SESSION=s_1", "RINGLET_SESSION_TOKEN=" + tok, "RINGLET_SESSION_URL=http://127.0.0.1:1", "ANTHROPIC_API_KEY=" + tok, "ANTHROPIC_BASE_URL=http://127.0.0.1:2/proxy"},
			true, tok, "http://127.0.0.1:1", []string{"ANTHROPIC_API_KEY", "RINGLET_SESSION", "RINGLET_SESSION_TOKEN", "RINGLET_SESSION_URL"}, ""},
		{"an agent's key variables alone", []string{"OPENAI_API_KEY=" + tok, "OPENAI_BASE_URL=http://127.0.0.1:2/proxy/"}, true, tok, "http://127.0.0.1:2", []string{"OPENAI_API_KEY"}, ""},
		{"a base URL that is not the proxy's", []string{"ANTHROPIC_AUTH_TOKEN=" + tok, "ANTHROPIC_BASE_URL=https://api.anthropic.com"}, true, tok, "", []string{"ANTHROPIC_AUTH_TOKEN"}, ""},
		{"an empty session token wins over a key variable", []string{"RINGLET_SESSION_TOKEN=", "ANTHROPIC_API_KEY=" + other}, true, "", "", []string{"ANTHROPIC_API_KEY", "RINGLET_SESSION_TOKEN"}, "holds no session token"},
		{"the session token wins over a key variable", []string{"RINGLET_SESSION_TOKEN=" + tok, "ANTHROPIC_API_KEY=" + other}, true, tok, "", []string{"ANTHROPIC_API_KEY", "RINGLET_SESSION_TOKEN"}, ""},
		{"an id alone", []string{"RINGLET_SESSION=s_1"}, true, "", "", []string{"RINGLET_SESSION"}, "holds no session token"},
		{"an empty id", []string{"RINGLET_SESSION="}, true, "", "", []string{"RINGLET_SESSION"}, "holds no session token"},
		{"a token that is not a session's", []string{"RINGLET_SESSION_TOKEN=" + strings.Repeat("ab", 32)}, true, strings.Repeat("ab", 32), "", []string{"RINGLET_SESSION_TOKEN"}, "not a Ringlet session token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := &app{environ: func() []string { return tc.env }}
			s, ok := a.agentSessionFromEnv()
			if ok != tc.ok || s.Token != tc.tok || s.URL != tc.url || !slices.Equal(s.Shown, tc.shown) {
				t.Fatalf("got %v %+v, want %v token %q url %q shown %q", ok, s, tc.ok, tc.tok, tc.url, tc.shown)
			}
			if !ok {
				return
			}
			err := s.check()
			switch {
			case tc.wantCheck == "" && err != nil:
				t.Errorf("check: got %v, want nil", err)
			case tc.wantCheck != "" && (err == nil || !strings.Contains(err.Error(), tc.wantCheck)):
				t.Errorf("check: got %v, want an error saying %q", err, tc.wantCheck)
			}
		})
	}
}

// TestMCPStdioNeverAdminForSession runs 'ringlet mcp --stdio' against a
// stand-in daemon with an admin token file in place: with a session in
// the environment the admin token is never sent, and a session the daemon
// does not know is refused before any message; without one, the admin
// token is used with --admin only (the control).
func TestMCPStdioNeverAdminForSession(t *testing.T) {
	t.Parallel()
	admin := strings.Repeat("a1", 32)
	const live = "rlt_live"
	var mu sync.Mutex
	var seen []string
	daemon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+auth)
		mu.Unlock()
		switch {
		case auth != "Bearer "+live && auth != "Bearer "+admin:
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/session", r.URL.Path == "/api/version":
			_, _ = w.Write([]byte(`{}`))
		case r.URL.Path == "/mcp" && r.Method == http.MethodPost:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer daemon.Close()
	cfg := t.TempDir()
	if err := os.Mkdir(filepath.Join(cfg, "ringlet"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "ringlet", "http_token"), []byte(admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"XDG_CONFIG_HOME=" + cfg, "XDG_STATE_HOME=" + t.TempDir(), "XDG_DATA_HOME=" + t.TempDir(), "HOME=" + t.TempDir(), "RINGLET_URL=" + daemon.URL}
	for _, tc := range []struct {
		name  string
		admin bool // --admin
		env   []string
		code  int
		token string // the token every request carries; "" for none sent
	}{
		{"--admin outside a session: the admin token (the control)", true, nil, ExitOK, admin},
		{"--admin with RINGLET_TOKEN", true, []string{"RINGLET_TOKEN=" + admin}, ExitOK, admin},
		{"no session and no --admin (an agent that passes its servers no variables)", false, nil, ExitError, ""},
		{"a live session", false, []string{"RINGLET_SESSION_TOKEN=" + live, "RINGLET_SESSION_URL=" + daemon.URL}, ExitOK, live},
		{"a live session beside RINGLET_TOKEN", false, []string{"RINGLET_SESSION_TOKEN=" + live, "RINGLET_TOKEN=" + admin}, ExitOK, live},
		{"--admin in a live session's environment", true, []string{"RINGLET_SESSION_TOKEN=" + live, "RINGLET_SESSION_URL=" + daemon.URL}, ExitError, ""},
		{"an ended session", false, []string{"RINGLET_SESSION=s_1", "RINGLET_SESSION_TOKEN=rlt_gone", "RINGLET_SESSION_URL=" + daemon.URL}, ExitError, "rlt_gone"},
		{"an empty session token", false, []string{"RINGLET_SESSION=s_1", "RINGLET_SESSION_TOKEN="}, ExitError, ""},
		{"a session id alone", false, []string{"RINGLET_SESSION=s_1"}, ExitError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			env := append(append([]string{}, base...), tc.env...)
			getenv := func(k string) string {
				for _, kv := range env {
					if name, v, _ := strings.Cut(kv, "="); name == k {
						return v
					}
				}
				return ""
			}
			var out, errb bytes.Buffer
			in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}` + "\n")
			args := []string{"mcp", "--stdio"}
			if tc.admin {
				args = append(args, "--admin")
			}
			code := Main(context.Background(), args, Stdio{In: in, Out: &out, Err: &errb}, getenv, func() []string { return env }, nil)
			if code != tc.code {
				t.Fatalf("exit: got %d, want %d; stderr %q", code, tc.code, errb.String())
			}
			if code != ExitOK && (out.Len() != 0 || !strings.Contains(errb.String(), "never use")) {
				t.Errorf("refusal: got stdout %q, stderr %q; want no output and a line saying the admin token is never used", out.String(), errb.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.token == "" && len(seen) != 0 {
				t.Errorf("requests: got %q, want none", seen)
			}
			for _, s := range seen {
				if !strings.HasSuffix(s, " Bearer "+tc.token) {
					t.Errorf("request %q: want it to carry only %s", s, tc.token[:4])
				}
			}
			if tc.token != "" && len(seen) == 0 {
				t.Error("requests: got none, want the bridge to have reached the daemon")
			}
		})
	}
}
