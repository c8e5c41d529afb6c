package test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/neullabs/ringlet/test/fakeprovider"
	"github.com/neullabs/ringlet/test/secretservice"
)

// TestCommandWords: --command is split and unquoted the way sh does it,
// so 'sh -c "echo hi there"' runs a shell with one script; what a shell
// would expand, run or reject is refused with the reason before anything
// is created or started.
func TestCommandWords(t *testing.T) {
	t.Parallel()
	requireSandbox(t)

	// Refused before the daemon is even asked: nothing starts. (Were one
	// started, it would be on a port of the test's, and stopped.)
	e := newEnv(t)
	mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	t.Cleanup(func() { e.exec("daemon", "stop") })
	for _, c := range []struct{ command, want string }{
		{`sh -c "echo hi`, "without closing quote"},
		{`python $HOME/agent.py`, "$VARIABLE"},
		{"python `which agent`", "$(command) or `command`"},
		{`python *.py`, "glob"},
		{`python agent.py | tee log`, "not a simple command"},
		{`python agent.py > log`, "redirections"},
		{``, "empty"},
	} {
		stdout, stderr, code := e.Run("profiles", "create", "generic", "bad", "--provider", "anthropic", "--skip-key", "--command", c.command)
		checkOneLineError(t, stdout, stderr, code, []int{2}, "--command", c.want)
	}
	if _, err := os.Stat(e.StateFile()); !os.IsNotExist(err) {
		t.Errorf("daemon state after refused commands: got %v, want no daemon started", err)
	}

	key := proxyCanary("words")
	fake := fakeprovider.New(key)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	ws := e.Root + "/ws"
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput(key, "profiles", "create", "generic", "words", "--provider", "fake", "--workspace", ws,
		"--command", `sh -c "echo hi there from \"\$0\"" 'the agent'`); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	var v struct{ Command []string }
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "inspect", "words", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if want := []string{"sh", "-c", `echo hi there from "$0"`, "the agent"}; !slices.Equal(v.Command, want) {
		t.Errorf("profile command: got %q, want %q", v.Command, want)
	}
	// The text view quotes it so that it could be pasted back.
	if text := mustRun(t, e, "profiles", "inspect", "words"); !strings.Contains(text, `sh -c 'echo hi there from "$0"' 'the agent'`) {
		t.Errorf("profiles inspect words: got %q, want the command quoted as sh would read it", text)
	}
	// The shell in the sandbox gets its script as one argument.
	if out := mustRun(t, e, "profiles", "run", "words"); strings.TrimSpace(out) != "hi there from the agent" {
		t.Errorf("profiles run words: got %q, want %q", out, "hi there from the agent")
	}
}

