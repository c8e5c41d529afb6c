package test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMCPServerSecrets: a stdio server given a secret from the credential
// store (mcp add --secret) and a plain variable (--env), sandboxed and
// not, gets both in its environment and nowhere else: not on any command
// line of the host, not in Ringlet's files, logs or audit database, not in
// mcp list or show (text or JSON), and not in what the agent reads when
// the server echoes it in any encoding or dies saying it. 'mcp set'
// changes them and the running server restarts; a secret that is gone
// keeps its server from starting.
func TestMCPServerSecrets(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	canary := newCanary(t, "mcpenv")
	if _, stderr, code := e.RunInput(canary+"\n", "keychain", "set", "github", "work"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	mustRun(t, e, "mcp", "add", "work", "gh", "--env", "MODE=plain-one", "--secret", "GITHUB_TOKEN=github/work", "--", bin)
	mustRun(t, e, "mcp", "add", "work", "loose", "--no-sandbox", "--secret", "GITHUB_TOKEN=github/work", "--", bin)

	// A secret that is not stored is refused when added: one line.
	_, stderr, code := e.Run("mcp", "add", "work", "nokey", "--secret", "T=github/nobody", "--", bin)
	if code == 0 || !strings.Contains(stderr, "no key github/nobody in the credential store") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("mcp add with a missing secret: exit %d, stderr %q; want one line naming it", code, stderr)
	}
	for _, bad := range [][]string{{"--env", "PATH=/tmp"}, {"--secret", "HOME=github/work"}, {"--env", "A-B=1"}, {"--secret", "T=../x"}, {"--env", "NOEQUALS"}} {
		args := append(append([]string{"mcp", "add", "work", "bad"}, bad...), "--", bin)
		if _, stderr, code := e.Run(args...); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("mcp add %v: exit %d, stderr %q; want refused in one line", bad, code, stderr)
		}
	}

	var answers bytes.Buffer
	tok := mcpSessionToken(t, e, "work")
	call := func(server string, args map[string]string) string {
		t.Helper()
		got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + tok}, stdioInit, stdioInitialized, stdioCall(2, server+"__getenv", args))
		raw, _ := json.Marshal(got)
		answers.Write(raw)
		m := got["2"]
		if m.Error != nil {
			return "error: " + m.Error.Message
		}
		text, _ := callText(t, m)
		return text
	}
	if got := call("gh", map[string]string{"name": "MODE"}); got != "value: plain-one" {
		t.Errorf("getenv MODE: got %q, want the plain variable", got)
	}
	for _, server := range []string{"gh", "loose"} {
		for _, as := range []string{"text", "base64", "hex", "error"} {
			got := call(server, map[string]string{"name": "GITHUB_TOKEN", "as": as})
			if got == "unset" || (as != "base64" && !strings.Contains(got, "[redacted]")) {
				t.Errorf("%s: getenv GITHUB_TOKEN as %s: got %q, want the secret given and redacted", server, as, got)
			}
		}
		if got := call(server, map[string]string{"name": "PATH"}); !strings.HasPrefix(got, "value: /") {
			t.Errorf("%s: getenv PATH: got %q, want Ringlet's PATH", server, got)
		}
	}

	// The servers run: the secret is in their environment (the control)
	// and on no command line of the host.
	inEnviron := 0
	for _, pid := range markedProcesses(bin) {
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if bytes.Contains(env, []byte("GITHUB_TOKEN="+canary)) {
			inEnviron++
		}
	}
	if inEnviron < 2 {
		t.Errorf("processes with the secret in their environment: got %d, want both servers (the control)", inEnviron)
	}
	entries, _ := os.ReadDir("/proc")
	for _, de := range entries {
		if _, err := strconv.Atoi(de.Name()); err != nil {
			continue
		}
		if cmdline, _ := os.ReadFile("/proc/" + de.Name() + "/cmdline"); bytes.Contains(cmdline, []byte(canary)) {
			t.Errorf("process %s has the secret on its command line: %q", de.Name(), strings.ReplaceAll(string(cmdline), canary, "<SECRET>"))
		}
	}

	// mcp list and show, text and JSON: the names and the reference.
	for _, args := range [][]string{{"mcp", "list", "work"}, {"mcp", "list", "work", "--json"}, {"mcp", "show", "work", "gh"}, {"mcp", "show", "work", "gh", "--json"}} {
		out := mustRun(t, e, args...)
		assertNoLeak(t, strings.Join(args, " "), []byte(out), canary)
		if !strings.Contains(out, "GITHUB_TOKEN") || !strings.Contains(out, "github/work") || !strings.Contains(out, "MODE") {
			t.Errorf("%v: got %q, want the variables' names and the secret's reference", args, out)
		}
	}
	if out := mustRun(t, e, "__complete", "mcp", "set", "work", "gh", "--secret", "GITHUB_TOKEN=git"); !strings.Contains(out, "GITHUB_TOKEN=github/work") {
		t.Errorf("completion of --secret: got %q, want the stored key", out)
	}
	if out := mustRun(t, e, "__complete", "mcp", "set", "work", "gh", "--unset-env", ""); !strings.Contains(out, "MODE") {
		t.Errorf("completion of --unset-env: got %q, want MODE", out)
	}

	// Its dying words reach mcp list and the audit log redacted.
	call("gh", map[string]string{"name": "GITHUB_TOKEN", "as": "crash"})
	if !waitFor(15*time.Second, func() bool { return len(auditOf(t, e, "work", "mcp.server_restart")) > 0 }) {
		t.Error("the crash of gh was not audited")
	}

	// mcp set: the running server restarts with its new environment.
	out := mustRun(t, e, "mcp", "set", "work", "gh", "--env", "MODE=plain-two")
	if !strings.Contains(out, "restarts") {
		t.Errorf("mcp set: got %q", out)
	}
	if !waitFor(15*time.Second, func() bool { return call("gh", map[string]string{"name": "MODE"}) == "value: plain-two" }) {
		t.Error("after mcp set --env MODE=plain-two: the server does not see it")
	}
	mustRun(t, e, "mcp", "set", "work", "loose", "--unset-secret", "GITHUB_TOKEN")
	if got := call("loose", map[string]string{"name": "GITHUB_TOKEN"}); got != "unset" {
		t.Errorf("after --unset-secret: got %q, want the variable gone", got)
	}

	// A secret removed from the store: the server does not start.
	if _, stderr, code := e.RunInput(canary+"-temp\n", "keychain", "set", "github", "temp"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	pidFile := filepath.Join(e.DataHome, "ringlet", "profiles", "work", "home", "gone.pid")
	mustRun(t, e, "mcp", "add", "work", "gone", "--secret", "T=github/temp", "--", bin, "-pid", pidFile)
	mustRun(t, e, "keychain", "remove", "github", "temp")
	if got := call("gone", map[string]string{"name": "T"}); !strings.Contains(got, "not found") {
		t.Errorf("a server whose secret is gone: got %q, want no tools of it", got)
	}
	i := slices.IndexFunc(mcpServers(t, e, "work"), func(s mcpServerView) bool {
		return s.Name == "gone" && s.State == "failed" && strings.Contains(s.Error, "secret T (github/temp) cannot be read from the credential store")
	})
	if i < 0 {
		t.Errorf("mcp list: got %+v, want gone failed, saying which secret", mcpServers(t, e, "work"))
	}
	if _, err := os.Stat(pidFile); err == nil {
		t.Error("the server whose secret is gone ran")
	}
	starts := auditOf(t, e, "work", "mcp.server_restart")
	if !slices.ContainsFunc(starts, func(r sessionRecord) bool {
		return r.Target == "gone" && r.Detail["reason"] == "start" && strings.Contains(r.Detail["error"].(string), "secret T (github/temp)")
	}) {
		t.Errorf("audit: got %+v, want gone's refused start", starts)
	}

	// The audit log names each secret given, by name and reference.
	given := auditOf(t, e, "work", "mcp.secrets")
	if len(given) < 2 || !slices.ContainsFunc(given, func(r sessionRecord) bool {
		s, _ := r.Detail["secrets"].(map[string]any)
		return r.Target == "gh" && s["GITHUB_TOKEN"] == "github/work"
	}) {
		t.Errorf("mcp.secrets records: got %+v, want gh's GITHUB_TOKEN=github/work", given)
	}
	if len(auditOf(t, e, "work", "mcp.update")) != 2 {
		t.Error("mcp.update records: want one per mcp set")
	}

	// Nothing Ringlet wrote holds the secret, but the credential store.
	logs, _ := os.ReadFile(e.LogFile())
	assertNoLeak(t, "the daemon's log", append(logs, d.Stderr()...), canary)
	assertNoLeak(t, "the agent's MCP answers", answers.Bytes(), canary)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), canary)
	filepath.WalkDir(e.Root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !de.Type().IsRegular() || de.Name() == "credentials.toml" {
			return nil
		}
		data, _ := os.ReadFile(p)
		assertNoLeak(t, p, data, canary)
		return nil
	})
	e.AssertNoSecret(canary, e.Token())
}
