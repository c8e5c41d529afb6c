package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/token"
)

// testCaller is one kind of caller of TestRoutesByCaller: how it presents
// itself and, from the route table's who, whether a route admits it.
type testCaller struct {
	name  string
	set   func(r *http.Request)
	admit func(w who) bool
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func apiKey(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-Api-Key", tok) }
}

func never(who) bool { return false }

func cookie(s *Server, v string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: s.cookieName(), Value: v}) }
}

func uiKey(v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Add(dashboard.KeyHeader, v) }
}

// testLogin is the cookie and page key of a new dashboard login of s.
func testLogin(t *testing.T, s *Server) (cookie, key string) {
	t.Helper()
	code, _ := s.logins.NewCode()
	c, k, _, err := s.logins.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// routeWorld is a server, full (profiles, keys and live sessions) or bare
// (nothing stored), and the tokens of each kind of caller.
type routeWorld struct {
	name string
	s    *Server
	host string
	// socket is the session whose socket is walked; sibling is another
	// session of its profile, foreign one of another profile.
	socket, sibling, foreign  string
	revoked, expired, garbage string
	sock                      *session
	// login is a live dashboard login cookie, loggedOut one that ended.
	login, loggedOut string
	// key is login's page key, otherKey the key of another live login.
	key, otherKey string
}

func newRouteWorlds(t *testing.T) []*routeWorld {
	t.Helper()
	full := newMCPWorld(t)
	w := &routeWorld{name: "full", s: full.s, host: "127.0.0.1:" + strconv.Itoa(int(full.s.port.Load())), garbage: "not-a-token"}
	start := func(alias string) (*session, string) {
		sess, tok, err := full.s.sessions.start(t.Context(), alias, 0, audit.ActorAdmin)
		if err != nil {
			t.Fatal(err)
		}
		return sess, tok
	}
	w.sock, w.socket = start("work")
	_, w.sibling = start("work")
	_, w.foreign = start("other")
	var gone *session
	gone, w.revoked = start("work")
	full.s.sessions.end(t.Context(), gone.ID, "revoked", audit.ActorAdmin)
	// Past its expiry but not yet ended by its timer: the lookup must
	// notice.
	var old *session
	old, w.expired = start("other")
	old.Deadline = time.Now().Add(-time.Minute)

	bare := &routeWorld{name: "bare", s: newTestServer(t, testPort), host: testHost,
		garbage: "not-a-token", revoked: api.SessionTokenPrefix + "revoked", expired: api.SessionTokenPrefix + "expired"}
	for _, rw := range []*routeWorld{w, bare} {
		rw.login, rw.key = testLogin(t, rw.s)
		rw.loggedOut, _ = testLogin(t, rw.s)
		rw.s.logins.End(rw.loggedOut)
		_, rw.otherKey = testLogin(t, rw.s)
	}
	return []*routeWorld{w, bare}
}

// tcpCallers are every kind of caller of the TCP listener.
func (w *routeWorld) tcpCallers() []testCaller {
	admits := func(k who) func(who) bool { return func(x who) bool { return x&k != 0 } }
	cookie := func(v string) func(*http.Request) { return cookie(w.s, v) }
	cs := []testCaller{
		{"admin token", bearer(testToken), admits(byAdmin)},
		// The subprotocol pair carries the admin token where only the
		// admin is admitted; X-Api-Key a session token where only
		// sessions are.
		{"admin token as subprotocol", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "bearer, "+testToken) },
			func(x who) bool { return x&byAdmin != 0 && x&bySession == 0 }},
		{"no token", func(*http.Request) {}, admits(byAnonymous)},
		{"garbage token", bearer(w.garbage), never},
		{"admin token in the query", func(r *http.Request) { r.URL.RawQuery = "token=" + testToken }, never},
		{"revoked session token", bearer(w.revoked), never},
		{"expired session token", bearer(w.expired), never},
		// The dashboard's login cookie opens the dashboard's pages and
		// nothing else; no token of the API is a login cookie. Elsewhere
		// no cookie is read: whoever sends one is anonymous.
		// The cookie alone opens only the pages' shells (byPage): it
		// reaches every server of 127.0.0.1 the browser visits. Data and
		// changes (byBrowser) need its page key beside it.
		{"dashboard login cookie", cookie(w.login), admits(byPage | byAnonymous)},
		{"dashboard login cookie and its key", func(r *http.Request) { cookie(w.login)(r); uiKey(w.key)(r) }, admits(byBrowser | byPage | byAnonymous)},
		{"dashboard login cookie and another login's key", func(r *http.Request) { cookie(w.login)(r); uiKey(w.otherKey)(r) }, admits(byPage | byAnonymous)},
		{"dashboard login cookie and its key twice", func(r *http.Request) { cookie(w.login)(r); uiKey(w.key)(r); uiKey(w.key)(r) }, admits(byPage | byAnonymous)},
		{"dashboard page key alone", uiKey(w.key), admits(byAnonymous)},
		{"dashboard page key as the cookie", cookie(w.key), admits(byAnonymous)},
		{"dashboard login cookie that logged out", cookie(w.loggedOut), admits(byAnonymous)},
		{"dashboard login cookie twice", func(r *http.Request) { cookie(w.login)(r); cookie(w.login)(r) }, admits(byAnonymous)},
		{"admin token as a cookie", cookie(testToken), admits(byAnonymous)},
		{"login cookie as a bearer token", bearer(w.login), never},
	}
	if w.socket != "" {
		cs = append(cs,
			testCaller{"session token of profile work", bearer(w.socket), admits(bySession)},
			testCaller{"session token as x-api-key", apiKey(w.socket), func(x who) bool { return x&bySession != 0 && x&byAdmin == 0 }},
			testCaller{"session token of profile other", bearer(w.foreign), admits(bySession)},
			testCaller{"session token as a cookie", cookie(w.socket), admits(byAnonymous)},
			testCaller{"two Authorization headers", func(r *http.Request) {
				r.Header.Add("Authorization", "Bearer "+w.socket)
				r.Header.Add("Authorization", "Bearer "+w.socket)
			}, never},
		)
	}
	return cs
}

