package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/internal/outbound"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
)

// MaxProxyBody bounds a provider request body (prompts with images).
const MaxProxyBody = 32 << 20

// proxyBodyBudget bounds the request bodies all proxied requests hold at
// once, and proxyBodyTimeout how long one may take to arrive: a client
// that holds many connections each stuck just under MaxProxyBody would
// otherwise make the daemon hold them all in memory, for as long as it
// likes.
const (
	proxyBodyBudget  = 256 << 20
	proxyBodyTimeout = 60 * time.Second
)

// bodyBudget counts the bytes of request bodies the daemon holds: proxied
// requests and hook checks (which carry tool results).
type bodyBudget struct {
	held atomic.Int64
	// burst gives the memory of a burst of large bodies back (bodymem.go).
	burst burstCollector
}

// bodyHold is one request's share of the budget.
type bodyHold struct {
	b    *bodyBudget
	n    int64
	done bool
}

// hold reserves room for r's body: its declared length, or max while the
// length is unknown. Without room it answers 503 busy and returns false.
func (b *bodyBudget) hold(w http.ResponseWriter, r *http.Request, max int64) (bodyHold, bool) {
	n := r.ContentLength
	if n < 0 {
		n = max
	} else {
		b.burst.read(n)
	}
	if b.held.Add(n) > proxyBodyBudget {
		b.held.Add(-n)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "busy", fmt.Sprintf("the daemon already holds %d MiB of request bodies; retry when other requests have finished", proxyBodyBudget>>20))
		return bodyHold{}, false
	}
	return bodyHold{b: b, n: n}, true
}

// shrink gives back what a body read whole holds beyond its size n.
func (h *bodyHold) shrink(n int64) {
	h.b.burst.read(n)
	if n < h.n {
		h.b.held.Add(n - h.n)
		h.n = n
	}
}

// release gives the share back; a second call does nothing.
func (h *bodyHold) release() {
	if h.b == nil || h.done {
		return
	}
	h.done = true
	h.b.held.Add(-h.n)
	h.b.burst.released(&h.b.held)
}

// CleanProxyPath checks the part of a /proxy request path after "/proxy"
// (still percent-encoded) and returns it if it can only name a path under
// the provider's base URL. Dot segments, encoded slashes, backslashes and
// dots, empty segments and '@' are refused: none appears in a provider API
// path, and each is a known way to walk a key out from under the base.
func CleanProxyPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' || escaped == "/" {
		return "", errors.New("no API path after /proxy")
	}
	lower := strings.ToLower(escaped)
	// A raw '?' or '#' never reaches here from a request path, and joined
	// to the base it would cut "/..#" down to a dot segment.
	for _, bad := range []string{"%2f", "%5c", "%2e", "%00", "%40", "\\", "//", "@", "%25", "?", "#"} {
		if strings.Contains(lower, bad) {
			return "", fmt.Errorf("the path may not contain %q", bad)
		}
	}
	for seg := range strings.SplitSeq(escaped[1:], "/") {
		if seg == "." || seg == ".." {
			return "", errors.New("the path may not contain dot segments")
		}
	}
	for _, c := range escaped {
		if c < 0x21 || c == 0x7f || c > 0x7e {
			return "", errors.New("the path contains a control or non-ASCII character")
		}
	}
	return escaped, nil
}

// upstreamURL joins a checked path to the base and verifies the result
// still points at the base's host and under its path.
// baseString is base.String(), which a session keeps (baseURL).
func upstreamURL(base *url.URL, baseString, path, rawQuery string) (*url.URL, error) {
	u, err := url.Parse(baseString + path)
	if err != nil || u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil ||
		!strings.HasPrefix(u.EscapedPath(), base.EscapedPath()+"/") {
		return nil, errors.New("the path does not stay under the provider's base URL")
	}
	u.RawQuery = rawQuery
	return u, nil
}

// proxy forwards a session's requests to its profile's provider with the
// real key, and records each one: the request body read whole within its
// budget, only the wire format's headers, the answer metered and redacted
// as it passes, the provider.request record committed before the client
// has the end of the answer.
type proxy struct {
	o  proxyOptions
	rp *httputil.ReverseProxy
	// perSession holds what each session's requests share (*session ->
	// *proxySession) while the session lives.
	perSession sync.Map
	// modelLabels bounds the model label values of the proxy's metrics.
	modelLabels modelLabels
	// bodyTimeout is how long a request body may take to arrive.
	bodyTimeout time.Duration
}

