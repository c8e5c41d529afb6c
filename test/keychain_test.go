package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/neullabs/ringlet/test/secretservice"
)

// newCanary returns a key that is unique to the test, shaped like a
// provider key, with characters that change under base64, hex and URL
// encoding, so that each encoded form differs from the raw one.
func newCanary(t *testing.T, tag string) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return "sk-canary-" + tag + "-" + hex.EncodeToString(b) + "+/=~"
}

// leakForms are the ways a key could be written out: raw, in the
// encodings a careless log line or response would use, and in part (the
// head or tail of its random core, as a "masked" print would show).
func leakForms(secret string) map[string]string {
	b := []byte(secret)
	h := hex.EncodeToString(b)
	forms := map[string]string{
		"raw":           secret,
		"base64":        base64.RawStdEncoding.EncodeToString(b),
		"base64url":     base64.RawURLEncoding.EncodeToString(b),
		"hex":           h,
		"HEX":           strings.ToUpper(h),
		"query-escaped": url.QueryEscape(secret),
		"path-escaped":  url.PathEscape(secret),
		"json-escaped":  strings.Trim(mustJSON(secret), `"`),
	}
	if m := canaryCore.FindString(secret); m != "" {
		forms["head"], forms["tail"] = m[:12], m[len(m)-12:]
	}
	return forms
}

// canaryCore is the random part of a newCanary key.
var canaryCore = regexp.MustCompile(`[0-9a-f]{32}`)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// leaks names the forms of secret that data contains. It never returns
// the secret itself, so a failure message cannot spread it.
func leaks(data []byte, secret string) []string {
	var found []string
	for name, form := range leakForms(secret) {
		if bytes.Contains(data, []byte(form)) {
			found = append(found, name)
		}
	}
	sort.Strings(found)
	return found
}

// assertNoLeak fails t if data holds any form of any of the secrets.
func assertNoLeak(t *testing.T, what string, data []byte, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if f := leaks(data, s); len(f) > 0 {
			t.Errorf("%s contains key #%d (forms %v), want no trace of it", what, i+1, f)
		}
	}
}

// httpLog keeps every response a test received, headers included, for
// the canary check.
type httpLog struct{ bytes.Buffer }

func (l *httpLog) add(method, path string, status int, h http.Header, body []byte) {
	fmt.Fprintf(l, "%s %s -> %d\n", method, path, status)
	h.Write(l)
	l.Write(body)
	l.WriteByte('\n')
}

// secretTool runs secret-tool against the private bus. Its output may
// hold the key, so it never goes to the transcript or the test log.
func secretTool(t *testing.T, bus string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := secretservice.RequireTool(t, "secret-tool")
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DBUS_SESSION_BUS_ADDRESS=" + bus}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("secret-tool %s: %v", args[0], err)
	}
	return out.String(), errb.String(), 0
}

// keychainEntry is one element of `keychain list --json` and of
// GET /api/keychain.
type keychainEntry struct {
	Provider string `json:"provider"`
	Alias    string `json:"alias"`
	Backend  string `json:"backend"`
	Status   string `json:"status"`
	Detail   string `json:"detail"`
}

func findEntry(entries []keychainEntry, provider, alias string) (keychainEntry, bool) {
	for _, e := range entries {
		if e.Provider == provider && e.Alias == alias {
			return e, true
		}
	}
	return keychainEntry{}, false
}

// listJSON runs `keychain list --json`.
func listJSON(t *testing.T, e *env) []keychainEntry {
	t.Helper()
	stdout, stderr, code := e.Run("keychain", "list", "--json")
	if code != 0 {
		t.Fatalf("keychain list --json: exit %d, want 0; stderr %q", code, stderr)
	}
	var entries []keychainEntry
	if err := json.Unmarshal([]byte(stdout), &entries); err != nil {
		t.Fatalf("keychain list --json: %v; got %q", err, stdout)
	}
	return entries
}

// TestKeychainCanary stores a unique key through every keychain command
// and endpoint, with a real Secret Service and with the file backend, at
// log level debug, and checks that the key shows up nowhere but where it
// is kept: no CLI output, daemon log, HTTP response, audit record or other
// file has it in any common encoding.
func TestKeychainCanary(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"keyring", "file"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testKeychainCanary(t, backend)
		})
	}
}

