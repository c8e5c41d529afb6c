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

	"github.com/neullabs/ringlet/privatefile"
)

// sessionSocket serves one session's scope on a Unix socket that is bound
// into that session's sandbox: the routes of the table served onSocket
// (the provider proxy, its MCP gateway, hook checks and egress), with
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
	handler := s.socketHandler(sess)
	ss := &sessionSocket{dir: dir, path: path, done: make(chan struct{}),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			BaseContext: func(net.Listener) context.Context {
				return context.WithValue(sess.ctx, sourceKey{}, "session socket "+sess.ID)
			}}}
	s.sockMu.Lock()
	s.sockets[sess.ID] = ss
	s.sockMu.Unlock()
	s.life.streams.Add(1)
	go func() {
		defer s.life.streams.Done()
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