// proxyOptions configure a proxy.
type proxyOptions struct {
	Rec     *recorder
	Metrics *metrics
	Log     *slog.Logger
	// Bodies is what the request bodies the daemon holds may take, shared
	// with hook checks.
	Bodies *bodyBudget
	// IdleTimeout ends an answer that sends nothing for this long;
	// HeaderTimeout one whose headers have not come this long after it was
	// forwarded (504). 0: no limit.
	IdleTimeout, HeaderTimeout time.Duration
	// Budgets reserves a request's worst case against the budgets that
	// cover it before it is forwarded; nil: no budgets.
	Budgets *budgets
	// Writable reports from memory whether the audit log can be written
	// now; nil with the log off. Requests are refused before they are
	// forwarded while it cannot.
	Writable func() error
	// Paces enforces the profiles' rate limits; nil: none.
	Paces *rateLimits
}

func newProxy(o proxyOptions) *proxy {
	p := &proxy{o: o, bodyTimeout: proxyBodyTimeout}
	p.rp = p.newReverseProxy()
	return p
}

// proxySession is what every proxied request of a session uses, made once
// per session.
type proxySession struct {
	secrets *provider.Secrets // the session's key in every form the redactor knows
	// keyHeader and keyValue are the header that carries the key to the
	// provider; keyValue is shared by the requests' headers, which
	// nothing changes in place.
	keyHeader string
	keyValue  []string
	// live are the session's requests in flight, cancelled when it ends.
	live liveRequests
	// targets are the upstream URLs of its latest requests.
	targets upstreamTargets
}

// acceptIdentity is the Accept-Encoding of every forwarded request; shared
// like keyValue.
var acceptIdentity = []string{"identity"}

// proxyState travels with one proxied request through ReverseProxy. The
// parts of the answer's path live in it, one allocation per request.
type proxyState struct {
	sess      *session
	ps        *proxySession
	secrets   *provider.Secrets // ps.secrets
	target    *url.URL          // &targetv
	targetv   url.URL
	body      []byte
	start     time.Time
	bytesOut  int64
	ttfb      time.Duration
	status    int
	usage     provider.Usage
	err       error
	cancel    context.CancelCauseFunc // its cause says why the answer was cut short
	ctx       context.Context         // the upstream request's
	client    context.Context         // the client's request's
	recorded  sync.Once
	recordErr error // the provider.request record could not be written
	streaming bool
	method    string
	// headerTimer ends a request whose answer has no headers after the
	// response header timeout; headerTimedOut says it did.
	headerTimer    *time.Timer
	headerTimedOut atomic.Bool

	// hold is the request's reservation against its budgets; nil when
	// none covers it. cut is set once a streamed answer passed a cap.
	hold *budgetHold
	cut  *budgetCut
	// rt is the request's place in its session's traces; nil with
	// correlation off.
	rt  *reqTrace
	rtv reqTrace // what rt points to when set
	// livePrev and liveNext link the state into its session's
	// liveRequests while inLive.
	livePrev, liveNext *proxyState
	inLive             bool

	// pctx is ctx carrying the state to the ReverseProxy's hooks
	// (context.WithValue, without its allocation).
	pctx    proxyCtx
	w       finalOnly // the client's writer as ReverseProxy gets it
	reqBody bytes.Reader
	mb      meteredBody
	meter   provider.Meter
	red     provider.Redactor
	whole   wholeBody
}

// shared returns what the session's requests share: the forms of its
// key, compiled once per session, and the key's header; forgotten when the
// session ends.
func (p *proxy) shared(sess *session) *proxySession {
	if v, ok := p.perSession.Load(sess); ok {
		return v.(*proxySession)
	}
	ps := &proxySession{secrets: provider.NewSecrets(sess.key.Reveal())}
	switch sess.Provider.Auth {
	case profile.AuthXAPIKey:
		ps.keyHeader, ps.keyValue = "X-Api-Key", []string{sess.key.Reveal()}
	default:
		ps.keyHeader, ps.keyValue = "Authorization", []string{"Bearer " + sess.key.Reveal()}
	}
	v, loaded := p.perSession.LoadOrStore(sess, ps)
	if !loaded {
		context.AfterFunc(sess.ctx, func() {
			p.perSession.Delete(sess)
			ps.live.end()
		})
	}
	return v.(*proxySession)
}

type proxyStateKey struct{}

