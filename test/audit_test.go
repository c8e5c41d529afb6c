package test

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ncruces/go-sqlite3"
)

// auditRec is one audit record as `audit query --json`, GET /api/audit
// and the event stream print it.
type auditRec struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	Actor    string          `json:"actor"`
	Target   string          `json:"target"`
	Decision string          `json:"decision"`
	Status   int64           `json:"status"`
	Detail   json.RawMessage `json:"detail"`
	Hash     string          `json:"hash"`
}

func (r auditRec) detail(t *testing.T) map[string]any {
	t.Helper()
	m := map[string]any{}
	if len(r.Detail) > 0 {
		if err := json.Unmarshal(r.Detail, &m); err != nil {
			t.Fatalf("record %d detail %s: %v", r.Seq, r.Detail, err)
		}
	}
	return m
}

// decodeRecords parses a page of records: {"records":[...],"next_cursor":...}.
func decodeRecords(t *testing.T, s string) (recs []auditRec, next string) {
	t.Helper()
	var page struct {
		Records    []auditRec `json:"records"`
		NextCursor *string    `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(s), &page); err != nil {
		t.Fatalf("audit records: %v; got %.500q", err, s)
	}
	if page.Records == nil {
		t.Fatalf("audit records: got %.500q, want a records array", s)
	}
	if page.NextCursor != nil {
		next = *page.NextCursor
	}
	return page.Records, next
}

// queryRecords runs `audit query --json` with args.
func queryRecords(t *testing.T, e *env, args ...string) (recs []auditRec, next string) {
	t.Helper()
	args = append([]string{"audit", "query", "--json"}, args...)
	stdout, stderr, code := e.Run(args...)
	if code != 0 {
		t.Fatalf("ringlet %s: exit %d, want 0; stderr %q", strings.Join(args, " "), code, stderr)
	}
	return decodeRecords(t, stdout)
}

// queryAll pages through `audit query --json` with args.
func queryAll(t *testing.T, e *env, limit int, args ...string) []auditRec {
	t.Helper()
	var all []auditRec
	cursor := ""
	for {
		a := append([]string{"--limit", strconv.Itoa(limit)}, args...)
		if cursor != "" {
			a = append(a, "--cursor", cursor)
		}
		recs, next := queryRecords(t, e, a...)
		if len(recs) > limit {
			t.Fatalf("audit query --limit %d: got %d records", limit, len(recs))
		}
		all = append(all, recs...)
		if next == "" {
			return all
		}
		if next == cursor {
			t.Fatalf("audit query: next_cursor %s repeats the cursor", next)
		}
		cursor = next
	}
}

// auditVerify runs `audit verify` and checks its exit code.
func auditVerify(t *testing.T, e *env, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	args = append([]string{"audit", "verify"}, args...)
	stdout, stderr, code := e.Run(args...)
	if code != wantCode {
		t.Fatalf("ringlet %s: exit %d, want %d; stdout %q stderr %q", strings.Join(args, " "), code, wantCode, stdout, stderr)
	}
	return stdout, stderr
}

// dbBytes is the raw content of an audit database and its write-ahead
// log, as an attacker reading the disk would see it.
func dbBytes(t *testing.T, db string) []byte {
	t.Helper()
	data, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(db + "-wal")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return append(data, wal...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// skipUnlessCI skips t with why, or fails it under CI=true, where every
// test must run.
func skipUnlessCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this test must run)", why)
	}
	t.Skip(why)
}

// TestAuditRecordsEveryKind produces each kind of record that exists
// today by its action and reads them back through the CLI and the API.
func TestAuditRecordsEveryKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	tok := e.Token()
	wrong := randomHex(32)
	restKey, cliKey := newCanary(t, "rest"), newCanary(t, "cli")

	for range 2 {
		if status, _, body := d.MustGet(t, "/api/status", wrong, nil); status != http.StatusUnauthorized {
			t.Fatalf("wrong token: got %d, want 401; body %s", status, body)
		}
	}
	if status, _, body := d.MustGet(t, "/api/status", tok, http.Header{"Host": {"evil.example"}}); status != http.StatusForbidden {
		t.Fatalf("Host evil.example: got %d, want 403; body %s", status, body)
	}
	if _, stderr, code := e.Run("daemon", "rotate-token"); code != 0 {
		t.Fatalf("daemon rotate-token: exit %d; stderr %q", code, stderr)
	}
	tok = e.Token()
	const restPath = "/api/keychain/anthropic/rest"
	if status, _, body := d.MustDo(t, "PUT", restPath, tok, mustJSON(map[string]string{"key": restKey})); status != http.StatusOK {
		t.Fatalf("PUT %s: got %d, want 200; body %s", restPath, status, body)
	}
	if status, _, body := d.MustDo(t, "DELETE", restPath, tok, ""); status != http.StatusOK {
		t.Fatalf("DELETE %s: got %d, want 200; body %s", restPath, status, body)
	}
	if _, stderr, code := e.RunInput(cliKey+"\n", "keychain", "set", "anthropic", "cli"); code != 0 {
		t.Fatalf("keychain set: exit %d; stderr %q", code, stderr)
	}
	if _, stderr, code := e.Run("keychain", "remove", "anthropic", "cli"); code != 0 {
		t.Fatalf("keychain remove: exit %d; stderr %q", code, stderr)
	}

	t.Run("GET /api/audit", func(t *testing.T) {
		get := func(query string) ([]auditRec, string) {
			t.Helper()
			status, _, body := d.MustGet(t, "/api/audit"+query, tok, nil)
			if status != http.StatusOK {
				t.Fatalf("GET /api/audit%s: got %d, want 200; body %s", query, status, body)
			}
			return decodeRecords(t, string(body))
		}
		recs, _ := get("?kind=credential.set,credential.remove")
		var got []string
		for _, r := range recs {
			got = append(got, r.Kind+" "+r.Actor+" "+r.Target)
		}
		want := []string{ // newest first
			"credential.remove admin anthropic/cli", "credential.set admin anthropic/cli", // through the running daemon
			"credential.remove admin anthropic/rest", "credential.set admin anthropic/rest",
		}
		if !slices.Equal(got, want) {
			t.Errorf("GET /api/audit?kind=credential.set,credential.remove: got %q, want %q", got, want)
		}
		recs, _ = get("?decision=deny&since=1h")
		if len(recs) != 3 {
			t.Errorf("GET /api/audit?decision=deny: got %d records, want the 3 refusals", len(recs))
		}
		first, next := get("?limit=2")
		if len(first) != 2 || next == "" {
			t.Fatalf("GET /api/audit?limit=2: got %d records and next_cursor %q, want 2 and a cursor", len(first), next)
		}
		second, _ := get("?limit=2&cursor=" + next)
		if len(second) != 2 || second[0].Seq != first[1].Seq-1 {
			t.Errorf("second page: got %d records from seq %d, want 2 from %d", len(second), second[0].Seq, first[1].Seq-1)
		}
		if status, _, body := d.MustGet(t, "/api/audit?kind=no.such", tok, nil); status != http.StatusBadRequest {
			t.Errorf("GET /api/audit?kind=no.such: got %d, want 400; body %s", status, body)
		}
	})

	if stdout, stderr, code := e.Run("daemon", "stop"); code != 0 {
		t.Fatalf("daemon stop: exit %d; stdout %q stderr %q", code, stdout, stderr)
	}
	if code := d.Wait(); code != 0 {
		t.Fatalf("daemon exit code after stop: got %d, want 0", code)
	}

	all, next := queryRecords(t, e, "--since", "1h")
	if next != "" {
		t.Errorf("audit query --since 1h: got next_cursor %q, want none", next)
	}
	type want struct {
		kind, actor, target, decision string
		status                        int64
	}
	wants := []want{
		{"daemon.start", "daemon", d.Addr, "allow", 0},
		{"auth.failure", "", "GET /api/status", "deny", 401},
		{"auth.failure", "", "GET /api/status", "deny", 401},
		{"auth.failure", "", "GET /api/status", "deny", 403},
		{"token.rotate", "admin", e.TokenFile(), "allow", 0},
		{"credential.set", "admin", "anthropic/rest", "allow", 0},
		{"credential.remove", "admin", "anthropic/rest", "allow", 0},
		// The CLI stores keys through a running daemon.
		{"credential.set", "admin", "anthropic/cli", "allow", 0},
		{"credential.remove", "admin", "anthropic/cli", "allow", 0},
		{"daemon.stop", "daemon", "", "allow", 0},
	}
	if len(all) != len(wants) {
		t.Fatalf("audit query --since 1h: got %d records %+v, want %d", len(all), all, len(wants))
	}
	slices.Reverse(all) // oldest first, like wants
	for i, w := range wants {
		r := all[i]
		got := want{r.Kind, r.Actor, r.Target, r.Decision, r.Status}
		if got != w || r.Seq != int64(i+1) {
			t.Errorf("record %d: got seq %d %+v, want seq %d %+v", i+1, r.Seq, got, i+1, w)
		}
	}
	d1, d2, d3 := all[1].detail(t), all[2].detail(t), all[3].detail(t)
	if h, _ := d1["token"].(string); !strings.HasPrefix(h, "hmac:") || d1["token"] != d2["token"] || d1["reason"] != "invalid" {
		t.Errorf("auth.failure details: got %v and %v, want reason invalid and the same hmac: token in both", d1, d2)
	}
	if d3["reason"] != "host" || d3["host"] != "evil.example" {
		t.Errorf("auth.failure detail for Host evil.example: got %v, want reason host and the host", d3)
	}
	if stop := all[len(all)-1].detail(t); stop["reason"] != "stop requested" {
		t.Errorf("daemon.stop detail: got %v, want reason \"stop requested\"", stop)
	}

	t.Run("filters", func(t *testing.T) {
		seqs := func(recs []auditRec) []int64 {
			var s []int64
			for _, r := range recs {
				s = append(s, r.Seq)
			}
			return s
		}
		for _, c := range []struct {
			args []string
			want []int64
		}{
			{[]string{"--kind", "auth.failure"}, []int64{4, 3, 2}},
			{[]string{"--kind", "token.rotate", "--kind", "daemon.stop"}, []int64{10, 5}},
			{[]string{"--kind", "credential.set,credential.remove", "--since", "1h"}, []int64{9, 8, 7, 6}},
			{[]string{"--decision", "deny"}, []int64{4, 3, 2}},
			{[]string{"--until", "1h"}, nil},
			{[]string{"--since", "2099-01-01"}, nil},
		} {
			recs, _ := queryRecords(t, e, c.args...)
			if got := seqs(recs); !slices.Equal(got, c.want) {
				t.Errorf("audit query %s: got records %v, want %v", strings.Join(c.args, " "), got, c.want)
			}
		}
		if got := seqs(queryAll(t, e, 3)); !slices.Equal(got, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}) {
			t.Errorf("pages of --limit 3 with --cursor: got %v, want every record once, newest first", got)
		}
	})

	t.Run("verify and CSV", func(t *testing.T) {
		stdout, _ := auditVerify(t, e, 0)
		if !strings.Contains(stdout, "is intact: 10 records") {
			t.Errorf("audit verify: got %q, want it to say intact with 10 records", stdout)
		}
		stdout, stderr, code := e.Run("audit", "query", "--csv")
		if code != 0 {
			t.Fatalf("audit query --csv: exit %d; stderr %q", code, stderr)
		}
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil {
			t.Fatalf("audit query --csv: %v", err)
		}
		if wantHdr := []string{"seq", "time", "kind", "profile", "session", "actor", "target", "decision", "status", "detail", "hash"}; len(rows) != 11 || !slices.Equal(rows[0], wantHdr) {
			t.Errorf("audit query --csv: got %d rows starting %q, want the header %q and 10 records", len(rows), rows[0], wantHdr)
		}
	})

	// Neither the wrong token nor a key is in the database, in any form.
	data := dbBytes(t, filepath.Join(e.StateDir(), "audit.db"))
	if !bytes.Contains(data, []byte("anthropic/rest")) {
		t.Fatal("audit.db: got no anthropic/rest, want the records in it (the check below would prove nothing)")
	}
	assertNoLeak(t, "audit.db", data, wrong, restKey, cliKey)
	e.AssertNoSecret(wrong, restKey, cliKey)
}

// TestAuditLogTildePath runs the security page's example as a user types
// it, with the shell expanding ~, and with --audit-log=~/..., which the
// shell leaves alone: either way the database lands under HOME, private.
func TestAuditLogTildePath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, arg, rel string }{
		{"shell-expanded", "--audit-log ~/.ringlet/audit.db", ".ringlet/audit.db"},
		{"flag=~", "--audit-log=~/.ringlet/x.db", ".ringlet/x.db"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.ShellWords = true
			e.Dir = e.Root // a literal ~ directory would appear here
			e.StartDaemon(c.arg)
			want := filepath.Join(e.Home, c.rel)
			for _, p := range []struct {
				path string
				mode os.FileMode
			}{{want, 0o600}, {filepath.Dir(want), 0o700 | fs.ModeDir}} {
				fi, err := os.Lstat(p.path)
				if err != nil {
					t.Fatalf("audit log: %v", err)
				}
				if got := fi.Mode(); got != p.mode {
					t.Errorf("mode of %s: got %v, want %v", p.path, got, p.mode)
				}
			}
			for _, dir := range []string{e.Root, e.Home} {
				if _, err := os.Lstat(filepath.Join(dir, "~")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s/~: got err %v, want no literal ~ directory", dir, err)
				}
			}
			// The CLI finds the daemon's database and it verifies.
			stdout, _ := auditVerify(t, e, 0)
			if !strings.Contains(stdout, want) || !strings.Contains(stdout, "intact") {
				t.Errorf("audit verify: got %q, want it to name %s and say intact", stdout, want)
			}
		})
	}
}

// TestAuditTamper edits and then removes records behind the daemon's back
// with a raw SQLite connection; verify names the damage.
func TestAuditTamper(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	for i := range 4 {
		if status, _, _ := d.MustGet(t, fmt.Sprintf("/api/tamper-%d", i), "", nil); status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated request: got %d, want 401", status)
		}
	}
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(); code != 0 {
		t.Fatalf("daemon exit code after SIGTERM: got %d, want 0", code)
	}
	recs, _ := queryRecords(t, e)
	if len(recs) != 6 {
		t.Fatalf("records: got %d, want 6 (start, 4 refusals, stop)", len(recs))
	}
	orig := recs[len(recs)-3] // seq 3
	if orig.Seq != 3 {
		t.Fatalf("third record: got seq %d, want 3", orig.Seq)
	}
	auditVerify(t, e, 0) // the control

	db := filepath.Join(e.StateDir(), "audit.db")
	runSQL := func(sql string, args ...any) {
		t.Helper()
		conn, err := sqlite3.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stmt, _, err := conn.Prepare(sql)
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		for i, a := range args {
			if err := stmt.BindText(i+1, a.(string)); err != nil {
				t.Fatal(err)
			}
		}
		if err := stmt.Exec(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if conn.Changes() == 0 {
			t.Fatalf("%s: changed nothing", sql)
		}
	}

	// The control left its mark: a walk from it checks nothing new, and
	// prints no progress on a stderr that is not a terminal.
	var since struct {
		OK       bool  `json:"ok"`
		SinceSeq int64 `json:"since_seq"`
		Records  int64 `json:"records"`
	}
	out, errOut := auditVerify(t, e, 0, "--since-last", "--json")
	if err := json.Unmarshal([]byte(out), &since); err != nil || !since.OK || since.SinceSeq != 6 || since.Records != 0 || errOut != "" {
		t.Errorf("audit verify --since-last --json: got %q, stderr %q (%v), want ok, since_seq 6, records 0, no stderr", out, errOut, err)
	}

	runSQL(`UPDATE records SET target = ? WHERE seq = 3`, "GET /api/forged")
	// An edit before the mark that breaks the chain is for the full walk
	// to find (docs/audit.md says so).
	if out, _ := auditVerify(t, e, 0, "--since-last"); !strings.Contains(out, "0 records after record 6") {
		t.Errorf("audit verify --since-last after an edit before the mark: got %q, want it to say it walked from record 6", out)
	}
	stdout, stderr, code := e.Run("audit", "verify")
	checkOneLineError(t, stdout, stderr, code, []int{1}, "NOT intact", "record 3", "edited")
	stdout, _, code = e.Run("audit", "verify", "--json")
	var res struct {
		OK     bool  `json:"ok"`
		BadSeq int64 `json:"bad_seq"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 1 || res.OK || res.BadSeq != 3 {
		t.Errorf("audit verify --json: got exit %d %q (%v), want exit 1, ok false, bad_seq 3", code, stdout, err)
	}

	runSQL(`UPDATE records SET target = ? WHERE seq = 3`, orig.Target)
	auditVerify(t, e, 0)

	runSQL(`DELETE FROM records WHERE seq >= 5`)
	stdout, stderr, code = e.Run("audit", "verify", db)
	checkOneLineError(t, stdout, stderr, code, []int{1}, "NOT intact", "removed", "anchor")
	stdout, stderr, code = e.Run("audit", "verify", "--since-last", db)
	checkOneLineError(t, stdout, stderr, code, []int{1}, "NOT intact", "record 6 differs from when it was last verified")
}

// TestAuditTailAndEvents follows the live stream with `audit tail` and
// with a raw WebSocket client that filters by kind.
func TestAuditTailAndEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	tok := e.Token()

	t.Run("audit tail --json", func(t *testing.T) {
		var out, errb lockedBuffer
		tail := e.command(t.Context(), ringletBin, "audit", "tail", "--json")
		tail.Stdout, tail.Stderr = &out, &errb
		if err := tail.Start(); err != nil {
			t.Fatal(err)
		}
		var waitErr error
		exited := make(chan struct{})
		go func() {
			waitErr = tail.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			tail.Process.Kill()
			<-exited
		})
		if !waitFor(readyTimeout, func() bool { return eventStreams(t, d, tok) == 1 }) {
			t.Fatalf("audit tail never subscribed; stderr %q", errb.String())
		}
		key := newCanary(t, "live")
		if status, _, body := d.MustDo(t, "PUT", "/api/keychain/anthropic/live", tok, mustJSON(map[string]string{"key": key})); status != http.StatusOK {
			t.Fatalf("PUT: got %d, want 200; body %s", status, body)
		}
		seen := func() bool {
			for _, l := range lines(out.String()) {
				var r auditRec
				if json.Unmarshal([]byte(l), &r) == nil && r.Kind == "credential.set" && r.Target == "anthropic/live" && r.Actor == "admin" && r.Seq > 0 && r.Hash != "" {
					return true
				}
			}
			return false
		}
		if !waitFor(10*time.Second, seen) {
			t.Fatalf("audit tail --json: got %q within 10s, want the credential.set record of anthropic/live", out.String())
		}
		tail.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("audit tail after SIGTERM: %v, want exit 0; stderr %q", waitErr, errb.String())
			}
		case <-time.After(exitTimeout):
			t.Fatalf("audit tail still running %s after SIGTERM", exitTimeout)
		}
		assertNoLeak(t, "audit tail output", []byte(out.String()+errb.String()), key)
		// The daemon drops the stream of a client that went away.
		if !waitFor(readyTimeout, func() bool { return eventStreams(t, d, tok) == 0 }) {
			t.Errorf("event_streams after audit tail exited: got %d, want 0", eventStreams(t, d, tok))
		}
	})

	t.Run("WebSocket ?kind=auth.failure", func(t *testing.T) {
		wsURL := "ws" + strings.TrimPrefix(d.URL, "http") + "/api/events?kind=auth.failure"
		c, _, err := websocket.Dial(wsContext(t), wsURL, &websocket.DialOptions{Subprotocols: []string{"bearer", tok}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.CloseNow()
		if !waitFor(readyTimeout, func() bool { return eventStreams(t, d, tok) == 1 }) {
			t.Fatal("event_streams never got to 1")
		}
		steps := []struct{ method, path, token, body string }{
			{"PUT", "/api/keychain/anthropic/ws", tok, `{"key":"sk-ws-test"}`},
			{"GET", "/api/ws-1", "", ""},
			{"DELETE", "/api/keychain/anthropic/ws", tok, ""},
			{"GET", "/api/ws-2", "", ""},
		}
		for _, s := range steps {
			d.MustDo(t, s.method, s.path, s.token, s.body)
		}
		ctx := wsContext(t)
		var got []string
		for !slices.Contains(got, "auth.failure GET /api/ws-2") {
			_, data, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read after %q: %v", got, err)
			}
			var r auditRec
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			got = append(got, r.Kind+" "+r.Target)
		}
		if want := []string{"auth.failure GET /api/ws-1", "auth.failure GET /api/ws-2"}; !slices.Equal(got, want) {
			t.Errorf("events with ?kind=auth.failure: got %q, want %q", got, want)
		}
	})
}

