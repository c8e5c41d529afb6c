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

// openSocket listens on a new socket in a fresh 0700 directory.
// The directory is short-named under the temp dir: a Unix socket path is
// limited to 108 bytes.
func (ss *sessions) openSocket(sess *session) (string, error) {
	base := ss.o.SocketDir
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
	handler := ss.o.Socket(sess)
	sk := &sessionSocket{dir: dir, path: path, done: make(chan struct{}),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			BaseContext: func(net.Listener) context.Context {
				return context.WithValue(sess.ctx, sourceKey{}, "session socket "+sess.ID)
			}}}
	ss.sockMu.Lock()
	ss.sockets[sess.ID] = sk
	ss.sockMu.Unlock()
	ss.o.Life.streams.Add(1)
	go func() {
		defer ss.o.Life.streams.Done()
		defer close(sk.done)
		if err := sk.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ss.o.Log.Error("session socket stopped", "session", sess.ID, "err", err)
		}
	}()
	ss.o.Log.Info("session socket open", "session", sess.ID, "socket", path)
	return path, nil
}

func (ss *sessions) closeSocket(sess *session) {
	ss.sockMu.Lock()
	sk := ss.sockets[sess.ID]
	delete(ss.sockets, sess.ID)
	ss.sockMu.Unlock()
	if sk == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sk.srv.Shutdown(ctx); err != nil {
		sk.srv.Close()
	}
	<-sk.done
	os.RemoveAll(sk.dir)
}
