package oauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// FlowOptions say what to authorize and how.
type FlowOptions struct {
	Profile, Server string
	// URL is the MCP server's URL.
	URL string
	// ClientID (and ClientSecret) are a client the user registered with
	// the authorization server; without one Ringlet registers itself
	// dynamically, where the server offers that.
	ClientID, ClientSecret string
	// Scopes to ask for; none: those the server's 401 names, if any.
	Scopes []string
	// Timeout is how long the browser has to come back.
	Timeout time.Duration
	// Port of the loopback redirect (0: any free one).
	Port int
	// Transport carries the requests (the daemon's, with no proxy).
	Transport http.RoundTripper
	Keys      Keys
	// OnDone is told how the flow ended, once, after the record is stored.
	OnDone func(*Record, error)
}

// Flow is one authorization in progress: the URL the user's browser
// opens, and a loopback listener waiting for the browser to come back.
type Flow struct {
	// AuthURL is where the user authorizes Ringlet.
	AuthURL string
	// Redirect is the loopback address the browser comes back to.
	Redirect string
	Expires  time.Time

	o        FlowOptions
	h        *transport.OAuthHandler
	mem      *transport.MemoryTokenStore
	state    string
	verifier string
	meta     *transport.AuthServerMetadata
	prm      string
	srv      *http.Server
	ctx      context.Context
	cancel   context.CancelFunc
	used     atomic.Bool
	bad      atomic.Int32
	wg       sync.WaitGroup

	once sync.Once
	done chan struct{}
	rec  *Record
	err  error
}

// ErrCanceled ends a flow that another one replaced.
var ErrCanceled = errors.New("another 'ringlet mcp auth' for this server replaced this one")

// Start discovers the server's authorization server, registers Ringlet
// with it when no client is given, and listens on the loopback redirect.
// ctx bounds the flow's life (the daemon's).
func Start(ctx context.Context, o FlowOptions) (*Flow, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	client := HTTPClient(o.Transport)
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	defer dcancel()
	prm, scopes, err := probe(dctx, client, o.URL)
	if err != nil {
		return nil, err
	}
	if len(o.Scopes) == 0 {
		o.Scopes = scopes
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen on the loopback redirect: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	f := &Flow{o: o, Redirect: redirect, prm: prm, mem: transport.NewMemoryTokenStore(), done: make(chan struct{})}
	f.h = transport.NewOAuthHandler(transport.OAuthConfig{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURI: redirect,
		Scopes: o.Scopes, TokenStore: f.mem, PKCEEnabled: true, HTTPClient: client, ProtectedResourceMetadataURL: prm})
	f.h.SetBaseURL(o.URL)
	fail := func(err error) (*Flow, error) {
		ln.Close()
		return nil, err
	}
	meta, err := f.h.GetServerMetadata(dctx)
	if err != nil {
		return fail(fmt.Errorf("discover the server's authorization server: %w", short(err)))
	}
	if err := checkMetadata(meta); err != nil {
		return fail(err)
	}
	f.meta = meta
	if o.ClientID == "" {
		if meta.RegistrationEndpoint == "" {
			return fail(fmt.Errorf("the authorization server %s offers no dynamic client registration: register Ringlet with it (redirect URI http://127.0.0.1:PORT/callback) and run 'ringlet mcp auth %s %s --client-id ID --port PORT'", meta.Issuer, o.Profile, o.Server))
		}
		if err := f.h.RegisterClient(dctx, "Ringlet"); err != nil {
			return fail(fmt.Errorf("register Ringlet with the authorization server: %w", short(err)))
		}
		if f.h.GetClientID() == "" {
			return fail(errors.New("the authorization server registered Ringlet without a client id"))
		}
	}
	if f.verifier, err = transport.GenerateCodeVerifier(); err != nil {
		return fail(err)
	}
	if f.state, err = transport.GenerateState(); err != nil {
		return fail(err)
	}
	if f.AuthURL, err = f.h.GetAuthorizationURL(dctx, f.state, transport.GenerateCodeChallenge(f.verifier)); err != nil {
		return fail(short(err))
	}
	f.Expires = time.Now().Add(o.Timeout)
	f.ctx, f.cancel = context.WithDeadline(ctx, f.Expires)
	f.srv = &http.Server{Handler: http.HandlerFunc(f.callback), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		_ = f.srv.Serve(ln) // ends with Shutdown in finish
	}()
	go func() {
		defer f.wg.Done()
		<-f.ctx.Done()
		f.finish(nil, fmt.Errorf("no authorization came back within %s: the browser did not return to Ringlet; run 'ringlet mcp auth %s %s' again", o.Timeout, o.Profile, o.Server))
	}()
	return f, nil
}

// Done is closed when the flow has ended.
func (f *Flow) Done() <-chan struct{} { return f.done }

// Result is how the flow ended, once Done is closed.
func (f *Flow) Result() (*Record, error) { return f.rec, f.err }

// Cancel ends the flow unless it has ended.
func (f *Flow) Cancel() { f.finish(nil, ErrCanceled) }

// finish ends the flow once: the listener is closed (no second use),
// the record kept, OnDone told.
func (f *Flow) finish(rec *Record, err error) {
	f.once.Do(func() {
		f.rec, f.err = rec, err
		f.cancel()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = f.srv.Shutdown(ctx) // the answer to the browser is written by then, or dropped
		}()
		if f.o.OnDone != nil {
			f.o.OnDone(rec, err)
		}
		close(f.done)
	})
}

// Wait waits for the flow's goroutines, after it has ended.
func (f *Flow) Wait() { f.wg.Wait() }

