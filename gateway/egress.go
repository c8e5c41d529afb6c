package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// egress tunnels a provider-network sandbox to the hosts its profile
// allows (--allow-host), and to nothing else.
type egress struct {
	rec     *recorder
	life    *life
	metrics *securityMetrics
}

// handleConnect is the HTTP CONNECT proxy on a session socket: the only
// way out of a provider-network sandbox besides the provider itself. It
// tunnels to hosts the profile names with --allow-host (by name; port 443
// unless the entry gives one) and refuses everything else. Each tunnel,
// allowed or refused, is audited. The socket belongs to one sandbox, which
// is what authenticates the request.
func (e *egress) handleConnect(w http.ResponseWriter, r *http.Request, sess *session) {
	target := strings.ToLower(r.Host)
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "CONNECT needs host:port")
		return
	}
	allowed := false
	for _, a := range sess.Profile.AllowHosts {
		if a == target || (a == host && port == "443") {
			allowed = true
			break
		}
	}
	rec := audit.Record{Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID, Target: target}
	e.metrics.egressTried(sess.Profile.Alias, target, allowed, "egress")
	if !allowed {
		how := "allow it with 'ringlet profiles set " + sess.Profile.Alias + " --allow-host " + host + "'"
		rec.Kind, rec.Decision, rec.Status = audit.KindSandboxViolation, audit.Deny, http.StatusForbidden
		rec.Detail = audit.DetailJSON(map[string]any{"reason": "egress to a host the profile does not allow", "change": how})
		// Refused whether or not it is recorded.
		_ = e.rec.record(r.Context(), rec)
		writeError(w, http.StatusForbidden, "egress_denied", "Ringlet refused: the sandbox of profile "+sess.Profile.Alias+" may not reach "+target+"; "+how)
		return
	}
	rec.Kind, rec.Decision = audit.KindSandboxEgress, audit.Allow
	if err := e.rec.record(r.Context(), rec); err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "refused: the connection could not be recorded in the audit log")
		return
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	up, err := d.DialContext(r.Context(), "tcp", net.JoinHostPort(host, port))
	if err != nil {
		writeError(w, http.StatusBadGateway, "upstream_unreachable", "could not connect to "+target)
		return
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		up.Close()
		return
	}
	conn, buf, err := rc.Hijack()
	if err != nil {
		up.Close()
		return
	}
	e.life.streams.Add(1)
	go func() {
		defer e.life.streams.Done()
		splice(sess.ctx, conn, buf.Reader, up)
	}()
}

// handlePlain refuses a plain-HTTP proxy request (absolute-form, as a
// program sends to its HTTP_PROXY): the sandbox reaches other hosts only
// by HTTPS through CONNECT, to the hosts its profile allows. The attempt
// is recorded, so a reviewer sees what the agent tried, where without
// the proxy variables it would only have failed to resolve the name.
func (e *egress) handlePlain(w http.ResponseWriter, r *http.Request, sess *session) {
	target := strings.ToLower(r.URL.Host)
	if r.URL.Port() == "" {
		target = net.JoinHostPort(strings.ToLower(r.URL.Hostname()), "80")
	}
	target = clip(target)
	e.metrics.egressTried(sess.Profile.Alias, target, false, "plain_http")
	how := "the sandbox reaches other hosts only by HTTPS, to hosts allowed with 'ringlet profiles set " + sess.Profile.Alias + " --allow-host HOST'"
	// Refused whether or not it is recorded.
	_ = e.rec.record(r.Context(), audit.Record{Kind: audit.KindSandboxViolation, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
		Target: target, Decision: audit.Deny, Status: http.StatusForbidden,
		Detail: audit.DetailJSON(map[string]any{"reason": "plain-HTTP request through the sandbox's proxy", "method": clip(r.Method), "change": how})})
	writeError(w, http.StatusForbidden, "egress_denied", "Ringlet refused: the sandbox of profile "+sess.Profile.Alias+" may not reach http://"+target+"; "+how)
}

// splice copies both ways until either side closes or the session ends.
func splice(ctx context.Context, client net.Conn, pending io.Reader, up net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		up.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		// Either side hanging up ends the tunnel; there is no one to tell.
		_, _ = io.Copy(up, io.MultiReader(pending, client))
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	})
	_, _ = io.Copy(client, up)
	client.Close()
	wg.Wait()
	up.Close()
}