// TestProvidersAddReplace: adding a provider whose id is taken (the
// built-in anthropic here) is refused with what it would replace, unless
// --replace says so; then the output and the audit log say what was
// replaced.
func TestProvidersAddReplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	builtin := func() map[string]any {
		var p map[string]any
		if err := json.Unmarshal([]byte(mustRun(t, e, "providers", "inspect", "anthropic", "--json")), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := builtin()
	url, _ := before["base_url"].(string)
	if before["builtin"] != true || url == "" {
		t.Fatalf("providers inspect anthropic: got %v, want the built-in provider", before)
	}

	add := []string{"providers", "add", "anthropic", "--base-url", "https://llm-gw.example.com", "--format", "anthropic", "--auth", "x-api-key"}
	stdout, stderr, code := e.Run(add...)
	checkOneLineError(t, stdout, stderr, code, []int{1}, "provider anthropic already exists", "built-in", url, "--replace")
	if after := builtin(); after["base_url"] != url || after["builtin"] != true {
		t.Errorf("after a refused add: got %v, want the built-in unchanged", after)
	}

	stdout = mustRun(t, e, append(add, "--replace")...)
	for _, want := range []string{"replaced the built-in provider anthropic", url, "https://llm-gw.example.com", "providers.toml"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("providers add --replace: got %q, want it to contain %q", stdout, want)
		}
	}
	if after := builtin(); after["base_url"] != "https://llm-gw.example.com" || after["builtin"] != false {
		t.Errorf("after add --replace: got %v, want the new base URL from providers.toml", after)
	}
	// The audit log keeps what was replaced.
	var page struct {
		Records []struct {
			Target string         `json:"target"`
			Detail map[string]any `json:"detail"`
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--json", "--kind", "provider.add")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 {
		t.Fatalf("provider.add records: got %d, want 1 (the refused add is not one)", len(page.Records))
	}
	if r, _ := page.Records[0].Detail["replaced"].(map[string]any); r["base_url"] != url || r["builtin"] != true {
		t.Errorf("provider.add record: got detail %v, want replaced: the built-in at %s", page.Records[0].Detail, url)
	}

	// Once added, the id is taken by that provider too.
	stdout, stderr, code = e.Run("providers", "add", "anthropic", "--base-url", "https://other.example.com", "--format", "anthropic", "--auth", "x-api-key")
	checkOneLineError(t, stdout, stderr, code, []int{1}, "already exists", "providers.toml", "https://llm-gw.example.com")
}

// TestKeychainListUnavailableOnce: keys in the keyring, listed by a
// daemon that cannot reach D-Bus, are each shown as unavailable, and the
// reason, the same for all of them, is said once below the table.
func TestKeychainListUnavailableOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	noBus := []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(e.Root, "no-bus")}
	// First run without D-Bus: the audit log's key goes to the file, so
	// that the daemon can start without D-Bus again.
	e.ExtraEnv = noBus
	d := e.StartDaemon()
	d.Signal(syscall.SIGTERM)
	d.Wait()
	// Then the keys go to the keyring.
	e.ExtraEnv = []string{"DBUS_SESSION_BUS_ADDRESS=" + secretservice.Start(t)}
	d = e.StartDaemon()
	for _, alias := range []string{"one", "two", "three"} {
		if _, stderr, code := e.RunInput(proxyCanary(alias), "keychain", "set", "anthropic", alias); code != 0 || !strings.Contains(stderr, "keyring") {
			t.Fatalf("keychain set anthropic %s: exit %d, stderr %q; want it stored in the keyring", alias, code, stderr)
		}
	}
	d.Signal(syscall.SIGTERM)
	d.Wait()

	e.ExtraEnv = noBus
	e.StartDaemon()
	var keys []keychainEntry
	for _, en := range listJSON(t, e) {
		if en.Provider == "anthropic" {
			keys = append(keys, en)
		}
	}
	if len(keys) != 3 {
		t.Fatalf("keychain list --json: got %d anthropic keys, want 3: %+v", len(keys), keys)
	}
	reason := keys[0].Detail
	for _, en := range keys {
		if en.Status != "unavailable" || !strings.Contains(en.Detail, "D-Bus") || en.Detail != reason {
			t.Errorf("keychain list --json: got %+v, want each unavailable with the same reason about D-Bus", en)
		}
	}
	out := mustRun(t, e, "keychain", "list")
	if n := strings.Count(out, reason); n != 1 {
		t.Errorf("keychain list: the reason is said %d times, want once; got\n%s", n, out)
	}
	if !strings.Contains(out, "unavailable (3 keys in the keyring backend): "+reason) {
		t.Errorf("keychain list: got\n%s\nwant the reason once, for the 3 keys in the keyring", out)
	}
	rows := 0
	for _, l := range lines(out) {
		if strings.HasPrefix(l, "anthropic ") {
			rows++
			if f := strings.Fields(l); len(f) != 8 || f[3] != "unavailable" {
				t.Errorf("keychain list row %q: want provider, alias, backend, unavailable and two dates", l)
			}
		}
	}
	if rows != 3 {
		t.Errorf("keychain list: got %d rows of anthropic keys, want 3; output\n%s", rows, out)
	}
}