// proxyCtx is a proxied request's context: its Value of proxyStateKey{}
// is the request's state.
type proxyCtx struct {
	context.Context
	st *proxyState
}

func (c *proxyCtx) Value(key any) any {
	if _, ok := key.(proxyStateKey); ok {
		return c.st
	}
	return c.Context.Value(key)
}

// idleTimeoutError cuts an answer that sent nothing for proxy.idle_timeout.
type idleTimeoutError struct{ d time.Duration }

func (e idleTimeoutError) Error() string {
	return fmt.Sprintf("the provider sent nothing for %s (proxy.idle_timeout); the answer was cut", e.d)
}

// why is what ended the request early, in words: the reads report
// "context canceled" whether the proxy cut an idle answer, the session
// ended, or the client went away.
func (st *proxyState) why() string {
	if !errors.Is(st.err, context.Canceled) {
		return st.err.Error()
	}
	var idle idleTimeoutError
	switch cause := context.Cause(st.ctx); {
	case errors.As(cause, &idle):
		return idle.Error()
	case errors.Is(cause, errSessionEnded):
		return "the session ended (revoked, expired or its key changed) during the answer"
	case st.client.Err() != nil:
		return "the client went away before the end of the answer"
	}
	return st.err.Error()
}

// bufferPool lends ReverseProxy the read buffers of readBufs, as slices:
// a slice put back is turned back into the array pointer it came from,
// so that a Put allocates nothing.
type bufferPool struct{}

func (bufferPool) Get() []byte { return readBufs.Get().(*[32 << 10]byte)[:] }
func (bufferPool) Put(v []byte) {
	if len(v) == 32<<10 {
		readBufs.Put((*[32 << 10]byte)(v))
	}
}

func (p *proxy) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      outbound.Transport(),
		BufferPool:     bufferPool{},
		FlushInterval:  0, // text/event-stream is flushed per write by ReverseProxy itself
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
		// Without it, ReverseProxy writes its errors (an upstream body
		// that breaks off) with the standard logger, past the daemon's
		// log and its level.
		ErrorLog: slog.NewLogLogger(p.o.Log.Handler(), slog.LevelWarn),
	}
}

// rewrite builds the outbound request. Of the client's headers only those
// the provider's wire format needs pass (provider.ForwardRequestHeader):
// no credential of any provider, cookie, forwarding or proxy header, nor
// one named by the client's Connection header, reaches the provider, and
// the key added here cannot be stripped by a client.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(proxyStateKey{}).(*proxyState)
	out := pr.Out
	out.URL = st.target
	out.Host = st.target.Host
	format := st.sess.Provider.Format
	// out.Header is ReverseProxy's copy of the client's headers, this
	// request's own: filtered in place.
	h := out.Header
	for name := range h {
		if !provider.ForwardRequestHeader(format, name) {
			delete(h, name)
		}
	}
	h[st.ps.keyHeader] = st.ps.keyValue
	// An answer must reach modifyResponse readable: a compressed one
	// could carry the key past the redactor and its usage past the meter.
	h["Accept-Encoding"] = acceptIdentity
	st.reqBody.Reset(st.body)
	// A *bytes.Reader in io.NopCloser, not a type of our own: the
	// transport then knows the body is in memory and sends it with the
	// headers in one write (net/http isKnownInMemoryReader).
	out.Body = io.NopCloser(&st.reqBody)
	out.ContentLength = int64(len(st.body))
	out.GetBody = nil
	if len(st.body) == 0 && pr.In.Method == http.MethodGet {
		out.Body = http.NoBody
	}
}

