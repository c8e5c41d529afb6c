package mcp

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// secretWorld is a world whose credential store holds one secret, and
// which records what OnSecrets was told (refusing while refuse is set).
type secretWorld struct {
	*world
	mu     sync.Mutex
	told   []map[string]string
	refuse error
}

const envCanary = "ghp_env-canary-5b1e9d0c7a"

func newSecretWorld(t *testing.T) *secretWorld {
	sw := &secretWorld{}
	sw.world = newWorld(t, func(o *Options) {
		o.Path = "/usr/bin:/bin"
		o.Credential = func(ref string) (string, error) {
			if ref != "github/work" {
				return "", errors.New("no such credential")
			}
			return envCanary, nil
		}
		o.OnSecrets = func(profile, server string, secrets map[string]string) error {
			sw.mu.Lock()
			defer sw.mu.Unlock()
			if sw.refuse != nil {
				return sw.refuse
			}
			sw.told = append(sw.told, secrets)
			return nil
		}
	})
	return sw
}

func (sw *secretWorld) add(t *testing.T, name string, env, secrets map[string]string, flags ...string) {
	t.Helper()
	c := mcpserver.Config{Name: name, Command: upstreamCommand(t, flags...), Timeout: 10 * time.Second, NoSandbox: true, Env: env, Secrets: secrets}
	if _, err := sw.srv.AddServer("a", c); err != nil {
		t.Fatalf("AddServer: %v", err)
	}
}

// TestUpstreamGetsItsVariablesAndSecrets: a stdio server's environment is
// Ringlet's three variables, its plain ones and its secrets read from the
// store at the start, which is told to OnSecrets by name and reference.
func TestUpstreamGetsItsVariablesAndSecrets(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	envFile := filepath.Join(sw.homes["a"], "env")
	sw.add(t, "gh", map[string]string{"GITHUB_TOOLSETS": "repos"}, map[string]string{"GITHUB_TOKEN": "github/work"}, "-env", envFile)
	c := sw.ready(t, "a1")
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimSpace(string(data)), "\n")
	slices.Sort(env)
	want := []string{"GITHUB_TOKEN=" + envCanary, "GITHUB_TOOLSETS=repos", "HOME=" + sw.unsandboxed["a"], "LANG=C.UTF-8", "PATH=/usr/bin:/bin"}
	if !slices.Equal(env, want) {
		t.Errorf("environment: got %q, want %q", env, want)
	}
	sw.mu.Lock()
	told := sw.told
	sw.mu.Unlock()
	if len(told) != 1 || told[0]["GITHUB_TOKEN"] != "github/work" || len(told[0]) != 1 {
		t.Errorf("OnSecrets: got %v, want GITHUB_TOKEN=github/work once", told)
	}

	// Whatever way the server echoes the secret, the client reads
	// [redacted].
	for _, as := range []string{"text", "base64", "hex", "error"} {
		r := c.tool("gh__getenv", map[string]any{"name": "GITHUB_TOKEN", "as": as})
		text := r.text()
		for _, form := range []string{envCanary, base64.StdEncoding.EncodeToString([]byte("value=" + envCanary)), hex.EncodeToString([]byte(envCanary))} {
			if strings.Contains(text, form) {
				t.Errorf("getenv as %s: got %q, want the secret redacted", as, text)
			}
		}
		if as != "base64" && !strings.Contains(text, "[redacted]") {
			t.Errorf("getenv as %s: got %q, want [redacted]", as, text)
		}
	}
	// Its dying words on stderr reach mcp list and the fault redacted.
	c.tool("gh__getenv", map[string]any{"name": "GITHUB_TOKEN", "as": "crash"})
	waitFor(t, 10*time.Second, "the crash reported", func() bool { return len(sw.faultsOf("a", "gh")) > 0 })
	for _, f := range sw.faultsOf("a", "gh") {
		if strings.Contains(f.Error, envCanary) || !strings.Contains(f.Error, "dying with [redacted]") {
			t.Errorf("fault: got %q, want the secret redacted", f.Error)
		}
	}
	if st := sw.status("a", "gh"); strings.Contains(st.Error, envCanary) {
		t.Errorf("status: got %q, want the secret redacted", st.Error)
	}
}

// TestUpstreamSecretFailsClosed: a secret that cannot be read, or whose
// record cannot be written, keeps the server from starting at all.
func TestUpstreamSecretFailsClosed(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	pidFile := filepath.Join(sw.homes["a"], "pid")
	sw.add(t, "gone", nil, map[string]string{"GITHUB_TOKEN": "github/removed"}, "-pid", pidFile)
	sw.ready(t, "a1")
	st := sw.status("a", "gone")
	if st.State != StateFailed || !strings.Contains(st.Error, "secret GITHUB_TOKEN (github/removed) cannot be read") {
		t.Errorf("a missing secret: got %q %q, want failed saying which secret", st.State, st.Error)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server ran without its secret (pid file: %v)", err)
	}
	if f := sw.faultsOf("a", "gone"); len(f) == 0 || f[0].Reason != FaultStart {
		t.Errorf("faults: got %+v, want a failed start reported", f)
	}

	sw.mu.Lock()
	sw.refuse = errors.New("audit log unwritable")
	sw.mu.Unlock()
	sw.add(t, "unaudited", nil, map[string]string{"GITHUB_TOKEN": "github/work"}, "-pid", pidFile)
	sw.ready(t, "a2")
	if st := sw.status("a", "unaudited"); st.State != StateFailed || !strings.Contains(st.Error, "audit record") {
		t.Errorf("an unwritable record: got %q %q, want failed", st.State, st.Error)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server ran without its record (pid file: %v)", err)
	}
}