// TestAuditEscapesControlCharacters has the daemon record a target with an
// ANSI escape, a newline, a NUL and a right-to-left override: tables and
// CSV print them escaped, JSON keeps them exactly.
func TestAuditEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	const path = "/api/x%1B%5B31mred%0Aforged%00nul%E2%80%AEevil"
	const target = "GET /api/x\x1b[31mred\nforged\x00nul\u202eevil"
	const escaped = `GET /api/x\x1b[31mred\nforged\x00nul\u202eevil`
	if status, _, body := d.MustGet(t, path, "", nil); status != http.StatusUnauthorized {
		t.Fatalf("GET %s: got %d, want 401; body %s", path, status, body)
	}
	raw := func(t *testing.T, what, out string) {
		t.Helper()
		for _, bad := range []string{"\x1b", "\x00", "\u202e", "\r"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s: got raw %q in %q, want it escaped", what, bad, out)
			}
		}
	}

	stdout, stderr, code := e.Run("audit", "query", "--kind", "auth.failure")
	if code != 0 {
		t.Fatalf("audit query: exit %d; stderr %q", code, stderr)
	}
	raw(t, "audit query", stdout)
	if n := strings.Count(stdout, "\n"); n != 2 || !strings.Contains(stdout, escaped) {
		t.Errorf("audit query: got %d lines %q, want a header and one row with %s", n, stdout, escaped)
	}

	stdout, stderr, code = e.Run("audit", "query", "--kind", "auth.failure", "--csv")
	if code != 0 {
		t.Fatalf("audit query --csv: exit %d; stderr %q", code, stderr)
	}
	raw(t, "audit query --csv", stdout)
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stdout, "\n"); n != 2 || len(rows) != 2 || rows[1][6] != escaped {
		t.Errorf("audit query --csv: got %d lines %q, want a header and one row with target %s", n, stdout, escaped)
	}

	recs, _ := queryRecords(t, e, "--kind", "auth.failure")
	if len(recs) != 1 || recs[0].Target != target {
		t.Errorf("audit query --json: got %+v, want one record with target %q", recs, target)
	}
}

