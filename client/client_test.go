package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/token"
)

// seen is one request as the fake daemon got it.
type seen struct {
	method, path, query, auth, body string
}

// fakeDaemon answers every request with status and answer, and records
// what it was asked.
func fakeDaemon(t *testing.T, status int, answer string) (*Client, *seen) {
	t.Helper()
	got := &seen{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(ts.Close)
	return New(ts.URL+"/", token.FromString("tok")), got
}

// TestTypedCalls: each typed call sends its route's method, path and
// body (package api's JSON names) and decodes the answer.
func TestTypedCalls(t *testing.T) {
	t.Parallel()
	ref := credentials.Ref{Provider: "anthropic", Alias: "work"}
	model := "m-2"
	for _, tc := range []struct {
		name               string
		call               func(context.Context, *Client) (any, error)
		answer             string
		method, path, body string
		query              string
		check              func(any) bool
	}{
		{"status", func(ctx context.Context, c *Client) (any, error) { return c.Status(ctx) },
			`{"pid":7,"listen":"127.0.0.1:1"}`, "GET", "/api/status", "", "",
			func(v any) bool { return v.(api.Status).PID == 7 }},
		{"health", func(ctx context.Context, c *Client) (any, error) { return c.Health(ctx) },
			`{"keys":{"backend":"keyring"},"audit":{"writable":true,"path":"/a.db"}}`, "GET", "/api/health", "", "",
			func(v any) bool {
				h := v.(api.Health)
				return h.Keys.Backend == "keyring" && h.Audit.Writable && h.Audit.Path == "/a.db"
			}},
		{"stop", func(ctx context.Context, c *Client) (any, error) { return c.StopDaemon(ctx) },
			`{"pid":9,"stopping":true}`, "POST", "/api/daemon/stop", "", "",
			func(v any) bool { return v.(api.Stopping).PID == 9 }},
		{"set key", func(ctx context.Context, c *Client) (any, error) { return c.SetKey(ctx, ref, "sk-1") },
			`{"provider":"anthropic","alias":"work","backend":"file","sessions_ended":2}`, "PUT", "/api/keychain/anthropic/work", `{"key":"sk-1"}`, "",
			func(v any) bool { k := v.(api.KeychainChange); return k.Backend == "file" && k.SessionsEnded == 2 }},
		{"remove key", func(ctx context.Context, c *Client) (any, error) { return c.RemoveKey(ctx, ref) },
			`{"provider":"anthropic","alias":"work","backend":"keyring","sessions_ended":0}`, "DELETE", "/api/keychain/anthropic/work", "", "",
			func(v any) bool { return v.(api.KeychainChange).Backend == "keyring" }},
		{"migrate keys", func(ctx context.Context, c *Client) (any, error) { return c.MigrateKeys(ctx, "file") },
			`{"results":[{"entry":{"provider":"a","alias":"b","backend":"file"},"result":"moved"}]}`, "POST", "/api/keychain/migrate", `{"to":"file"}`, "",
			func(v any) bool { r := v.([]credentials.MigrateResult); return len(r) == 1 && r[0].Result == "moved" }},
		{"keys", func(ctx context.Context, c *Client) (any, error) { return c.Keys(ctx) },
			`{"entries":[{"provider":"a","alias":"b","backend":"file","status":"ok"}]}`, "GET", "/api/keychain", "", "",
			func(v any) bool { e := v.([]credentials.Entry); return len(e) == 1 && e[0].Status == "ok" }},
		{"profile, escaped", func(ctx context.Context, c *Client) (any, error) { return c.Profile(ctx, "a/b") },
			`{"alias":"a","key":"missing"}`, "GET", "/api/profiles/a%2Fb", "", "",
			func(v any) bool { return v.(api.ProfileView).Key == "missing" }},
		{"update profile", func(ctx context.Context, c *Client) (any, error) {
			return c.UpdateProfile(ctx, "work", api.ProfileUpdate{Model: &model})
		}, `{"alias":"work","model":"m-2"}`, "PATCH", "/api/profiles/work", `{"model":"m-2"}`, "",
			func(v any) bool { return v.(api.ProfileView).Model == "m-2" }},
		{"delete profile with its key", func(ctx context.Context, c *Client) (any, error) { return c.DeleteProfile(ctx, "work", true) },
			`{"deleted":"work","key_removed":true}`, "DELETE", "/api/profiles/work", "", "purge_key=true",
			func(v any) bool { return v.(api.ProfileDeleted).KeyRemoved }},
		{"start session", func(ctx context.Context, c *Client) (any, error) {
			return c.StartSession(ctx, api.SessionRequest{Profile: "work", Socket: true})
		}, `{"id":"s_1","token":"rlt_x","launch":{"command":["claude"],"env":[]}}`, "POST", "/api/sessions", `{"profile":"work","socket":true}`, "",
			func(v any) bool { s := v.(api.SessionStarted); return s.ID == "s_1" && s.Token == "rlt_x" }},
		{"end session", func(ctx context.Context, c *Client) (any, error) { return nil, c.EndSession(ctx, "s_1", 3) },
			`{}`, "DELETE", "/api/sessions/s_1", "", "reason=exited&exit_code=3", nil},
		{"hooks", func(ctx context.Context, c *Client) (any, error) { return c.Hooks(ctx, "work") },
			`{"hooks":[{"id":"h_1","profile":"work","event":"pre-tool-use","shell":"true"}]}`, "GET", "/api/hooks", "", "profile=work",
			func(v any) bool { h := v.([]hook.Hook); return len(h) == 1 && h[0].ID == "h_1" }},
		{"check hooks", func(ctx context.Context, c *Client) (any, error) {
			return c.CheckHooks(ctx, api.HookCheck{Event: "pre-tool-use", ToolName: "Bash", ToolInput: json.RawMessage(`{"command":"ls"}`)})
		}, `{"allow":false,"reason":"no","exit_code":1}`, "POST", "/session/hooks/check", `{"event":"pre-tool-use","tool_name":"Bash","tool_input":{"command":"ls"}}`, "",
			func(v any) bool { d := v.(hook.Decision); return !d.Allow && d.Reason == "no" }},
		{"approve MCP server", func(ctx context.Context, c *Client) (any, error) {
			return c.ApproveMCPServer(ctx, "work", "fs", api.MCPApproveRequest{Tools: []string{"read"}, Observed: "sha256:1"})
		},
			`{"approved":["read"],"profile":"work","server":"fs","tools":3}`, "POST", "/api/mcp/servers/work/fs/approve", `{"tools":["read"],"observed":"sha256:1"}`, "",
			func(v any) bool { a := v.(api.MCPApproved); return a.Tools == 3 && len(a.Approved) == 1 }},
		{"start terminal", func(ctx context.Context, c *Client) (any, error) {
			return c.StartTerminal(ctx, "s_1", api.TerminalStart{Cols: 80, Rows: 24})
		}, `{"session":"s_1","pid":42,"running":true}`, "POST", "/api/sessions/s_1/terminal", `{"cols":80,"rows":24}`, "",
			func(v any) bool { return v.(api.TerminalInfo).PID == 42 }},
		{"start a launch's session", func(ctx context.Context, c *Client) (any, error) {
			return c.StartSession(ctx, api.SessionRequest{Profile: "work", Launch: &api.LaunchRequest{Dir: "/w", Path: "/bin", Home: "/h", NoSandbox: true}})
		}, `{"id":"s_1","token":"rlt_x","launch":{"command":["sh"],"env":[]},"warnings":["careful"]}`, "POST", "/api/sessions",
			`{"profile":"work","launch":{"dir":"/w","path":"/bin","home":"/h","no_sandbox":true}}`, "",
			func(v any) bool { s := v.(api.SessionStarted); return s.ID == "s_1" && len(s.Warnings) == 1 }},
		{"plan", func(ctx context.Context, c *Client) (any, error) { return c.Plan(ctx, "s_1") },
			`{"argv":["/usr/bin/bwrap","--args","3"],"env":[],"files":["b3B0cw=="],"sandbox":true,"trees":["/w"]}`, "POST", "/api/sessions/s_1/plan", "", "",
			func(v any) bool {
				p := v.(api.LaunchPlan)
				return p.Sandbox && len(p.Argv) == 3 && len(p.Files) == 1 && string(p.Files[0]) == "opts" && p.Trees[0] == "/w"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, got := fakeDaemon(t, http.StatusOK, tc.answer)
			v, err := tc.call(t.Context(), c)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got.method != tc.method || got.path != tc.path || got.query != tc.query {
				t.Errorf("got %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tc.method, tc.path, tc.query)
			}
			if got.auth != "Bearer tok" {
				t.Errorf("got Authorization %q, want the bearer token", got.auth)
			}
			if got.body != tc.body {
				t.Errorf("got body %s, want %s", got.body, tc.body)
			}
			if tc.check != nil && !tc.check(v) {
				t.Errorf("got %+v, want it decoded from %s", v, tc.answer)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	t.Run("the daemon's error", func(t *testing.T) {
		t.Parallel()
		c, _ := fakeDaemon(t, http.StatusNotFound, `{"error":{"code":"not_found","message":"no profile work"}}`)
		_, err := c.Profile(t.Context(), "work")
		var e *Error
		if !errors.As(err, &e) || e.Status != 404 || e.Code != "not_found" || e.Message != "no profile work" {
			t.Errorf("got %#v, want *Error 404 not_found with the daemon's message", err)
		}
	})
	t.Run("not the daemon's format", func(t *testing.T) {
		t.Parallel()
		c, _ := fakeDaemon(t, http.StatusBadGateway, `<html>bad gateway</html>`)
		_, err := c.Profile(t.Context(), "work")
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeUnknown || !strings.Contains(e.Message, "502") {
			t.Errorf("got %#v, want *Error with code %q naming the status", err, CodeUnknown)
		}
	})
	t.Run("an answer that does not decode", func(t *testing.T) {
		t.Parallel()
		c, _ := fakeDaemon(t, http.StatusOK, `{"pid":"seven"}`)
		if _, err := c.Status(t.Context()); !errors.Is(err, ErrBadAnswer) {
			t.Errorf("got %v, want ErrBadAnswer", err)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := New("http://"+addr, token.FromString("tok")).Version(t.Context()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("got %v, want ErrNotRunning", err)
		}
	})
}

func TestReadState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		ok            bool
	}{
		{"sound", `{"pid":123,"url":"http://127.0.0.1:8765","audit_log":"/x/audit.db"}`, true},
		{"no pid", `{"url":"http://127.0.0.1:8765"}`, false},
		{"not JSON", `pid=123`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			st, ok := ReadState(file)
			if ok != tc.ok || (ok && (st.PID != 123 || st.AuditLog != "/x/audit.db")) {
				t.Errorf("got %+v, %v; want ok=%v", st, ok, tc.ok)
			}
		})
	}
	if _, ok := ReadState(filepath.Join(dir, "missing.json")); ok {
		t.Error("a missing file: got ok, want not")
	}
	if !ProcessAlive(os.Getpid()) {
		t.Error("ProcessAlive of this process: got false, want true")
	}
}