// TestChangeServerRestartsIt: a running server whose variables change is
// stopped and started again with the new ones.
func TestChangeServerRestartsIt(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	sw.add(t, "gh", map[string]string{"MODE": "one"}, nil)
	c := sw.ready(t, "a1")
	if got := c.tool("gh__getenv", map[string]any{"name": "MODE"}).text(); got != "value: one" {
		t.Fatalf("before: got %q", got)
	}
	changed, err := sw.srv.ChangeServer("a", "gh", mcpserver.EnvChange{Env: map[string]string{"MODE": "two"}, Secrets: map[string]string{"GITHUB_TOKEN": "github/work"}}.Apply)
	if err != nil || changed.Env["MODE"] != "two" || changed.Secrets["GITHUB_TOKEN"] != "github/work" {
		t.Fatalf("ChangeServer: got %+v, %v", changed, err)
	}
	waitFor(t, 10*time.Second, "the server restarted", func() bool { return sw.status("a", "gh").State == StateRunning })
	if got := c.tool("gh__getenv", map[string]any{"name": "MODE"}).text(); got != "value: two" {
		t.Errorf("after: got %q, want value: two", got)
	}
	if got := c.tool("gh__getenv", map[string]any{"name": "GITHUB_TOKEN"}).text(); got != "value: [redacted]" {
		t.Errorf("the new secret: got %q, want it given and redacted", got)
	}
	stored, _ := sw.store.List("a")
	if len(stored) != 1 || stored[0].Secrets["GITHUB_TOKEN"] != "github/work" {
		t.Errorf("stored: got %+v", stored)
	}
	// The same reference again: restarted all the same (a key replaced in
	// the store reaches it).
	h, err := sw.srv.hub("a")
	if err != nil {
		t.Fatal(err)
	}
	u0 := h.upstream("gh")
	if _, err := sw.srv.ChangeServer("a", "gh", mcpserver.EnvChange{Secrets: map[string]string{"GITHUB_TOKEN": "github/work"}}.Apply); err != nil {
		t.Fatal(err)
	}
	if h.upstream("gh") == u0 {
		t.Error("a change to the same reference: got the same run, want the server restarted")
	}
	waitFor(t, 10*time.Second, "the server restarted again", func() bool { return sw.status("a", "gh").State == StateRunning })
	if _, err := sw.srv.ChangeServer("a", "gh", mcpserver.EnvChange{UnsetEnv: []string{"NOPE"}}.Apply); err == nil {
		t.Error("unsetting a variable the server does not have: got no error")
	}
}

// TestUpstreamEditedDefinitionCannotReplacePath: a stored file edited by
// hand to give a server PATH is refused at its start.
func TestUpstreamEditedDefinitionCannotReplacePath(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	pidFile := filepath.Join(sw.homes["a"], "pid")
	argv, _ := json.Marshal(upstreamCommand(t, "-pid", pidFile))
	doc := `{"version":1,"servers":[{"name":"edited","command":` + string(argv) + `,"no_sandbox":true,"env":{"PATH":"/tmp/evil"},"created":"2026-01-01T00:00:00Z","timeout_ns":10000000000}]}`
	path := sw.store.files.Path("a")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	sw.ready(t, "a1")
	if st := sw.status("a", "edited"); st.State != StateFailed || !strings.Contains(st.Error, "PATH is set by Ringlet") {
		t.Errorf("an edited PATH: got %q %q, want the start refused", st.State, st.Error)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server ran with the edited PATH (pid file: %v)", err)
	}
}

// TestServerRedact: what a profile's servers were given (a --secret
// value here) is redacted by Server.Redact for that profile, in its
// encoded forms too, and not for another profile.
func TestServerRedact(t *testing.T) {
	t.Parallel()
	sw := newSecretWorld(t)
	sw.add(t, "gh", nil, map[string]string{"GITHUB_TOKEN": "github/work"})
	if got := sw.srv.Redact("a", "x "+envCanary); got != "x "+envCanary {
		t.Fatalf("before the server started: got %q, want the text as it is (nothing given yet)", got)
	}
	sw.ready(t, "a1")
	for _, in := range []string{"x " + envCanary + " y", "x " + hex.EncodeToString([]byte(envCanary)) + " y", "x%20" + envCanary + "%20y"} {
		if got := sw.srv.Redact("a", in); strings.Contains(got, envCanary) || strings.Contains(got, hex.EncodeToString([]byte(envCanary))) || !strings.Contains(got, "[redacted]") {
			t.Errorf("Redact(a, %q): got %q, want the secret redacted", in, got)
		}
	}
	if got := sw.srv.Redact("b", "x "+envCanary); got != "x "+envCanary {
		t.Errorf("Redact(b): got %q, want another profile's text untouched", got)
	}
}
