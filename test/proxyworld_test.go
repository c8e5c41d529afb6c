package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/provider"
	"github.com/neullabs/ringlet/test/fakeprovider"
)

// proxyWorld is one user's daemon with two providers that point at a fake
// API (fake: Anthropic format, fakeoa: OpenAI format) and a sinkhole, a
// listener that no request may ever reach.
type proxyWorld struct {
	t       *testing.T
	e       *env
	d       *daemon
	fake    *fakeprovider.Provider
	fakeURL string
	sink    *sinkhole
	// seen is every proxy answer the test received, headers included,
	// for the leak check.
	seen lockedBuffer
}

// proxyAnthropicVersion is the anthropic-version the SDKs send.
const proxyAnthropicVersion = "2023-06-01"

// newProxyWorld starts a daemon that logs at debug level (its foreground
// stderr is the log), the fake and the sinkhole, and adds the providers
// through the CLI.
func newProxyWorld(t *testing.T) *proxyWorld {
	t.Helper()
	return newProxyWorldConfig(t)
}

// newProxyWorldConfig is newProxyWorld with more config keys set (key,
// value, key, value...) before the daemon starts.
func newProxyWorldConfig(t *testing.T, keyValues ...string) *proxyWorld {
	t.Helper()
	e := newEnv(t)
	mustRun(t, e, "config", "set", "daemon.log_level", "debug")
	for i := 0; i+1 < len(keyValues); i += 2 {
		mustRun(t, e, "config", "set", keyValues[i], keyValues[i+1])
	}
	d := e.StartDaemon()
	w := &proxyWorld{t: t, e: e, d: d, fake: fakeprovider.New(), sink: newSinkhole(t)}
	srv := httptest.NewServer(w.fake)
	t.Cleanup(srv.Close)
	w.fakeURL = srv.URL
	mustRun(t, e, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	mustRun(t, e, "providers", "add", "fakeoa", "--base-url", srv.URL+"/v1", "--format", "openai", "--auth", "bearer")
	return w
}

// mustRun runs ringlet and fails t unless it exits 0.
func mustRun(t *testing.T, e *env, args ...string) string {
	t.Helper()
	stdout, stderr, code := e.Run(args...)
	if code != 0 {
		t.Fatalf("ringlet %s: exit %d, want 0; stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// proxyCanary is a provider key unique to the test.
func proxyCanary(tag string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return "sk-ant-canary-" + tag + "-" + hex.EncodeToString(b)
}

// newProfile creates a profile the way a user does, with the key on
// standard input, and makes the fake accept that key. agentArgs follow
// the alias: "--command true" for the generic agent, a model, etc.
func (w *proxyWorld) newProfile(agent, alias, providerID string, agentArgs ...string) (key string) {
	w.t.Helper()
	key = proxyCanary(alias)
	w.fake.AddKey(key)
	args := append([]string{"profiles", "create", agent, alias, "--provider", providerID}, agentArgs...)
	stdout, stderr, code := w.e.RunInput(key, args...)
	if code != 0 || !strings.Contains(stdout, "key: stored") {
		w.t.Fatalf("ringlet %s: exit %d, stdout %q, stderr %q; want exit 0 and the key stored", strings.Join(args, " "), code, stdout, stderr)
	}
	return key
}

// proxySession is what `profiles env --json` prints.
type proxySession struct {
	ID      string `json:"id"`
	Profile string `json:"profile"`
	Token   string `json:"token"`
	BaseURL string `json:"base_url"`
	Launch  struct {
		Command []string `json:"command"`
		Args    []string `json:"args"`
		Env     []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"env"`
	} `json:"launch"`
}

// Env is the launch environment as a map.
func (s proxySession) Env() map[string]string {
	m := map[string]string{}
	for _, v := range s.Launch.Env {
		m[v.Name] = v.Value
	}
	return m
}

// profileHome is the HOME of the profile's sandboxed agents on the host,
// from `profiles inspect`.
func (w *proxyWorld) profileHome(alias string) string {
	w.t.Helper()
	return w.homes(alias).Home
}

// unsandboxedHome is the HOME of the profile's agents run without a
// sandbox, such as those of startSession ('profiles env').
func (w *proxyWorld) unsandboxedHome(alias string) string {
	w.t.Helper()
	return w.homes(alias).Unsandboxed
}

type profileHomes struct {
	Home        string `json:"home"`
	Unsandboxed string `json:"unsandboxed_home"`
}

func (w *proxyWorld) homes(alias string) profileHomes {
	w.t.Helper()
	var view profileHomes
	if err := json.Unmarshal([]byte(mustRun(w.t, w.e, "profiles", "inspect", alias, "--json")), &view); err != nil || view.Home == "" || view.Unsandboxed == "" || view.Home == view.Unsandboxed {
		w.t.Fatalf("profiles inspect %s --json: got home %q and unsandboxed_home %q (%v), want the profile's two different HOMEs", alias, view.Home, view.Unsandboxed, err)
	}
	return view
}

// startSession starts a session with `profiles env ALIAS --json`.
func (w *proxyWorld) startSession(alias string) proxySession {
	w.t.Helper()
	var s proxySession
	out := mustRun(w.t, w.e, "profiles", "env", alias, "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		w.t.Fatalf("profiles env %s --json: %v; got %q", alias, err, out)
	}
	if !strings.HasPrefix(s.Token, "rlt_") || s.BaseURL != w.d.URL+"/proxy" || s.ID == "" {
		w.t.Fatalf("profiles env %s --json: got id %q, base_url %q and a token with prefix %q; want a session, base_url %s/proxy and an rlt_ token",
			alias, s.ID, s.BaseURL, s.Token[:min(4, len(s.Token))], w.d.URL)
	}
	return s
}

// anthropicHeaders are the headers an Anthropic SDK sends with tok.
func anthropicHeaders(tok string) http.Header {
	return http.Header{"X-Api-Key": {tok}, "Anthropic-Version": {proxyAnthropicVersion}, "Content-Type": {"application/json"}}
}

// postMessages sends body to a session's /v1/messages (baseURL is its
// base_url) as an Anthropic SDK would, and returns the status and the
// whole answer.
func postMessages(t *testing.T, baseURL, tok, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", baseURL+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = anthropicHeaders(tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST /v1/messages: read the answer: %v", err)
	}
	return resp.StatusCode, b
}

// openaiHeaders are the headers an OpenAI SDK sends with tok.
func openaiHeaders(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
}

var proxyClient = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// send makes one request through the proxy (path is below /proxy) and
// returns the whole answer, which is kept for the leak check.
func (w *proxyWorld) send(t *testing.T, method, path string, hdr http.Header, body string) (int, http.Header, []byte) {
	t.Helper()
	resp := w.open(t, t.Context(), method, path, hdr, body)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s /proxy%s: read: %v", method, path, err)
	}
	w.keep(method+" "+path, resp.StatusCode, resp.Header, data)
	return resp.StatusCode, resp.Header, data
}

// open starts a request through the proxy and returns the response with
// its body unread; the caller keeps what it reads.
func (w *proxyWorld) open(t *testing.T, ctx context.Context, method, path string, hdr http.Header, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.d.URL+"/proxy"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := proxyClient.Do(req)
	if err != nil {
		t.Fatalf("%s /proxy%s: %v", method, path, err)
	}
	return resp
}

func (w *proxyWorld) keep(what string, status int, h http.Header, body []byte) {
	var b bytes.Buffer
	b.WriteString(what + " -> " + http.StatusText(status) + "\n")
	h.Write(&b)
	b.Write(body)
	b.WriteByte('\n')
	w.seen.Write(b.Bytes())
}

// raw sends bytes to the daemon over a new TCP connection, as a client
// that writes whatever request line it likes, and returns the answer.
func (w *proxyWorld) raw(t *testing.T, request string) (int, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(w.d.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	w.keep(strings.SplitN(request, "\r\n", 2)[0], resp.StatusCode, resp.Header, body)
	return resp.StatusCode, body
}

// sinkhole is a TCP listener that counts connections: the address a
// request smuggling attempt would like the daemon to send the key to.
type sinkhole struct {
	Addr  string
	conns atomic.Int64
}

func newSinkhole(t *testing.T) *sinkhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sinkhole{Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return s
}

// Conns is how many connections reached the sinkhole.
func (s *sinkhole) Conns() int64 { return s.conns.Load() }

// sseEvent is one server-sent event as the client received it.
type sseEvent struct {
	Name string
	Data string
	At   time.Time // when its terminating blank line was read
}

// readSSE reads events until the body ends, calling each (if set) after
// every event; each returning false stops early. err is the read error
// that ended the stream, nil for a clean EOF.
func readSSE(r io.Reader, each func(sseEvent) bool) (events []sseEvent, err error) {
	br := bufio.NewReader(r)
	var cur sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" {
				return events, nil
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return events, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if cur.Data == "" {
				continue
			}
			cur.At = time.Now()
			events = append(events, cur)
			if each != nil && !each(cur) {
				return events, nil
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event:"):
			cur.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			cur.Data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		}
	}
}

// providerRecord is a provider.request record as `audit query --json`
// prints it.
type providerRecord struct {
	Seq              int64          `json:"seq"`
	Kind             string         `json:"kind"`
	Profile          string         `json:"profile"`
	Session          string         `json:"session"`
	Target           string         `json:"target"`
	Decision         string         `json:"decision"`
	Status           int64          `json:"status"`
	TokensIn         int64          `json:"tokens_in"`
	TokensOut        int64          `json:"tokens_out"`
	TokensCacheRead  int64          `json:"tokens_cache_read"`
	TokensCacheWrite int64          `json:"tokens_cache_write"`
	Detail           map[string]any `json:"detail"`
}

// providerRecords lists a session's provider.request records, oldest
// first, through `audit query`.
func (w *proxyWorld) providerRecords(t *testing.T, session string) []providerRecord {
	t.Helper()
	out := mustRun(t, w.e, "audit", "query", "--kind", "provider.request", "--session", session, "--limit", "10000", "--json")
	var page struct {
		Records []providerRecord `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit query --json: %v; got %.300q", err, out)
	}
	sort.Slice(page.Records, func(i, j int) bool { return page.Records[i].Seq < page.Records[j].Seq })
	return page.Records
}

// waitRecords polls `audit query` until the session has n provider
// records: a record is written when its answer ends, which for a client
// that went away is after the client moved on.
func (w *proxyWorld) waitRecords(t *testing.T, session string, n int) []providerRecord {
	t.Helper()
	var recs []providerRecord
	if !waitFor(15*time.Second, func() bool {
		recs = w.providerRecords(t, session)
		return len(recs) >= n
	}) {
		t.Fatalf("session %s: got %d provider.request records within 15s, want %d", session, len(recs), n)
	}
	return recs
}

// keyForms are the ways a key could be written out by mistake: raw, in
// the encodings a careless log line or answer would use, and its random
// part alone (what a "masked" print would leave).
func keyForms(key string) map[string]string {
	b := []byte(key)
	forms := map[string]string{
		"raw":          key,
		"base64":       base64.RawStdEncoding.EncodeToString(b),
		"base64url":    base64.RawURLEncoding.EncodeToString(b),
		"hex":          hex.EncodeToString(b),
		"HEX":          strings.ToUpper(hex.EncodeToString(b)),
		"url-escaped":  url.QueryEscape(key),
		"path-escaped": url.PathEscape(key),
	}
	if i := strings.LastIndexByte(key, '-'); i >= 0 {
		forms["random part"] = key[i+1:]
	}
	// What the proxy's redactor covers besides: every byte \u-escaped
	// (also inside a JSON string in another) or percent-encoded, and the
	// base64 of the key after other text, at the two other alignments:
	// the characters that carry only the key's bits.
	var u, uu, pct, pctLower strings.Builder
	for i := range len(key) {
		fmt.Fprintf(&u, `\u%04x`, key[i])
		fmt.Fprintf(&uu, `\\u%04X`, key[i])
		fmt.Fprintf(&pct, "%%%02X", key[i])
		fmt.Fprintf(&pctLower, "%%%02x", key[i])
	}
	forms["json-escaped"], forms["json-escaped in json"], forms["percent-encoded"], forms["percent-encoded lower"] = u.String(), uu.String(), pct.String(), pctLower.String()
	for _, prefix := range []string{"a", "ab"} {
		for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding} {
			full := enc.EncodeToString([]byte(prefix + key))
			first, last := (8*len(prefix)+5)/6, (8*len(prefix)+8*len(key))/6
			forms[fmt.Sprintf("%s after %d bytes", name, len(prefix))] = full[first:last]
		}
	}
	return forms
}

// assertNoKey fails t if data holds any form of any key. The message
// names the forms, never the key.
func assertNoKey(t *testing.T, what string, data []byte, keys ...string) {
	t.Helper()
	for i, k := range keys {
		var found []string
		for name, form := range keyForms(k) {
			if bytes.Contains(data, []byte(form)) {
				found = append(found, name)
			}
		}
		sort.Strings(found)
		if len(found) > 0 {
			t.Errorf("%s contains provider key #%d (as %v); want no trace of it", what, i+1, found)
		}
	}
}

// assertNoKeyLeak checks everything a key could have leaked into: the
// answers the test received, everything the CLI printed, the daemon's
// log, and every file in the state and data directories (the audit
// database and its WAL, the daemon state, the profiles' HOMEs).
func (w *proxyWorld) assertNoKeyLeak(t *testing.T, keys ...string) {
	t.Helper()
	assertNoKey(t, "answers received through the proxy", []byte(w.seen.String()), keys...)
	assertNoKey(t, "the output of the ringlet CLI", []byte(w.e.transcript.String()), keys...)
	for _, d := range w.e.daemons {
		assertNoKey(t, "the daemon's log (stderr)", []byte(d.stdout.String()+d.stderr.String()), keys...)
	}
	files := 0
	for _, dir := range []string{w.e.StateHome, w.e.DataHome} {
		filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read %s: %v", path, err)
				return nil
			}
			files++
			rel, _ := filepath.Rel(w.e.Root, path)
			assertNoKey(t, rel, data, keys...)
			return nil
		})
	}
	if _, err := os.Stat(filepath.Join(w.e.StateDir(), "audit.db")); err != nil {
		t.Errorf("the audit database: %v; want it checked for keys", err)
	}
	if files < 2 {
		t.Errorf("checked %d files for keys, want at least the audit database and its WAL", files)
	}
}