// TestCompletionOfArguments drives cobra's __complete as a shell does on
// TAB: fixed values (--network), the catalogs (agents, providers), and
// what only the daemon knows (sessions, terminals, hooks, MCP servers,
// stored keys), which is asked of a running daemon only: with none
// running, completion finishes, offers none of them, and starts nothing.
func TestCompletionOfArguments(t *testing.T) {
	t.Parallel()
	requireSandbox(t)
	e := newEnv(t)
	ws := filepath.Join(e.Root, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	complete := func(args ...string) []string {
		t.Helper()
		out := mustRun(t, e, append([]string{"__complete"}, args...)...)
		var names []string
		for _, l := range lines(out) {
			if !strings.HasPrefix(l, ":") && l != "" {
				name, _, _ := strings.Cut(l, "\t")
				names = append(names, name)
			}
		}
		return names
	}
	want := func(args []string, wantNames ...string) {
		t.Helper()
		got := complete(args...)
		for _, w := range wantNames {
			if !slices.Contains(got, w) {
				t.Errorf("__complete %q: got %q, want %q among them", args, got, w)
			}
		}
	}

	want([]string{"profiles", "create", "--network", ""}, "provider", "none", "host")
	want([]string{"profiles", "set", "x", "--network", ""}, "provider", "none", "host")
	want([]string{"mcp", "add", "x", "y", "--network", ""}, "none", "host")
	want([]string{"profiles", "create", ""}, "claude", "codex", "generic")
	if got := complete("profiles", "create", "generic", ""); len(got) != 0 {
		t.Errorf("__complete profiles create generic '': got %q, want nothing for a new alias", got)
	}
	want([]string{"keychain", "set", ""}, "anthropic", "openai")

	d := e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput(proxyCanary("complete"), "profiles", "create", "generic", "work", "--provider", "local", "--workspace", ws, "--command", "/bin/sh"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	var sess struct{ ID string }
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &sess); err != nil || sess.ID == "" {
		t.Fatalf("profiles env --json: %v", err)
	}
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--shell", "true")
	var hooks []struct{ ID string }
	if err := json.Unmarshal([]byte(mustRun(t, e, "hooks", "list", "work", "--json")), &hooks); err != nil || len(hooks) != 1 {
		t.Fatalf("hooks list --json: %d hooks, %v", len(hooks), err)
	}
	mustRun(t, e, "mcp", "add", "work", "files", "--", "/bin/true")
	remote := mustRun(t, e, "profiles", "run", "work", "--remote", "--", "-c", "exec sleep 1000")
	term := regexp.MustCompile(`session (s_[0-9a-f]+)`).FindStringSubmatch(remote)
	if term == nil {
		t.Fatalf("profiles run --remote: got %q, want its session", remote)
	}
	t.Cleanup(func() { e.exec("terminal", "kill", term[1]) })

	want([]string{"sessions", "revoke", ""}, sess.ID)
	want([]string{"sessions", "inspect", "s_"}, sess.ID)
	want([]string{"terminal", "attach", ""}, term[1])
	want([]string{"terminal", "kill", ""}, term[1])
	want([]string{"hooks", "remove", ""}, "work")
	want([]string{"hooks", "remove", "work", ""}, hooks[0].ID)
	want([]string{"mcp", "remove", "work", ""}, "files")
	want([]string{"mcp", "approve", "work", "f"}, "files")
	want([]string{"keychain", "remove", ""}, "local")
	want([]string{"keychain", "remove", "local", ""}, "work")
	want([]string{"keychain", "set", "local", ""}, "work")
	want([]string{"mcp", "add", "work", "up", "--credential", ""}, "local/work")
	if got := complete("hooks", "remove", "work", hooks[0].ID, ""); len(got) != 0 {
		t.Errorf("__complete after the hook id: got %q, want nothing", got)
	}

	// No daemon: nothing from it, and none started.
	d.Signal(syscall.SIGTERM)
	d.Wait()
	for _, args := range [][]string{{"sessions", "revoke", ""}, {"hooks", "remove", "work", ""}, {"mcp", "remove", "work", ""}, {"keychain", "remove", ""}, {"terminal", "attach", ""}} {
		if got := complete(args...); len(got) != 0 {
			t.Errorf("__complete %q with no daemon: got %q, want nothing", args, got)
		}
	}
	want([]string{"hooks", "remove", ""}, "work") // from the profile files
	if st, err := os.ReadFile(e.StateFile()); err == nil && len(st) > 0 {
		if _, _, code := e.Run("daemon", "status"); code == 0 {
			t.Errorf("after completing with no daemon: a daemon runs (%s), want none started", st)
		}
	}
}