// TestAuditCrashSafety kills the daemon with SIGKILL at random moments
// while it answers concurrent requests: every refusal a client was told
// about has its record, and the chain stays intact.
//
// Bad tokens are recorded one by one only up to a burst per source (past
// it they are counted), so each round sends fewer than the burst, and the
// kill lands after a random number of answers, with the other workers'
// requests still in flight.
func TestAuditCrashSafety(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed))
	const rounds, workers = 8, 8
	const perRound = 180 // under the daemon's burst of 200 records per source

	e := newEnv(t)
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var (
		mu    sync.Mutex
		acked []string
		odd   []string
	)
	for round := range rounds {
		d := e.StartDaemon()
		stop := make(chan struct{})
		reached := make(chan struct{})
		killAt := 40 + rng.IntN(perRound-40-2*workers)
		var issued, answered atomic.Int64
		var wg sync.WaitGroup
		for g := range workers {
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					if issued.Add(1) > perRound {
						<-stop
						return
					}
					path := fmt.Sprintf("/api/nonce-%d-%d-%d", round, g, n)
					req, err := http.NewRequest(http.MethodGet, d.URL+path, nil)
					if err != nil {
						t.Error(err)
						return
					}
					req.Header.Set("Authorization", "Bearer not-the-token")
					resp, err := hc.Do(req)
					if err != nil {
						return // the daemon is gone
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					if resp.StatusCode == http.StatusUnauthorized {
						acked = append(acked, "GET "+path)
					} else {
						odd = append(odd, fmt.Sprintf("%s: %d", path, resp.StatusCode))
					}
					mu.Unlock()
					if answered.Add(1) == int64(killAt) {
						close(reached)
					}
				}
			})
		}
		select {
		case <-reached:
		case <-time.After(runTimeout):
			t.Fatalf("round %d: %d answers in %s, want %d", round, answered.Load(), runTimeout, killAt)
		}
		d.Signal(syscall.SIGKILL)
		d.Wait()
		close(stop)
		wg.Wait()
		tr.CloseIdleConnections()
	}
	if len(odd) > 0 {
		t.Errorf("answers other than 401: %q", odd[:min(len(odd), 5)])
	}
	if len(acked) == 0 {
		t.Fatal("no request was answered; the test proved nothing")
	}

	// The database the last daemon left behind can be read as it is
	// before any daemon recovers it.
	before := queryAll(t, e, 10000, "--kind", "auth.failure")
	e.StartDaemon()
	after := queryAll(t, e, 10000, "--kind", "auth.failure")
	if len(before) != len(after) {
		t.Errorf("auth.failure records: got %d before the restart and %d after, want the same", len(before), len(after))
	}
	got := map[string]bool{}
	for _, r := range after {
		got[r.Target] = true
	}
	var lost []string
	for _, a := range acked {
		if !got[a] {
			lost = append(lost, a)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d answered requests have no record (seed %d), e.g. %q", len(lost), len(acked), seed, lost[:min(len(lost), 5)])
	}
	t.Logf("%d rounds, %d answered refusals, %d records", rounds, len(acked), len(got))
	stdout, _ := auditVerify(t, e, 0)
	if !strings.Contains(stdout, "intact") {
		t.Errorf("audit verify: got %q, want intact", stdout)
	}
}