// assertTokenNeverUpstream fails t if a session token reached the fake.
func (w *proxyWorld) assertTokenNeverUpstream(t *testing.T, tokens ...string) {
	t.Helper()
	for _, r := range w.fake.Requests() {
		var b bytes.Buffer
		r.Header.Write(&b)
		b.Write(r.Body)
		b.WriteString(r.Path + "?" + r.RawQuery)
		for _, tok := range tokens {
			if strings.Contains(b.String(), tok) {
				t.Errorf("%s %s reached the provider with a session token in it; want only the real key", r.Method, r.Path)
			}
		}
	}
}

// assertForwardedHeaders checks the headers of requests a real client
// sent through the proxy: each name in want arrived (the client sends it
// and the provider reads it), and nothing arrived that the format's
// allowlist does not name, besides the injected key, Content-Length and
// Accept-Encoding.
func assertForwardedHeaders(t *testing.T, reqs []fakeprovider.Request, format string, want ...string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no request to check the headers of")
	}
	for _, r := range reqs {
		for _, name := range want {
			if r.Header.Get(name) == "" {
				t.Errorf("%s %s: no %s upstream; want the client's header passed on", r.Method, r.Path, name)
			}
		}
		for name := range r.Header {
			switch name {
			case "X-Api-Key", "Authorization", "Content-Length", "Accept-Encoding":
				continue
			}
			if !provider.ForwardRequestHeader(format, name) {
				t.Errorf("%s %s: upstream header %s; want only the %s allowlist", r.Method, r.Path, name, format)
			}
		}
	}
}

// lastRequest is the fake's newest request, failing t when there is none.
func (w *proxyWorld) lastRequest(t *testing.T) fakeprovider.Request {
	t.Helper()
	reqs := w.fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("the fake provider received no request")
	}
	return reqs[len(reqs)-1]
}