// socketCallers are every kind of caller of the socket of w.sock.
func (w *routeWorld) socketCallers() []testCaller {
	peer := func(x who) bool { return x&bySocket != 0 }
	return []testCaller{
		{"its session's token", bearer(w.socket), func(x who) bool { return x&(bySession|bySocket) != 0 }},
		{"its session's token as x-api-key", apiKey(w.socket), func(x who) bool { return x&bySocket != 0 || (x&bySession != 0 && x&byAdmin == 0) }},
		{"another session of its profile", bearer(w.sibling), peer},
		{"a session of another profile", bearer(w.foreign), peer},
		{"admin token", bearer(testToken), peer},
		{"revoked session token", bearer(w.revoked), peer},
		{"expired session token", bearer(w.expired), peer},
		{"no token", func(*http.Request) {}, func(x who) bool { return x&(bySocket|byAnonymous) != 0 }},
		{"garbage token", bearer(w.garbage), peer},
	}
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// targets are the requests that reach rt: its pattern with every
// parameter and wildcard an id that names nothing, and the pattern
// without the trailing slash of a collection.
func targets(rt route) []string {
	switch rt.pattern {
	case unrouted:
		return []string{"/no-such-endpoint"}
	case tunnel:
		return []string{"example.com:443"}
	}
	p := strings.ReplaceAll(pathParam.ReplaceAllString(rt.pattern, "x"), "*", "x")
	out := []string{p}
	if q := strings.TrimSuffix(p, "/"); q != p && q != "" {
		out = append(out, q)
	}
	return out
}

// methods are the methods that reach rt: one for a route of every method
// and, for unrouted, the 405 of an unknown method too.
func methods(rt route) []string {
	switch {
	case rt.pattern == unrouted:
		return []string{http.MethodGet, "BREW"}
	case rt.method == "":
		return []string{http.MethodPost}
	}
	return []string{rt.method}
}

// TestRoutesByCaller walks every route of the TCP listener, a session
// socket and the session tools, of a daemon with every part and of one
// with none, with every kind of caller: each route is in the route table,
// and the gate admits exactly the callers the table says (a refusal is
// 401 unauthorized; anything else got past the gate).
func TestRoutesByCaller(t *testing.T) {
	for _, w := range newRouteWorlds(t) {
		t.Run(w.name, func(t *testing.T) {
			table := w.s.routes()
			checkTable(t, table)

			tcp := w.s.Handler().(*chi.Mux)
			walkMatchesTable(t, "TCP", tcp, table, onTCP)
			for _, rt := range table {
				if rt.on&onTCP == 0 {
					continue
				}
				for _, c := range w.tcpCallers() {
					w.try(t, tcp, rt, c, w.host)
				}
			}

			tools := w.s.router(onTools, nil)
			walkMatchesTable(t, "session tools", tools, table, onTools)
			toolCallers := []testCaller{{name: "admin", admit: func(x who) bool { return x&byAdmin != 0 }}, {name: "nobody", admit: never}}
			c := map[string]caller{"admin": {kind: admin, tok: testToken, gen: w.s.auth.cur.Load()}, "nobody": {reason: "missing"}}
			if w.sock != nil {
				toolCallers = append(toolCallers, testCaller{name: "session", admit: func(x who) bool { return x&bySession != 0 }})
				c["session"] = caller{kind: sessionCaller, tok: w.socket, sess: w.sock}
			}
			for _, rt := range table {
				if rt.on&onTools == 0 {
					continue
				}
				for _, tc := range toolCallers {
					tc.set = func(r *http.Request) { *r = *r.WithContext(withCaller(r.Context(), c[tc.name])) }
					w.try(t, tools, rt, tc, "")
				}
			}

			if w.sock == nil {
				return
			}
			sock := w.s.socketHandler(w.sock)
			walkMatchesTable(t, "session socket", sock, table, onSocket)
			for _, rt := range table {
				if rt.on&onSocket == 0 {
					continue
				}
				for _, c := range w.socketCallers() {
					w.try(t, sock, rt, c, "127.0.0.1:"+strconv.Itoa(sandbox.ForwarderPort))
				}
			}
		})
	}
}

// checkTable checks that every entry decides who may call it, where, and
// what answers, and that no two entries claim one route.
func checkTable(t *testing.T, table []route) {
	t.Helper()
	seen := map[string]bool{}
	for _, rt := range table {
		id := rt.method + " " + rt.pattern
		if rt.who == 0 {
			t.Errorf("route %s: got no callers, want who to name the callers it admits", id)
		}
		if rt.who&(byBrowser|byPage) != 0 && (rt.who != byBrowser && rt.who != byPage || rt.on != onTCP || rt.deny != refuseBrowser) {
			t.Errorf("route %s: a dashboard page admits its login alone, on the TCP listener, refused with the sign-in page; got who %b on %b", id, rt.who, rt.on)
		}
		if rt.who&bySocket != 0 && rt.on != onSocket {
			t.Errorf("route %s: bySocket off a session socket would admit anyone; want it on onSocket only", id)
		}
		if rt.on == 0 || rt.h == nil {
			t.Errorf("route %s: got surface %b and handler %v, want both", id, rt.on, rt.h)
		}
		if rt.pattern == tunnel && rt.method != http.MethodConnect {
			t.Errorf("route %s: got a tunnel for %q, want CONNECT", id, rt.method)
		}
		for _, on := range []surface{onTCP, onSocket, onTools} {
			key := id + " " + strconv.Itoa(int(on))
			if rt.on&on == 0 {
				continue
			}
			if seen[key] {
				t.Errorf("route %s: got two entries on surface %b, want one", id, on)
			}
			seen[key] = true
		}
	}
}

// walkMatchesTable checks that every route the router serves has an
// entry of surface on in the table, and that every such entry is served.
func walkMatchesTable(t *testing.T, name string, r chi.Routes, table []route, on surface) {
	t.Helper()
	served := map[*route]bool{}
	err := chi.Walk(r, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		// An entry for the method itself first, then one for every method.
		for _, exact := range []bool{true, false} {
			for i := range table {
				rt := &table[i]
				if rt.on&on == 0 || (rt.method == method) != exact || (rt.method != "" && rt.method != method) {
					continue
				}
				if rt.pattern == pattern || rt.pattern == pattern+"/" {
					served[rt] = true
					return nil
				}
			}
		}
		t.Errorf("%s serves %s %s, which has no entry in the route table (routes.go): add one that says who may call it", name, method, pattern)
		return nil
	})
	if err != nil {
		t.Fatalf("walk the %s routes: %v", name, err)
	}
	for i := range table {
		rt := &table[i]
		if rt.on&on != 0 && rt.pattern != unrouted && rt.pattern != tunnel && !served[rt] {
			t.Errorf("%s: the table's %s %s is not served", name, rt.method, rt.pattern)
		}
	}
}