// TestAuditFailClosed fills the disk under the audit log: a credential
// change is then refused with 503 and not made, the metrics say so, and
// once there is room again the same change goes through.
func TestAuditFailClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := smallDisk(t, e)
	d := e.StartDaemon("--audit-log", filepath.Join(dir, "audit.db"))
	tok := e.Token()
	key := newCanary(t, "full")
	body := mustJSON(map[string]string{"key": key})
	const p = "/api/keychain/x/y"

	filler := fillUp(t, dir)
	metric := func(name string) float64 { t.Helper(); return metricValue(t, d, tok, name) }

	status, _, resp := d.MustDo(t, "PUT", p, tok, body)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("PUT %s with the disk full: got %d, want 503; body %s", p, status, resp)
	}
	if eb := decodeError(t, resp); eb.Error.Code != "audit_unavailable" || !strings.Contains(eb.Error.Message, "disk") {
		t.Errorf("PUT %s with the disk full: got %+v, want code audit_unavailable and a message about the disk", p, eb.Error)
	}
	if _, ok := findEntry(listJSON(t, e), "x", "y"); ok {
		t.Error("keychain list after the refused PUT: got x/y, want it not stored")
	}
	if got := metric("ringlet_audit_writable"); got != 0 {
		t.Errorf("ringlet_audit_writable with the disk full: got %v, want 0", got)
	}
	if got := metric("ringlet_audit_write_failures_total"); got <= 0 {
		t.Errorf("ringlet_audit_write_failures_total: got %v, want > 0", got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if status, _, resp := d.MustDo(t, "PUT", p, tok, body); status != http.StatusOK {
		t.Fatalf("PUT %s with room again: got %d, want 200; body %s", p, status, resp)
	}
	if got, ok := findEntry(listJSON(t, e), "x", "y"); !ok || got.Status != "ok" {
		t.Errorf("keychain list: got %+v (found %v), want x/y ok", got, ok)
	}
	// The file system's state is as the log's last check saw it; a check
	// that began while the disk was still full may land after the PUT, and
	// the next one clears it.
	if !waitFor(10*time.Second, func() bool { return metric("ringlet_audit_writable") == 1 }) {
		t.Errorf("ringlet_audit_writable with room again: got %v, want 1", metric("ringlet_audit_writable"))
	}
	auditVerify(t, e, 0)
	e.AssertNoSecret(key)
}