// modifyResponse redacts the key from headers and wraps the body so usage
// is read, the key redacted and the end recorded as the bytes pass.
func (p *proxy) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(proxyStateKey{}).(*proxyState)
	if st.headerTimer != nil && !st.headerTimer.Stop() {
		// The timeout fired as the headers came: the request is being
		// cancelled, and its answer is the timeout's.
		return context.Canceled
	}
	for name, vals := range resp.Header {
		if st.secrets.RedactString(name) != name {
			delete(resp.Header, name)
			continue
		}
		for i, v := range vals {
			vals[i] = st.secrets.RedactString(v)
		}
	}
	// Cookies from the provider are for the provider, not for the agent
	// that holds only a session token.
	resp.Header.Del("Set-Cookie")
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// A WebSocket or other upgrade would carry bytes past the meter,
		// the redactor and the audit record.
		return &refusedAnswer{"the provider switched protocols (an upgrade such as WebSocket); Ringlet does not proxy upgrades"}
	}
	if ce := contentCoding(resp.Header); ce != "" {
		return &refusedAnswer{fmt.Sprintf("the provider answered with Content-Encoding %q although Ringlet asked for none; an answer Ringlet cannot read for the key and the usage is refused", ce)}
	}
	// Trailers would reach the client without passing the redactor;
	// provider APIs send none. Those the transport reads at the end of
	// the body are dropped there too (meteredBody).
	resp.Trailer = nil
	st.status = resp.StatusCode
	ct := resp.Header.Get("Content-Type")
	st.streaming = strings.HasPrefix(strings.ToLower(ct), "text/event-stream")
	st.meter.Reset(ct)
	if st.rt != nil {
		st.meter.Tools = st.rt.add
	}
	st.red.Reset(st.secrets)
	mb := &st.mb
	*mb = meteredBody{rc: resp.Body, resp: resp, st: st, p: p, meter: &st.meter, red: &st.red, idle: p.o.IdleTimeout}
	if resp.Request.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		// No body: the headers (Content-Length included) stay as they are.
		resp.Body = mb
		return nil
	}
	if !st.streaming && resp.ContentLength >= 0 && resp.ContentLength <= maxWholeAnswer {
		// A plain answer of known size is read whole: it keeps an exact
		// Content-Length after redaction, so ReverseProxy sends it in one
		// write instead of flushing chunk by chunk.
		mb.whole = true
		buf := bytes.NewBuffer(make([]byte, 0, resp.ContentLength+512))
		_, err := buf.ReadFrom(mb)
		body := buf.Bytes()
		mb.rc.Close()
		mb.release()
		resp.Trailer = nil
		if err != nil {
			// ReverseProxy closes resp.Body and hands err to proxyError,
			// which records the request.
			resp.Body = http.NoBody
			return err
		}
		st.whole.Reset(body)
		st.whole.mb = mb
		resp.Body = &st.whole
		resp.ContentLength = int64(len(body))
		if cl := resp.Header["Content-Length"]; len(cl) == 1 {
			cl[0] = strconv.Itoa(len(body)) // the response's own slice
		} else {
			resp.Header["Content-Length"] = []string{strconv.Itoa(len(body))}
		}
		// Recorded before any of it goes out: if the record cannot be
		// written, the client gets a 503 (from proxyError), not a cut
		// answer.
		if err := mb.finish(nil); err != nil {
			resp.Body = http.NoBody
			return err
		}
		return nil
	}
	// Redaction may change the length; bodies of unknown size are
	// re-framed.
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Body = mb
	return nil
}

// maxWholeAnswer bounds the non-streaming answers that are buffered whole
// (model answers are a few KiB); larger ones pass through as they arrive.
const maxWholeAnswer = 1 << 20

// wholeBody is an answer read whole (and metered) by modifyResponse. Its
// record is committed before the read that hands out its last bytes, so a
// client never holds a complete answer whose record could still be lost.
type wholeBody struct {
	bytes.Reader
	mb *meteredBody
}

func (b *wholeBody) Read(p []byte) (int, error) {
	if b.Reader.Len() <= len(p) {
		// No record, no end of the answer: the client's read fails.
		if err := b.mb.finish(nil); err != nil {
			return 0, err
		}
	}
	return b.Reader.Read(p)
}

func (b *wholeBody) Close() error {
	if b.Reader.Len() > 0 {
		// The client is gone: the record says so, and no one is left
		// to hear whether it was written.
		_ = b.mb.finish(errors.New("the client went away before the end of the answer"))
	}
	return nil
}

// meteredBody is the upstream response body as the client receives it.
var readBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

type meteredBody struct {
	rc    io.ReadCloser
	resp  *http.Response // its Trailer is dropped once the body has ended
	st    *proxyState
	p     *proxy
	meter *provider.Meter
	red   *provider.Redactor
	out   []byte
	buf   *[32 << 10]byte // from readBufs; returned on Close
	eof   bool
	idle  time.Duration
	timer *time.Timer
	whole bool // read whole by modifyResponse; wholeBody finishes it
	// endsLine says the last byte handed to the client was a newline.
	endsLine bool
}

