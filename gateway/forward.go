package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/privatefile"
)

// ForwarderPort is where the forwarder inside a sandbox listens; requests
// through the session socket carry it in their Host header.
const ForwarderPort = 8765

// sessionSocket serves one session's scope on a Unix socket that is bound
// into that session's sandbox: the provider proxy and hook checks, with
// that session's token only. The admin API is not there at all.
type sessionSocket struct {
	dir  string
	path string
	srv  *http.Server
	done chan struct{}
}

// openSessionSocket listens on a new socket in a fresh 0700 directory.
// The directory is short-named under the temp dir: a Unix socket path is
// limited to 108 bytes.
func (s *Server) openSessionSocket(sess *session) (string, error) {
	base := s.opts.SocketDir
	if base == "" {
		base = os.TempDir()
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir := filepath.Join(base, "ringlet-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, privatefile.DirMode); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := os.Chmod(path, privatefile.FileMode); err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return "", err
	}
	r := chi.NewRouter()
	r.Use(s.metrics.middleware, s.recoverer, s.activity)
	r.Use(newHostGuard(ForwarderPort, "", s.guardDenied).middleware)
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Only this session's token, whatever else is valid elsewhere.
			if got := s.sessionFor(r); got != sess {
				s.authFailed("invalid_session", r)
				writeError(w, http.StatusUnauthorized, "unauthorized", "this socket serves one session; its token is required")
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "a session socket serves only /proxy and /session")
	})
	r.Handle("/proxy/*", http.HandlerFunc(s.handleProxy))
	if s.mcp != nil {
		// The profile's MCP gateway, for this session's token only.
		r.Handle("/mcp", http.HandlerFunc(s.handleMCP))
	}
	if s.opts.Hooks != nil {
		r.Route("/session", func(r chi.Router) {
			r.Use(limitBody(maxHookCheckBody, 30*time.Second))
			r.Post("/hooks/check", s.handleHookCheck)
		})
	}
	// CONNECT (egress to --allow-host hosts) comes before the Host guard:
	// its Host is the target, by definition not this daemon.
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodConnect {
			s.handleConnect(w, req, sess)
			return
		}
		r.ServeHTTP(w, req)
	})
	ss := &sessionSocket{dir: dir, path: path, done: make(chan struct{}),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			BaseContext: func(net.Listener) context.Context {
				return context.WithValue(sess.ctx, sourceKey{}, "session socket "+sess.ID)
			}}}
	s.sockMu.Lock()
	s.sockets[sess.ID] = ss
	s.sockMu.Unlock()
	s.streams.Add(1)
	go func() {
		defer s.streams.Done()
		defer close(ss.done)
		if err := ss.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("session socket stopped", "session", sess.ID, "err", err)
		}
	}()
	s.log.Info("session socket open", "session", sess.ID, "socket", path)
	return path, nil
}

func (s *Server) closeSessionSocket(sess *session) {
	s.sockMu.Lock()
	ss := s.sockets[sess.ID]
	delete(s.sockets, sess.ID)
	s.sockMu.Unlock()
	if ss == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := ss.srv.Shutdown(ctx); err != nil {
		ss.srv.Close()
	}
	<-ss.done
	os.RemoveAll(ss.dir)
}