// try sends every request that reaches rt as caller c, and checks that the
// gate admits it exactly when the table says so.
func (w *routeWorld) try(t *testing.T, h http.Handler, rt route, c testCaller, host string) {
	t.Helper()
	want := c.admit(rt.who)
	for _, method := range methods(rt) {
		for _, target := range targets(rt) {
			req := httptest.NewRequest(method, target, strings.NewReader(""))
			if rt.pattern == "/ui/events" {
				// A stream: admitted, it would never end; a request whose
				// client has gone ends it at once.
				ctx, cancel := context.WithCancel(req.Context())
				cancel()
				req = req.WithContext(ctx)
			}
			if method == http.MethodConnect {
				req.Host = target
			} else if host != "" {
				req.Host = host
			}
			c.set(req)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if _, ok := w.s.auth.check(testToken); !ok {
				// POST /api/daemon/rotate-token did its job.
				w.s.auth.set(token.FromString(testToken))
			}
			if w.s.logins.Live() == 0 {
				// The rotation ended the dashboard's logins too.
				w.login, w.key = testLogin(t, w.s)
				_, w.otherKey = testLogin(t, w.s)
			}
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			refused := rec.Code == http.StatusUnauthorized && body.Error.Code == "unauthorized"
			if rt.who&(byBrowser|byPage) != 0 {
				// A dashboard page refuses with the sign-in page.
				refused = rec.Code == http.StatusUnauthorized && strings.Contains(rec.Body.String(), "ringlet ui")
			}
			switch {
			case want && rec.Code == http.StatusUnauthorized:
				t.Errorf("%s %s (route %s %s) as %s: got 401 %s, want the route to admit it", method, target, rt.method, rt.pattern, c.name, rec.Body)
			case !want && !refused:
				t.Errorf("%s %s (route %s %s) as %s: got %d %s, want 401 unauthorized", method, target, rt.method, rt.pattern, c.name, rec.Code, rec.Body)
			}
		}
	}
}

