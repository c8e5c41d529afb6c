package test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMCPUpstreamHeaderSecrets: an HTTP MCP server that takes its API
// key in a header (mcp add --url --header-secret X-API-Key=..., or
// 'Authorization=Token ...') gets the stored key, and echoes it back
// everywhere it can. The key reaches the server (its echo comes back
// redacted) and nothing else: not the agent's client, mcp list or show
// (text or JSON), the daemon's log, the audit database (which names the
// header and the reference), Ringlet's files or any command line.
// Reserved headers, a header value that would split the request and
// Authorization beside --credential are refused in one line; 'mcp set'
// changes the headers, audited.
func TestMCPUpstreamHeaderSecrets(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	canary := newCanary(t, "mcphdr")
	if _, stderr, code := e.RunInput(canary+"\n", "keychain", "set", "mcp", "search"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := e.RunInput("sk-other-team-key\n", "keychain", "set", "docs", "team"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	base := startHostileMCP(t, bin)
	mustRun(t, e, "mcp", "add", "work", "docs", "--url", base+"/mcp", "--header-secret", "x-api-key=search", "--header", "X-Team=infra", "--timeout", "10s")
	mustRun(t, e, "mcp", "add", "work", "tok", "--url", base+"/mcp", "--header-secret", "Authorization=Token mcp/search", "--timeout", "10s")

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", base + "/mcp", "--header", "Host=evil"}, "Host is set by"},
		{[]string{"--url", base + "/mcp", "--header", "Mcp-Session-Id=x"}, "Mcp-Session-Id is set by"},
		{[]string{"--url", base + "/mcp", "--header", "Transfer-Encoding=chunked"}, "Transfer-Encoding is set by"},
		{[]string{"--url", base + "/mcp", "--header", "X-A=a\r\nHost: evil"}, "control character"},
		{[]string{"--url", base + "/mcp", "--credential", "docs/team", "--header-secret", "Authorization=mcp/search"}, "not both"},
		{[]string{"--url", base + "/mcp", "--header-secret", "X-Key=mcp/nobody"}, "no key mcp/nobody in the credential store"},
		{[]string{"--url", base + "/mcp", "--header-secret", "Authorization=Token {secret}"}, "invalid secret reference"},
		{[]string{"--header", "X-A=1", "--", bin}, "for HTTP servers"},
	} {
		args := append([]string{"mcp", "add", "work", "bad"}, bad.args...)
		if _, stderr, code := e.Run(args...); code == 0 || !strings.Contains(stderr, bad.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("mcp add %q: exit %d, stderr %q; want refused in one line saying %q", bad.args, code, stderr, bad.want)
		}
	}

	mask := func(s string) string { return strings.ReplaceAll(s, canary, "<KEY>") }
	c := &mcpHTTP{t: t, url: d.URL + "/mcp", tok: mcpSessionToken(t, e, "work")}
	c.post(stdioInit)
	c.post(stdioInitialized)
	if list := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); !strings.Contains(list, "docs__leak") || !strings.Contains(list, "tok__leak") ||
		!strings.Contains(list, "Sends [redacted] along.") {
		t.Fatalf("tools/list: got %s, want both servers' tools, the key redacted from a description", mask(list))
	}
	id := 3
	for _, server := range []string{"docs", "tok"} {
		for _, call := range []struct{ tool, meta, want string }{
			{"leak", "", "the key is [redacted], escaped [redacted]"},
			{"leak_error", "", "no access for [redacted]"},
			{"leak_progress", `,"_meta":{"progressToken":"p"}`, "step 1 with [redacted]"},
		} {
			body := c.post(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + server + "__" + call.tool + `","arguments":{}` + call.meta + `}}`)
			id++
			if !strings.Contains(body, call.want) {
				t.Errorf("%s__%s: got %s, want %q (the key sent in the header, and redacted)", server, call.tool, mask(body), call.want)
			}
		}
	}

	// mcp list and show, text and JSON: the header's name and reference.
	for _, args := range [][]string{{"mcp", "list", "work"}, {"mcp", "list", "work", "--json"}, {"mcp", "show", "work", "docs"}, {"mcp", "show", "work", "docs", "--json"}} {
		out := mustRun(t, e, args...)
		assertNoLeak(t, strings.Join(args, " "), []byte(out), canary)
		if !strings.Contains(out, "X-Api-Key") || !strings.Contains(out, "mcp/search") || !strings.Contains(out, "X-Team") {
			t.Errorf("%v: got %q, want the headers' names and the secret's reference", args, mask(out))
		}
	}
	if out := mustRun(t, e, "__complete", "mcp", "set", "work", "docs", "--unset-header-secret", ""); !strings.Contains(out, "X-Api-Key") {
		t.Errorf("completion of --unset-header-secret: got %q, want X-Api-Key", out)
	}
	if out := mustRun(t, e, "__complete", "mcp", "add", "work", "x", "--header-secret", "X-Key=mcp/se"); !strings.Contains(out, "X-Key=mcp/search") {
		t.Errorf("completion of --header-secret: got %q, want the stored key", out)
	}
	if out := mustRun(t, e, "__complete", "mcp", "add", "work", "x", "--header-secret", "Authorization=Token mcp/"); !strings.Contains(out, "Authorization=Token mcp/search") {
		t.Errorf("completion of --header-secret after a scheme: got %q, want the stored key after it", out)
	}

	// mcp set: the headers change, the server is connected again, audited.
	out := mustRun(t, e, "mcp", "set", "work", "docs", "--unset-header", "x-team", "--header", "X-Debug=1")
	if !strings.Contains(out, "connected again") || !strings.Contains(out, "X-Debug") || strings.Contains(out, "X-Team") {
		t.Errorf("mcp set: got %q, want the new headers", mask(out))
	}
	if _, stderr, code := e.Run("mcp", "set", "work", "docs", "--header", "Content-Length=1"); code == 0 || !strings.Contains(stderr, "Content-Length is set by") {
		t.Errorf("mcp set --header Content-Length: exit %d, stderr %q; want refused", code, stderr)
	}
	if !waitFor(15*time.Second, func() bool {
		return strings.Contains(c.post(`{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"docs__leak","arguments":{}}}`), "the key is [redacted]")
	}) {
		t.Error("after mcp set: docs does not get its key")
	}
	updates := auditRecords(t, e, "mcp.update")
	if len(updates) != 1 || !strings.Contains(fmt.Sprint(updates[0].Detail["set_headers"]), "X-Debug") {
		t.Errorf("mcp.update records: got %+v, want the one mcp set naming X-Debug", updates)
	}

	// The audit log names each header secret sent, by header and reference.
	given := auditRecords(t, e, "mcp.secrets")
	for _, want := range []struct{ server, header, ref string }{{"docs", "X-Api-Key", "mcp/search"}, {"tok", "Authorization", "Token mcp/search"}} {
		if !slices.ContainsFunc(given, func(r struct {
			Kind, Profile, Target, Decision string
			Detail                          map[string]any
		}) bool {
			h, _ := r.Detail["headers"].(map[string]any)
			return r.Target == want.server && h[want.header] == want.ref
		}) {
			t.Errorf("mcp.secrets records: got %+v, want %s's %s=%s", given, want.server, want.header, want.ref)
		}
	}

	// Nothing Ringlet wrote holds the key, but the credential store.
	logs, _ := os.ReadFile(e.LogFile())
	assertNoLeak(t, "the daemon's log", append(logs, d.Stderr()...), canary)
	assertNoLeak(t, "the MCP client's answers", c.seen.Bytes(), canary)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), canary)
	_ = filepath.WalkDir(e.Root, func(p string, de fs.DirEntry, err error) error { // an unreadable entry is skipped: the daemon wrote none
		if err != nil || de.IsDir() || !de.Type().IsRegular() || de.Name() == "credentials.toml" {
			return nil
		}
		data, _ := os.ReadFile(p)
		assertNoLeak(t, p, data, canary)
		return nil
	})
	entries, _ := os.ReadDir("/proc")
	for _, de := range entries {
		if _, err := strconv.Atoi(de.Name()); err != nil {
			continue
		}
		if cmdline, _ := os.ReadFile("/proc/" + de.Name() + "/cmdline"); strings.Contains(string(cmdline), canary) {
			t.Errorf("process %s has the key on its command line", de.Name())
		}
	}
	e.AssertNoSecret(canary, e.Token())
}