func (b *meteredBody) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.eof {
			if !b.whole {
				// A stream whose record cannot be written ends without its
				// clean end.
				if err := b.finish(nil); err != nil {
					return 0, err
				}
			}
			return 0, io.EOF
		}
		if b.idle > 0 {
			if b.timer == nil {
				idle := b.idle
				b.timer = time.AfterFunc(idle, func() { b.st.cancel(idleTimeoutError{idle}) })
			} else {
				b.timer.Reset(b.idle)
			}
		}
		if b.buf == nil {
			b.buf = readBufs.Get().(*[32 << 10]byte)
		}
		n, err := b.rc.Read(b.buf[:])
		if n > 0 {
			if b.st.ttfb == 0 {
				b.st.ttfb = time.Since(b.st.start)
			}
			_, _ = b.meter.Write(b.buf[:n]) // a Meter never fails
			// Process may return a slice of buf itself; copy out what is
			// left so buf can go back to the pool.
			b.out = append(b.out[:0], b.red.Process(b.buf[:n])...)
			if h := b.st.hold; h != nil && b.st.streaming && b.st.cut == nil {
				b.checkBudget(h)
			}
		}
		if b.st.cut != nil && b.cutAt(err != nil) {
			break
		}
		if err == io.EOF {
			b.eof = true
			b.resp.Trailer = nil
			b.out = append(b.out, b.red.Flush()...)
		} else if err != nil {
			if !b.whole {
				_ = b.finish(err) // err is what the client hears
			}
			return 0, err
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	b.st.bytesOut += int64(n)
	if n > 0 {
		b.endsLine = p[n-1] == '\n'
	}
	return n, nil
}

// checkBudget grows the request's reservation to the usage its stream
// reported so far; when that passes a cap and the budget's stream
// policy is cut, the stream is marked to end at its next event
// boundary.
func (b *meteredBody) checkBudget(h *budgetHold) {
	ref := b.p.o.Budgets.grow(h, b.st, b.meter.Usage())
	if ref == nil || h.policy != budget.StreamCut {
		return
	}
	b.st.cut = &budgetCut{ref}
	b.p.o.Budgets.record(b.st.ctx, b.st.sess, audit.KindBudgetRefused, ref, "stream", h.action)
}

// cutAt ends a stream marked to be cut at the first event boundary in
// what is left to send (or at once when what was sent ended at one, or
// the provider's stream ended): what follows is dropped, the error event
// takes its place, and the answer ends there. It reports whether it cut.
func (b *meteredBody) cutAt(upstreamEnded bool) bool {
	at := -1
	switch {
	case b.st.bytesOut == 0 && len(b.out) == 0:
		at = 0
	case b.endsLine && len(b.out) > 0 && b.out[0] == '\n':
		at = 1
	default:
		if i := bytes.Index(b.out, []byte("\n\n")); i >= 0 {
			at = i + 2
		}
	}
	if at < 0 && !upstreamEnded {
		return false
	}
	prefix := []byte(nil)
	if at < 0 {
		// The provider ended mid-event: close it so the error event
		// stands alone.
		at, prefix = len(b.out), []byte("\n\n")
	}
	b.out = append(append(b.out[:at], prefix...), budgetCutEvent(b.st.sess.Provider.Format, b.st.cut.ref)...)
	b.eof = true
	b.resp.Trailer = nil
	if b.st.err == nil {
		b.st.err = *b.st.cut
	}
	b.st.cancel(*b.st.cut)
	return true
}

func (b *meteredBody) Close() error {
	err := b.rc.Close()
	b.release()
	if !b.eof {
		_ = b.finish(errors.New("the client went away before the end of the answer"))
	}
	return err
}

// release stops the idle timer and returns the read buffer to its pool.
func (b *meteredBody) release() {
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.buf != nil {
		readBufs.Put(b.buf)
		b.buf = nil
	}
}

// finish records the request, once; it reports whether the record could
// not be written.
func (b *meteredBody) finish(err error) error {
	b.st.usage = b.meter.Usage()
	if b.st.usage.Complete {
		// The answer's last event (message_stop, [DONE],
		// response.completed) was read and handed on to the client: what
		// happens to the connection after it (a client that hangs up once it has
		// it, as Codex does; a provider slow to close) does not make the
		// answer incomplete.
		err = nil
	}
	if err != nil && b.st.err == nil {
		b.st.err = err
	}
	b.p.recordProvider(b.st)
	return b.st.recordErr
}

// refusedAnswer is an answer of the provider that Ringlet does not pass on;
// its text says why, to the client too.
type refusedAnswer struct{ why string }

