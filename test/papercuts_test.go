package test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
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