// callback is the loopback redirect: the browser comes back with the
// code and the state. A request whose state is not this flow's is
// refused and the flow goes on (another page may have sent it); the first
// with the right state ends the flow, whatever its outcome.
func (f *Flow) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// A page that rebinds a DNS name to 127.0.0.1 sends its own Host.
	if r.Host != strings.TrimPrefix(strings.TrimSuffix(f.Redirect, "/callback"), "http://") || r.URL.Path != "/callback" || r.Method != http.MethodGet {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
		if f.bad.Add(1) > 20 {
			f.finish(nil, errors.New("the loopback redirect got too many requests with a wrong state; run 'ringlet mcp auth' again"))
		}
		http.Error(w, "This is not the authorization Ringlet started (the state does not match). Run 'ringlet mcp auth' again.", http.StatusBadRequest)
		return
	}
	if !f.used.CompareAndSwap(false, true) {
		http.Error(w, "This authorization was already used.", http.StatusGone)
		return
	}
	if e := q.Get("error"); e != "" {
		err := fmt.Errorf("the authorization server refused: %s %s", printable(e), printable(q.Get("error_description")))
		f.finish(nil, err)
		http.Error(w, "Authorization refused. Ringlet did not get access; you can close this tab.", http.StatusForbidden)
		return
	}
	code := q.Get("code")
	if code == "" {
		f.finish(nil, errors.New("the browser came back without an authorization code"))
		http.Error(w, "No authorization code came back. Run 'ringlet mcp auth' again.", http.StatusBadRequest)
		return
	}
	rec, err := f.exchange(code)
	f.finish(rec, err)
	if err != nil {
		http.Error(w, "Ringlet could not complete the authorization; 'ringlet mcp auth' says why.", http.StatusBadGateway)
		return
	}
	_, _ = w.Write([]byte("Ringlet is authorized. You can close this tab.\n")) // the browser may have gone
}

// exchange trades the code for tokens and stores them.
func (f *Flow) exchange(code string) (*Record, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := f.h.ProcessAuthorizationResponse(ctx, code, f.state, f.verifier); err != nil {
		return nil, fmt.Errorf("exchange the authorization code: %w", short(err))
	}
	tok, err := f.mem.GetToken(ctx)
	if err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, errors.New("the authorization server answered without an access token")
	}
	if t := tok.TokenType; t != "" && !strings.EqualFold(t, "bearer") {
		return nil, fmt.Errorf("the authorization server issued a %q token; only bearer tokens are supported", printable(t))
	}
	rec := &Record{Profile: f.o.Profile, Server: f.o.Server, URL: f.o.URL, ResourceMetadata: f.prm, Issuer: f.meta.Issuer,
		RevocationEndpoint: f.meta.RevocationEndpoint, ClientID: f.h.GetClientID(), ClientSecret: f.h.GetClientSecret(),
		AuthMethod: f.h.GetTokenEndpointAuthMethod(), Registered: f.o.ClientID == "", Scopes: f.o.Scopes, Token: *tok,
		Authorized: time.Now().UTC().Truncate(time.Second)}
	if err := Save(f.o.Keys, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// probe asks the server, without a token, what it wants: a 401 names its
// protected resource metadata (RFC 9728 §5.1) and maybe the scopes. The
// metadata URL is used only on the server's own origin.
func probe(ctx context.Context, client *http.Client, server string) (prm string, scopes []string, err error) {
	body := []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ringlet","version":"auth"}}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server, bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("reach the MCP server: %w", short(err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		// Discovery goes on from the well-known addresses.
		return "", nil, nil
	}
	base, _ := url.Parse(server)
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if m := resourceMetadataRE().FindStringSubmatch(h); m != nil && prm == "" {
			if u, err := url.Parse(m[1]); err == nil && strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host) {
				prm = m[1]
			}
		}
		if m := scopeRE().FindStringSubmatch(h); m != nil && scopes == nil {
			scopes = strings.Fields(m[1])
		}
	}
	return prm, scopes, nil
}

// Compiled on first use: a bounded repetition of 1,000 compiles to a
// program of thousands of instructions, which took 14-18 ms of every
// command's start (the CLI and the daemon are one binary, and package
// variables are initialised before main). The same holds, smaller, for
// the other package-level patterns of Ringlet (docs/performance.md).
var (
	resourceMetadataRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)\bresource_metadata\s*=\s*"([^"]{1,1000})"`) })
	scopeRE            = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)\bscope\s*=\s*"([^"]{0,1000})"`) })
)

// checkMetadata refuses an authorization server whose endpoints Ringlet
// would send a code, a token, a secret or the browser over plain http to
// another host, or that does not do PKCE with S256 (MCP authorization:
// a client must refuse to proceed then).
func checkMetadata(m *transport.AuthServerMetadata) error {
	for _, e := range []struct{ what, url string }{{"issuer", m.Issuer}, {"authorization endpoint", m.AuthorizationEndpoint}, {"token endpoint", m.TokenEndpoint},
		{"registration endpoint", m.RegistrationEndpoint}, {"revocation endpoint", m.RevocationEndpoint}} {
		if e.url == "" && (e.what == "registration endpoint" || e.what == "revocation endpoint") {
			continue
		}
		if err := CheckEndpoint(e.what, e.url); err != nil {
			return err
		}
	}
	if !slices.Contains(m.CodeChallengeMethodsSupported, "S256") {
		return fmt.Errorf("the authorization server %s does not list PKCE with S256 (code_challenge_methods_supported); Ringlet does not authorize without it", m.Issuer)
	}
	return nil
}

// printable keeps what an authorization server says fit for one line.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