func (e *refusedAnswer) Error() string { return e.why }

// contentCoding returns the first content coding other than identity
// named by h's Content-Encoding, or "".
func contentCoding(h http.Header) string {
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c
			}
		}
	}
	return ""
}

// finalOnly passes on the final answer, not informational answers such as
// 103 Early Hints: ReverseProxy would send their headers straight from the
// provider, past modifyResponse and its redaction. (101 goes through to
// modifyResponse, which refuses upgrades.)
type finalOnly struct{ http.ResponseWriter }

func (f finalOnly) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	f.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer's Flush and Hijack.
func (f finalOnly) Unwrap() http.ResponseWriter { return f.ResponseWriter }

func (p *proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(proxyStateKey{}).(*proxyState)
	if st.headerTimer != nil {
		st.headerTimer.Stop()
	}
	if errors.Is(err, audit.ErrUnavailable) {
		// The answer's record could not be written: the answer is withheld.
		p.o.Log.Error("provider answer withheld: its record could not be written", "provider", st.sess.Provider.ID, "session", st.sess.ID, "err", err)
		writeAuditError(w, err)
		return
	}
	st.err = err
	st.status = http.StatusBadGateway
	code, msg := "upstream_unreachable", "the provider could not be reached"
	var refused *refusedAnswer
	switch {
	case st.headerTimedOut.Load():
		st.status = http.StatusGatewayTimeout
		st.err = fmt.Errorf("no response headers within %s", p.o.HeaderTimeout)
		code, msg = "upstream_timeout", fmt.Sprintf("the provider sent no response headers within %s (proxy.response_header_timeout); try again, or raise the timeout if the provider needs longer", p.o.HeaderTimeout)
	case errors.As(err, &refused):
		code, msg = "answer_refused", refused.why
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		msg = "the request was cancelled"
	}
	p.o.Log.Warn("provider request failed", "provider", st.sess.Provider.ID, "session", st.sess.ID, "err", st.secrets.RedactString(st.err.Error()))
	p.recordProvider(st)
	writeError(w, st.status, code, msg+" ("+st.sess.Provider.ID+")")
}

// validModelLabel reports whether a model name may be a metric label:
// 1 to 80 of A-Z a-z 0-9 . _ : / @ - (the pattern `^[A-Za-z0-9._:/@-]{1,80}$`,
// checked by a loop: it runs on every proxied request, and the regexp
// took part of every start to compile; FuzzValidModelLabel holds the two
// equal).
func validModelLabel(s string) bool {
	if len(s) < 1 || len(s) > 80 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("._:/@-", c) >= 0) {
			return false
		}
	}
	return true
}

// maxModelLabels bounds the model label values of the provider metrics:
// the model comes from the request when the answer names none, so a
// session could otherwise make every request a new series.
const maxModelLabels = 200