// TestSessionRouteTokenRule: where X-Api-Key and Authorization can both
// carry a session token, one is read, a header sent twice is refused, and
// the refusal says which header was read.
func TestSessionRouteTokenRule(t *testing.T) {
	w := newMCPWorld(t)
	_, tok := w.session(t, "work")
	for _, tc := range []struct {
		name   string
		hdr    http.Header
		status int
		msg    string // in the refusal
	}{
		{"x-api-key", http.Header{"X-Api-Key": {tok}}, http.StatusBadRequest, ""},
		{"bearer", http.Header{"Authorization": {"Bearer " + tok}}, http.StatusBadRequest, ""},
		{"x-api-key beside another bearer", http.Header{"X-Api-Key": {tok}, "Authorization": {"Bearer rlt_other"}}, http.StatusBadRequest, ""},
		{"bearer beside a junk x-api-key", http.Header{"X-Api-Key": {"junk"}, "Authorization": {"Bearer " + tok}}, http.StatusUnauthorized, "X-Api-Key decides when both are sent"},
		{"bearer twice", http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, http.StatusUnauthorized, "send the token once"},
		{"x-api-key twice", http.Header{"X-Api-Key": {tok, tok}}, http.StatusUnauthorized, "send the token once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, w.ts.URL+"/session/hooks/check", strings.NewReader("not json"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status: got %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.msg != "" && !strings.Contains(body, tc.msg) {
				t.Errorf("refusal: got %s, want it to say %q", body, tc.msg)
			}
		})
	}
}