func testKeychainCanary(t *testing.T, backend string) {
	e := newEnv(t)
	var bus string
	if backend == "keyring" {
		bus = secretservice.Start(t)
		secretservice.RequireTool(t, "secret-tool")
		e.ExtraEnv = []string{"DBUS_SESSION_BUS_ADDRESS=" + bus}
	}
	cliKey, restKey := newCanary(t, "cli"), newCanary(t, "rest")
	keys := []string{cliKey, restKey}
	credFile := filepath.Join(e.ConfigDir(), "credentials.toml")
	var responses httpLog

	// stored checks where key must be, and that it is there only.
	stored := func(t *testing.T, where, key string) {
		t.Helper()
		fileData, fileErr := os.ReadFile(credFile)
		switch where {
		case "keyring":
			out, _, code := secretTool(t, bus, "lookup", "service", "ringlet", "username", "anthropic/canary")
			if code != 0 || strings.TrimSuffix(out, "\n") != key {
				t.Errorf("secret-tool lookup service ringlet username anthropic/canary: got exit %d and %d bytes that are not the key, want the key", code, len(out))
			}
			out, errOut, code := secretTool(t, bus, "search", "service", "ringlet", "username", "anthropic/canary")
			items := 0
			for _, l := range lines(out) {
				if strings.HasPrefix(l, "[") {
					items++
				}
			}
			all := out + errOut
			if code != 0 || items != 1 || !strings.Contains(all, "username = anthropic/canary") || !strings.Contains(all, "label = Password for 'anthropic/canary' on 'ringlet'") {
				t.Errorf("secret-tool search service ringlet username anthropic/canary: got exit %d and %d items, want one item labelled \"Password for 'anthropic/canary' on 'ringlet'\" with username anthropic/canary", code, items)
			}
			if fileErr == nil && len(leaks(fileData, key)) > 0 {
				t.Errorf("%s holds the key while it is in the keyring, want it only in the keyring", credFile)
			}
		case "file":
			if fileErr != nil || !bytes.Contains(fileData, []byte(key)) {
				t.Errorf("%s: got err %v or no key, want the key in it", credFile, fileErr)
			}
			fi, err := os.Lstat(credFile)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode of %s: got %v, want a regular 0600 file", credFile, fi.Mode())
			}
			if bus != "" {
				if _, _, code := secretTool(t, bus, "lookup", "service", "ringlet", "username", "anthropic/canary"); code == 0 {
					t.Error("secret-tool lookup: found the key in the keyring while it is in the file, want it only in the file")
				}
			}
		case "nowhere":
			if fileErr == nil && len(leaks(fileData, key)) > 0 {
				t.Errorf("%s holds a removed key, want it gone", credFile)
			}
			if bus != "" {
				if _, _, code := secretTool(t, bus, "lookup", "service", "ringlet", "username", "anthropic/canary"); code == 0 {
					t.Error("secret-tool lookup: found a removed key in the keyring, want it gone")
				}
			}
		}
	}
	// run runs ringlet with stdin and checks the exit code.
	run := func(t *testing.T, stdin string, wantCode int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := e.RunInput(stdin, args...)
		if code != wantCode {
			t.Errorf("ringlet %s: exit %d, want %d; stderr %q", strings.Join(args, " "), code, wantCode, stderr)
		}
		return stdout, stderr
	}

	if _, stderr, code := e.Run("config", "set", "daemon.log_level", "debug"); code != 0 {
		t.Fatalf("config set daemon.log_level debug: exit %d; stderr %q", code, stderr)
	}
	d := e.StartDaemon()
	tok := e.Token()
	// A plain GET of the event stream fails its WebSocket handshake, which
	// the daemon logs at debug level only: proof that debug is on.
	status, h, body := d.MustGet(t, "/api/events", tok, nil)
	responses.add("GET", "/api/events", status, h, body)
	if !waitFor(readyTimeout, func() bool { return strings.Contains(d.Stderr(), "level=DEBUG") }) {
		t.Errorf("daemon stderr: got %q, want debug lines", d.Stderr())
	}

	t.Run("set from a pipe", func(t *testing.T) {
		stdout, stderr := run(t, cliKey+"\n", 0, "keychain", "set", "anthropic", "canary")
		if want := "stored anthropic/canary in the " + backend + " backend"; !strings.Contains(stdout, want) {
			t.Errorf("keychain set: got stdout %q, want %q", stdout, want)
		}
		ls := lines(stderr)
		// The daemon runs, so the key goes through it, in its backend.
		want := []string{"ringlet: credentials: using the " + backend + " backend (through the running daemon)"}
		if len(ls) != 1 {
			t.Fatalf("keychain set stderr: got %q, want one line saying which backend it uses", stderr)
		}
		for _, w := range want {
			if !strings.Contains(ls[0], w) {
				t.Errorf("keychain set stderr: got %q, want it to contain %q", ls[0], w)
			}
		}
		stored(t, backend, cliKey)
		if backend == "keyring" {
			if _, err := os.Stat(credFile); err == nil {
				t.Errorf("%s exists with the keyring available, want no plain-text file", credFile)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		stdout, _ := run(t, "", 0, "keychain", "list")
		row := regexp.MustCompile(`(?m)^anthropic\s+canary\s+` + backend + `\s+ok\s`)
		if !row.MatchString(stdout) || !strings.HasPrefix(stdout, "PROVIDER") {
			t.Errorf("keychain list: got %q, want a table with the row anthropic canary %s ok", stdout, backend)
		}
		entries := listJSON(t, e)
		for _, want := range []keychainEntry{{Provider: "anthropic", Alias: "canary"}, {Provider: "ringlet", Alias: "audit-hmac"}} {
			got, ok := findEntry(entries, want.Provider, want.Alias)
			if !ok || got.Backend != backend || got.Status != "ok" {
				t.Errorf("keychain list --json %s/%s: got %+v (found %v), want backend %s status ok", want.Provider, want.Alias, got, ok, backend)
			}
		}
	})

	t.Run("set again", func(t *testing.T) {
		run(t, cliKey+"\n", 0, "keychain", "set", "anthropic", "canary")
		stored(t, backend, cliKey)
	})

	t.Run("migrate", func(t *testing.T) {
		if backend == "keyring" {
			stdout, _ := run(t, "", 0, "keychain", "migrate", "--to", "file")
			if !regexp.MustCompile(`(?m)^moved\s+anthropic/canary$`).MatchString(stdout) || !strings.Contains(stdout, "every key is now in the file backend") {
				t.Errorf("migrate --to file: got %q, want \"moved anthropic/canary\" and a summary", stdout)
			}
			stored(t, "file", cliKey)
			stdout, _ = run(t, "", 0, "keychain", "migrate", "--to", "keyring", "--json")
			var res []struct {
				Entry  keychainEntry `json:"entry"`
				Result string        `json:"result"`
			}
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("migrate --json: %v; got %q", err, stdout)
			}
			var moved bool
			for _, r := range res {
				moved = moved || (r.Entry.Provider == "anthropic" && r.Entry.Alias == "canary" && r.Result == "moved" && r.Entry.Backend == "keyring")
			}
			if !moved {
				t.Errorf("migrate --to keyring --json: got %q, want anthropic/canary moved to keyring", stdout)
			}
			stored(t, "keyring", cliKey)
			return
		}
		stdout, _ := run(t, "", 0, "keychain", "migrate", "--to", "file")
		if !regexp.MustCompile(`(?m)^already\s+anthropic/canary$`).MatchString(stdout) {
			t.Errorf("migrate --to file: got %q, want \"already anthropic/canary\"", stdout)
		}
		stdout, _ = run(t, "", 0, "keychain", "migrate", "--to", "file", "--json")
		if !strings.Contains(stdout, `"result": "already"`) {
			t.Errorf("migrate --to file --json: got %q, want results \"already\"", stdout)
		}
		// No keyring here: refused, and nothing moves.
		stdout, stderr, code := e.Run("keychain", "migrate", "--to", "keyring")
		checkOneLineError(t, stdout, stderr, code, []int{1}, "keyring is not available")
		stored(t, "file", cliKey)
	})

	t.Run("remove", func(t *testing.T) {
		stdout, _ := run(t, "", 0, "keychain", "remove", "anthropic", "canary")
		if want := "removed anthropic/canary from the " + backend + " backend"; !strings.Contains(stdout, want) {
			t.Errorf("keychain remove: got %q, want %q", stdout, want)
		}
		stored(t, "nowhere", cliKey)
		stdout, stderr, code := e.Run("keychain", "remove", "anthropic", "canary")
		checkOneLineError(t, stdout, stderr, code, []int{1}, "no credential anthropic/canary is stored")
	})

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			name, stdin string
			args        []string
			code        int
			want        string
		}{
			{"invalid name", cliKey + "\n", []string{"keychain", "set", "Anthropic", "canary"}, 2, "invalid provider name"},
			{"empty key", "\n", []string{"keychain", "set", "anthropic", "canary"}, 1, "the key is empty"},
			{"key with a space", cliKey + " " + cliKey + "\n", []string{"keychain", "set", "anthropic", "canary"}, 1, "whitespace"},
		} {
			t.Run(c.name, func(t *testing.T) {
				stdout, stderr, code := e.RunInput(c.stdin, c.args...)
				checkOneLineError(t, stdout, stderr, code, []int{c.code}, c.want)
			})
		}
		if _, ok := findEntry(listJSON(t, e), "anthropic", "canary"); ok {
			t.Error("keychain list after refused sets: got anthropic/canary, want nothing stored")
		}
		stored(t, "nowhere", cliKey)
	})

	t.Run("REST", func(t *testing.T) {
		do := func(t *testing.T, method, path, body string, wantStatus int, wantCode string) []byte {
			t.Helper()
			status, h, resp := d.MustDo(t, method, path, tok, body)
			responses.add(method, path, status, h, resp)
			if status != wantStatus {
				t.Errorf("%s %s: got %d, want %d; body %s", method, path, status, wantStatus, resp)
			}
			if wantCode != "" {
				if eb := decodeError(t, resp); eb.Error.Code != wantCode {
					t.Errorf("%s %s: got error code %q, want %q", method, path, eb.Error.Code, wantCode)
				}
			}
			return resp
		}
		const p = "/api/keychain/anthropic/canary"
		body := do(t, "PUT", p, mustJSON(map[string]string{"key": restKey}), 200, "")
		var ent keychainEntry
		if err := json.Unmarshal(body, &ent); err != nil || ent.Provider != "anthropic" || ent.Alias != "canary" || ent.Backend != backend {
			t.Errorf("PUT %s: got %s (%v), want the entry anthropic/canary in %s", p, body, err, backend)
		}
		stored(t, backend, restKey)

		var list struct {
			Entries []keychainEntry `json:"entries"`
		}
		if err := json.Unmarshal(do(t, "GET", "/api/keychain", "", 200, ""), &list); err != nil {
			t.Fatal(err)
		}
		if got, ok := findEntry(list.Entries, "anthropic", "canary"); !ok || got.Backend != backend || got.Status != "ok" {
			t.Errorf("GET /api/keychain: got %+v (found %v), want anthropic/canary in %s, ok", got, ok, backend)
		}

		q := mustJSON(restKey)
		for _, c := range []struct{ name, body, code string }{
			{"unquoted", `{"key": ` + strings.Trim(q, `"`) + `}`, "bad_request"},
			{"truncated", `{"key": ` + q, "bad_request"},
			{"unknown field", `{"key": ` + q + `, "note": ` + q + `}`, "bad_request"},
			{"wrong type", `{"key": [` + q + `]}`, "bad_request"},
			{"trailing data", `{"key": ` + q + `} ` + q, "bad_request"},
			{"key with a space", `{"key": "` + restKey + ` x"}`, "invalid_key"},
		} {
			t.Run(c.name, func(t *testing.T) { do(t, "PUT", p, c.body, 400, c.code) })
		}
		stored(t, backend, restKey) // untouched by the refused PUTs

		do(t, "DELETE", p, "", 200, "")
		stored(t, "nowhere", restKey)
		do(t, "DELETE", p, "", 404, "not_found")
		do(t, "PUT", "/api/keychain/Anthropic/canary", mustJSON(map[string]string{"key": restKey}), 400, "invalid_name")
		do(t, "GET", "/api/audit?kind=credential.set,credential.remove", "", 200, "")
	})

	t.Run("audit", func(t *testing.T) {
		stdout, _ := run(t, "", 0, "audit", "query", "--json")
		recs, _ := decodeRecords(t, stdout)
		actors := map[string]int{}
		for _, r := range recs {
			if r.Kind == "credential.set" && r.Target == "anthropic/canary" {
				actors[r.Actor]++
			}
		}
		// With the daemon running, the CLI stores keys through it (so that
		// it can end the sessions holding an old key): both are the admin
		// token's. Without a daemon the CLI records as cli (TestKeychainWithoutDaemon).
		if actors["admin"] < 2 || len(actors) != 1 {
			t.Errorf("audit query --json: got credential.set of anthropic/canary by %v, want all by admin, from the CLI and from REST", actors)
		}
		stdout, _ = run(t, "", 0, "audit", "query", "--csv")
		if !strings.HasPrefix(stdout, "seq,time,kind,") || !strings.Contains(stdout, "anthropic/canary") {
			t.Errorf("audit query --csv: got %.300q, want a header and the credential records", stdout)
		}
	})

	// While the daemon runs, its records are in the write-ahead log.
	assertFilesClean := func(t *testing.T, wantWAL bool) {
		t.Helper()
		db := filepath.Join(e.StateDir(), "audit.db")
		for _, p := range []string{db, db + "-wal"} {
			data, err := os.ReadFile(p)
			if err != nil && (p == db || wantWAL) {
				t.Errorf("read %s: %v", p, err)
			}
			assertNoLeak(t, p, data, keys...)
		}
		// Nothing else on disk has the key either, besides the one file
		// that is meant to (and by now holds nothing).
		err := filepath.WalkDir(e.Root, func(path string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			assertNoLeak(t, path, data, keys...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	assertFilesClean(t, true)

	d.Signal(syscall.SIGTERM)
	if code := d.Wait(); code != 0 {
		t.Errorf("daemon exit code after SIGTERM: got %d, want 0", code)
	}
	assertFilesClean(t, false)

	// The daemon logged at debug level, and nothing it or the CLI printed
	// has the key.
	if !strings.Contains(d.Stderr(), "credential stored") {
		t.Errorf("daemon log: got no \"credential stored\" line, want the PUT logged by name")
	}
	var out bytes.Buffer
	out.WriteString(e.transcript.String())
	for _, dd := range e.daemons {
		out.WriteString(dd.stdout.String() + dd.stderr.String())
	}
	assertNoLeak(t, "the output of ringlet", out.Bytes(), keys...)
	assertNoLeak(t, "the HTTP responses", responses.Bytes(), keys...)
	e.AssertNoSecret(tok)
}

// TestKeychainWithoutDaemon: with no daemon running, keychain set and
// remove start one in the background, as other commands do: the daemon is
// the only writer of the credential store and of the audit log, which
// records both changes with the admin actor, as it does for keys changed
// through a daemon that was running.
func TestKeychainWithoutDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustRun(t, e, "config", "set", "credentials.backend", "file")
	// The background daemon uses daemon.listen: never the default port.
	mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	t.Cleanup(func() { stopBackgroundDaemon(t, e) })
	key := newCanary(t, "nodaemon")
	stdout, stderr, code := e.RunInput(key+"\n", "keychain", "set", "anthropic", "nodaemon")
	if code != 0 || !strings.Contains(stdout, "stored anthropic/nodaemon in the file backend") {
		t.Fatalf("keychain set: exit %d, stdout %q, stderr %q; want it stored in the file backend", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "started the daemon in the background") {
		t.Errorf("keychain set without a daemon: stderr %q, want it to say it started the daemon", stderr)
	}
	if stdout, stderr, code := e.Run("keychain", "remove", "anthropic", "nodaemon"); code != 0 || !strings.Contains(stdout, "removed anthropic/nodaemon") {
		t.Fatalf("keychain remove: exit %d, stdout %q, stderr %q; want it removed", code, stdout, stderr)
	}
	if _, err := os.Stat(e.TokenFile()); err != nil {
		t.Errorf("token file: %v; want the daemon that keychain set started to have created it", err)
	}
	recs, _ := decodeRecords(t, mustRun(t, e, "audit", "query", "--kind", "credential.set,credential.remove", "--json"))
	var got []string
	for _, r := range recs {
		got = append(got, r.Kind+" "+r.Actor+" "+r.Target)
	}
	slices.Sort(got)
	if want := []string{"credential.remove admin anthropic/nodaemon", "credential.set admin anthropic/nodaemon"}; !slices.Equal(got, want) {
		t.Errorf("audit: got %q, want %q", got, want)
	}
}

// TestKeychainRefusesUnreachableDaemon: with a daemon running that the
// CLI cannot ask (here: a wrong RINGLET_TOKEN), keychain set and remove
// fail with one line rather than change the store behind its back.
func TestKeychainRefusesUnreachableDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustRun(t, e, "config", "set", "credentials.backend", "file")
	e.StartDaemon()
	key := newCanary(t, "stale")
	e.ExtraEnv = append(e.ExtraEnv, "RINGLET_TOKEN="+strings.Repeat("0", 64))
	stdout, stderr, code := e.RunInput(key+"\n", "keychain", "set", "anthropic", "stale")
	checkOneLineError(t, stdout, stderr, code, []int{1}, "not changed behind its back")
	stdout, stderr, code = e.Run("keychain", "remove", "anthropic", "stale")
	checkOneLineError(t, stdout, stderr, code, []int{1}, "not changed behind its back")
	e.ExtraEnv = e.ExtraEnv[:len(e.ExtraEnv)-1]
	if out := mustRun(t, e, "keychain", "list"); strings.Contains(out, "stale") {
		t.Errorf("keychain list: got %q, want no anthropic/stale stored", out)
	}
}