// modelLabels hands out model label values, the first maxModelLabels
// distinct models as themselves and every other as "other".
type modelLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *modelLabels) label(model string) string {
	if !validModelLabel(model) {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[model] {
		return model
	}
	if len(m.seen) >= maxModelLabels {
		return "other"
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	m.seen[model] = true
	return model
}

// providerDetail is the detail of a provider.request record.
type providerDetail struct {
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
	Method   string `json:"method"`
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Stream   bool   `json:"stream"`
	TTFBNs   int64  `json:"ttfb_ns"`
	// ToolUses are the tool calls the answer asked for, each with the
	// span the trace gives it (docs/audit.md, "Traces").
	ToolUses []audit.TraceToolUse `json:"tool_uses,omitempty"`
}

// json is audit.DetailJSON(d), without reflection where every string of d
// is plain: printable ASCII that encoding/json writes as it is.
func (d *providerDetail) json() json.RawMessage {
	if len(d.ToolUses) > 0 {
		return d.reflectJSON()
	}
	for _, s := range [...]string{d.Error, d.Method, d.Model, d.Provider} {
		if !plainJSON(s) {
			return d.reflectJSON()
		}
	}
	b := make([]byte, 0, 96+len(d.Error)+len(d.Model))
	b = strconv.AppendBool(append(b, `{"complete":`...), d.Complete)
	if d.Error != "" {
		b = append(append(append(b, `,"error":"`...), d.Error...), '"')
	}
	b = append(append(append(b, `,"method":"`...), d.Method...), '"')
	b = append(append(append(b, `,"model":"`...), d.Model...), '"')
	b = append(append(append(b, `,"provider":"`...), d.Provider...), '"')
	b = strconv.AppendBool(append(b, `,"stream":`...), d.Stream)
	b = strconv.AppendInt(append(b, `,"ttfb_ns":`...), d.TTFBNs, 10)
	return append(b, '}')
}

// reflectJSON is audit.DetailJSON(d) of a copy, so that d itself does not
// escape (and its caller's detail stays on the stack) when json takes
// the plain path.
func (d *providerDetail) reflectJSON() json.RawMessage {
	c := *d
	return audit.DetailJSON(&c)
}

// plainJSON reports whether encoding/json writes s as it is between its
// quotes: printable ASCII but for '"', '\\' and the HTML-escaped <, > and &.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// maxModelLen bounds the model name a provider.request record keeps: the
// agent chooses it (the request's model, or a hostile upstream's answer),
// and every reader repeats it (usage tables, the Spend page's rows and
// CSV, OTLP span names).
const maxModelLen = 256

// clipModel is model cut to maxModelLen bytes at a UTF-8 boundary, with
// "…" to say so.
func clipModel(model string) string {
	if len(model) <= maxModelLen {
		return model
	}
	cut := maxModelLen - len("…")
	for cut > 0 && !utf8.RuneStart(model[cut]) {
		cut--
	}
	return model[:cut] + "…"
}

// statusLabels are the status codes as metric label values, made once.
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// statusLabel is strconv.Itoa(code), without allocating for a code below
// 600.
func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}

// recordProvider writes the request's provider.request record and metrics,
// once.
func (p *proxy) recordProvider(st *proxyState) {
	st.recorded.Do(func() {
		dur := time.Since(st.start)
		model := st.usage.Model
		if model == "" {
			// Only when the answer did not name it: parsing the request
			// costs more than the rest of the record.
			model = provider.RequestModel(st.body)
		}
		model = clipModel(model)
		decision := audit.Allow
		detail := providerDetail{Complete: st.usage.Complete || !st.streaming && st.err == nil, Method: st.method, Model: model,
			Provider: st.sess.Provider.ID, Stream: st.streaming, TTFBNs: st.ttfb.Nanoseconds()}
		if st.err != nil {
			decision = audit.Error
			detail.Error = st.secrets.RedactString(st.why())
			detail.Complete = false
		}
		if st.rt != nil {
			detail.ToolUses = st.rt.uses
			if !detail.Complete {
				st.rt.cut()
			}
		}
		rec := audit.Record{
			Kind: audit.KindProviderRequest, Profile: st.sess.Profile.Alias, Session: st.sess.ID, Actor: st.sess.tokenID,
			Target: st.target.Path, Decision: decision, Status: int64(st.status), Duration: dur,
			BytesIn: int64(len(st.body)), BytesOut: st.bytesOut,
			TokensIn: st.usage.Input, TokensOut: st.usage.Output, TokensCacheRead: st.usage.CacheRead, TokensCacheWrite: st.usage.CacheWrite,
		}
		st.rt.stampRequest(&rec)
		rec.Detail = detail.json()
		st.recordErr = p.o.Rec.record(context.Background(), rec)
		if st.hold != nil {
			p.o.Budgets.settle(st.hold, st, model)
		}
		if p.o.Paces != nil {
			p.o.Paces.spend(st.sess, st.usage.Input+st.usage.Output)
		}
		label := p.modelLabels.label(model)
		m := p.o.Metrics
		m.providerRequests.WithLabelValues(st.sess.Provider.ID, statusLabel(st.status), label).Inc()
		m.providerSeconds.WithLabelValues(st.sess.Provider.ID).Observe(dur.Seconds())
		if st.ttfb > 0 {
			m.providerTTFB.WithLabelValues(st.sess.Provider.ID).Observe(st.ttfb.Seconds())
		}
		for _, t := range [...]struct {
			typ string
			n   int64
		}{{"input", st.usage.Input}, {"output", st.usage.Output}, {"cache_read", st.usage.CacheRead}, {"cache_write", st.usage.CacheWrite}} {
			if t.n > 0 {
				m.tokens.WithLabelValues(st.sess.Profile.Alias, label, t.typ).Add(float64(t.n))
			}
		}
	})
}

// auditRefuses answers 503 when the audit log cannot be written now: the
// provider.request record is committed when the answer ends, so a request
// forwarded meanwhile would reach the provider with no record.
func (p *proxy) auditRefuses(w http.ResponseWriter) bool {
	if p.o.Writable == nil {
		return false
	}
	err := p.o.Writable()
	if err == nil {
		return false
	}
	writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "refused: the audit log cannot be written, so provider requests are not forwarded ("+rootCause(err)+")")
	return true
}

// handleProxy forwards a session's request to its provider with the real
// key. Its gate admits session tokens only, never the admin token.
func (p *proxy) handleProxy(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	if !strings.HasPrefix(r.RequestURI, "/") {
		writeError(w, http.StatusBadRequest, "bad_path", "absolute-form request targets are not accepted")
		return
	}
	rest, err := CleanProxyPath(strings.TrimPrefix(r.URL.EscapedPath(), "/proxy"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_path", err.Error())
		return
	}
	ps := p.shared(sess)
	var target url.URL
	if err := ps.targets.get(sess, rest, r.URL.RawQuery, &target); err != nil {
		writeError(w, http.StatusBadRequest, "bad_path", err.Error())
		return
	}
	if p.auditRefuses(w) {
		return
	}
	if p.o.Paces != nil {
		if refusal := p.o.Paces.admit(sess, paceRequests); refusal != nil {
			p.o.Paces.refused(r.Context(), sess, refusal, target.Path)
			writeRateLimited(w, sess.Provider.Format, refusal)
			return
		}
	}
	if r.ContentLength > MaxProxyBody {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than the %d-byte limit", MaxProxyBody))
		return
	}
	// The body is read whole before forwarding: the audit and hooks need
	// it, and streaming an unread body into ReverseProxy truncates fast
	// SSE answers on HTTP/1 (golang/go#40747).
	// A body of unknown length holds the most it may be until it is in.
	hold, ok := p.o.Bodies.hold(w, r, MaxProxyBody)
	if !ok {
		return
	}
	defer hold.release()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(p.bodyTimeout))
	body, err := readRequestBody(http.MaxBytesReader(w, r.Body, MaxProxyBody), r.ContentLength)
	defer body.free()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than the %d-byte limit", MaxProxyBody))
			return
		}
		msg := "could not read the request body"
		if errors.Is(err, os.ErrDeadlineExceeded) {
			msg = fmt.Sprintf("the request body did not arrive within %s", p.bodyTimeout)
		}
		writeError(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	// The server's own deadlines take over again: an answer may stream
	// for as long as the provider sends.
	_ = rc.SetReadDeadline(time.Time{})
	hold.shrink(int64(len(body.bytes())))
	// Checked again: the body may have taken a while to arrive.
	if p.auditRefuses(w) {
		return
	}
	var bh *budgetHold
	if p.o.Budgets != nil {
		if bh, ok = p.o.Budgets.admit(w, r, sess, body.bytes()); !ok {
			return
		}
	}
	sess.requests.Add(1)
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	st := &proxyState{sess: sess, ps: ps, secrets: ps.secrets, targetv: target, body: body.bytes(), start: time.Now(), ctx: ctx, client: r.Context(), cancel: cancel, method: r.Method, hold: bh}
	st.target = &st.targetv
	// A revoked session's streams end at once.
	ps.live.add(st)
	defer ps.live.remove(st)
	var bypass []audit.Record
	st.rt, bypass = p.o.Rec.traces.request(&st.rtv, sess, st.body)
	for _, b := range bypass {
		// What this request shows about the turn before: a finding, not
		// the request's own record; the request goes ahead regardless.
		_ = p.o.Rec.record(r.Context(), b)
	}
	if bh != nil {
		// Settled when the request is recorded; this gives the hold back
		// on any path that ends without a record (settling is once).
		defer p.o.Budgets.settle(bh, st, "")
	}
	if d := p.o.HeaderTimeout; d > 0 {
		// The idle timeout covers the answer once it has begun; this
		// covers the wait for it, which a provider that accepts the
		// connection and never answers would make endless.
		st.headerTimer = time.AfterFunc(d, func() {
			st.headerTimedOut.Store(true)
			cancel(fmt.Errorf("no response headers within %s", d))
		})
		defer st.headerTimer.Stop()
	}
	st.pctx = proxyCtx{Context: ctx, st: st}
	st.w = finalOnly{w} // in st: a finalOnly{w} of its own would be boxed
	p.rp.ServeHTTP(&st.w, r.WithContext(&st.pctx))
}
